"""Benchmark: pull N contacts and push one tag each, per platform, against the fake servers.

Usage: .venv/bin/python benchmarks/pull.py [--contacts 100000] [--platform brevo ...]

Each fake server (tests/fakes/) enforces the platform's documented limit
(Brevo 10 requests/s on /contacts, HubSpot 100 requests per 10 s, Mailchimp
10 simultaneous connections) and answers 429 with the vendor's headers beyond
it. The connectors pace themselves to that limit; the figures say how close
they get (target: >= 90 % of the limit) and whether any 429 was followed by
another (target: never). Mailchimp's limit is a number of connections, so its
figure depends on how long an answer takes: it is judged with the fake
answering in 0.3 s and shown too at 0.1 s, the round trip alone (see
``pull_mailchimp.py``). The work is done by ``benchmarks/pull_<platform>.py``,
one module per platform, each runnable alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PLATFORMS = ("brevo", "hubspot", "mailchimp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--platform", action="append", choices=PLATFORMS)
    args = ap.parse_args()
    rows = []
    for name in args.platform or PLATFORMS:
        try:
            module = importlib.import_module(f"pull_{name}")
        except ImportError as exc:
            print(f"{name}: no benchmark ({exc})")
            continue
        print(f"{name}: pulling {args.contacts:,} contacts and tagging them...", flush=True)
        rows.append(module.bench(args.contacts))
        stress = getattr(module, "STRESS_LATENCY", None)
        if stress is not None:  # the same at the fastest answers: shown, not judged
            print(f"{name}: again with the fake answering in {stress} s...", flush=True)
            rows.append({**module.bench(args.contacts, stress), "stress": True})
    if not rows:
        return
    head = (
        "platform",
        "pull c/s",
        "push c/s",
        "limit req/s",
        "achieved req/s",
        "of limit",
        "429s",
        "max 429 in a row",
    )
    print()
    print(" | ".join(head))
    for r in rows:
        label = r["platform"]
        if "latency_seconds" in r:
            label += f" ({r['latency_seconds']} s answers{', stress' if r.get('stress') else ''})"
        print(
            " | ".join(
                [
                    label,
                    f"{r['contacts_per_second_pull']:,.0f}",
                    f"{r['contacts_per_second_push']:,.0f}",
                    f"{r['limit_requests_per_second']:,.2f}",
                    f"{r['achieved_requests_per_second']:,.2f}",
                    f"{r['fraction_of_limit']:.0%}",
                    str(r["total_429"]),
                    str(r["max_consecutive_429"]),
                ]
            )
        )
    judged = [r for r in rows if not r.get("stress")]
    ok = all(r["fraction_of_limit"] >= 0.9 for r in judged) and all(
        r["max_consecutive_429"] <= 1 for r in rows
    )
    print("\ntarget (>= 90 % of the limit, no 429 twice in a row):", "met" if ok else "NOT met")
    if len(judged) < len(rows):
        print(
            "(a stress row is shown for the record and not judged: see its benchmark's docstring)"
        )


if __name__ == "__main__":
    main()
