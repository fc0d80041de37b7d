"""The relational plan (segmerge.relational) against the pandas engine, on the demo shop.

The pandas engine (segmerge.metrics.compute + the rules evaluator, as `segment`
runs them through segmerge.segment.segmentation.build_frame and RuleSet.assign) is
the oracle: :func:`compare` runs both on the same counted tables and asserts that
every contact has the same value of every metric of the catalog, the same
exclusion, the same segment and the same memberships. The demo shop is read as a
run reads it (a `segmerge init` workspace, its files source, the engine's order
rules); the plan also runs on the same tables written to Parquet and CSV and read
by DuckDB's own scans, reading only the columns it needs.

tests/test_relational_properties.py runs the same comparison on the CDNOW purchases
and on generated shops; tests/test_relational_sql.py prints the plan per dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmerge.errors import ConfigError, DataError
from segmerge.metrics.catalog import SCALAR_METRICS, MetricCall
from segmerge.ports.schema import Tables
from segmerge.relational import build_plan, segment_relational
from segmerge.rules import RuleSet, load_ruleset

#: every metric call shape of the catalog, asked of both engines on top of the rules
CALLS = (
    MetricCall.bind("orders", days=30),
    MetricCall.bind("orders", days=1),
    MetricCall.bind("orders", days=90, offset=30),
    MetricCall.bind("revenue", days=365),
    MetricCall.bind("revenue", days=7, offset=7),
    MetricCall.bind("distinct", column="category"),
    MetricCall.bind("distinct", column="category", days=60),
    MetricCall.bind("opens", days=30),
    MetricCall.bind("clicks", days=2),
    MetricCall.bind("trend", measure="revenue", days=30),
    MetricCall.bind("trend", measure="orders", days=1),
    MetricCall.bind("trend", measure="opens", days=7),
    MetricCall.bind("trend", measure="clicks", days=30),
    MetricCall.bind("opened", campaign="last"),
    MetricCall.bind("clicked", campaign="last"),
    MetricCall.bind("opened", campaign="c1"),
    MetricCall.bind("clicked", campaign="2026-01-soldes"),
)


def _comparable(kind: pa.DataType, values: pd.Series | pa.ChunkedArray) -> Any:
    """One engine's column as values that compare with ``==``: instants as UTC
    microseconds (NaT for null), numbers and truths as floats (NaN for null), lists as
    lists of strings, anything else as Python objects (None for null)."""
    arrow = isinstance(values, pa.ChunkedArray)
    if pa.types.is_timestamp(kind):
        if arrow:
            return values.cast(pa.timestamp("us", tz="UTC"), safe=False).to_numpy()
        return pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[us]")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        if arrow:
            return values.cast(pa.float64()).to_numpy()
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if arrow:
        return values.to_pylist()
    if pa.types.is_list(kind):
        return values.tolist()
    return values.astype(object).where(values.notna(), None).tolist()


def _agree(kind: pa.DataType, a: Any, b: Any) -> np.ndarray:
    """Per contact, whether two :func:`_comparable` columns agree (nulls agree with nulls)."""
    if pa.types.is_timestamp(kind):
        return (a == b) | (np.isnat(a) & np.isnat(b))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return (a == b) | (np.isnan(a) & np.isnan(b))
    if pa.types.is_list(kind):
        a = [None if x is None else [str(i) for i in x] for x in a]
        b = [None if x is None else [str(i) for i in x] for x in b]
    return np.array([x == y for x, y in zip(a, b, strict=True)], dtype=bool)


def _same(kind: pa.DataType, mine: pd.Series, theirs: pd.Series) -> np.ndarray:
    """Per contact, whether the two engines agree (nulls agree with nulls), column-wise."""
    return _agree(kind, _comparable(kind, mine), _comparable(kind, theirs))


def oracle(
    tables: Tables, ruleset: RuleSet, as_of: pd.Timestamp, tz: tzinfo, calls: tuple = ()
) -> pd.DataFrame:
    """The pandas engine's answer: metrics, exclusion, segment and memberships per contact."""
    from segmerge.segment.segmentation import build_frame

    class _Ws:  # build_frame reads only the zone
        pass

    ws: Any = _Ws()
    ws.tz = tz
    frame = build_frame(tables, ruleset, as_of, ws, tuple(calls))
    assignment = ruleset.assign(frame, as_of, tz)
    out = frame.copy()
    out["excluded"] = assignment.excluded.to_numpy()
    out["segment"] = assignment.primary.to_numpy()
    for name in assignment.matrix.columns:
        out[f"segment:{name}"] = assignment.matrix[name].to_numpy()
    return out


