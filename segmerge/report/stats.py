"""The statistics behind `kpi` verdicts: intervals, tests, power, multiplicity.

One place for every formula, each checked against statsmodels/scipy in
tests/test_kpi.py and tests/test_verdicts.py. The proportion functions take
numpy arrays as well as numbers, so that the verdict logic can be simulated on
thousands of campaigns at once (tests/test_verdicts.py) with the very code a
report uses.

- Intervals: Wilson score for one proportion, Newcombe's hybrid score method
  (his method 10) for a difference of proportions, Welch's t for a difference
  of means.
- Tests are the inversions of those intervals, so a verdict never contradicts
  the interval printed next to it: the two-sided p-value of a difference is
  the level at which Newcombe's interval touches 0 (found by bisection on z);
  equivalence is two one-sided tests (TOST) against the declared margin, i.e.
  the (1 - 2 alpha) interval lies inside (-margin, +margin). Means use Welch's
  t for both.
- Multiplicity: Holm's step-down method (family-wise error: the chance of even
  one false "beats" in the whole report stays under alpha) or
  Benjamini-Hochberg (false discovery rate), on a report's whole family.
- Power: the minimal detectable effect (MDE) of two proportions on Cohen's
  arcsine scale, ``h = 2 asin(sqrt p1) - 2 asin(sqrt p2)``, with
  ``|h| = (z_{1-alpha/2} + z_{power}) sqrt(1/n1 + 1/n2)`` (what statsmodels'
  NormalIndPower solves, less its negligible far tail); for means, the normal
  approximation with each group's own variance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ALPHA = 0.05
POWER = 0.8
_Z_MAX = 40.0  # bisection bracket: a bound not reached at z = 40 means p < 1e-300
_STEPS = 64

Num = Any  # a float or a numpy array of them


def _ndtr(x: Num) -> Num:
    from scipy.special import ndtr  # lazy: only kpi needs scipy

    return ndtr(x)


def z_of(q: float) -> float:
    """The standard normal quantile of ``q``."""
    from scipy.special import ndtri

    return float(ndtri(q))


# --- intervals ------------------------------------------------------------------------------


def wilson_bounds(x: Num, n: Num, z: Num) -> tuple[Num, Num]:
    """Wilson score bounds of x successes out of n at normal quantile z (arrays welcome)."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def wilson(x: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval (1 - alpha) of x successes out of n."""
    if n <= 0:
        raise ValueError("no observation")
    lo, hi = wilson_bounds(x, n, z_of(1 - alpha / 2))
    return float(lo), float(hi)


def newcombe_bounds(x1: Num, n1: Num, x2: Num, n2: Num, z: Num) -> tuple[Num, Num]:
    """Newcombe's bounds for p1 - p2 at normal quantile z, from the two Wilson intervals."""
    p1, p2 = np.asarray(x1, dtype=float) / n1, np.asarray(x2, dtype=float) / n2
    (l1, u1), (l2, u2) = wilson_bounds(x1, n1, z), wilson_bounds(x2, n2, z)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


def newcombe(x1: int, n1: int, x2: int, n2: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Newcombe's interval (1 - alpha) for p1 - p2."""
    lo, hi = newcombe_bounds(x1, n1, x2, n2, z_of(1 - alpha / 2))
    return float(lo), float(hi)


def _z_where(bound: Any, target: Num, shape: tuple[int, ...]) -> Num:
    """The z at which a monotone bound of z crosses ``target`` (bisection on arrays).

    ``bound(z)`` is Newcombe's lower bound (decreasing in z) or minus its upper bound.
    """
    lo, hi = np.zeros(shape), np.full(shape, _Z_MAX)
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        above = bound(mid) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return (lo + hi) / 2


def diff_pvalue(x1: Num, n1: Num, x2: Num, n2: Num) -> Num:
    """Two-sided p-value of p1 = p2: twice the tail beyond the z where Newcombe's interval
    reaches 0. So p < alpha exactly when the (1 - alpha) interval excludes 0."""
    x1, n1, x2, n2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x1, n1, x2, n2)))
    d = x1 / n1 - x2 / n2
    sign = np.where(d >= 0, 1.0, -1.0)

    def bound(z: Num) -> Num:
        lo, hi = newcombe_bounds(x1, n1, x2, n2, z)
        return np.where(sign > 0, lo, -hi)

    z = _z_where(bound, 0.0, d.shape)
    p = np.where(d == 0, 1.0, np.minimum(1.0, 2 * _ndtr(-z)))
    return float(p) if p.ndim == 0 else p


