"""A user's table, view or SELECT turned into the canonical relation of its stream.

Why in SQL: the engine's plan (and the pull, until the plan runs in the database)
reads each stream as one relation with the canonical columns and types
(segmerge/ports/schema.py), whatever the user's tables look like. The columns are
checked against the server's description of the relation (no row read), so a missing
column or a type that cannot be what the stream needs is told before anything runs,
naming the source, the relation and the column. Date-only values and times without a
time zone are the workspace's local time, as in the files source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from segmerge.ports import CONTACT_COLUMNS, EVENT_COLUMNS, ORDER_COLUMNS, ORDER_OPTIONAL, _

from .postgres_arrow import (
    BOOL,
    DATE,
    FLOAT,
    INTEGER,
    TEXT,
    TEXT_ARRAY,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
)

REQUIRED = {
    "contacts": ("contact_id",),
    "orders": ORDER_COLUMNS,
    "events": EVENT_COLUMNS,
}
TIMES = {"created_at", "updated_at", "ordered_at", "at"}
AMOUNTS = {"amount", "rating"}
#: the canonical columns kept as text whatever their type (an id may be an integer)
TEXTS = {"contact_id", "email", "first_name", "last_name", "order_id", "category", "status"}
TEXTS |= {"campaign_id", "event"}
_QUERY = re.compile(r"^\(*\s*(select|with|values|table)\b", re.IGNORECASE)


class Mismatch(Exception):
    """A relation does not fit its stream: the message names the column, the hint the fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def is_query(text: str) -> bool:
    return bool(_QUERY.match(text.strip()))


def as_relation(text: str) -> str:
    """A SELECT in parentheses (a subquery); a name as the user wrote it."""
    body = text.strip().rstrip(";").strip()
    return f"({body})" if is_query(body) else body


@dataclass(frozen=True)
class Canon:
    """The canonical SELECT of one stream over the user's relation."""

    stream: str
    relation: str  # the user's, as a subquery or a resolved name
    select: sql.Composed

    def as_string(self, conn: Any) -> str:
        """The SELECT as a parenthesised relation, quoted as ``conn``'s server wants it."""
        return f"({self.select.as_string(conn)})"


def canonical(
    stream: str,
    relation: str,
    columns: list[Column],
    timezone: str,
    assigned: sql.Composable | None = None,
) -> Canon:
    """The stream's relation with canonical columns first, then the user's others;
    raise :class:`Mismatch` naming the column when one is missing or of the wrong kind.

    ``assigned``: the table the source writes the assignments into
    (connectors/postgres_assignments.py); each contact's ``tags`` then also hold the
    names written there, as a platform's tags hold what a run pushed, so the next run
    changes only what moved."""
    by_name = {c.name: c for c in columns}
    missing = [c for c in REQUIRED[stream] if c not in by_name]
    if missing:
        have = ", ".join(c.name for c in columns) or _("none")
        raise Mismatch(
            _("has no column {columns} (its columns: {have})").format(
                columns=", ".join(missing), have=have
            ),
            _("rename in a view or a SELECT: `SELECT id AS contact_id, …`"),
        )
    known = {"contacts": CONTACT_COLUMNS, "orders": ORDER_COLUMNS + ORDER_OPTIONAL}
    canonical_names = set(known.get(stream, EVENT_COLUMNS))
    exprs: list[sql.Composable] = []
    for col in columns:
        c = sql.Identifier(col.name)
        if col.name in canonical_names:
            expr = _canonical_column(col, c, sql.Literal(timezone))
        elif col.oid in (DATE, TIMESTAMP):  # another date: local time too, as files reads it
            expr = _local(col, c, sql.Literal(timezone))
        else:
            expr = c
        if col.name == "tags" and assigned is not None and stream == "contacts":
            expr = sql.SQL(
                "CASE WHEN segmerge_a.segmerge_tags IS NULL THEN {u} "
                "ELSE coalesce({u}, '{{}}'::text[]) || segmerge_a.segmerge_tags END"
            ).format(u=expr)
        exprs.append(sql.SQL("{} AS {}").format(expr, c))
    source = sql.SQL("{} AS r").format(sql.SQL(relation))
    if assigned is not None and stream == "contacts":
        if "tags" not in by_name:
            exprs.append(sql.SQL("segmerge_a.segmerge_tags AS tags"))
        source = sql.SQL(
            "{} LEFT JOIN (SELECT contact_id AS segmerge_id, "
            "array_agg(tag ORDER BY tag) AS segmerge_tags FROM {} GROUP BY contact_id) "
            "AS segmerge_a ON segmerge_a.segmerge_id = r.contact_id::text"
        ).format(source, assigned)
    select = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(exprs), source)
    return Canon(stream, relation, select)


def _local(col: Column, c: sql.Identifier, tz: sql.Literal) -> sql.Composable:
    if col.oid == DATE:
        return sql.SQL("({}::timestamp AT TIME ZONE {})").format(c, tz)
    return sql.SQL("({} AT TIME ZONE {})").format(c, tz)


def _canonical_column(col: Column, c: sql.Identifier, tz: sql.Literal) -> sql.Composable:
    name = col.name
    if name in TEXTS:
        return c if col.oid in TEXT else sql.SQL("{}::text").format(c)
    if name in TIMES:
        if col.oid == TIMESTAMPTZ:
            return c
        if col.oid in (DATE, TIMESTAMP):
            return _local(col, c, tz)
        raise Mismatch(
            _("column {name} is {type}, which cannot be a date").format(
                name=name, type=col.type_name
            ),
            _(
                "give a date or timestamp: `{name}::timestamptz AS {name}` in a view or a SELECT"
            ).format(name=name),
        )
    if name in AMOUNTS:
        if col.oid in FLOAT or col.oid in INTEGER:
            return sql.SQL("{}::numeric::float8").format(c) if col.oid == 790 else c
        raise Mismatch(
            _("column {name} is {type}, which cannot be an amount").format(
                name=name, type=col.type_name
            ),
            _("give a number: `{name}::numeric AS {name}` in a view or a SELECT").format(name=name),
        )
    if name == "subscribed":
        if col.oid == BOOL:
            return c
        if col.oid in INTEGER:
            return sql.SQL("({} <> 0)").format(c)
        raise Mismatch(
            _("column subscribed is {type}, which cannot be yes or no").format(type=col.type_name),
            _("give a boolean: `(opt_in = 'yes') AS subscribed` in a view or a SELECT"),
        )
    if name == "tags":
        if col.oid in TEXT_ARRAY:
            return c
        if col.oid in TEXT:  # "vip, salon 2025": the files source's comma-separated form
            return sql.SQL(
                "ARRAY(SELECT btrim(t) FROM unnest(string_to_array({}, ',')) AS t "
                "WHERE btrim(t) <> '')"
            ).format(c)
        raise Mismatch(
            _("column tags is {type}, which cannot be a list of tags").format(type=col.type_name),
            _("give a text[] or comma-separated text"),
        )
    return c
