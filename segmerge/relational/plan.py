"""A rule set, its metrics and its segment assignment as ONE query (a sqlglot tree).

The plan reads three relations with the canonical columns of
:mod:`segmerge.ports.schema` (``contacts``, ``orders``, ``events``) and returns one
row per contact: its id, the columns asked for, the metrics the rule set and the
caller need, ``excluded``, ``segment`` (the first segment it is in, rule order)
and one ``segment:NAME`` flag per segment, exactly as
:meth:`segmerge.rules.RuleSet.assign` decides on the pandas engine's frame.

Why one statement: so that a database runs all of it where the data lives and
returns only the per-contact results, and so that only the columns the rules,
templates and tags need are ever read (each CTE names its columns; DuckDB pushes
that down into Parquet and CSV scans).

Stages, each a CTE over the one before: ``c`` (the contacts' needed columns),
``o``/``e`` (per-contact order and event aggregates), ``m`` (contacts joined to
them: first-stage metrics), ``s``/``s2`` (RFM ranks over the whole base, then
their codes), ``g`` (each condition's truth, NULL as false), then the final select.
Internal names are plain identifiers (``c_city``, ``m_orders_days_90_offset_0``)
that every dialect accepts; :attr:`Plan.output` gives the public name of each
output column, in order.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

import pandas as pd
from sqlglot import exp

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.metrics.catalog import SCALAR_METRICS, Kind, MetricCall
from segmerge.relational.inputs import (
    LAST_CAMPAIGN,
    aggregate,
    alias,
    events,
    last_campaign,
    orders,
    read_last_campaign,
    select,
)
from segmerge.relational.metrics_sql import RFM_INPUTS, RFM_SCALARS, MetricsSql, col, lit
from segmerge.relational.rfm_sql import (
    HAVING_ORDERS,
    having_orders,
    rfm_codes,
    rfm_scores,
    rfm_tables,
    score_joins,
)
from segmerge.relational.types import kind_of_type, naive_datetime
from segmerge.rules import RuleSet, ast
from segmerge.rules.sql import SqlCompiler, zone_name

#: what the plan reads from each relation besides the metrics' own columns
RELATIONS = ("contacts", "orders", "events")
RESERVED = ("excluded", "segment")
#: the output giving each contact's orders, all of them (``build_plan(orders_met=True)``)
ORDERS_MET = "plan:orders_met"
MET = "m_orders_met"


def safe(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"


@dataclass
class Plan:
    """The compiled query and what it needs; print it with :meth:`sql`."""

    tree: exp.Expression
    #: public name of each output column, in order (``contact_id`` first)
    output: tuple[str, ...]
    #: columns read from each relation
    reads: dict[str, tuple[str, ...]]
    #: each metric's expression, to name the one a dialect cannot write
    metrics: dict[str, exp.Expression] = field(default_factory=dict)
    #: each condition's expression, by the rule set's field ("exclude", "segment vip")
    conditions: dict[str, exp.Expression] = field(default_factory=dict)

    def sql(
        self,
        dialect: str = "duckdb",
        relations: Mapping[str, str] | None = None,
        pretty: bool = True,
    ) -> str:
        """The plan in one SQL dialect (sqlglot's name), reading ``relations`` (each a
        table, a view or a SELECT of that dialect) instead of the bare relation names."""
        from segmerge.relational.dialects import render

        return render(self, dialect, relations, pretty=pretty)


class _Names:
    """Internal aliases, unique and safe in every dialect."""

    def __init__(self) -> None:
        self.of: dict[str, str] = {}

    def add(self, public: str, prefix: str) -> str:
        if public not in self.of:
            base = f"{prefix}_{safe(public)}"
            alias, n = base, 1
            while alias in self.of.values():
                n += 1
                alias = f"{base}_{n}"
            self.of[public] = alias
        return self.of[public]


def build_plan(
    ruleset: RuleSet,
    as_of: pd.Timestamp,
    tz: tzinfo,
    contact_types: Mapping[str, str],
    columns: Iterable[str | MetricCall] = (),
    *,
    has_events: bool = True,
    orders_columns: Collection[str] | None = None,
    left_out_statuses: Iterable[str] = (),
    column_values: Mapping[str, Sequence[str]] | None = None,
    orders_met: bool = False,
) -> Plan:
    """Compile ``ruleset`` for the reference instant ``as_of`` in zone ``tz``.

    ``contact_types``: the SQL type of each contacts column (what ``DESCRIBE`` or the
    database's catalog says), which decides each column's kind as the pandas engine
    decides it from the frame. ``columns``: what the caller needs besides the rules
    (contact columns for the templates and tags, scalar metric names, metric calls).
    ``orders_columns``: the orders relation's columns when known (an optional one it
    lacks reads as NULL, as in the pandas engine; None: all of them). ``left_out_statuses``:
    the orders' status words that do not count (the caller folds the distinct statuses
    with segmerge.segment.order_status); ignored when the orders have no status.
    ``column_values``: every value of some orders text columns, which a ``distinct()``
    call on them then counts as bits (DuckDB only: see MetricsSql._distinct).
    ``orders_met``: one more output, :data:`ORDERS_MET`, each contact's orders, all of
    them (later ones, of a status left out), counted in the plan's own grouping of the
    orders: their sum says how many orders name no contact without a second grouping.
    """
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize(tz) if as_of.tzinfo is None else as_of
    as_of = as_of.tz_convert("UTC").as_unit("ns")
    clash = sorted(set(contact_types) & set(SCALAR_METRICS))
    if clash:
        raise ConfigError(
            _("the source has columns named like metrics: {names}").format(names=", ".join(clash)),
            hint=_("rename them with `columns = {...}` in the source"),
        )
    contact_cols: list[str] = []
    scalars: list[str] = []
    calls: list[MetricCall] = sorted(ruleset.metric_calls(), key=lambda c: c.key)
    for wanted in [*sorted(read_names(ruleset)), *columns]:
        if isinstance(wanted, MetricCall):
            calls.append(wanted)
        elif wanted in SCALAR_METRICS:
            scalars.append(wanted)
        elif wanted in contact_types:
            contact_cols.append(wanted)
        elif wanted in RESERVED:
            continue
        else:
            raise ConfigError(
                _("the contacts have no column '{name}'").format(name=wanted), field=wanted
            )
    contact_cols = [c for c in dict.fromkeys(contact_cols) if c != "contact_id"]
    calls = list(dict.fromkeys(calls))
    scalars = list(dict.fromkeys(scalars))
    first = [s for s in scalars if s not in RFM_SCALARS]
    rfm = [s for s in scalars if s in RFM_SCALARS]
    if rfm:
        first += [s for s in RFM_INPUTS if s not in first]

    names = _Names()
    metrics = MetricsSql(as_of, tz, column_values)
    zone = zone_name(tz)

    # c: the contacts' needed columns, datetimes as instants
    c_cols: list[exp.Expression] = [alias(exp.cast(col("contact_id"), "varchar"), "cid")]
    kinds: dict[str, Kind] = {}
    for name in contact_cols:
        sql_type = contact_types[name]
        kinds[name] = kind_of_type(sql_type)
        value: exp.Expression = exp.column(name, quoted=True)
        if kinds[name] == Kind.DATETIME and naive_datetime(sql_type):
            value = exp.AtTimeZone(this=exp.cast(value, "timestamp"), zone=lit(zone))
        c_cols.append(alias(value, names.add(name, "c")))
    ctes: list[tuple[str, exp.Expression]] = [("c", select(c_cols, "contacts"))]

    # m: first-stage metrics over the order and event aggregates
    m_cols: list[exp.Expression] = [exp.Column(this=exp.Star(), table=exp.to_identifier("c"))]
    plan_metrics: dict[str, exp.Expression] = {}
    for name in first:
        expression = metrics.scalar(name)
        plan_metrics[name] = expression
        m_cols.append(alias(expression, names.add(name, "m")))
    for call in calls:
        expression = metrics.call(call, read_last_campaign())
        plan_metrics[call.key] = expression
        m_cols.append(alias(expression, names.add(call.key, "m")))

    reads = {"contacts": ("contact_id", *contact_cols)}
    every = "o_every" if orders_met else None
    if every is not None:
        m_cols.append(alias(exp.Coalesce(this=col(every), expressions=[lit(0)]), MET))
    joined: exp.Select = select(m_cols, "c")
    orders_norm = orders(metrics, left_out_statuses, orders_columns, every=orders_met)
    if metrics.orders.columns or orders_met:
        ctes.append(("orders_n", orders_norm[0]))
        as_of_sql = metrics.as_of_sql
        ctes.append(
            ("o", aggregate(metrics.orders.columns, "orders_n", as_of_sql, "ordered_at", every))
        )
        joined = joined.join(
            "o",
            on=exp.EQ(this=col("cid", "o"), expression=col("cid", "c")),
            join_type="left",
            copy=False,
        )
        reads["orders"] = orders_norm[1]
    if metrics.events.columns:
        events_sql, event_reads = events(metrics, has_events)
        ctes.append(("events_n", events_sql))
        if any(c.name in ("opened", "clicked") and c.arg("campaign") == "last" for c in calls):
            ctes.append((LAST_CAMPAIGN, last_campaign(metrics.as_of_sql)))
        ctes.append(("e", aggregate(metrics.events.columns, "events_n", metrics.as_of_sql, "at")))
        joined = joined.join(
            "e",
            on=exp.EQ(this=col("cid", "e"), expression=col("cid", "c")),
            join_type="left",
            copy=False,
        )
        if has_events:
            reads["events"] = event_reads
    ctes.append(("m", joined))
    last = "m"
    if rfm:
        a = names.of
        measures = (col(a["orders_count"]), col(a["revenue"]), col(a["days_since_last_order"]))
        known = select([exp.cast(col("contact_id"), "varchar")], "contacts")
        f_in, m_in, r_in = (plan_metrics[n].copy() for n in RFM_INPUTS)
        ctes.append((HAVING_ORDERS, having_orders(f_in, m_in, r_in, known)))
        ctes += rfm_tables()
        scores = rfm_scores(*measures)
        r, f, m = (names.add(s, "m") for s in ("r_score", "f_score", "m_score"))
        scored = select(
            [
                exp.Column(this=exp.Star(), table=exp.to_identifier("m")),
                *(alias(v, n) for v, n in zip(scores, (r, f, m), strict=True)),
            ],
            "m",
        )
        ctes.append(("s", score_joins(scored, *measures)))
        codes = rfm_codes(col(a["orders_count"]), col(r), col(f), col(m))
        ctes.append(
            (
                "s2",
                select(
                    [
                        exp.Star(),
                        alias(codes[0], names.add("rfm", "m")),
                        alias(codes[1], names.add("rfm_segment", "m")),
                    ],
                    "s",
                ),
            )
        )
        for s, v in zip(("r_score", "f_score", "m_score"), scores, strict=True):
            plan_metrics[s] = v
        plan_metrics["rfm"], plan_metrics["rfm_segment"] = codes
        last = "s2"

    # g: each condition's truth; then the assignment
    compiler = SqlCompiler(kinds, as_of, tz, column=lambda n: col(names.of[n]))
    conditions: dict[str, exp.Expression] = {}
    truths: list[exp.Expression] = []
    if ruleset.exclude is not None:
        conditions["exclude"] = compiler.tree(ruleset.exclude)
        truths.append(alias(_false_if_null(conditions["exclude"]), "x_excluded"))
    else:
        truths.append(alias(exp.false(), "x_excluded"))
    flags = []
    for i, seg in enumerate(ruleset.segments):
        conditions[f"segment {seg.name}"] = compiler.tree(seg.expr)
        flags.append(f"x_{i}")
        truths.append(alias(_false_if_null(conditions[f"segment {seg.name}"]), f"x_{i}"))
    ctes.append(("g", select([exp.Star(), *truths], last)))

    members: list[exp.Expression] = []
    for i, _seg in enumerate(ruleset.segments):
        parts: list[exp.Expression] = [exp.Not(this=col("x_excluded")), col(flags[i])]
        if ruleset.mode == "first":
            parts += [exp.Not(this=col(f)) for f in flags[:i]]
        member = parts[0]
        for part in parts[1:]:
            member = exp.And(this=member, expression=part)
        members.append(member)
    primary = exp.Case(
        ifs=[
            exp.If(this=m, true=lit(s.name)) for m, s in zip(members, ruleset.segments, strict=True)
        ]
    )
    output_public = ["contact_id", *contact_cols, *first, *rfm, *(c.key for c in calls)]
    outputs: list[exp.Expression] = [alias(col("cid"), "contact_id")]
    for public in output_public[1:]:
        outputs.append(col(names.of[public]))
    outputs += [alias(col("x_excluded"), "excluded"), alias(primary, "segment")]
    outputs += [alias(m, f"in_{i}") for i, m in enumerate(members)]
    output_public += ["excluded", "segment", *(f"segment:{s.name}" for s in ruleset.segments)]
    if orders_met:
        outputs.append(col(MET))
        output_public.append(ORDERS_MET)

    tree = select(outputs, "g")
    for name, body in ctes:
        tree = tree.with_(name, as_=body, copy=False)
    return Plan(tree, tuple(output_public), reads, plan_metrics, conditions)


def read_names(ruleset: RuleSet) -> set[str]:
    """Contact columns and scalar metrics the conditions read (a metric call's arguments
    name orders columns, not contact ones)."""

    def names(node: ast.Node) -> set[str]:
        if isinstance(node, ast.Func):
            return set()
        if isinstance(node, ast.Name):
            return {node.name}
        return set().union(*(names(child) for child in node.children()))

    return set().union(*(names(expr) for _w, _t, expr, _l in ruleset.conditions()))


def _false_if_null(condition: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=condition, expressions=[exp.false()])
