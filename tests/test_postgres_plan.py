"""A postgres source segments inside the database: no order row ever leaves it.

A small shop lives in a real PostgreSQL (cancelled, refunded and unknown statuses, an
order naming nobody, unsubscribe and bounce events). The database logs every
statement it runs (``log_statement = all`` on the shop's database); each statement
that reads the orders must aggregate them before anything is returned, but for the
handful (``LIMIT 3``) of orders naming nobody that a warning names. The results
(metrics, segments, the order rules' notes, who may be mailed) must be those of the
pandas engine on the same rows pulled out, as the files source computes them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from connectors.postgres import PostgresConnector
from segmerge.errors import ConfigError
from segmerge.mail.consent import REASONS, check
from segmerge.report.quality import analyse
from segmerge.segment.in_database_checks import EXAMPLES
from segmerge.segment.segmentation import open_source, pull, segment
from segmerge.segment.source_check import check_source
from segmerge.workspace.config import load
from tests.postgres import PgServer

AS_OF = "2026-12-01"
SCHEMA = """
CREATE TABLE people (
    contact_id text PRIMARY KEY, email text, first_name text, subscribed boolean,
    created_at date, tags text[], city text, age integer
);
CREATE TABLE orders (
    order_id text PRIMARY KEY, contact_id text, ordered_at timestamptz,
    amount numeric(10, 2), category text, rating smallint, status text
);
CREATE TABLE email_events (contact_id text, campaign_id text, event text, at timestamptz);
GRANT SELECT ON people, orders, email_events TO segmerge;
"""
RULES = """\
version: 1
name: shop
mode: first
exclude: not subscribed or email is null
segments:
  - name: vip
    when: revenue(days=365) >= 400 and orders(days=365) >= 4
  - name: moved
    when: last_order_at + 30 > today() and avg_rating >= 3
  - name: lyon
    when: city == "Lyon" and rfm_segment != "lost"
  - name: quiet
    when: days_since_last_order >= 60 or orders_count == 0
"""
STATUSES = ("paid", "shipped", "cancelled", "Remboursé", "wc-completed", "en litige", None)
CITIES = ("Lyon", "Paris", "Nantes", None)


def _rows() -> tuple[list[tuple], list[tuple], list[tuple]]:
    base = datetime(2026, 12, 1, 9, tzinfo=UTC)
    people = [
        (
            f"c{i:03}",
            None if i % 11 == 0 else f"client{i}@example.org",
            f"Prénom {i}",
            i % 7 != 0,
            date(2024, 1, 1) + timedelta(days=13 * i),
            ["vip", "salon"][: i % 3],
            CITIES[i % 4],
            20 + i % 50,
        )
        for i in range(60)
    ]
    orders = [
        (
            f"o{k:04}",
            f"c{(k * 7) % 55:03}",
            base - timedelta(days=(k * 37) % 400, hours=k % 23),
            round(15 + (k * 13) % 190 + (k % 100) / 100, 2),
            ("cd", "dvd", "vinyl")[k % 3],
            None if k % 4 == 0 else 1 + k % 5,
            STATUSES[k % len(STATUSES)],
        )
        for k in range(400)
    ]
    orders.append(("o9999", "ghost", base - timedelta(days=3), 50.0, "cd", 5, "paid"))
    events = [
        (f"c{i:03}", f"camp{i % 3}", kind, base - timedelta(days=i % 20))
        for i in range(0, 60, 2)
        for kind in (
            "sent",
            "open",
            "unsubscribe" if i % 10 == 0 else "bounce" if i % 6 == 0 else "click",
        )
    ]
    return people, orders, events


@pytest.fixture(scope="module")
def shop(postgres_server: PgServer, tmp_path_factory) -> tuple[Path, str]:
    """A workspace whose `shop` source is the database; (its root, the database)."""
    db = postgres_server.create_database("plan_shop")
    people, orders, events = _rows()
    with postgres_server.admin(db) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
        for table, rows in (("people", people), ("orders", orders), ("email_events", events)):
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    root = tmp_path_factory.mktemp("pg_plan")
    (root / "segrules").mkdir()
    (root / "segrules" / "shop.yaml").write_text(RULES, encoding="utf-8")
    (root / "segmerge.toml").write_text(
        f"""timezone = "Europe/Paris"

