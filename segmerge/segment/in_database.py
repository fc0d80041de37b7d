"""Segmentation inside the database of a source that declares a SQL ``dialect``.

Why: a shop whose orders live in PostgreSQL should not ship millions of them out to
be counted. The engine's plan (segmerge.relational) runs there as one statement and
only per-contact rows come back: the contacts' columns (templates, tags and outputs
read them), every metric and the assignment. The other statements read no row
(``LIMIT 0``, for the relations' columns) or return aggregates: the number of orders,
of those naming no contact, of orders per distinct status, and which contacts have
an unsubscribe or a bounce event (consent). No statement returns an order row.

What the dialect cannot write (a metric, a moved date) stops the command naming it
(segmerge.relational.dialects): pulling the raw rows instead would defeat the point
on the very bases this is for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from segmerge.heap import frozen_heap
from segmerge.metrics.catalog import SCALAR_METRICS, MetricCall
from segmerge.metrics.compute import compute_metrics
from segmerge.ports.connector import Source
from segmerge.ports.schema import (
    Tables,
    conform,
    empty_events,
    empty_orders,
    frame_from_arrow,
)
from segmerge.relational import build_plan
from segmerge.relational.metrics_sql import BITS
from segmerge.relational.plan import ORDERS_MET
from segmerge.rules import Assignment, RuleSet, kinds_from_frame
from segmerge.segment import order_rules as source_rules
from segmerge.segment.in_database_checks import answer, contact_rows, unmatched_examples
from segmerge.segment.in_database_empty import empty_orders_of, left_out_as_empty
from segmerge.workspace.config import Workspace

#: the events consent reads (segmerge.mail.consent), one row per contact and kind
CONSENT_EVENTS = ("unsubscribe", "bounce")


@dataclass
class InDatabase:
    """What the database answered: the tables (contacts; events for consent only; no
    orders), the contacts with their metrics, and the assignment."""

    tables: Tables
    frame: pd.DataFrame
    assignment: Assignment


def sql_type(t: pa.DataType) -> str:
    """An Arrow type as the SQL type name segmerge.relational.types reads a kind from."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "VARCHAR[]"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    return "VARCHAR"


def order_counts(source: Source) -> tuple[int, int | None, list[tuple[object, int]] | None]:
    """(orders, orders naming no contact or None when uncounted yet, orders per distinct
    status or None): one door for every command that counts a database's orders
    (segment, kpi: which reads the statuses alone), so a status is counted by the same
    statement, or taken from the source when it counted already."""
    known = source.order_counts(in_plan=True)
    return known if known is not None else _Database(source).order_counts()


class _Database:
    """The source's relations and the few statements run on them."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.relations = source.relations()
        self._schemas: dict[str, pa.Schema] = {}

    def columns(self, stream: str) -> pa.Schema:
        """The stream's columns and types; no row is read."""
        if stream not in self._schemas:
            relation = self.relations[stream]
            got = self.source.execute(f"SELECT * FROM {relation} AS {stream} LIMIT 0")
            self._schemas[stream] = got.schema
        return self._schemas[stream]

    def count(self, stream: str) -> int:
        if stream not in self.relations:
            return 0
        got = self.source.execute(f"SELECT COUNT(*) AS n FROM {self.relations[stream]} AS r")
        return int(got.column("n")[0].as_py())

    def order_counts(
        self, in_plan: bool = False
    ) -> tuple[int, int | None, list[tuple[object, int]] | None]:
        """(orders, orders naming no contact, orders per distinct status or None when
        the orders have no status): the source's own when it has them, else one scan.
        ``in_plan``: the plan runs next, the source may leave the second None (see
        segmerge.ports.Source.order_counts)."""
        known = self.source.order_counts(in_plan)
        if known is not None:
            return known
        rel = self.relations
        has_status = "status" in self.columns("orders").names
        status = "o.status" if has_status else "CAST(NULL AS VARCHAR)"
        rows = self.source.execute(
            f"SELECT {status} AS status, COUNT(*) AS n, "
            "SUM(CASE WHEN k.contact_id IS NULL THEN 1 ELSE 0 END) AS unmatched "
            f"FROM {rel['orders']} AS o LEFT JOIN "
            f"(SELECT DISTINCT contact_id FROM {rel['contacts']} AS c) AS k "
            "ON k.contact_id = o.contact_id" + (" GROUP BY o.status" if has_status else "")
        ).to_pylist()
        total = sum(int(r["n"] or 0) for r in rows)
        unmatched = sum(int(r["unmatched"] or 0) for r in rows)
        statuses = [(r["status"], int(r["n"])) for r in rows if r["n"]]
        return total, unmatched, statuses if has_status else None

    def column_values(self, calls: Iterable[MetricCall]) -> dict[str, list[str]]:
        """Every value of each orders text column a ``distinct()`` call counts, when there
        are few (segmerge.relational.metrics_sql.BITS): a cheap pass over one column
        that spares the plan a COUNT(DISTINCT)'s hash table."""
        orders = self.columns("orders")
        found: dict[str, list[str]] = {}
        for name in sorted({str(c.arg("column")) for c in calls if c.name == "distinct"}):
            if name not in orders.names or not pa.types.is_string(orders.field(name).type):
                continue
            said = exp.to_identifier(name, quoted=True).sql("duckdb")
            got = self.source.execute(
                f"SELECT DISTINCT {said} FROM {self.relations['orders']} AS o "
                f"WHERE {said} IS NOT NULL LIMIT {BITS + 1}"
            )
            values = [str(v) for v in got.column(0).to_pylist()]
            if len(values) <= BITS:
                found[name] = sorted(values)
        return found

    def order_categories(self) -> pd.DataFrame:
        """Each contact's orders per category (``report``'s mix), counted in the database
        and spread back to one row per order: the contact and the category, nothing else."""
        got = frame_from_arrow(
            self.source.execute(
                "SELECT contact_id, category, COUNT(*) AS n "
                f"FROM {self.relations['orders']} AS o "
                "WHERE contact_id IS NOT NULL AND category IS NOT NULL "
                "GROUP BY contact_id, category"
            )
        )
        times = got["n"].to_numpy(dtype=np.int64)
        orders = empty_orders()
        spread = {
            c: pd.Series(
                pd.array(np.repeat(got[c].to_numpy(dtype=object), times), dtype=pd.StringDtype())
            )
            for c in ("contact_id", "category")
        }
        n = int(times.sum())
        return pd.DataFrame(
            {
                c: spread[c] if c in spread else pd.Series([None] * n, dtype=orders[c].dtype)
                for c in [*orders.columns, "category"]
            }
        )

    def consent_events(self) -> pd.DataFrame:
        """Who unsubscribed or bounced, once per contact and kind (no time, no campaign)."""
        if "events" not in self.relations:
            return empty_events()
        kinds = ", ".join(f"'{k}'" for k in CONSENT_EVENTS)
        got = frame_from_arrow(
            self.source.execute(
                "SELECT DISTINCT contact_id, event "
                f"FROM {self.relations['events']} AS e WHERE event IN ({kinds})"
            )
        )
        events = empty_events()
        return pd.DataFrame(
            {
                "contact_id": got["contact_id"].astype(events["contact_id"].dtype),
                "campaign_id": pd.Series(pd.NA, index=got.index, dtype=events["campaign_id"].dtype),
                "event": got["event"].astype(events["event"].dtype),
                "at": pd.Series(pd.NaT, index=got.index, dtype=events["at"].dtype),
            }
        )


