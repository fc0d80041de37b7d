"""Pull N contacts from a fake HubSpot at its documented limits, then tag every one.

The fake enforces HubSpot's Free/Starter burst limit (100 calls per rolling 10 s,
answered 429 with HubSpot's headers beyond it); the connector paces itself to that
limit. A pull costs one call per 100 contacts (``GET /crm/v3/objects/contacts``); a
tag push two per 100 (``batch/read`` of the current values, then ``batch/update``),
so the figure to watch is the fraction of the limit reached, not contacts per second.
Then the same contacts go into one static list: one membership call per push batch.

    python benchmarks/pull_hubspot.py --contacts 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # run as a script, or imported by benchmarks/pull.py: the fakes
    sys.path.insert(0, ROOT)  # live in tests/, next to the connectors

from harness import tag_actions, timed_pull, timed_push  # noqa: E402

from segmerge.ports.connector import Action  # noqa: E402
from tests.fakes.hubspot import HubSpotFake, make_connector  # noqa: E402

LIMIT, WINDOW = 100, 10.0  # Free/Starter: 100 requests per 10 s per app


def _fill(fake: HubSpotFake, n: int) -> list[int]:
    fake.add_property("segmerge_segments", "enumeration", field_type="checkbox", options=["vip"])
    fake.add_property("age", "number")
    return [
        fake.add_contact(
            f"c{i}@example.org",
            firstname=f"F{i}",
            lastname=f"L{i}",
            age=str(i % 80),
            hs_email_optout="false",
            segmerge_segments="vip" if i % 5 == 0 else None,
        )
        for i in range(n)
    ]


def bench(contacts: int = 100_000) -> dict:
    with HubSpotFake(limit=LIMIT, window=WINDOW, search_limit=5, search_window=1.0) as fake:
        _fill(fake, contacts)
        conn = make_connector(fake, orders="none", events=False)
        t0 = time.perf_counter()
        tables, pull_s = timed_pull(conn)
        pulled = len(tables.contacts)
        done, _, push_s, _ = timed_push(conn, tag_actions(tables.contacts["contact_id"]))
        t1, t2 = t0 + pull_s, t0 + pull_s + push_s
        answered = sum(1 for _, _, status in fake.log if status != 429)
        seconds = t2 - t0
        # the same contacts into one static list: memberships in the largest chunks
        members = [
            Action(
                a.key.replace("|tag:", "|add_to_list:"),
                "add_to_list",
                a.contact_id,
                {"list": "seg:bench", "tag": "seg:bench"},
            )
            for a in tag_actions(tables.contacts["contact_id"])
        ]
        before = len(fake.log)
        _, _, list_s, _ = timed_push(conn, members)  # (the harness counts tags only)
        made = fake.list_named("seg:bench")
        listed = len(made.members) if made is not None else 0
        list_calls = sum(1 for m, p, _ in fake.log[before:] if p.endswith("/memberships/add"))
        limit_rps = LIMIT / WINDOW
        achieved = answered / seconds if seconds else 0.0
        conn.close()
        assert pulled == contacts and done == contacts, (pulled, done)
        return {
            "platform": "hubspot",
            "contacts": contacts,
            "pull_seconds": round(t1 - t0, 2),
            "push_seconds": round(t2 - t1, 2),
            "contacts_per_second_pull": round(pulled / (t1 - t0), 1),
            "contacts_per_second_push": round(done / (t2 - t1), 1),
            "limit_requests_per_second": limit_rps,
            "achieved_requests_per_second": round(achieved, 2),
            "fraction_of_limit": round(achieved / limit_rps, 3),
            "total_429": fake.limiter.total_429,
            "max_consecutive_429": fake.limiter.max_consecutive_429,
            "requests": len(fake.log),
            "list_members": listed,
            "list_seconds": round(list_s, 2),
            "list_membership_calls": list_calls,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(bench(args.contacts), indent=2))


if __name__ == "__main__":
    main()