[sources.shop]
connector = "postgres"
dsn = "{postgres_server.dsn(db)}"
contacts = "SELECT * FROM people"
orders = "orders"
events = "email_events"
on_unmatched_orders = "warn"
""",
        encoding="utf-8",
    )
    return root, db


@pytest.fixture
def token(postgres_server: PgServer, monkeypatch) -> None:
    monkeypatch.setenv("SEGMERGE_SHOP_TOKEN", postgres_server.password)


class Statements:
    """Every statement the server runs on one database while the block runs."""

    ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.\d]* \w+ \[\d+\] ", re.MULTILINE)

    def __init__(self, server: PgServer, db: str) -> None:
        self.server, self.db = server, db
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        with self.server.admin() as conn:
            conn.execute(f"ALTER DATABASE \"{self.db}\" SET log_statement = 'all'")
        self.start = self.server.log.stat().st_size
        return self

    def __exit__(self, *exc: object) -> None:
        with self.server.admin() as conn:
            conn.execute(f'ALTER DATABASE "{self.db}" RESET log_statement')
        with self.server.log.open("rb") as log:
            log.seek(self.start)
            text = log.read().decode("utf-8", "replace")
        for entry in self.ENTRY.split(text):
            said = re.match(r"LOG:\s+statement: (.*)", entry, re.DOTALL)
            if said:
                self.seen.append(said.group(1).strip())

    def reading_orders(self) -> list[str]:
        return [s for s in self.seen if re.search(r"\borders\b", s)]


def _query(statement: str) -> exp.Expression:
    copy = re.match(r"^COPY \((.*)\) TO STDOUT", statement, re.DOTALL)
    return sqlglot.parse_one(copy.group(1) if copy else statement, read="postgres")


def _aggregates(select: exp.Select) -> bool:
    limit = select.args.get("limit")
    if limit is not None and limit.expression.sql() == "0":
        return True  # a description: no row
    if limit is not None and int(limit.expression.sql()) <= EXAMPLES:
        return True  # a handful, named in a warning: never the orders' rows
    if select.args.get("group") is not None:
        return True
    return any(
        isinstance(node, exp.AggFunc) and node.find_ancestor(exp.Window, exp.Select) is select
        for projection in select.expressions
        for node in projection.walk()
    )


def raw_order_rows(statement: str) -> bool:
    """Whether the statement can return order rows: some path from the orders table to
    the result passes no SELECT that aggregates (or reads no row)."""
    tree = _query(statement)

    def leaks(node: exp.Expression | None) -> bool:
        while node is not None:
            if isinstance(node, exp.Select) and _aggregates(node):
                return False
            if isinstance(node, exp.CTE):
                refs = [t for t in tree.find_all(exp.Table) if t.name == node.alias]
                return any(leaks(ref) for ref in refs)
            node = node.parent
        return True

    return any(leaks(t) for t in tree.find_all(exp.Table) if t.name == "orders")


def _oracle(root: Path):
    """The pandas engine on the same rows, pulled out (as the files source computes)."""
    ws = load(root)
    src = open_source(ws, "shop")
    try:
        tables = pull(src)
    finally:
        src.close()
    return segment(ws, "segrules/shop.yaml", source_name="shop", as_of=AS_OF, tables=tables)


def test_the_database_segments_as_the_pandas_engine_and_no_order_row_leaves_it(
    shop, postgres_server, token
):
    root, db = shop
    with Statements(postgres_server, db) as log:
        got = segment(load(root), "segrules/shop.yaml", source_name="shop", as_of=AS_OF)
    reading = log.reading_orders()
    assert any("GROUP BY" in s.upper() for s in reading)  # the plan and the counts ran there
    assert [s for s in reading if raw_order_rows(s)] == []
    assert len(got.tables.orders) == 0  # nothing pulled

    expected = _oracle(root)
    mine = got.frame.set_index("contact_id")
    theirs = expected.frame.set_index("contact_id").loc[mine.index]
    assert set(mine.columns) == set(theirs.columns)  # the calls' order is a set's on pandas
    theirs = theirs[mine.columns]
    pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-9)
    sizes = got.assignment.sizes()
    assert sizes == expected.assignment.sizes() and all(sizes.values())  # every segment tested
    ids = got.frame["contact_id"]
    primary = got.assignment.primary.set_axis(ids)
    assert primary.equals(expected.assignment.primary.set_axis(expected.frame["contact_id"])[ids])
    # the same warnings, the order naming nobody counted and named as the pull names it
    # (which says where the orders came from first)
    assert got.tables.warnings[1:] == expected.tables.warnings[1:]
    assert expected.tables.warnings[0].endswith(got.tables.warnings[0].removeprefix("shop"))
    assert got.tables.warnings[0] == (
        "shop: 1 of 401 orders (0.2%) names a contact that is not in the contacts table, "
        "e.g. order 'o9999' (contact 'ghost'); they count for nobody"
    )
    said = " ".join(got.tables.notes)
    assert "'cancelled'" in said and "'Remboursé'" in said and "'en litige'" in said
    assert "1 of 401 orders" in said and "names a contact that is not in the contacts" in said
    reasons = check(got.frame, got.tables.events, []).reason.set_axis(ids)
    oracle = check(expected.frame, expected.tables.events, []).reason
    assert reasons.equals(oracle.set_axis(expected.frame["contact_id"])[ids])
    assert reasons["c010"] == REASONS["unsubscribe_event"]
    assert reasons["c006"] == REASONS["bounced"]


def test_the_recorder_catches_a_pull(shop, postgres_server, token):
    """The check above can fail: the pull's statements are caught reading order rows."""
    root, db = shop
    with Statements(postgres_server, db) as log:
        _oracle(root)
    assert [s for s in log.reading_orders() if raw_order_rows(s)]