@dataclass
class Counted:
    """A database source read as `validate` reads an unused source: counts only."""

    tables: Tables  # no row: the order rules' notes and warnings
    contacts: int
    orders: int
    counted_orders: int
    events: int


def count_in_database(ws: Workspace, name: str, source: Source) -> Counted:
    """The relations' columns checked, the order rules applied on counts, rows counted."""
    db = _Database(source)
    empty = _empty_tables(name, db)
    total, unmatched, statuses = db.order_counts()
    assert unmatched is not None  # counted: no plan runs
    told, left_out = _told(ws, name, db, empty, (total, unmatched, statuses))
    dropped = sum(n for raw, n in statuses or () if raw is not None and str(raw) in left_out)
    counted = total - dropped
    return Counted(told, db.count("contacts"), total, counted, db.count("events"))


def _empty_tables(name: str, db: _Database) -> Tables:
    """No row, with the relations' columns, conformed."""
    contacts_schema = db.columns("contacts")
    orders_columns = db.columns("orders").names
    empty = conform(
        Tables(
            frame_from_arrow(contacts_schema.empty_table()),
            empty_orders_of(orders_columns),
            empty_events(),
            origins=db.source.origins(),
        ),
        source=name,
    )
    return empty


def _told(
    ws: Workspace,
    name: str,
    db: _Database,
    empty: Tables,
    counts: tuple[int, int, list[tuple[object, int]] | None],
) -> tuple[Tables, list[str]]:
    """``empty`` with the order rules' notes and warnings; the status words left out."""
    total, unmatched, statuses = counts
    has_email = "email" in db.columns("orders").names
    shown = unmatched_examples(db.source, db.relations, unmatched, has_email)
    return source_rules.apply_counts(
        ws, name, empty, total=total, unmatched=unmatched, statuses=statuses, examples=shown
    )


