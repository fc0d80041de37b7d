"""Every metric of the catalog as SQL over the canonical relations, exactly as
:mod:`segmerge.metrics.compute` defines it.

The pandas engine's rules, restated once for SQL (the pandas engine stays the
oracle the tests compare against):

- only orders and events at or before ``as_of`` count, and only those of a known
  contact (the plan joins the per-contact aggregates to the contacts, so orders
  of nobody fall out); naive instants in orders and events are UTC;
- windows are half-open, ``(lower, upper]``, with both bounds computed here in
  Python by :func:`segmerge.metrics.compute.days_before` (same local wall time N
  calendar days earlier), so no engine's own calendar arithmetic is trusted;
- day counts are the local date of ``as_of`` (a DATE literal) minus the local
  date of the instant in the workspace zone;
- sums of amounts are rounded to 6 decimals; a missing amount counts as 0 in a
  sum and not at all in ``avg_basket``'s divisor;
- aggregates are built with ``CASE`` inside ``COUNT``/``SUM`` rather than
  ``FILTER``, which every dialect has.

Aggregates are collected per relation (``o`` for orders, ``e`` for events) under
short aliases; each metric is then an expression over those aliases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

import numpy as np
import pandas as pd
from sqlglot import exp

from segmerge.metrics.catalog import EVENT_SCALARS, MetricCall
from segmerge.metrics.compute import days_before, local_days
from segmerge.rules.sql import as_double, day_diff, local_day, moment, zone_name

#: scalar metrics that are ranks over the whole base, computed in a later stage
RFM_SCALARS = frozenset({"r_score", "f_score", "m_score", "rfm", "rfm_segment"})
#: what each RFM column needs from the first stage
RFM_INPUTS = ("orders_count", "revenue", "days_since_last_order")
#: the most distinct values a column's ``distinct()`` counts as bits of one BIGINT
BITS = 62


def lit(value: int | float | str) -> exp.Expression:
    return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _when(condition: exp.Expression, then: exp.Expression) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)])


def _and(*parts: exp.Expression) -> exp.Expression:
    return exp.And(this=parts[0], expression=parts[1]) if len(parts) > 1 else parts[0]


def _zero(value: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=value, expressions=[lit(0)])


def _round6(value: exp.Expression) -> exp.Expression:
    return exp.Round(this=value, decimals=lit(6))


@dataclass
class Aggregates:
    """The per-contact aggregates of one relation, deduplicated by their SQL."""

    table: str
    columns: dict[str, exp.Expression] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    _aliases: dict[exp.Expression, str] = field(default_factory=dict)

    def add(self, expression: exp.Expression, *reads: str) -> exp.Column:
        """The column of that aggregate (sqlglot trees hash by structure: one per shape)."""
        alias = self._aliases.get(expression)
        if alias is None:
            alias = self._aliases[expression] = f"{self.table}{len(self.columns)}"
            self.columns[alias] = expression
            self.reads.update(reads)
        return col(alias, self.table)


class MetricsSql:
    """Metric name or call → SQL expression over the ``o`` and ``e`` aggregates."""

    def __init__(
        self,
        as_of: pd.Timestamp,
        tz: tzinfo,
        values: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.as_of, self.tz = as_of, tz
        #: every value of an orders text column, where the caller knows them (see
        #: :meth:`_distinct`)
        self.values = dict(values or {})
        self.zone = zone_name(tz)
        today = int(local_days(np.array([as_of.value]), tz)[0])
        self.today = exp.cast(lit(str(pd.Timestamp(today, unit="D").date())), "date")
        self.orders = Aggregates("o")
        self.events = Aggregates("e")
        self.as_of_sql = moment(as_of)

    # --- helpers -----------------------------------------------------------------------------

    def bound(self, days: int) -> exp.Expression:
        return moment(pd.Timestamp(days_before(self.as_of, days, self.tz), tz="UTC"))

    def window(self, at: str, lower_days: int, upper_days: int | None) -> exp.Expression:
        """``at`` in (as_of - lower_days, as_of - upper_days]; ``None`` for the upper end
        means as_of itself, which needs no test (later rows never reach the aggregates).
        As in the pandas engine, an upper bound is tested only when it is before as_of
        (``as_of - 0 days`` is earlier than as_of in the autumn's repeated hour)."""
        lower = exp.GT(this=col(at), expression=self.bound(lower_days))
        if upper_days is None or days_before(self.as_of, upper_days, self.tz) >= self.as_of.value:
            return lower
        return _and(lower, exp.LTE(this=col(at), expression=self.bound(upper_days)))

    def days_since(self, instant: exp.Expression) -> exp.Expression:
        return day_diff(self.today, local_day(instant, self.zone))

    def _count_orders(self, lower: int, upper: int) -> exp.Expression:
        inside = self.window("ordered_at", lower, upper)
        return _zero(self.orders.add(exp.Count(this=_when(inside, lit(1))), "ordered_at"))

    def _sum_orders(self, lower: int, upper: int) -> exp.Expression:
        inside = self.window("ordered_at", lower, upper)
        amount = _zero(col("amount"))
        summed = exp.Sum(this=exp.Case(ifs=[exp.If(this=inside, true=amount)], default=lit(0)))
        return _zero(self.orders.add(_round6(summed), "ordered_at", "amount"))

    def _count_events(self, kind: str, lower: int, upper: int | None) -> exp.Expression:
        inside = _and(
            exp.EQ(this=col("event"), expression=lit(kind)), self.window("at", lower, upper)
        )
        return _zero(self.events.add(exp.Count(this=_when(inside, lit(1))), "event", "at"))

    # --- scalars -----------------------------------------------------------------------------

    def scalar(self, name: str) -> exp.Expression:  # noqa: C901 - one branch per metric
        o = self.orders
        if name == "orders_count":
            return _zero(o.add(exp.Count(this=exp.Star())))
        if name == "revenue":
            return _zero(o.add(_round6(exp.Sum(this=_zero(col("amount")))), "amount"))
        if name == "avg_basket":
            total = o.add(_round6(exp.Sum(this=_zero(col("amount")))), "amount")
            priced = o.add(exp.Count(this=col("amount")), "amount")
            return exp.Div(this=total, expression=exp.Nullif(this=priced, expression=lit(0)))
        if name == "first_order_at":
            return o.add(exp.Min(this=col("ordered_at")), "ordered_at")
        if name == "last_order_at":
            return o.add(exp.Max(this=col("ordered_at")), "ordered_at")
        if name == "days_since_first_order":
            return self.days_since(o.add(exp.Min(this=col("ordered_at")), "ordered_at"))
        if name == "days_since_last_order":
            return self.days_since(o.add(exp.Max(this=col("ordered_at")), "ordered_at"))
        if name == "avg_rating":
            total = o.add(exp.Sum(this=col("rating")), "rating")
            rated = o.add(exp.Count(this=col("rating")), "rating")
            return exp.Div(this=total, expression=exp.Nullif(this=rated, expression=lit(0)))
        if name == "max_rating":
            return o.add(exp.Max(this=col("rating")), "rating")
        if name in EVENT_SCALARS:
            kind = "open" if name == "last_open_days" else "click"
            of_kind = exp.EQ(this=col("event"), expression=lit(kind))
            last = self.events.add(exp.Max(this=_when(of_kind, col("at"))), "event", "at")
            return self.days_since(last)
        raise ValueError(f"{name} is not a first-stage metric")  # pragma: no cover

    # --- calls -------------------------------------------------------------------------------

    def call(self, call: MetricCall, last_campaign: exp.Expression) -> exp.Expression:
        name = call.name
        if name in ("orders", "revenue"):
            days, offset = int(call.arg("days") or 0), int(call.arg("offset") or 0)
            if name == "orders":
                return self._count_orders(offset + days, offset)
            return self._sum_orders(offset + days, offset)
        if name == "distinct":
            column = str(call.arg("column"))
            present: exp.Expression = exp.NEQ(
                this=exp.cast(col(column), "varchar"), expression=lit("")
            )
            within = call.arg("days")
            if within is not None:
                present = _and(self.window("ordered_at", int(within), None), present)
            return _zero(self.orders.add(self._distinct(column, present), "ordered_at", column))
        if name in ("opens", "clicks"):
            kind = "open" if name == "opens" else "click"
            return self._count_events(kind, int(call.arg("days") or 0), None)
        if name == "trend":
            return self.trend(str(call.arg("measure")), int(call.arg("days") or 0))
        if name in ("opened", "clicked"):
            kind = "open" if name == "opened" else "click"
            wanted = str(call.arg("campaign"))
            target = last_campaign if wanted == "last" else lit(wanted)
            hit = _and(
                exp.EQ(this=col("event"), expression=lit(kind)),
                exp.EQ(this=col("campaign_id"), expression=target),
            )
            hits = self.events.add(exp.Count(this=_when(hit, lit(1))), "event", "campaign_id")
            return exp.Coalesce(
                this=exp.GT(this=hits, expression=lit(0)), expressions=[exp.false()]
            )
        raise ValueError(f"unknown metric {name}")  # pragma: no cover

    def _distinct(self, column: str, present: exp.Expression) -> exp.Expression:
        """How many distinct values of ``column`` a contact's ``present`` orders hold.

        COUNT(DISTINCT) makes DuckDB keep a second hash table of every (contact, value)
        pair: on 10 M orders it was 3 of the plan's 8 s of CPU and 180 MiB. When the
        caller knows the column's few values (a category, a status: DuckDB's sources
        list them first), each is one bit, a contact's values their OR, the count its
        bits set: one more integer in the aggregate, same answer. Written only where
        sqlglot names those functions right (DuckDB: see segmerge.segment.in_database).
        """
        known = self.values.get(column)
        if known is None or len(known) > BITS:
            return exp.Count(this=exp.Distinct(expressions=[_when(present, col(column))]))
        bit = exp.Case(
            this=col(column),
            ifs=[exp.If(this=lit(v), true=lit(1 << i)) for i, v in enumerate(known)],
        )
        bits = exp.BitwiseOrAgg(this=_when(present, exp.cast(bit, "bigint")))
        return exp.cast(exp.BitwiseCount(this=bits), "bigint")

    def trend(self, measure: str, days: int) -> exp.Expression:
        """This period over the one before; NULL when the one before had nothing."""
        if measure == "orders":
            now, before = self._count_orders(days, 0), self._count_orders(2 * days, days)
        elif measure == "revenue":
            now, before = self._sum_orders(days, 0), self._sum_orders(2 * days, days)
        else:
            kind = "open" if measure == "opens" else "click"
            now = self._count_events(kind, days, None)
            before = self._count_events(kind, 2 * days, days)
        ratio = exp.Div(this=as_double(now), expression=as_double(before))
        return _when(exp.GT(this=before, expression=lit(0)), ratio)
