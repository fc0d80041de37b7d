"""`segmerge kpi` on a postgres source counts each recipient's orders in the database,
on a real PostgreSQL: the same groups, rates and revenue as the pandas engine on the
same rows pulled out, and no statement returns an order row."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_postgres_plan import Statements, raw_order_rows

from segmerge.report.kpi import kpi
from segmerge.segment import order_rules
from segmerge.segment.segmentation import open_source, pull
from segmerge.workspace.config import load
from tests.cli import segmerge
from tests.postgres import PgServer
from tests.workspaces import LETTER, RULES

SCHEMA = """
CREATE TABLE contacts (contact_id text PRIMARY KEY, email text, first_name text,
    subscribed boolean);
INSERT INTO contacts SELECT 'c' || i, 'client' || i || '@example.org', 'Client ' || i, true
    FROM generate_series(1, 12) AS i;
CREATE TABLE orders (order_id text, contact_id text, ordered_at timestamptz, amount numeric,
    status text);
INSERT INTO orders VALUES ('old1', 'c1', '2026-10-01 10:00+02', 30, 'paid'),
    ('old2', 'c2', '2026-10-02 10:00+02', 20, 'paid');
CREATE TABLE email_events (contact_id text, campaign_id text, event text, at timestamptz);
GRANT SELECT ON contacts, orders, email_events TO segmerge;
"""
#: orders after the letters, inserted once they are sent: in the window, a cancelled one
#: (earns nothing), one 20 days later (out of the 14-day window), one of nobody mailed
AFTER = """
INSERT INTO orders VALUES
    ('n1', 'c1', now() + interval '2 hours', 50, 'paid'),
    ('n2', 'c1', now() + interval '3 days', 25.5, 'shipped'),
    ('n3', 'c3', now() + interval '1 day', 80, 'cancelled'),
    ('n4', 'c4', now() + interval '20 days', 60, 'paid'),
    ('n5', 'c5', now() + interval '5 days', 12, NULL),
    ('n6', 'ghost', now() + interval '1 day', 99, 'paid');
INSERT INTO email_events VALUES ('c1', 'lettre', 'open', now() + interval '1 hour'),
    ('c5', 'lettre', 'click', now() + interval '2 hours');
"""


@pytest.fixture(scope="module")
def sent(postgres_server: PgServer, tmp_path_factory) -> tuple[Path, str]:
    """A campaign on the database, run once (its letters in the outbox), then orders."""
    db = postgres_server.create_database("kpi_shop")
    with postgres_server.admin(db) as conn:
        conn.execute(SCHEMA)
    root = tmp_path_factory.mktemp("pg_kpi")
    (root / "segmerge.toml").write_text(
        f"""timezone = "Europe/Paris"

[mail]
from = "La Boutique <bonjour@boutique.example>"
unsubscribe_url = "https://boutique.example/stop?token={{token}}"
message_id_domain = "boutique.example"

[sources.shop]
connector = "postgres"
dsn = "{postgres_server.dsn(db)}"
events = "email_events"
on_unmatched_orders = "warn"

[destinations.outbox]
connector = "outbox"
path = "outbox"

[campaigns.lettre]
source = "shop"
rules = "segrules/lettre.yaml"
templates = "templates/lettre"
destination = "outbox"
holdout = 0.25
""",
        encoding="utf-8",
    )
    (root / "segrules").mkdir()
    rules = RULES.format(name="lettre", vip_when="orders_count >= 1")
    (root / "segrules" / "lettre.yaml").write_text(rules, encoding="utf-8")
    (root / "templates" / "lettre").mkdir(parents=True)
    (root / "templates" / "lettre" / "_default.html.j2").write_text(LETTER, encoding="utf-8")
    env = {"SEGMERGE_SHOP_TOKEN": postgres_server.password}
    segmerge("run", "lettre", "-w", str(root), env=env, check=True)
    with postgres_server.admin(db) as conn:
        conn.execute(AFTER)
    return root, db


def _shown(report) -> list[tuple]:
    return [
        (
            g.segment,
            g.kind,
            g.n,
            {e: (r.count, r.n) if r else None for e, r in g.rates.items()},
            sorted(g.revenue.tolist()),
        )
        for g in report.groups
    ]


def test_kpi_counts_the_orders_in_the_database_as_the_pulled_rows_give(
    sent, postgres_server, monkeypatch
):
    root, db = sent
    monkeypatch.setenv("SEGMERGE_SHOP_TOKEN", postgres_server.password)
    ws = load(root)
    with Statements(postgres_server, db) as log:
        got = kpi(ws, "lettre")
    assert [s for s in log.reading_orders() if raw_order_rows(s)] == []
    assert any("VALUES" in s for s in log.reading_orders())  # the windows, counted there

    src = open_source(ws, "shop")
    try:
        tables = order_rules.apply(ws, "shop", pull(src))[1]
    finally:
        src.close()
    expected = kpi(ws, "lettre", tables=tables)
    assert _shown(got) == _shown(expected)
    assert got.data_until == expected.data_until
    everyone = [g for g in got.groups if g.segment == "everyone"]
    assert sum(g.n for g in everyone) == 12  # mailed and held out
    revenue = sorted(v for g in everyone for v in g.revenue.tolist() if v)
    # c1's two orders in its window (50 + 25.5), c5's without a status (12); Cy's
    # cancelled order, c4's order after the window and the old ones earn nothing
    assert revenue == [12.0, 75.5]


class _CountedSource:
    """A source that counted its orders per status already (the files source's checks
    do): any statement but the columns' LIMIT 0 fails the test."""

    def __init__(self, statuses: list[tuple[object, int]] | None) -> None:
        self.statuses = statuses

    def order_counts(
        self, in_plan: bool = False
    ) -> tuple[int, int, list[tuple[object, int]] | None]:
        return sum(n for _s, n in self.statuses or [(None, 10)]), 0, self.statuses

    def execute(self, sql: str) -> None:
        raise AssertionError(f"counted again: {sql}")


def test_kpi_takes_the_status_counts_a_source_already_made():
    from types import SimpleNamespace

    from segmerge.report.kpi_orders import _counted

    ws = SimpleNamespace(config=SimpleNamespace(sources={}))
    source = _CountedSource([("Livré", 8), ("Annulé", 2), (None, 1)])
    where = _counted(ws, "shop", source)  # type: ignore[arg-type]
    assert where == "(o.status IS NULL OR o.status NOT IN ('Annulé'))"
    assert _counted(ws, "shop", _CountedSource(None)) == "TRUE"  # type: ignore[arg-type]