def test_validate_counts_an_unused_database_source_where_it_is(shop, postgres_server, token):
    root, db = shop
    with Statements(postgres_server, db) as log:
        checked = check_source(load(root), "shop")
    assert [s for s in log.reading_orders() if raw_order_rows(s)] == []
    summary = checked.summary()
    counted = sum(
        1 for k in range(400) if STATUSES[k % len(STATUSES)] not in ("cancelled", "Remboursé")
    )
    assert summary == f"60 contacts, 401 orders ({counted + 1} counted), 90 events"
    assert any("'en litige'" in w for w in checked.tables.warnings)


def test_what_the_dialect_cannot_write_stops_naming_it_without_reading_rows(
    shop, postgres_server, token, monkeypatch
):
    """Never a silent fallback to pulling the orders: a condition the dialect cannot
    write is a configuration error (exit 2) naming the segment."""
    root, db = shop
    monkeypatch.setattr(PostgresConnector, "dialect", "bigquery")
    with Statements(postgres_server, db) as log, pytest.raises(ConfigError) as err:
        segment(load(root), "segrules/shop.yaml", source_name="shop", as_of=AS_OF)
    assert "segment moved" in str(err.value) and "bigquery" in str(err.value)
    assert err.value.exit_code == 2
    assert [s for s in log.reading_orders() if raw_order_rows(s)] == []


def test_report_shows_the_ordered_categories_from_counts(shop, postgres_server, token):
    """`report`'s category mix per segment, from orders counted per contact and category
    in the database, is the one the pulled orders give."""
    root, db = shop
    with Statements(postgres_server, db) as log:
        got = segment(
            load(root), "segrules/shop.yaml", source_name="shop", as_of=AS_OF, order_categories=True
        )
    assert [s for s in log.reading_orders() if raw_order_rows(s)] == []
    expected = _oracle(root)

    def shares(seg) -> list[list[tuple[str, list]]]:  # ties come in the rows' order: sorted
        return [[(m.title, sorted(m.rows)) for m in s.mixes] for s in analyse(seg).segments]

    mixes = shares(got)
    assert mixes == shares(expected)
    assert any(rows and title == "ordered categories" for ms in mixes for title, rows in ms)