def tost_pvalue(x1: Num, n1: Num, x2: Num, n2: Num, margin: float) -> Num:
    """p-value of "|p1 - p2| < margin" by two one-sided tests on Newcombe's bounds.

    Each one-sided p is the tail beyond the z where the bound reaches the margin; the
    TOST p is the larger. p < alpha exactly when the (1 - 2 alpha) interval lies inside
    (-margin, +margin). A difference outside the margins gets 1.
    """
    x1, n1, x2, n2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x1, n1, x2, n2)))
    d = x1 / n1 - x2 / n2
    z_lo = _z_where(lambda z: newcombe_bounds(x1, n1, x2, n2, z)[0], -margin, d.shape)
    z_hi = _z_where(lambda z: -newcombe_bounds(x1, n1, x2, n2, z)[1], -margin, d.shape)
    p = np.maximum(_ndtr(-z_lo), _ndtr(-z_hi))
    p = np.where(np.abs(d) < margin, p, 1.0)
    return float(p) if p.ndim == 0 else p


def _welch_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else math.inf
    return float(a.mean() - b.mean()), se, df


def welch(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> tuple[float, float, float] | None:
    """Mean of a minus mean of b, and Welch's (1 - alpha) interval; None without 2 values each."""
    from scipy.stats import t

    if len(a) < 2 or len(b) < 2:
        return None
    d, se, df = _welch_parts(a, b)
    if se == 0:
        return d, d, d
    q = float(t.ppf(1 - alpha / 2, df))
    return d, d - q * se, d + q * se


def welch_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (scipy's ttest_ind with equal_var=False)."""
    from scipy.stats import t

    d, se, df = _welch_parts(a, b)
    if se == 0:
        return 1.0 if d == 0 else 0.0
    return float(2 * t.sf(abs(d) / se, df))


def welch_tost_pvalue(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    """TOST p-value of "|mean a - mean b| < margin" with Welch's t (statsmodels' ttost_ind,
    usevar='unequal')."""
    from scipy.stats import t

    d, se, df = _welch_parts(a, b)
    if se == 0:
        return 0.0 if abs(d) < margin else 1.0
    return float(max(t.sf((d + margin) / se, df), t.cdf((d - margin) / se, df)))


# --- multiplicity -----------------------------------------------------------------------------

CORRECTIONS = ("holm", "benjamini-hochberg")


def adjust(p: Num, method: str = "holm") -> np.ndarray:
    """Adjusted p-values along the last axis (one row per report): Holm or Benjamini-Hochberg.

    A hypothesis is rejected when its adjusted p is at or under alpha (statsmodels'
    multipletests 'holm' / 'fdr_bh').
    """
    p = np.asarray(p, dtype=float)
    k = p.shape[-1]
    if k == 0:
        return p.copy()
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    rank = np.arange(1, k + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (k - rank + 1) * ps), axis=-1)
    elif method == "benjamini-hochberg":
        raw = np.minimum(1.0, k * ps / rank)
        adj = np.flip(np.minimum.accumulate(np.flip(raw, axis=-1), axis=-1), axis=-1)
    else:
        raise ValueError(f"unknown correction {method!r}")
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


# --- power ------------------------------------------------------------------------------------


def _zz(alpha: float, power: float) -> float:
    return z_of(1 - alpha / 2) + z_of(power)


def mde_proportions(
    p_ref: float, n1: int, n2: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest rise over ``p_ref`` that n1 and n2 recipients detect (two-sided alpha, power).

    On the arcsine scale, then back to a difference of proportions; capped at 1 - p_ref.
    """
    h = _zz(alpha, power) * math.sqrt(1 / n1 + 1 / n2)
    phi = 2 * math.asin(math.sqrt(p_ref)) + h
    return (math.sin(min(phi, math.pi) / 2) ** 2) - p_ref


def sample_size(
    p1: float, p2: float, alpha: float = ALPHA, power: float = POWER, ratio: float = 1.0
) -> int | None:
    """Recipients in the first group to detect p1 vs p2 (two-sided alpha, power), the second
    group holding ``ratio`` times as many; None if p1 == p2."""
    h = abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2)))
    if h == 0:
        return None
    return math.ceil((_zz(alpha, power) / h) ** 2 * (1 + 1 / ratio))


def mde_means(
    sd1: float, sd2: float, n1: int, n2: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest difference of means n1 and n2 values detect, each group with its own sd."""
    return _zz(alpha, power) * math.sqrt(sd1**2 / n1 + sd2**2 / n2)


def sample_size_means(
    delta: float, sd: float, alpha: float = ALPHA, power: float = POWER, ratio: float = 1.0
) -> int | None:
    """Values in the first group to detect a difference ``delta`` of means (standard deviation
    sd), the second group holding ``ratio`` times as many."""
    if delta == 0 or not np.isfinite(sd) or sd == 0:
        return None
    return math.ceil((_zz(alpha, power) * sd / delta) ** 2 * (1 + 1 / ratio))
