"""Benchmark: pull N members from the Mailchimp fake and tag each, at Mailchimp's limit.

Mailchimp's documented limit is not a rate but a concurrency: at most 10
simultaneous connections per user, the 11th answered 429. So "fraction of
the limit" here is the mean number of requests in flight divided by 10, as the
fake sees it (from a request's arrival in its handler to the last byte of the
answer: conservative, it misses the time a request waits for the fake's own
interpreter), over the whole pull and push; ``client_fraction_of_limit`` is
the same seen by the connector (requests outstanding on its connections), and
``fraction_of_limit_while_calling`` the fake's figure over the time from each
phase's first call to its last answer only (the engine's own work before and
after left out). To keep it comparable with the rate-limited
platforms' figures, ``limit_requests_per_second`` is what 10 connections allow
at the fake's mean service time per request (10 / service time), and
``achieved_requests_per_second`` is requests / elapsed: their ratio is the same
mean concurrency / 10.

The fake runs in its own process (so its JSON encoding does not compete with the
connector for one interpreter lock), validates the first 20 requests of each
endpoint against Mailchimp's OpenAPI spec (openapi-core's ~14 ms per request
would otherwise make the fake, not the connector, the bottleneck at 10
connections; any violation fails the benchmark), enforces the 10-connection
cap, keeps each member's JSON encoded until the member changes (encoding a page
of 1,000 takes the fake 12 ms under one interpreter lock for all 10
connections, which would make it, not the connector, what bounds the pull; real
Mailchimp encodes on its own machines, not on the client's two cores), and takes
``latency``
seconds per answer. With no latency at all a loopback server answers in about a
millisecond and the figure measures CPU, not the use of the limit; so the
reference is ``REFERENCE_LATENCY`` (0.3 s), and ``STRESS_LATENCY`` (0.1 s) is
run too. 0.1 s is the network round trip alone from France, where our users
are, to Mailchimp's servers in the United States (light in fibre needs 70 ms
for the ~7,000 km there and back; ~100 ms in practice), i.e. a server that
takes no time at all; a real answer adds the transfer of a 377 KB page of 1,000
members and the server's own work (Mailchimp's support advised smaller pages to
a client whose pages of 1,000 timed out: VingtCinq/python-mailchimp#208). 0.3 s allows
0.2 s for both: an assumption, as Mailchimp publishes no figure, and the reason
both figures are printed. The per-run costs that do not shrink with the
latency (the check's round trip, the table built after the last page, the
last calls draining) are what the stress figure shows. Events and orders are off: the benchmark
measures members and tags. The pull is timed from the connector's check, which a
run makes just before it and which reads the audience's size and the pull's
small listings (merge fields, tags). The tags are pushed as a run pushes them, through
``segmerge.run.push`` and a real ledger (each batch marked in flight, then
recorded), so the figure includes the engine's own work between batches. Run alone: ``python benchmarks/pull_mailchimp.py
--contacts 20000``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness import tag_actions, timed_pull, timed_push  # noqa: E402

from connectors.mailchimp import MailchimpConnector  # noqa: E402
from connectors.mailchimp_api import fields  # noqa: E402
from connectors.mailchimp_tables import MEMBER_FIELDS  # noqa: E402
from segmerge.ports.connector import ConnectorContext  # noqa: E402

CONNECTIONS = 10  # Mailchimp: simultaneous connections per user
REFERENCE_LATENCY = 0.3  # seconds per answer the target is judged at (see above)
STRESS_LATENCY = 0.1  # the round trip alone, a server that takes no time
VALIDATE_FIRST = 20  # requests of each endpoint checked against the spec


def _serve(conn: Connection, contacts: int, latency: float) -> None:
    """The fake, in a child process, driven over a pipe: reset / stats / stop."""
    from tests.fakes.mailchimp import MailchimpFake

    fake = MailchimpFake(
        check_responses=False,
        latency=latency,
        max_connections=CONNECTIONS,
        validate_first=VALIDATE_FIRST,
        encode_once=True,
    )
    fake.add_merge_field("AGE", "Age", "number")
    for i in range(1, contacts + 1):
        fake.add_member(
            f"client{i}@example.org",
            f"P{i}",
            f"N{i}",
            status="unsubscribed" if i % 20 == 0 else "subscribed",
            merge={"AGE": i % 80},
        )
    fake.encode_members(fields("members", MEMBER_FIELDS))  # as the connector asks them
    fake.start()
    conn.send(fake.url)
    seen = 0
    while True:
        cmd = conn.recv()
        if cmd == "reset":
            fake.reset_stats()
            seen = len(fake.log)
            conn.send(True)
        elif cmd == "stats":
            conn.send(
                {
                    "busy": fake.busy_seconds(),
                    "requests": len(fake.log) - seen,
                    "peak": fake.peak,
                    "total_429": fake.total_429,
                    "max_consecutive_429": fake.max_consecutive_429,
                    "violations": list(fake.violations[:3]),
                }
            )
        else:
            fake.stop()
            conn.send(True)
            return


def _record_calls(conn: MailchimpConnector) -> list[tuple[float, float]]:
    """(start, end) of every call the connector makes from now on."""
    calls: list[tuple[float, float]] = []
    client = conn.api.client
    request = client.request

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return request(*args, **kwargs)
        finally:
            calls.append((start, time.perf_counter()))

    client.request = timed  # type: ignore[method-assign]
    return calls


def _windows(calls: list[tuple[float, float]], pull_end: float, push_start: float) -> float:
    """Seconds from the first call to the last answer of the pull, plus the same of the push."""
    total = 0.0
    for phase in ([c for c in calls if c[0] < pull_end], [c for c in calls if c[0] >= push_start]):
        if phase:
            total += max(e for _, e in phase) - min(s for s, _ in phase)
    return total


def bench(contacts: int = 100_000, latency: float = REFERENCE_LATENCY) -> dict[str, Any]:
    from tests.fakes.mailchimp import API_KEY, LIST_ID

    ours, theirs = mp.get_context("spawn").Pipe()
    child = mp.get_context("spawn").Process(
        target=_serve, args=(theirs, contacts, latency), daemon=True
    )
    child.start()
    try:
        if not ours.poll(600):
            raise SystemExit("the Mailchimp fake did not start")
        url = ours.recv()

        def ask(cmd: str) -> Any:
            ours.send(cmd)
            return ours.recv()

        root = Path.cwd()
        ctx = ConnectorContext(
            name="news",
            root=root,
            config_file=root / "segmerge.toml",
            settings={"list_id": LIST_ID, "base_url": url, "events": False, "orders": False},
            secret=lambda: API_KEY,
        )
        conn = MailchimpConnector(ctx)
        calls = _record_calls(conn)
        ask("reset")
        gate = conn.api.gate
        b0 = gate.busy_seconds()
        c0 = time.process_time()
        # the check is timed with the pull: a run makes it first, and it reads the
        # audience's size and the first wave's small listings for the pull
        t0 = time.perf_counter()
        conn.check()
        check_s = time.perf_counter() - t0
        tables, pull_s = timed_pull(conn)
        pulled_at = time.perf_counter()
        pull_s += check_s
        pull_cpu = time.process_time() - c0
        client_pull = gate.busy_seconds() - b0
        pulled = ask("stats")
        # as a run's actions, each carries its contact's e-mail
        actions = tag_actions(tables.contacts["contact_id"], emails=tables.contacts["email"])
        ask("reset")
        prepared: dict[str, Any] = {}
        b1 = 0.0

        def before_push() -> None:
            # what the connector did while the ledger wrote the plan (create the new tag),
            # counted apart: the push is timed from its first batch
            nonlocal b1
            prepared.update(ask("stats"))
            ask("reset")
            b1 = gate.busy_seconds()

        done, t1, push_s, push_cpu = timed_push(conn, actions, before_push)
        client_push = gate.busy_seconds() - b1
        pushed = ask("stats")
        conn.close()
        if done != len(actions):
            raise SystemExit(f"only {done} of {len(actions)} tags were pushed")
        violations = pulled["violations"] + prepared["violations"] + pushed["violations"]
        if violations:
            raise SystemExit(f"spec violations: {violations}")
        total_s = pull_s + push_s
        requests = pulled["requests"] + pushed["requests"]
        busy = pulled["busy"] + pushed["busy"]
        service = busy / requests if requests else 0.0
        limit_rps = CONNECTIONS / service if service else 0.0
        achieved_rps = requests / total_s if total_s else 0.0
        return {
            "platform": "mailchimp",
            "latency_seconds": latency,
            "contacts": len(tables.contacts),
            "pull_seconds": round(pull_s, 2),  # the check included
            "check_seconds": round(check_s, 2),
            "push_seconds": round(push_s, 2),
            "contacts_per_second_pull": round(len(tables.contacts) / pull_s, 1),
            "contacts_per_second_push": round(done / push_s, 1),
            "limit_requests_per_second": round(limit_rps, 2),
            "achieved_requests_per_second": round(achieved_rps, 2),
            "fraction_of_limit": round(busy / (CONNECTIONS * total_s), 3),
            # the same, counting only the time from each phase's first call to its last
            # answer: what the engine does before and after (conform, the ledger's
            # first and last batch) left out
            "fraction_of_limit_while_calling": round(
                busy / (CONNECTIONS * _windows(calls, pulled_at, t1)), 3
            ),
            "client_fraction_of_limit": round(
                (client_pull + client_push) / (CONNECTIONS * total_s), 3
            ),
            "limit_concurrent_connections": CONNECTIONS,
            "achieved_concurrency_pull": round(pulled["busy"] / pull_s, 2),
            "achieved_concurrency_push": round(pushed["busy"] / push_s, 2),
            "client_concurrency_pull": round(client_pull / pull_s, 2),
            "client_concurrency_push": round(client_push / push_s, 2),
            "peak_concurrency": max(pulled["peak"], pushed["peak"]),
            "service_seconds_per_request": round(service, 4),
            "client_cpu_share_pull": round(pull_cpu / pull_s, 2),
            "client_cpu_share_push": round(push_cpu / push_s, 2),
            "pull_requests": pulled["requests"],
            "prepare_requests": prepared["requests"],  # while the plan was written
            "push_requests": pushed["requests"],
            "total_429": pulled["total_429"] + prepared["total_429"] + pushed["total_429"],
            "max_consecutive_429": max(
                pulled["max_consecutive_429"],
                prepared["max_consecutive_429"],
                pushed["max_consecutive_429"],
            ),
        }
    finally:
        if child.is_alive():
            ours.send("stop")
            child.join(10)
        if child.is_alive():
            child.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument(
        "--latency",
        type=float,
        default=REFERENCE_LATENCY,
        help=f"seconds the fake takes per answer (default {REFERENCE_LATENCY})",
    )
    args = parser.parse_args()
    print(json.dumps(bench(args.contacts, args.latency), indent=2))


if __name__ == "__main__":
    main()
