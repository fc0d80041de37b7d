"""Verdicts of a `kpi` report that a statistician would sign.

A marketer acts on the sentence, not on the interval, so the sentence may only
say what the test showed:

- "A beats B" only when the difference test, corrected with the report's other
  tests (Holm by default, or Benjamini-Hochberg: ``kpi_correction``), rejects
  equality at ``kpi_alpha``. Every test of a report is one family: the page
  says how many comparisons and tests it made.
- "A and B are equivalent" only from two one-sided tests against the margin
  the campaign declared (``kpi_margin`` in points, ``kpi_revenue_margin`` in
  money), in the same family. A non-significant difference is "no difference
  shown", with its interval and the smallest difference the numbers could have
  shown (MDE at alpha / m, the level the correction's first step tests at, and
  ``kpi_power``).
- "N more recipients are needed" aims at the effect the campaign declared
  (``kpi_mde``), keeping the groups' current ratio, never at the observed
  difference (which would promise significance for any noise).
- While the attribution window is open there is no verdict: the sentence says
  when it closes.
- A baseline campaign is another population or period: its comparisons are
  descriptive, outside the family, and never name a winner.

:func:`decide` holds the whole decision on arrays, so tests/test_verdicts.py
runs it on thousands of simulated campaigns with a known truth.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from segmerge.i18n import _, day, is_french, money, ngettext, number, percent
from segmerge.report import stats
from segmerge.report.comparison import (
    BEATS,
    DESCRIPTIVE,
    EQUIVALENT,
    NO_DIFFERENCE,
    NOT_ENOUGH,
    WINDOW_OPEN,
    Comparison,
    Group,
)
from segmerge.report.comparison import Rate as Rate  # re-exported: the kpi report names it here
from segmerge.workspace.kpi import KpiConfig


def measure_name(measure: str) -> str:
    """The measure as a sentence names it ("les clics")."""
    names = {
        "open": _("the open rate"),
        "click": _("the click rate"),
        "unsubscribe": _("the unsubscribe rate"),
        "conversion": _("the conversion rate"),
        "revenue": _("the revenue per recipient"),
    }
    return names[measure]


# --- one comparison ---------------------------------------------------------------------------


def _empty_why(a: Group, b: Group) -> str | None:
    empty = a if a.n == 0 else b if b.n == 0 else None
    return _("the group {name} is empty").format(name=empty.name) if empty else None


def test_rates(
    a: Group, b: Group, measure: str, cfg: KpiConfig, *, descriptive: bool = False
) -> Comparison:
    """a's rate minus b's: difference and equivalence p-values (settled later, as a family)."""
    c = Comparison(a.name, b.name, measure)
    ra, rb = a.rates.get(measure), b.rates.get(measure)
    if ra is None or rb is None:
        c.why = _empty_why(a, b) or _("no event in the window")
        return c
    c.diff, c.values, c.sizes = ra.value - rb.value, (ra.value, rb.value), (ra.n, rb.n)
    c.ci = stats.newcombe(ra.count, ra.n, rb.count, rb.n, cfg.kpi_alpha)
    if descriptive:
        c.outcome = DESCRIPTIVE
        return c
    c.outcome = NO_DIFFERENCE
    c.p = float(stats.diff_pvalue(ra.count, ra.n, rb.count, rb.n))
    if cfg.kpi_margin is not None:
        c.p_equivalence = float(
            stats.tost_pvalue(ra.count, ra.n, rb.count, rb.n, cfg.kpi_margin / 100)
        )
        c.ci_equivalence = stats.newcombe(ra.count, ra.n, rb.count, rb.n, 2 * cfg.kpi_alpha)
    return c


def test_revenue(a: Group, b: Group, cfg: KpiConfig, *, descriptive: bool = False) -> Comparison:
    """a's revenue per recipient minus b's, with Welch's t."""
    c = Comparison(a.name, b.name, "revenue")
    if a.revenue_per_recipient is None or b.revenue_per_recipient is None:
        c.why = _empty_why(a, b) or _("no order can be seen after the send yet")
        return c
    w = stats.welch(a.revenue, b.revenue, cfg.kpi_alpha)
    if w is None:
        c.why = _("at least 2 contacts per group are needed")
        return c
    if not a.revenue.any() and not b.revenue.any():
        c.why = _("no order in either group's window")
        return c
    c.diff, c.ci = w[0], (w[1], w[2])
    c.values, c.sizes = (float(a.revenue.mean()), float(b.revenue.mean())), (a.n, b.n)
    c.spread = (float(a.revenue.std(ddof=1)), float(b.revenue.std(ddof=1)))
    if descriptive:
        c.outcome = DESCRIPTIVE
        return c
    c.outcome = NO_DIFFERENCE
    c.p = stats.welch_pvalue(a.revenue, b.revenue)
    if cfg.kpi_revenue_margin is not None:
        c.p_equivalence = stats.welch_tost_pvalue(a.revenue, b.revenue, cfg.kpi_revenue_margin)
        w2 = stats.welch(a.revenue, b.revenue, 2 * cfg.kpi_alpha)
        c.ci_equivalence = (w2[1], w2[2]) if w2 else None
    return c