@cache
def _shared_connection() -> Any:
    """One DuckDB connection for every comparison; one thread, as the shops are small."""
    from segmerge.relational.duckdb_exec import connect

    return connect(threads=1)


def compare(
    tables: Tables,
    ruleset: RuleSet,
    as_of: pd.Timestamp,
    tz: tzinfo,
    calls: tuple = CALLS,
    left_out_statuses: tuple | list = (),
    *,
    scalars: bool = True,
    connection: Any = None,
    **relations: Any,
) -> pa.Table:
    """Assert both engines agree on every contact; return the relational result.

    Both are asked for the metric ``calls`` and, with ``scalars``, every scalar metric
    of the catalog, on top of what the rule set reads; ``connection``: the DuckDB
    connection to run on (by default one shared by the whole session: a new one costs
    more than segmenting a small shop)."""
    given: dict[str, Any] = {
        "contacts": tables.contacts,
        "orders": tables.orders,
        "events": tables.events,
    }
    given.update(relations)
    columns = [*(SCALAR_METRICS if scalars else ()), *calls]
    got = segment_relational(
        ruleset,
        given,
        as_of,
        tz,
        columns,
        left_out_statuses=left_out_statuses,
        connection=connection if connection is not None else _shared_connection(),
    )
    expected = oracle(tables, ruleset, as_of, tz, calls)
    assert got.num_rows == len(expected)
    theirs = expected.set_index(expected["contact_id"].astype(str))
    ids = pd.Index(got.column("contact_id").to_pylist())
    assert set(ids) == set(theirs.index)
    order = ids.get_indexer(theirs.index)  # the relational row of each oracle row
    problems = []
    for name in got.column_names[1:]:
        assert name in theirs.columns, f"the oracle has no column {name}"
        kind = got.schema.field(name).type
        ours = _comparable(kind, got.column(name))
        ours = ours[order] if isinstance(ours, np.ndarray) else [ours[i] for i in order]
        same = _agree(kind, ours, _comparable(kind, theirs[name]))
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(
                f"{name}: {int((~same).sum())} contacts differ, e.g. {theirs.index[i]}: "
                f"relational {got.column(name)[int(order[i])].as_py()!r}, "
                f"pandas {theirs[name].iloc[i]!r}"
            )
    assert not problems, "\n".join(problems)
    return got


# --- the demo shop, as a run reads it ---------------------------------------------------------

AS_OF = "2026-03-03"
SEGRULES = Path(__file__).resolve().parents[1] / "segrules"
RULE_SETS = sorted(p.stem for p in SEGRULES.glob("*.yaml"))


@dataclass
class Demo:
    tables: Tables  # counted: the orders every metric sees
    as_of: pd.Timestamp
    tz: tzinfo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    from cli import segmerge as sm

    from segmerge.segment import order_rules
    from segmerge.segment.segmentation import as_of_instant, open_source, pull
    from segmerge.workspace import config as workspace

    root = tmp_path_factory.mktemp("demo") / "ws"
    sm("init", str(root), check=True)
    ws = workspace.load(root)
    source = open_source(ws, "demo")
    try:
        tables = pull(source)
    finally:
        source.close()
    _, counted = order_rules.apply(ws, "demo", tables)
    return Demo(counted, as_of_instant(ws, AS_OF), ws.tz)


@pytest.fixture(scope="module")
def on_demo(demo: Demo) -> Callable[[str], pa.Table]:
    """A repository rule set's relational result on the demo, checked against the pandas
    engine once for every test that reads it."""
    results: dict[str, pa.Table] = {}

    def compared(name: str) -> pa.Table:
        if name not in results:
            ruleset = load_ruleset(SEGRULES / f"{name}.yaml")
            results[name] = compare(demo.tables, ruleset, demo.as_of, demo.tz)
        return results[name]

    return compared


@pytest.mark.parametrize("name", RULE_SETS)
def test_the_demo_segments_identically_on_both_engines(on_demo, name: str) -> None:
    got = on_demo(name)
    sizes = pd.Series(got.column("segment").to_pylist()).value_counts()
    assert len(sizes) >= 3, sizes  # the demo fills several segments of each rule set


