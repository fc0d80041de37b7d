"""The plan printed per SQL dialect (golden files), and run for real inside PostgreSQL.

Golden files: tests/golden/relational/<rule set>.<dialect>.sql hold the SQL the plan
prints for each dialect, so a change in what a warehouse would run shows in review.
After an intended change, regenerate them and read the diff:

    SEGMERGE_GOLDEN=update .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/test_relational_sql.py

PostgreSQL: the same plan, printed for PostgreSQL, runs in a real server
(tests/postgres.py starts one) over tables loaded with the CDNOW purchases, and
returns the same per-contact rows as DuckDB, itself checked against the pandas engine.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from test_relational import CALLS, SEGRULES, _same, _types, compare

from segmerge.metrics.catalog import SCALAR_METRICS
from segmerge.metrics.compute import reference_instant
from segmerge.ports.schema import Tables, conform
from segmerge.relational import DIALECTS, Plan, UnsupportedDialect, build_plan
from segmerge.rules import load_ruleset

PARIS = ZoneInfo("Europe/Paris")
GOLDEN = Path(__file__).with_name("golden") / "relational"
AS_OF = reference_instant("2026-01-31", PARIS)
CONTACT_TYPES = {
    "contact_id": "VARCHAR",
    "email": "VARCHAR",
    "first_name": "VARCHAR",
    "subscribed": "BOOLEAN",
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "tags": "VARCHAR[]",
    "age": "DOUBLE",
}
#: every metric of the catalog, and conditions of every kind but a date moved by days
CATALOG = """\
version: 1
name: catalog
mode: all
exclude: tags contains 'blocked' or email is null or not subscribed
segments:
  - name: fans
    when: opened(campaign='last') or clicked(campaign='c1') or clicks(days=30) >= 2
  - name: rising
    when: trend(revenue, 30) > 1 or trend(orders, 7) >= 1 or trend(clicks, 14) > 2
  - name: rfm
    when: rfm_segment in ['champions', 'loyal'] and rfm startswith '5' and r_score >= 4
  - name: buyers
    when: revenue(days=365) / orders(days=365) > 50 and distinct(category, days=90) >= 2
  - name: others
    when: days_since_first_order - days_since_last_order > 30 or avg_rating >= 4.5
"""
MOVED = "version: 1\nsegments:\n  - name: recent\n    when: last_order_at + 30 > today()\n"


def _rules(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_ruleset(path)


def _plan(ruleset):
    return build_plan(ruleset, AS_OF, PARIS, CONTACT_TYPES, ["first_name", *SCALAR_METRICS, *CALLS])


@pytest.fixture(scope="module")
def golden_plans(tmp_path_factory) -> dict[str, Plan]:
    """Each golden rule set's plan, compiled once and printed in every dialect (printing
    never changes a plan)."""
    folder = tmp_path_factory.mktemp("golden")
    return {
        "catalog": _plan(_rules(folder, "catalog", CATALOG)),
        "rfm": _plan(load_ruleset(SEGRULES / "rfm.yaml")),
    }


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", ["catalog", "rfm"])
def test_the_plan_prints_as_the_golden_file_says(
    golden_plans: dict[str, Plan], name: str, dialect: str
) -> None:
    sql = golden_plans[name].sql(dialect) + "\n"
    golden = GOLDEN / f"{name}.{dialect}.sql"
    if os.environ.get("SEGMERGE_GOLDEN") == "update":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(sql)
    assert golden.is_file(), f"no {golden}: run with SEGMERGE_GOLDEN=update"
    assert sql == golden.read_text(), f"{golden} differs: review, then SEGMERGE_GOLDEN=update"


def test_a_relation_can_be_a_table_elsewhere_or_a_select(tmp_path: Path) -> None:
    plan = _plan(load_ruleset(SEGRULES / "rfm.yaml"))
    sql = plan.sql(
        "postgres",
        {"contacts": "crm.people", "orders": "(SELECT * FROM shop.orders WHERE amount > 0)"},
    )
    assert "FROM crm.people AS contacts" in sql
    assert "FROM shop.orders" in sql and ") AS orders" in sql
    assert not re.search(r"FROM (orders|contacts)$", sql, re.MULTILINE)


def test_a_date_moved_by_days_is_refused_where_it_was_never_run(tmp_path: Path) -> None:
    plan = _plan(_rules(tmp_path, "moved", MOVED))
    assert "AT TIME ZONE 'Europe/Paris'" in plan.sql("postgres")
    for dialect in ("bigquery", "snowflake", "clickhouse", "trino", "spark"):
        with pytest.raises(UnsupportedDialect, match=f"segment recent.*{dialect}"):
            plan.sql(dialect)
    with pytest.raises(UnsupportedDialect, match="unknown SQL dialect 'oracle'"):
        plan.sql("oracle")


# --- inside PostgreSQL ------------------------------------------------------------------------


def _shop(limit: int = 300) -> Tables:
    """CDNOW's first customers, with e-mail events around the reference day."""
    from tests.shop_exports import cdnow, orders_of, recent

    orders = orders_of(recent(cdnow(limit=limit), years=28))
    customers = sorted(orders["customer"].unique())
    ids = [f"{c:05d}" for c in customers]
    contacts = pd.DataFrame(
        {
            "contact_id": ids,
            "email": [None if c % 13 == 0 else f"c{c}@example.fr" for c in customers],
            "subscribed": [c % 7 != 0 for c in customers],
            "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * len(ids),
            "tags": [["blocked"] if c % 11 == 0 else ["vip"] for c in customers],
            "age": [float(18 + c % 60) for c in customers],
        }
    )
    days = pd.to_datetime(orders["date"], format="%Y%m%d") - pd.DateOffset(years=1)
    raw = pd.DataFrame(
        {
            "contact_id": [f"{c:05d}" for c in orders["customer"]],
            "order_id": orders["order"].astype(str),
            "ordered_at": (days + pd.Timedelta(hours=9)).dt.tz_localize(PARIS),
            "amount": orders["total"].where(orders["order"] % 17 != 0),
            "category": ["cd" if n % 3 else "dvd" for n in orders["order"]],
            "rating": [float(n % 5 + 1) if n % 4 else None for n in orders["order"]],
        }
    )
    base = AS_OF.to_pydatetime()
    events = pd.DataFrame(
        [
            (cid, f"c{k % 3}", kind, base - timedelta(days=k % 40, hours=k % 7))
            for k, cid in enumerate(ids)
            for kind in ("sent", "open", "click")[: 1 + k % 3]
        ],
        columns=["contact_id", "campaign_id", "event", "at"],
    )
    return conform(Tables(contacts, raw, events), source="cdnow")


