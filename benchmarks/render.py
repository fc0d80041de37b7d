"""Benchmark: letters rendered per second by Segmerge vs a bare precompiled Jinja loop.

Usage: .venv/bin/python benchmarks/render.py [--messages 20000]

Both render the same `templates/profils-vpc/fonceurs.html.j2` (subject + HTML;
ours also derives the text part and runs sandboxed with strict variables) for
the same synthetic contacts, on one core. Prints messages/s and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segmerge.message import build_message, message_id_for  # noqa: E402
from segmerge.render import RenderContext, TemplateSet, split_front_matter  # noqa: E402

FOLDER = ROOT / "templates" / "profils-vpc"


def contacts(n: int) -> list[dict]:
    return [{"contact_id": f"{i:05d}", "first_name": "Camille", "last_name": "Martin",
             "civilite": "Mme" if i % 2 else "M.", "orders_count": i % 17, "revenue": 12.5 * i,
             "avg_basket": 80 + i % 40, "email": f"c{i}@example.org"} for i in range(n)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    n = ap.parse_args().messages
    people = contacts(n)
    ctx = RenderContext({"name": "profils"}, date(2026, 12, 1), "https://x.fr/u?token=T")

    bare_env = jinja2.Environment(loader=jinja2.FileSystemLoader([FOLDER, FOLDER.parent / "_shared"]))
    front, body = split_front_matter((FOLDER / "fonceurs.html.j2").read_text(), FOLDER)
    bare_env.filters.update(money=lambda v: f"{v:.2f} €", name=str, date=str)
    html_t = bare_env.from_string(body)
    subj_t = bare_env.from_string(front["subject"])
    t0 = time.perf_counter()
    for c in people:
        v = {"contact": c, "segment": {"name": "fonceurs"}, "unsubscribe_url": ctx.unsubscribe_url,
             "today": ctx.today, "campaign": ctx.campaign}  # fmt: skip
        subj_t.render(v)
        html_t.render(v)
    bare = n / (time.perf_counter() - t0)

    ts = TemplateSet.load(FOLDER, [("fonceurs", "Les fonceurs")], tz=ZoneInfo("Europe/Paris"),
                          known_columns=set(people[0]))  # fmt: skip
    t0 = time.perf_counter()
    rendered = [ts.render("fonceurs", c, ctx) for c in people]
    ours = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for c, r in zip(people, rendered, strict=True):
        build_message(r, to=c["email"], to_name="Camille Martin", from_addr="b@x.fr",
                      message_id=message_id_for(c["contact_id"], "x.fr"),
                      unsubscribe_url=ctx.unsubscribe_url).as_bytes()  # fmt: skip
    build = n / (time.perf_counter() - t0)
    print(f"bare precompiled Jinja (subject + HTML), 1 core: {bare:,.0f} messages/s")
    print(f"segmerge render (sandboxed, strict, fr_FR filters, + text part), 1 core: {ours:,.0f}/s")
    print(f"ratio ours / bare: {ours / bare:.2f} (target >= 0.8 per core)")
    print(f"MIME message build + serialise, 1 core: {build:,.0f} messages/s")


if __name__ == "__main__":
    main()