def test_the_demo_engagement_metrics_are_not_all_empty(on_demo) -> None:
    """The comparison above means something for events: the demo has opens and clicks."""
    got = on_demo("rfm")
    opened = got.column("opened(campaign=last)").to_pylist()
    assert 0 < sum(opened) < len(opened)
    assert any(v is not None for v in got.column("last_click_days").to_pylist())


def test_parquet_and_csv_scans_give_the_same_assignment(demo: Demo, tmp_path: Path) -> None:
    ruleset = load_ruleset(SEGRULES / "profils-vpc.yaml")
    contacts = tmp_path / "contacts.parquet"
    pq.write_table(pa.Table.from_pandas(demo.tables.contacts, preserve_index=False), contacts)
    orders = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_pandas(demo.tables.orders, preserve_index=False), orders)
    events = tmp_path / "events.csv"
    demo.tables.events.to_csv(events, index=False)
    compare(
        demo.tables,
        ruleset,
        demo.as_of,
        demo.tz,
        contacts=contacts,
        orders=f"read_parquet('{orders}')",
        events=events,
    )
    # the scans' views are gone from the shared connection: frames of the same names follow
    compare(demo.tables, ruleset, demo.as_of, demo.tz)


# --- what is read ----------------------------------------------------------------------------


def test_only_the_columns_the_rules_and_the_caller_need_are_read(demo: Demo) -> None:
    ruleset = load_ruleset(SEGRULES / "profils-vpc.yaml")
    plan = build_plan(ruleset, demo.as_of, demo.tz, _types(demo.tables.contacts), ["first_name"])
    assert plan.reads == {
        "contacts": ("contact_id", "email", "subscribed", "first_name"),
        "orders": ("contact_id", "ordered_at", "amount", "category"),
    }
    rfm = build_plan(
        load_ruleset(SEGRULES / "rfm.yaml"), demo.as_of, demo.tz, _types(demo.tables.contacts)
    )
    assert rfm.reads["orders"] == ("contact_id", "ordered_at", "amount")
    assert "events" not in rfm.reads


def test_a_column_no_rule_reads_is_never_touched(demo: Demo) -> None:
    """An unused contact column DuckDB could not even read (Python objects) costs nothing."""
    contacts = demo.tables.contacts.copy()
    contacts["notes"] = [object()] * len(contacts)
    ruleset = load_ruleset(SEGRULES / "rfm.yaml")
    got = segment_relational(
        ruleset,
        {"contacts": contacts, "orders": demo.tables.orders},
        demo.as_of,
        demo.tz,
        ["first_name"],
    )
    assert "first_name" in got.column_names and "notes" not in got.column_names
    assert got.num_rows == len(contacts)


def test_a_missing_column_and_a_column_named_like_a_metric_are_config_errors(
    demo: Demo, tmp_path: Path
) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nsegments:\n  - name: a\n    when: city == 'Lyon'\n")
    types = _types(demo.tables.contacts)
    with pytest.raises(ConfigError, match="no column 'city'"):
        build_plan(load_ruleset(rules), demo.as_of, demo.tz, types)
    with pytest.raises(ConfigError, match="named like metrics: revenue"):
        build_plan(load_ruleset(rules), demo.as_of, demo.tz, {**types, "revenue": "DOUBLE"})


def _types(frame: pd.DataFrame) -> dict[str, str]:
    import duckdb

    con = duckdb.connect()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    con.register("t", table)
    return {str(r[0]): str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM t").fetchall()}


def test_a_distinct_count_of_a_column_the_orders_lack_is_a_data_error(demo: Demo) -> None:
    orders = demo.tables.orders.drop(columns=["category"])
    ruleset = load_ruleset(SEGRULES / "profils-vpc.yaml")
    with pytest.raises(DataError, match="the orders table has no column 'category'"):
        segment_relational(
            ruleset, {"contacts": demo.tables.contacts, "orders": orders}, demo.as_of, demo.tz
        )


def test_duckdb_s_memory_limit_and_spill_folder_are_the_caller_s(tmp_path: Path) -> None:
    from segmerge.relational.duckdb_exec import connect

    con = connect(memory_limit="256MB", temp_directory=tmp_path / "spill", threads=1)
    limit, folder, threads = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
        "current_setting('threads')"
    ).fetchone()
    assert limit == "244.1 MiB"  # 256 MB as DuckDB shows it
    assert folder == str(tmp_path / "spill") and int(threads) == 1