def segment_in_database(
    ws: Workspace,
    name: str,
    source: Source,
    ruleset: RuleSet,
    instant: pd.Timestamp,
    *,
    order_categories: bool = False,
    columns: Collection[str] | None = None,
) -> InDatabase:
    """Metrics, order rules and assignment computed by ``source``'s database; with
    ``order_categories``, the tables' orders are each order's contact and category.

    ``columns``: the contact columns and scalar metrics the caller reads besides the
    assignment (``segment --columns``); None: all of them (a run's templates may read
    any). Fewer columns are fewer values read, sent back and typed here."""
    assert source.dialect is not None
    db = _Database(source)
    empty = _empty_tables(name, db)
    total, unmatched, statuses = db.order_counts(in_plan=True)
    if unmatched is not None:
        told, left_out = _told(ws, name, db, empty, (total, unmatched, statuses))
    else:  # the words left out now; what is told once the plan counted the orders of nobody
        _told_yet, left_out = source_rules.apply_counts(
            ws, name, empty, total=total, unmatched=0, statuses=statuses
        )
    ruleset.check(kinds_from_frame(empty.contacts), set(empty.orders.columns))
    contacts_schema = db.columns("contacts")
    contact_columns = [c for c in contacts_schema.names if c != "contact_id"]
    scalars = list(SCALAR_METRICS)
    calls = sorted(set(ruleset.metric_calls()), key=lambda c: c.key)
    keys = {c.key for c in calls}  # a rule's metric, asked by its column name (a run's)
    if columns is not None and not set(columns) <= {*contact_columns, *SCALAR_METRICS, *keys}:
        columns = None  # a name to correct: the frame has them all, to suggest the closest
    if columns is not None:  # subscribed kept: without it every contact reads unsubscribed
        contact_columns = [c for c in contact_columns if c in {*columns, "subscribed"}]
        scalars = [m for m in scalars if m in set(columns)]
    types = {f.name: sql_type(f.type) for f in contacts_schema}
    plan = build_plan(
        ruleset,
        instant,
        ws.tz,
        types,
        [*contact_columns, *scalars],
        has_events="events" in db.relations,
        orders_columns=db.columns("orders").names,
        left_out_statuses=left_out,
        column_values=db.column_values(calls) if source.dialect == "duckdb" else None,
        orders_met=unmatched is None,
    )
    metrics_read = [*scalars, *(c.key for c in calls if columns is None or c.key in columns)]
    flags = ["excluded", *(f"segment:{s.name}" for s in ruleset.segments)]
    met = [ORDERS_MET] if unmatched is None else []
    result = answer(source, plan, db.relations, contact_columns, [*metrics_read, *flags, *met])
    if met:  # raises PullInstead when the source cannot vouch for the answer
        counted = source.orders_met(int(pc.sum(result.column(ORDERS_MET)).as_py() or 0))
        told, _left_out = _told(ws, name, db, empty, counted)
        result = result.drop_columns(met)
    result = _in_order(source, db, result)
    events = db.consent_events()
    orders = empty.orders
    if order_categories and "category" in orders.columns:
        orders = db.order_categories()
    with frozen_heap():  # a value per contact (tags lists, ids): no collector passes over them
        raw = frame_from_arrow(contact_rows(result, contact_columns))
        raw_contacts = left_out_as_empty(raw, unread=columns is not None)
        tables = conform(Tables(raw_contacts, orders, events), name)
    contacts = tables.contacts
    metrics = _metrics(result, empty, instant, ws, calls)
    frame = pd.concat([contacts, metrics], axis=1)
    assignment = _assignment(result, ruleset, frame.index)
    tables = Tables(
        tables.contacts,
        tables.orders,
        tables.events,
        notes=told.notes,
        warnings=told.warnings,
        origins=dict(told.origins),
    )
    return InDatabase(tables, frame, assignment)


def _in_order(source: Source, db: _Database, result: pa.Table) -> pa.Table:
    """Contacts by id; an in-process DuckDB's (the files source) in its file's order, as
    its pandas pull gives them (DuckDB keeps a scan's order; a server's table has none)."""
    if source.dialect != "duckdb":
        return result.sort_by("contact_id")
    ids = source.execute(f"SELECT contact_id FROM {db.relations['contacts']} AS c").column(0)
    answered = result.column("contact_id")
    if ids.equals(answered):  # already in the file's order (one thread, no hash join)
        return result
    return result.take(pc.index_in(ids, value_set=answered.combine_chunks()))


def _metrics(
    result: pa.Table, empty: Tables, instant: pd.Timestamp, ws: Workspace, calls: list
) -> pd.DataFrame:
    """The database's metrics typed as the pandas engine types them (its answer on no
    contact gives each column's dtype), in the same column order; those the plan was
    not asked for are left out."""
    template = compute_metrics(empty, instant, ws.tz, calls)
    columns = {}
    for name in [n for n in template.columns if n in result.column_names]:
        values = frame_from_arrow(result.select([name]))[name]
        dtype = template[name].dtype
        if pa.types.is_floating(result.schema.field(name).type) and dtype.kind in "iu":
            dtype = np.dtype("float64")  # a sum over no order is 0, over some a float
        if isinstance(dtype, pd.DatetimeTZDtype) and values.dt.tz is None:
            values = values.dt.tz_localize("UTC")
        columns[name] = values.astype(dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(result.num_rows))


def _assignment(result: pa.Table, ruleset: RuleSet, index: pd.Index) -> Assignment:
    def flag(column: str) -> pd.Series:
        values = pc.fill_null(result.column(column), False).to_numpy(zero_copy_only=False)
        return pd.Series(values.astype(bool), index=index)

    matrix = pd.DataFrame(
        {s.name: flag(f"segment:{s.name}") for s in ruleset.segments},
        index=index,
        columns=[s.name for s in ruleset.segments],
    ).astype(bool)
    excluded = flag("excluded").rename("excluded")
    return Assignment(matrix, excluded, {s.name: s.label for s in ruleset.segments})