# --- the family -------------------------------------------------------------------------------


def decide(
    p: np.ndarray, p_eq: np.ndarray, alpha: float, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome codes (0 no difference, 1 beats, 2 equivalent) of each report's comparisons.

    ``p`` and ``p_eq`` are (reports, comparisons) arrays; NaN in ``p_eq`` is "no margin
    declared". Difference and equivalence tests are corrected together, per report.
    Returns the codes and both adjusted p arrays.
    """
    p, p_eq = np.atleast_2d(p), np.atleast_2d(p_eq)
    k = p.shape[-1]
    has_eq = ~np.isnan(p_eq)
    if has_eq.all() or not has_eq.any():
        family = np.concatenate([p, p_eq], axis=-1) if has_eq.any() else p
        adj = stats.adjust(family, method)
        adj_p, adj_eq = adj[..., :k], (adj[..., k:] if has_eq.any() else np.full_like(p, np.nan))
    else:  # a report where only some comparisons have a margin (rates, not revenue)
        adj_p, adj_eq = np.empty_like(p), np.full_like(p, np.nan)
        for i in range(p.shape[0]):
            fam = np.concatenate([p[i], p_eq[i][has_eq[i]]])
            a = stats.adjust(fam, method)
            adj_p[i], adj_eq[i][has_eq[i]] = a[:k], a[k:]
    codes = np.where(adj_p <= alpha, 1, np.where(np.nan_to_num(adj_eq, nan=1.0) <= alpha, 2, 0))
    return codes, adj_p, adj_eq


def settle(
    comparisons: list[Comparison],
    cfg: KpiConfig,
    closes: datetime | None,
    window_open: bool,
    currency: str = "EUR",
) -> list[str]:
    """Correct the tested comparisons as one family, decide, and write every sentence.

    Returns the report's notes on its error budget.
    """
    tested = [c for c in comparisons if c.p is not None]
    notes: list[str] = []
    m = len(tested) + sum(c.p_equivalence is not None for c in tested)
    if tested:
        p = np.array([[c.p for c in tested]], dtype=float)
        eq = np.array(
            [[np.nan if c.p_equivalence is None else c.p_equivalence for c in tested]], dtype=float
        )
        codes, adj_p, adj_eq = decide(p, eq, cfg.kpi_alpha, cfg.kpi_correction)
        for i, c in enumerate(tested):
            c.p_adjusted = float(adj_p[0, i])
            c.p_equivalence_adjusted = None if np.isnan(adj_eq[0, i]) else float(adj_eq[0, i])
            c.outcome = (
                WINDOW_OPEN if window_open else (NO_DIFFERENCE, BEATS, EQUIVALENT)[int(codes[0, i])]
            )
            _power(c, cfg, cfg.kpi_alpha / max(m, 1))
        method = (
            _("Holm's method (the chance of even one false verdict)")
            if cfg.kpi_correction == "holm"
            else _("Benjamini–Hochberg (the expected share of false verdicts)")
        )
        notes.append(
            ngettext(
                "Error budget: {n} comparison ({tests}) corrected together by {method}, at level "
                "{alpha}",
                "Error budget: {n} comparisons ({tests}) corrected together by {method}, "
                "at level {alpha}",
                len(tested),
            ).format(
                n=number(len(tested)),
                tests=ngettext("{n} test", "{n} tests", m).format(n=number(m)),
                method=method,
                alpha=percent(cfg.kpi_alpha),
            )
        )
        if cfg.kpi_margin is None:
            notes.append(
                _(
                    'No kpi_margin declared: equivalence is never tested, and "no '
                    'difference shown" does not mean the letters do equally well'
                )
            )
    for c in comparisons:
        c.verdict = sentence(c, cfg, closes, currency)
    return notes


def _power(c: Comparison, cfg: KpiConfig, alpha: float) -> None:
    """The smallest difference c's numbers could show, and recipients for the declared MDE."""
    if c.values is None:
        return
    n1, n2 = c.sizes
    ratio = n2 / n1
    if c.measure == "revenue":
        c.mde = stats.mde_means(*c.spread, n1, n2, alpha, cfg.kpi_power)
        sd = math.sqrt((c.spread[0] ** 2 + c.spread[1] ** 2) / 2)
        need = (
            stats.sample_size_means(cfg.kpi_revenue_mde, sd, alpha, cfg.kpi_power, ratio)
            if cfg.kpi_revenue_mde
            else None
        )
    else:
        ref = c.values[1]
        c.mde = stats.mde_proportions(ref, n1, n2, alpha, cfg.kpi_power)
        target = min(ref + (cfg.kpi_mde or 0) / 100, 1.0)
        need = stats.sample_size(target, ref, alpha, cfg.kpi_power, ratio) if cfg.kpi_mde else None
    if need is not None:
        c.more_needed = max(0, need + math.ceil(need * ratio) - n1 - n2)


# --- sentences --------------------------------------------------------------------------------


def _signed(c: Comparison, value: float, currency: str = "EUR") -> str:
    sign = "+" if value > 0 else "-" if value < 0 else ""
    if c.measure == "revenue":
        return sign + money(abs(value), currency)
    shown = round(100 * abs(value), 1)
    # French: "1,5 point" (plural from 2); English: "1.5 points" (singular only for 1)
    many = (1 if shown < 2 else 2) if is_french() else (1 if shown == 1 else 2)
    return sign + ngettext("{n} point", "{n} points", many).format(n=number(shown, 1))


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< " + number(0.001, 3) if value < 0.001 else number(value, 3)


def sentence(c: Comparison, cfg: KpiConfig, closes: datetime | None, currency: str = "EUR") -> str:
    """The verdict line of one comparison, in the command's language."""
    what = measure_name(c.measure)

    def signed(value: float) -> str:
        return _signed(c, value, currency)

    if c.outcome == NOT_ENOUGH or c.diff is None or c.ci is None:
        return _("{first} vs {second}, {measure}: not enough data: {why}").format(
            first=c.first, second=c.second, measure=what, why=c.why
        )
    diff = signed(c.diff)
    lo, hi = signed(c.ci[0]), signed(c.ci[1])
    level = percent(1 - cfg.kpi_alpha, 0)
    if c.outcome == DESCRIPTIVE:
        assert c.values is not None
        shown = [money(v, currency) if c.measure == "revenue" else percent(v) for v in c.values]
        return _(
            "{first} compared with {second}, {measure}: {a} against {b} ({diff}); a "
            "description only: another population or period, so no winner is "
            "named"
        ).format(first=c.first, second=c.second, measure=what, a=shown[0], b=shown[1], diff=diff)
    if c.outcome == WINDOW_OPEN:
        when = f"{day(closes)} {closes:%H:%M}" if closes is not None else "—"
        return _(
            "{first} vs {second}, {measure}: {diff} so far; no verdict before the "
            "attribution window closes on {day} UTC"
        ).format(first=c.first, second=c.second, measure=what, diff=diff, day=when)
    if c.outcome == BEATS:
        assert c.diff is not None
        s = 1 if c.diff > 0 else -1
        wlo, whi = sorted((s * c.ci[0], s * c.ci[1]))
        win, lose = (c.first, c.second) if s > 0 else (c.second, c.first)
        return _(
            "{winner} beats {loser} on {measure}: {diff} ({level} CI {lo} to {hi}; p = {p}, "
            "{p_adj} after correction)"
        ).format(
            winner=win,
            loser=lose,
            measure=what,
            diff=signed(abs(c.diff)),
            level=level,
            lo=signed(wlo),
            hi=signed(whi),
            p=_p(c.p),
            p_adj=_p(c.p_adjusted),
        )
    if c.outcome == EQUIVALENT:
        eq_lo, eq_hi = c.ci_equivalence or c.ci
        margin = (
            money(cfg.kpi_revenue_margin or 0, currency)
            if c.measure == "revenue"
            else signed((cfg.kpi_margin or 0) / 100).lstrip("+")
        )
        return _(
            "{first} and {second} do equally well on {measure} within ±{margin}: {diff} "
            "({level} CI {lo} to {hi}; equivalence test p = {p_adj} after "
            "correction)"
        ).format(
            first=c.first,
            second=c.second,
            measure=what,
            margin=margin,
            diff=diff,
            level=percent(1 - 2 * cfg.kpi_alpha, 0),
            lo=signed(eq_lo),
            hi=signed(eq_hi),
            p_adj=_p(c.p_equivalence_adjusted),
        )
    text = _(
        "{first} vs {second}, {measure}: no difference shown: {diff} ({level} CI {lo} to "
        "{hi}; p = {p}, {p_adj} after correction); these numbers could only show a difference "
        "of {mde} or more"
    ).format(
        first=c.first,
        second=c.second,
        measure=what,
        diff=diff,
        level=level,
        lo=lo,
        hi=hi,
        p=_p(c.p),
        p_adj=_p(c.p_adjusted),
        mde=signed(c.mde or 0).lstrip("+"),
    )
    return text + _more(c, cfg, currency)


def _more(c: Comparison, cfg: KpiConfig, currency: str = "EUR") -> str:
    declared = cfg.kpi_revenue_mde if c.measure == "revenue" else cfg.kpi_mde
    if declared is None or c.more_needed is None:
        if c.measure == "revenue":
            return _("; declare kpi_revenue_mde to learn how many recipients a test needs")
        return _("; declare kpi_mde to learn how many recipients a test needs")
    target = (
        money(declared, currency)
        if c.measure == "revenue"
        else _signed(c, declared / 100, currency).lstrip("+")
    )
    if c.more_needed == 0:
        return _("; these numbers were enough to detect the declared effect ({target})").format(
            target=target
        )
    return _("; {more} more recipients are needed to detect the declared effect ({target})").format(
        more=number(c.more_needed), target=target
    )
