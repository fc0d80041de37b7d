"""The plan printed for ClickHouse runs in an embedded ClickHouse (chDB) and gives the
pandas engine's answer for every contact: on the demo shop and on the benchmark's
generated shop, as a warehouse user would run the SQL `segmerge` prints for them.

The tables are the ones a run segments (pulled, conformed, the orders that count),
written to Parquet and read by ClickHouse's ``file()``; the same tables go to the
pandas engine and DuckDB (tests.test_relational.compare), and ClickHouse's rows
must match theirs column by column; a contacts time without a zone must be read in
the workspace's zone, as DuckDB reads it. chDB (the ``chdb-core-lite`` package, in the test
extra) plans the statement slowly (seconds) for a few hundred rows: one rule set per
shop, the metrics a campaign asks for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_relational import SEGRULES, _same, _types, compare

from segmerge.metrics.catalog import SCALAR_METRICS
from segmerge.ports.schema import Tables
from segmerge.relational import build_plan, segment_relational
from segmerge.rules import RuleSet, load_ruleset
from segmerge.segment import order_rules
from segmerge.segment.segmentation import as_of_instant, open_source, pull
from segmerge.workspace import config as workspace

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def chdb() -> Any:
    return pytest.importorskip("chdb")


def counted(root: Path, source: str) -> Tables:
    """The source's tables as a run segments them: pulled, the orders that count."""
    ws = workspace.load(root)
    src = open_source(ws, source)
    try:
        tables = pull(src)
    finally:
        src.close()
    return order_rules.apply(ws, source, tables)[1]


def clickhouse_agrees(
    chdb: Any, tables: Tables, ruleset: RuleSet, as_of: pd.Timestamp, tz: Any, folder: Path
) -> pd.Series:
    """Run the ClickHouse plan over ``tables`` and check it against both engines; return
    the segment of each contact, as ClickHouse gave it."""
    checked = compare(tables, ruleset, as_of, tz, calls=())  # DuckDB = pandas, first
    plan = build_plan(
        ruleset,
        as_of,
        tz,
        _types(tables.contacts),
        [*SCALAR_METRICS],
        orders_columns=list(tables.orders.columns),
    )
    ch = run_clickhouse(chdb, tables, plan, folder)
    duck = checked.to_pandas()
    assert len(ch) == len(duck) == len(tables.contacts)
    ch = ch.reindex(duck["contact_id"])
    duck = duck.set_index("contact_id")
    differ = []
    for name in plan.output[1:]:
        same = _same(checked.schema.field(name).type, ch[name], duck[name])
        if not same.all():
            differ.append((name, ch[name][~same][:3].tolist(), duck[name][~same][:3].tolist()))
    assert differ == []
    return ch["segment"]


@pytest.fixture(scope="module")
def demo(demo_pristine: Path) -> tuple[Tables, pd.Timestamp, Any]:
    """The demo's tables as a run segments them, its reference instant and zone (the
    session's demo workspace: pulling it writes nothing there)."""
    ws = workspace.load(demo_pristine)
    return counted(demo_pristine, "demo"), as_of_instant(ws, "2026-03-03"), ws.tz


def run_clickhouse(chdb: Any, tables: Tables, plan: Any, folder: Path) -> pd.DataFrame:
    """The plan's rows from ClickHouse reading ``tables`` as Parquet, by contact."""
    relations = {}
    for name in ("contacts", "orders", "events"):
        path = folder / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(getattr(tables, name), preserve_index=False), path)
        relations[name] = f"SELECT * FROM file('{path}', Parquet)"
    got = chdb.query(plan.sql("clickhouse", relations, pretty=False), "ArrowTable")
    return got.to_pandas().set_axis(list(plan.output), axis=1).set_index("contact_id")


def test_the_demo_segments_in_clickhouse_as_in_pandas(chdb, demo, tmp_path):
    tables, as_of, tz = demo
    ruleset = load_ruleset(SEGRULES / "rfm.yaml")
    segments = clickhouse_agrees(chdb, tables, ruleset, as_of, tz, tmp_path)
    assert segments.nunique() >= 4  # the comparison covers several segments


WALL_CLOCK = """\
version: 1
name: wall
mode: first
segments:
  - name: early
    when: created_at < date('2025-06-01')
  - name: late
    when: seen_at >= date('2025-09-02')
  - name: others
    when: true
"""


def test_a_wall_clock_contact_time_is_read_in_the_workspace_zone(chdb, demo, tmp_path):
    """A contacts time without a zone (a warehouse's naive DateTime) is the workspace's
    local time, as DuckDB reads it; ClickHouse has no AT TIME ZONE to say so."""
    tables, as_of, tz = demo
    contacts = tables.contacts.copy()
    contacts["created_at"] = contacts["created_at"].dt.tz_convert(tz).dt.tz_localize(None)
    contacts["seen_at"] = contacts["created_at"] + pd.Timedelta(hours=23, minutes=30)
    tables = Tables(contacts, tables.orders, tables.events)
    rules = tmp_path / "wall.yaml"
    rules.write_text(WALL_CLOCK, encoding="utf-8")
    ruleset = load_ruleset(rules)
    given = {"contacts": contacts, "orders": tables.orders, "events": tables.events}
    duck = segment_relational(ruleset, given, as_of, tz, [*SCALAR_METRICS]).to_pandas()
    duck = duck.set_index("contact_id")
    types = _types(contacts)
    assert types["created_at"].startswith("TIMESTAMP") and "TIME ZONE" not in types["created_at"]
    plan = build_plan(ruleset, as_of, tz, types, [*SCALAR_METRICS])
    ch = run_clickhouse(chdb, tables, plan, tmp_path).reindex(duck.index)
    assert ch["segment"].fillna("-").tolist() == duck["segment"].fillna("-").tolist()
    assert duck["segment"].value_counts().to_dict().keys() == {"early", "late", "others"}
    same = pd.to_datetime(ch["created_at"], utc=True) == pd.to_datetime(
        duck["created_at"], utc=True
    )
    assert same.all()


def test_a_generated_shop_segments_in_clickhouse_as_in_pandas(chdb, tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    import shopgen

    root = shopgen.workspace(tmp_path / "ws")
    shopgen.generate(root / "data", shopgen.SIZES["tiny"])
    tables = counted(root, "shop")
    ws = workspace.load(root)
    as_of = as_of_instant(ws, shopgen.AS_OF)
    ruleset = load_ruleset(root / "segrules" / "bench.yaml")
    segments = clickhouse_agrees(chdb, tables, ruleset, as_of, ws.tz, tmp_path)
    assert segments.nunique() >= 5  # vip, fonceurs, decouvreurs, a_risque, reconquete…
