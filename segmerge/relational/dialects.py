"""The plan printed for one SQL engine, through sqlglot's dialects.

sqlglot writes each node in each dialect's own words (``DATE_DIFF`` becomes
PostgreSQL's epoch arithmetic, ``AT TIME ZONE`` BigQuery's ``DATETIME(t, zone)``).
What it cannot write it raises about (``unsupported_level=RAISE``), and we name the
metric or condition concerned rather than print a query that means something else.
Two rewrites are ours, each for a reason checked against the engine's manual:

- PostgreSQL rounds only NUMERIC to N decimals: sums go through NUMERIC and back;
- ClickHouse takes a local day as ``toDate(instant, zone)``, an instant as
  ``DateTime64(6, 'UTC')`` (sqlglot's ``DateTime`` drops the microseconds), a
  wall-clock time in the workspace's zone as ``toDateTime64(toString(t), 6, zone)``
  (it has no ``AT TIME ZONE``), and a join's ``c.*`` column by column
  (:func:`_named_stars`).

Moving a date by N days on the workspace's wall clock (a condition such as
``last_order_at + 30 > today()``) is written only for DuckDB and PostgreSQL, where
it runs in the tests; elsewhere it is refused, naming the condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from segmerge.errors import ConfigError
from segmerge.i18n import _

DIALECTS = ("duckdb", "postgres", "bigquery", "snowflake", "clickhouse", "trino", "spark")
#: where moving an instant by days on the local wall clock is written and was run
WALL_CLOCK_SHIFT = frozenset({"duckdb", "postgres"})
RELATIONS = ("contacts", "orders", "events")


class Plan(Protocol):
    """What printing reads of a plan (:class:`segmerge.relational.plan.Plan`, whose ``sql``
    calls this module: a protocol keeps the two modules from importing each other)."""

    tree: exp.Expression
    metrics: dict[str, exp.Expression]
    conditions: dict[str, exp.Expression]


class UnsupportedDialect(ConfigError):
    """The plan, or one metric or condition of it, cannot be written in that dialect."""


def _postgres(tree: exp.Expression) -> exp.Expression:
    def numeric_round(node: exp.Expression) -> exp.Expression:
        decimals = node.args.get("decimals") if isinstance(node, exp.Round) else None
        if decimals is not None and not isinstance(node.this, exp.Cast):
            inner = exp.Round(this=exp.cast(node.this, "numeric"), decimals=decimals)
            return exp.cast(inner, "double")
        return node

    return tree.transform(numeric_round, copy=False)


def _clickhouse(tree: exp.Expression) -> exp.Expression:
    def to_date(node: exp.Expression) -> exp.Expression:
        if (
            isinstance(node, exp.Cast)
            and node.to.is_type(exp.DataType.Type.DATE)
            and isinstance(node.this, exp.AtTimeZone)
        ):
            return exp.Anonymous(
                this="toDate", expressions=[node.this.this, node.this.args["zone"]]
            )
        if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMPTZ):
            return exp.Cast(this=node.this, to=_instant())
        if (
            isinstance(node, exp.AtTimeZone)
            and isinstance(node.this, exp.Cast)
            and node.this.to.is_type(exp.DataType.Type.TIMESTAMP)
        ):  # a wall-clock time read in the zone: ClickHouse has no AT TIME ZONE
            wall = exp.Anonymous(this="toString", expressions=[node.this.this])
            return exp.Anonymous(
                this="toDateTime64", expressions=[wall, exp.Literal.number(6), node.args["zone"]]
            )
        return node

    tree = tree.transform(to_date, copy=False)
    outputs: dict[str, list[str]] = {}
    for cte in tree.find_all(exp.CTE):  # in the WITH's order: each reads earlier ones
        query = cte.this
        if isinstance(query, exp.Select):
            if query.args.get("joins"):
                _named_stars(query, outputs)
            names = [e.alias_or_name for e in query.expressions]
            if all(names) and "*" not in names:
                outputs[cte.alias] = names
    return tree


def _instant() -> exp.DataType:
    """An instant to the microsecond: sqlglot's ``DateTime`` for TIMESTAMPTZ keeps seconds."""
    instant = exp.DataType.build("DateTime64(6, 'UTC')", dialect="clickhouse")
    instant.set("nullable", True)
    return instant


