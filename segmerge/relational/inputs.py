"""What the plan reads: each relation's used columns in canonical types, the
per-contact aggregates of orders and events, and the campaign `'last'` means.

Every relation is read through one normalising CTE (``orders_n``, ``events_n``) that
names only the columns the metrics use and casts them to the canonical types
(VARCHAR ids, TIMESTAMPTZ instants, DOUBLE amounts), so a Parquet file with naive
timestamps or a CSV read as text gives the same answers as typed frames; naive
instants are UTC there, as in segmerge.ports.schema.conform.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from sqlglot import exp

from segmerge.errors import DataError
from segmerge.i18n import _
from segmerge.relational.metrics_sql import MetricsSql, col, lit


def select(columns: list[exp.Expression], source: str | exp.Expression) -> exp.Select:
    return exp.select(*columns, copy=False).from_(source, copy=False)


def alias(expression: exp.Expression, name: str) -> exp.Expression:
    return exp.Alias(this=expression, alias=exp.to_identifier(name))


def aggregate(
    columns: Mapping[str, exp.Expression],
    source: str,
    as_of: exp.Expression,
    at: str,
    every: str | None = None,
) -> exp.Select:
    """Per-contact aggregates of rows at or before as_of (NULL instants never count).

    ``every``: also the count of all the contact's rows, under that name, counted or
    not (later, or of a status left out: :data:`COUNTS` says which count); each
    aggregate then reads the rows that count through a FILTER, in the same grouping."""
    before = exp.LTE(this=col(at), expression=as_of.copy())
    if every is None:
        aggregates = [alias(v, k) for k, v in columns.items()]
        return (
            select([alias(col("contact_id"), "cid"), *aggregates], source)
            .where(before, copy=False)
            .group_by(col("contact_id"), copy=False)
        )
    counts = exp.And(this=before, expression=col(COUNTS))
    aggregates = [alias(_filtered(v, counts), k) for k, v in columns.items()]
    every_row = alias(exp.Count(this=exp.Star()), every)
    return select([alias(col("contact_id"), "cid"), *aggregates, every_row], source).group_by(
        col("contact_id"), copy=False
    )


def _filtered(expression: exp.Expression, where: exp.Expression) -> exp.Expression:
    """Each aggregate function of ``expression`` over the rows ``where`` holds."""
    expression = expression.copy()
    for node in list(expression.find_all(exp.AggFunc)):
        filtered = exp.Filter(this=node.copy(), expression=exp.Where(this=where.copy()))
        if node is expression:
            return filtered
        node.replace(filtered)
    return expression


#: the orders' column saying an order's status counts (see :func:`orders`, ``every``)
COUNTS = "counts"


def orders(
    metrics: MetricsSql,
    left_out: Iterable[str],
    present: Collection[str] | None,
    every: bool = False,
) -> tuple[exp.Select, tuple[str, ...]]:
    """The orders' used columns in their canonical types; orders whose status does not
    count are left out here, before any metric (``every``: kept, with a :data:`COUNTS`
    column false for them, for a count of all the orders)."""
    used = ["contact_id", "ordered_at", *sorted(metrics.orders.reads - {"ordered_at"})]
    absent = [n for n in used if present is not None and n not in present]
    for name in absent:
        if name != "rating":  # a missing rating means no rating; a column a rule names must exist
            raise DataError(
                _("the orders table has no column {name}").format(name=repr(name)), field=name
            )
    used = [n for n in used if n not in absent]
    typed = {
        "contact_id": "varchar",
        "ordered_at": "timestamptz",
        "amount": "double",
        "rating": "double",
    }
    cols = [
        alias(exp.cast(col(n), typed[n]), n) if n in typed else exp.column(n, quoted=True)
        for n in used
    ]
    cols += [alias(exp.cast(exp.null(), typed.get(n, "varchar")), n) for n in absent]
    words = sorted(set(left_out))
    keep: exp.Expression = exp.true()
    if words and (present is None or "status" in present):
        status = col("status")
        keep = exp.Or(
            this=exp.Is(this=status, expression=exp.null()),
            expression=exp.Not(this=exp.In(this=status, expressions=[lit(w) for w in words])),
        )
        used.append("status")
    if every:
        return select([*cols, alias(keep, COUNTS)], "orders"), tuple(used)
    query = select(cols, "orders")
    if not isinstance(keep, exp.Boolean):
        query = query.where(keep, copy=False)
    return query, tuple(used)


def events(metrics: MetricsSql, has_events: bool) -> tuple[exp.Select, tuple[str, ...]]:
    used = ["contact_id", "at", *sorted(metrics.events.reads - {"at"})]
    typed = {
        "contact_id": "varchar",
        "at": "timestamptz",
        "event": "varchar",
        "campaign_id": "varchar",
    }
    if not has_events:
        empty = [alias(exp.cast(exp.null(), typed[n]), n) for n in used]
        return exp.select(*empty).where(exp.false()), ()
    return select([alias(exp.cast(col(n), typed[n]), n) for n in used], "events"), tuple(used)


LAST_CAMPAIGN = "lc"


def last_campaign(as_of: exp.Expression) -> exp.Select:
    """The campaign whose first `sent` event (else first event of any kind) before as_of is
    the latest, ties to the smallest id; only known contacts' events count. One row at
    most, computed once (a CTE every `opened('last')`/`clicked('last')` reads)."""
    counted = exp.and_(
        exp.LTE(this=col("at"), expression=as_of.copy()),
        col("contact_id").isin(query=exp.select("cid").from_("c")),
    )
    any_sent = exp.Exists(
        this=exp.select(lit(1))
        .from_("events_n")
        .where(exp.and_(counted.copy(), exp.EQ(this=col("event"), expression=lit("sent"))))
    )
    use = exp.or_(exp.EQ(this=col("event"), expression=lit("sent")), exp.Not(this=any_sent))
    firsts = (
        exp.select(col("campaign_id"), alias(exp.Min(this=col("at")), "first_at"))
        .from_("events_n")
        .where(
            exp.and_(
                counted,
                exp.Not(this=exp.Is(this=col("campaign_id"), expression=exp.null())),
                exp.Paren(this=use),
            )
        )
        .group_by(col("campaign_id"))
    )
    return (
        exp.select(col("campaign_id"))
        .from_(firsts.subquery("f"))
        .order_by(exp.Ordered(this=col("first_at"), desc=True), col("campaign_id"))
        .limit(1)
    )


def read_last_campaign() -> exp.Expression:
    return exp.Subquery(this=exp.select(col("campaign_id")).from_(LAST_CAMPAIGN))
