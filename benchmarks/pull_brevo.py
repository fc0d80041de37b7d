"""Benchmark: pull N contacts from the Brevo fake and push one tag to each, at Brevo's limits.

The fake answers at Brevo's general-tier limits (10 requests a second under
``/contacts``, fixed one-second windows, 429 with ``x-sib-ratelimit-*`` headers
beyond), validates every request against Brevo's OpenAPI spec, and the connector
runs with its default settings (paced at 95% of the documented limit), except that
events and orders are off: both fall under the 100-an-hour bucket (campaign
recipient exports, ``GET /orders``), which this benchmark does not measure;
``benchmarks/brevo_account.py`` times a whole account (contacts, orders, sent
campaigns, both event modes) through ``segmerge validate`` and ``run``.
Run alone: ``python benchmarks/pull_brevo.py --contacts 20000``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness import tag_actions, timed_pull, timed_push  # noqa: E402

from connectors.brevo import BrevoConnector  # noqa: E402
from segmerge.ports.connector import ConnectorContext  # noqa: E402
from tests.fakes import specs  # noqa: E402
from tests.fakes.brevo import KEY, BrevoFake  # noqa: E402

LIMIT = 10.0  # Brevo general tier: requests per second for /v3/contacts/*


def bench(contacts: int = 100_000) -> dict[str, Any]:
    fake = BrevoFake(
        specs.brevo(), check_responses=False, contacts_limit=int(LIMIT), contacts_window=1.0
    )
    for i in range(1, contacts + 1):
        fake.add_contact(
            f"client{i}@example.org",
            attributes={"FIRSTNAME": f"P{i}", "LASTNAME": f"N{i}", "AGE": i % 80},
            blacklisted=i % 20 == 0,
        )
    fake.start()
    try:
        root = Path.cwd()
        ctx = ConnectorContext(
            name="shop",
            root=root,
            config_file=root / "segmerge.toml",
            settings={"base_url": fake.url, "events": "none", "orders": False},
            secret=lambda: KEY,
        )
        conn = BrevoConnector(ctx)
        tables, pull_s = timed_pull(conn)
        pulled = len(tables.contacts)
        pull_requests = conn.contacts_client.stats.requests
        done, _, push_s, _ = timed_push(conn, tag_actions(tables.contacts["contact_id"]))
        stats = conn.contacts_client.stats
        total_s = pull_s + push_s
        achieved = stats.requests / total_s if total_s else 0.0
        conn.close()
        if done != pulled:
            raise SystemExit(f"only {done} of {pulled} tags were pushed")
        if fake.violations:
            raise SystemExit(f"spec violations: {fake.violations[:3]}")
        return {
            "platform": "brevo",
            "contacts": pulled,
            "pull_seconds": round(pull_s, 2),
            "push_seconds": round(push_s, 2),
            "contacts_per_second_pull": round(pulled / pull_s, 1),
            "contacts_per_second_push": round(done / push_s, 1),
            "limit_requests_per_second": LIMIT,
            "achieved_requests_per_second": round(achieved, 2),
            "fraction_of_limit": round(achieved / LIMIT, 3),
            "pull_requests": pull_requests,
            "push_requests": stats.requests - pull_requests,
            "total_429": fake.contacts_limiter.total_429,
            "max_consecutive_429": fake.contacts_limiter.max_consecutive_429,
        }
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(bench(args.contacts), indent=2))


if __name__ == "__main__":
    main()
