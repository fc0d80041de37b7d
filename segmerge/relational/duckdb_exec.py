"""Run the plan on an embedded DuckDB over frames, Arrow tables or file scans.

Relations come as pandas frames (only the columns the plan reads are handed to
DuckDB, as Arrow, NaN as NULL), Arrow tables, or file scans: a ``Path`` to a
``.parquet`` or ``.csv`` file, or DuckDB SQL text such as
``read_parquet('orders/*.parquet')``. A scan becomes a view, so DuckDB reads only
the columns the plan names, streaming, within ``memory_limit`` and spilling to
``temp_directory``. The result is one Arrow table, one row per contact, with the
plan's public column names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.metrics.catalog import MetricCall
from segmerge.ports.sql import text_literal
from segmerge.relational.plan import build_plan
from segmerge.rules import RuleSet

Relation: TypeAlias = pd.DataFrame | pa.Table | str | Path


def connect(
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    threads: int | None = None,
) -> Any:
    """A DuckDB connection in UTC (naive instants in orders and events are UTC); rows
    come in no particular order, so DuckDB need not keep the scans' (less memory held
    back for ordering, freer parallel plans)."""
    import duckdb

    con = duckdb.connect(config={"preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = {text_literal(str(memory_limit))}")
    if temp_directory:
        con.execute(f"SET temp_directory = {text_literal(str(temp_directory))}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _scan(source: str | Path) -> str:
    if isinstance(source, Path):
        reader = {".parquet": "read_parquet", ".csv": "read_csv"}.get(source.suffix.lower())
        if reader is None:
            raise ConfigError(
                _("cannot scan {path}: expected a .parquet or .csv file").format(path=source),
                file=source,
            )
        return f"{reader}({text_literal(str(source))})"
    return source


class _Relations:
    """The relations registered on one connection under private names."""

    def __init__(self, con: Any, relations: Mapping[str, Relation]) -> None:
        self.con, self.given = con, relations
        self.registered: list[str] = []
        self.views: list[str] = []

    def columns(self, name: str, wanted: Iterable[str] | None = None) -> dict[str, str]:
        """Register ``name`` (only the ``wanted`` columns of a frame) and return its
        column types."""
        source = self.given[name]
        private = f"segmerge_{name}"
        if isinstance(source, pd.DataFrame):
            keep = [c for c in source.columns if wanted is None or c in set(wanted)]
            table = pa.Table.from_pandas(source[keep], preserve_index=False)
            self.con.register(private, table)
            self.registered.append(private)
        elif isinstance(source, pa.Table):
            self.con.register(private, source)
            self.registered.append(private)
        else:
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {private} AS SELECT * FROM {_scan(source)}"
            )
            self.views.append(private)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {private}")
        self.views.append(name)
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def names(self, name: str) -> list[str]:
        """The relation's column names (a scan's from its metadata, nothing read)."""
        source = self.given[name]
        if isinstance(source, pd.DataFrame):
            return [str(c) for c in source.columns]
        if isinstance(source, pa.Table):
            return list(source.schema.names)
        return list(self.columns(name))

    def close(self) -> None:
        """Leave a caller's connection as it was: a file's view left behind under a
        private name would refuse the next caller's frame of the same name."""
        for name in reversed(self.views):
            self.con.execute(f"DROP VIEW IF EXISTS {name}")
        for name in self.registered:
            self.con.unregister(name)


def segment_relational(
    ruleset: RuleSet,
    relations: Mapping[str, Relation],
    as_of: pd.Timestamp,
    tz: tzinfo,
    columns: Iterable[str | MetricCall] = (),
    *,
    left_out_statuses: Iterable[str] = (),
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    threads: int | None = None,
    connection: Any = None,
) -> pa.Table:
    """Segment on DuckDB: one row per contact (``contact_id``, ``columns``, the metrics
    the rules need, ``excluded``, ``segment``, a ``segment:NAME`` flag per segment).

    ``relations``: ``contacts`` and ``orders``, optionally ``events``. Rows come in no
    particular order.
    """
    con = connection if connection is not None else connect(memory_limit, temp_directory, threads)
    if connection is not None:
        con.execute("SET TimeZone = 'UTC'")
    extra = [c for c in columns if isinstance(c, str)]
    regs = _Relations(con, relations)
    try:
        wanted = {"contact_id", *ruleset.names(), *extra}
        contact_types = regs.columns("contacts", wanted)
        plan = build_plan(
            ruleset,
            as_of,
            tz,
            contact_types,
            columns,
            has_events="events" in relations,
            orders_columns=regs.names("orders"),
            left_out_statuses=left_out_statuses,
        )
        for name in ("orders", "events"):
            if name in plan.reads:
                regs.columns(name, plan.reads[name])
        relation = con.sql(plan.sql("duckdb", pretty=False))
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table  # 2 / 1
        result = fetch()
    finally:
        regs.close()
    return result.rename_columns(list(plan.output))