def _named_stars(select: exp.Select, outputs: dict[str, list[str]]) -> exp.Select:
    """``c.*`` of a join as ``c.cid AS cid, …``: ClickHouse names a star's column that
    another joined table also has ``c.cid``, and the next CTE's ``cid`` finds nothing."""
    columns: list[exp.Expression] = []
    for e in select.expressions:
        table = e.table if isinstance(e, exp.Column) and isinstance(e.this, exp.Star) else None
        names = outputs.get(table) if table else None
        if names is None:
            columns.append(e)
            continue
        for name in names:
            columns.append(
                exp.Alias(this=exp.column(name, table=table), alias=exp.to_identifier(name))
            )
    select.set("expressions", columns)
    return select


_REWRITES: dict[str, Callable[[exp.Expression], exp.Expression]] = {
    "postgres": _postgres,
    "clickhouse": _clickhouse,
}


def _relation(text: str, name: str, dialect: str) -> exp.Expression:
    """A table or view name, or a SELECT, as what ``name`` reads."""
    stripped = text.strip()
    try:
        if stripped.startswith("(") or stripped[:6].lower() in ("select", "with ", "with\n"):
            query = sqlglot.parse_one(stripped, read=dialect)
            while isinstance(query, exp.Subquery | exp.Paren):  # one relation wrapped in ( )
                query = query.this
            return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(name)))
        table = exp.to_table(stripped, dialect=dialect)
    except ParseError as err:
        raise UnsupportedDialect(
            _("the {name} relation {text} is not {dialect} SQL: {problem}").format(
                name=name, text=repr(stripped[:80]), dialect=dialect, problem=err
            ),
            field=name,
        ) from None
    if table.name != name:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
    return table


def render(
    plan: Plan, dialect: str, relations: Mapping[str, str] | None = None, *, pretty: bool = True
) -> str:
    if dialect not in DIALECTS:
        raise UnsupportedDialect(
            _("unknown SQL dialect {dialect}; expected one of {known}").format(
                dialect=repr(dialect), known=", ".join(DIALECTS)
            ),
            field="dialect",
        )
    if dialect not in WALL_CLOCK_SHIFT:
        for where, condition in plan.conditions.items():
            if condition.find(exp.DateAdd, exp.DateSub) is not None:
                raise UnsupportedDialect(
                    _(
                        "{where}: moving a date by a number of days on the workspace's "
                        "clock cannot be written for {dialect} yet"
                    ).format(where=where, dialect=dialect),
                    field=where,
                    hint=_("compare days instead, e.g. days_since_last_order > 30"),
                )
    rewrite = _REWRITES.get(dialect)
    tree = plan.tree.copy() if relations or rewrite else plan.tree  # printing never changes it
    for table in list(tree.find_all(exp.Table)):
        if table.name in RELATIONS and relations and table.name in relations:
            table.replace(_relation(relations[table.name], table.name, dialect))
    if rewrite is not None:
        tree = rewrite(tree)
    try:
        return tree.sql(dialect=dialect, pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        raise UnsupportedDialect(
            _("{what} cannot be written in {dialect}: {problem}").format(
                what=_culprit(plan, dialect), dialect=dialect, problem=err
            ),
            field="dialect",
        ) from None


def _culprit(plan: Plan, dialect: str) -> str:
    """The first metric or condition the dialect cannot write ("the plan" if none alone)."""
    parts = {**{f"metric {k}": v for k, v in plan.metrics.items()}, **plan.conditions}
    rewrite = _REWRITES.get(dialect, lambda t: t)
    for what, tree in parts.items():
        try:
            rewrite(tree.copy()).sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError:
            return what
    return _("the plan")
