"""The plan printed for ClickHouse runs in an embedded ClickHouse (chDB) and gives the
pandas engine's answer for every contact: on the demo shop and on the benchmark's
generated shop, as a warehouse user would run the SQL `segmerge` prints for them.

The tables are the ones a run segments (pulled, conformed, the orders that count),
written to Parquet and read by ClickHouse's ``file()``; the same tables go to the
pandas engine and DuckDB (tests.test_relational.compare), and ClickHouse's rows
must match theirs column by column. chDB (the ``chdb-core-lite`` package, in the test
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

from segmerge.metrics.catalog import SCALAR_METRICS
from segmerge.ports.schema import Tables
from segmerge.relational import build_plan
from segmerge.rules import RuleSet, load_ruleset
from segmerge.segment import order_rules
from segmerge.segment.segmentation import as_of_instant, open_source, pull
from segmerge.workspace import config as workspace
from tests.cli import segmerge
from tests.test_relational import SEGRULES, _same, _types, compare

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
    relations = {}
    for name in ("contacts", "orders", "events"):
        path = folder / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(getattr(tables, name), preserve_index=False), path)
        relations[name] = f"SELECT * FROM file('{path}', Parquet)"
    plan = build_plan(
        ruleset,
        as_of,
        tz,
        _types(tables.contacts),
        [*SCALAR_METRICS],
        orders_columns=list(tables.orders.columns),
    )
    got = chdb.query(plan.sql("clickhouse", relations, pretty=False), "ArrowTable")
    ch = got.to_pandas().set_axis(list(plan.output), axis=1)
    duck = checked.to_pandas()
    assert len(ch) == len(duck) == len(tables.contacts)
    ch = ch.set_index("contact_id").reindex(duck["contact_id"])
    duck = duck.set_index("contact_id")
    differ = []
    for name in plan.output[1:]:
        same = _same(checked.schema.field(name).type, ch[name], duck[name])
        if not same.all():
            differ.append((name, ch[name][~same][:3].tolist(), duck[name][~same][:3].tolist()))
    assert differ == []
    return ch["segment"]


def test_the_demo_segments_in_clickhouse_as_in_pandas(chdb, tmp_path):
    root = tmp_path / "demo"
    segmerge("init", str(root), check=True)
    tables = counted(root, "demo")
    ws = workspace.load(root)
    as_of = as_of_instant(ws, "2026-03-03")
    segments = clickhouse_agrees(
        chdb, tables, load_ruleset(SEGRULES / "rfm.yaml"), as_of, ws.tz, tmp_path
    )
    assert segments.nunique() >= 4  # the comparison covers several segments


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