_DDL = {
    "contacts": "contact_id text, email text, subscribed boolean, created_at timestamptz, "
    "tags text[], age double precision",
    "orders": "contact_id text, order_id text, ordered_at timestamptz, amount double precision, "
    "category text, rating double precision",
    "events": "contact_id text, campaign_id text, event text, at timestamptz",
}


def _load(conn, tables: Tables) -> None:
    for name, ddl in _DDL.items():
        frame: pd.DataFrame = getattr(tables, name)
        columns = [c.split()[0] for c in ddl.split(", ")]
        conn.execute(f"CREATE TABLE {name} ({ddl})")
        rows = frame[columns].astype(object).where(frame[columns].notna(), None)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(columns))})",
                [tuple(r) for r in rows.itertuples(index=False)],
            )


def test_the_plan_runs_inside_postgresql_with_the_same_results(postgres_server, tmp_path) -> None:
    tables = _shop()
    database = postgres_server.create_database("relational")
    rule_sets = [load_ruleset(SEGRULES / f"{n}.yaml") for n in ("rfm", "fidelite", "profils-vpc")]
    rule_sets += [_rules(tmp_path, "catalog", CATALOG), _rules(tmp_path, "moved", MOVED)]
    types = _types(tables.contacts)
    with postgres_server.admin(database) as conn:
        _load(conn, tables)
        conn.execute("SET TimeZone = 'UTC'")
        for ruleset in rule_sets:
            checked = compare(tables, ruleset, AS_OF, PARIS)  # DuckDB = the pandas engine
            duck = checked.to_pandas()
            plan = build_plan(
                ruleset,
                AS_OF,
                PARIS,
                types,
                [*SCALAR_METRICS, *CALLS],
                orders_columns=[c.split()[0] for c in _DDL["orders"].split(", ")],
            )
            cur = conn.execute(plan.sql("postgres"))
            pg = pd.DataFrame(cur.fetchall(), columns=list(plan.output))
            assert len(pg) == len(duck) == len(tables.contacts)
            pg = pg.set_index("contact_id").reindex(duck["contact_id"])
            duck = duck.set_index("contact_id")
            for name in plan.output[1:]:
                same = _same(checked.schema.field(name).type, pg[name], duck[name])
                assert same.all(), (ruleset.name, name, pg[name][~same][:3], duck[name][~same][:3])
