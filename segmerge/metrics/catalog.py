"""The metrics a rule may name, with their types and arguments.

Shared by the rule checker (which must reject an unknown metric or a wrong
argument at load time) and by :mod:`segmerge.metrics` (which computes exactly
the calls a rule set needs). Keeping the list in one vendor-free place means a
new metric is added once and both sides agree on its name and type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """Value types of the rule language (a column, a metric or an expression)."""

    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    DATETIME = "datetime"
    LIST = "list"  # list of strings, e.g. tags
    NULL = "null"
    ANY = "any"


#: Per-contact metrics computed without arguments, by name.
SCALAR_METRICS: dict[str, Kind] = {
    "orders_count": Kind.NUMBER,
    "revenue": Kind.NUMBER,
    "avg_basket": Kind.NUMBER,
    "first_order_at": Kind.DATETIME,
    "last_order_at": Kind.DATETIME,
    "days_since_last_order": Kind.NUMBER,
    "days_since_first_order": Kind.NUMBER,
    "r_score": Kind.NUMBER,
    "f_score": Kind.NUMBER,
    "m_score": Kind.NUMBER,
    "rfm": Kind.STRING,
    "rfm_segment": Kind.STRING,
    "avg_rating": Kind.NUMBER,  # mean of orders.rating, null without a rating
    "max_rating": Kind.NUMBER,  # best rating given, null without a rating
    "last_open_days": Kind.NUMBER,  # whole days since the last open, null if none
    "last_click_days": Kind.NUMBER,  # whole days since the last click, null if none
}

#: Scalar metrics read from the events table, not the orders.
EVENT_SCALARS = frozenset({"last_open_days", "last_click_days"})
#: What `trend()` can compare, period over period.
TREND_MEASURES = ("revenue", "orders", "opens", "clicks")

#: Names `rfm_segment` can take, in the order of the usual RFM grid.
RFM_SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
)


@dataclass(frozen=True)
class Param:
    """One argument of a metric function."""

    name: str
    #: "int" (a non-negative whole number of days), "column" (an orders column name),
    #: "measure" (one of TREND_MEASURES) or "text" (a quoted string)
    kind: str
    required: bool = True
    default: int | None = None


@dataclass(frozen=True)
class MetricFunction:
    name: str
    params: tuple[Param, ...]
    returns: Kind
    doc: str


#: Metric functions a rule may call, by name. All are keyword-or-positional.
FUNCTIONS: dict[str, MetricFunction] = {
    f.name: f
    for f in (
        MetricFunction(
            "orders",
            (Param("days", "int"), Param("offset", "int", required=False, default=0)),
            Kind.NUMBER,
            "number of orders in the window (as_of - offset - days, as_of - offset]",
        ),
        MetricFunction(
            "revenue",
            (Param("days", "int"), Param("offset", "int", required=False, default=0)),
            Kind.NUMBER,
            "sum of order amounts in the window (as_of - offset - days, as_of - offset]",
        ),
        MetricFunction(
            "distinct",
            (Param("column", "column"), Param("days", "int", required=False, default=None)),
            Kind.NUMBER,
            "distinct non-empty values of an orders column, all time or in the last `days`",
        ),
        MetricFunction(
            "opens",
            (Param("days", "int"),),
            Kind.NUMBER,
            "e-mail open events in the last `days`",
        ),
        MetricFunction(
            "clicks",
            (Param("days", "int"),),
            Kind.NUMBER,
            "e-mail click events in the last `days`",
        ),
        MetricFunction(
            "trend",
            (Param("measure", "measure"), Param("days", "int")),
            Kind.NUMBER,
            "revenue, orders, opens or clicks of the last `days` divided by those of the "
            "`days` before (1.0 = the same; null when the previous period had none)",
        ),
        MetricFunction(
            "opened",
            (Param("campaign", "text"),),
            Kind.BOOL,
            "whether the contact opened that campaign (its id, or 'last': the latest sent)",
        ),
        MetricFunction(
            "clicked",
            (Param("campaign", "text"),),
            Kind.BOOL,
            "whether the contact clicked in that campaign (its id, or 'last')",
        ),
    )
}


@dataclass(frozen=True)
class MetricCall:
    """A metric function with its arguments bound, e.g. ``orders(days=90, offset=0)``.

    ``key`` is the column name the metrics module gives its result, so that the
    evaluator finds it without knowing how it was computed.
    """

    name: str
    args: tuple[tuple[str, int | str | None], ...] = field(default=())

    @property
    def key(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.args)
        return f"{self.name}({inner})"

    def arg(self, name: str) -> int | str | None:
        return dict(self.args)[name]

    @classmethod
    def bind(cls, name: str, **kwargs: int | str | None) -> MetricCall:
        """Build a call with defaults filled in and arguments in declaration order."""
        fn = FUNCTIONS[name]
        bound: list[tuple[str, int | str | None]] = []
        for p in fn.params:
            if p.name in kwargs:
                bound.append((p.name, kwargs[p.name]))
            elif p.required:
                raise ValueError(f"{name}() needs {p.name}=")
            else:
                bound.append((p.name, p.default))
        return cls(name, tuple(bound))
