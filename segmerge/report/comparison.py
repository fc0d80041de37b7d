"""What a `kpi` report compares: the groups' rates and revenue, and one comparison's result.

Plain data, apart from the decisions (:mod:`segmerge.report.verdicts`) so that the
report's tables and the tests of the decisions read the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmerge.i18n import _
from segmerge.report import stats

BEATS, EQUIVALENT, NO_DIFFERENCE = "beats", "equivalent", "no_difference"
NOT_ENOUGH, WINDOW_OPEN, DESCRIPTIVE = "not_enough", "window_open", "descriptive"


@dataclass
class Rate:
    count: int
    n: int
    alpha: float = stats.ALPHA  # the campaign's kpi_alpha: the table's intervals match its tests

    @property
    def value(self) -> float:
        return self.count / self.n

    @property
    def ci(self) -> tuple[float, float]:
        return stats.wilson(self.count, self.n, self.alpha)


@dataclass
class Group:
    """Recipients (or the control group, or a baseline's) of one segment and variant."""

    segment: str
    variant: str | None
    kind: str  # "send", "control" or "baseline"
    n: int
    rates: dict[str, Rate | None]  # open, click, unsubscribe, conversion; None: not defined
    revenue: np.ndarray  # revenue in the window, one value per contact

    @property
    def name(self) -> str:
        parts = [self.segment] + ([self.variant] if self.variant else [])
        label = {"control": _("control"), "baseline": _("baseline")}.get(self.kind)
        return " ".join(parts) + (f" ({label})" if label else "")

    @property
    def revenue_per_recipient(self) -> float | None:
        """None when orders after the send cannot be known yet (or nobody is in the group)."""
        return float(self.revenue.mean()) if self.rates.get("conversion") else None


@dataclass
class Comparison:
    """First group against the second on one measure; ``verdict`` is the sentence shown."""

    first: str
    second: str
    measure: str  # "open", "click", "conversion" or "revenue"
    diff: float | None = None  # first minus second (a share, or money per recipient)
    ci: tuple[float, float] | None = None  # at 1 - kpi_alpha, not adjusted
    ci_equivalence: tuple[float, float] | None = None  # at 1 - 2 kpi_alpha: what TOST reads
    verdict: str = ""
    outcome: str = NOT_ENOUGH
    p: float | None = None
    p_adjusted: float | None = None
    p_equivalence: float | None = None
    p_equivalence_adjusted: float | None = None
    mde: float | None = None  # smallest difference these numbers could show
    more_needed: int | None = None  # recipients to add to detect the declared kpi_mde
    why: str = ""  # when there is not enough data
    values: tuple[float, float] | None = None  # the two rates or means
    sizes: tuple[int, int] = (0, 0)
    spread: tuple[float, float] = (0.0, 0.0)  # revenue: the two standard deviations
