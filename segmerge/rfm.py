"""RFM quintile scores and the usual named RFM map, vectorised.

Score definition: among the n contacts with at least one order (up to as_of),
a value x scores ``1 + floor(5 * w / n)`` where w is the number of those
contacts whose value is strictly worse than x. "Worse" is more days since the
last order for R, fewer orders for F and less revenue for M. So:

- equal values always get equal scores (no arbitrary tie-breaking between two
  contacts with the same figures, unlike ``qcut`` on ranks), which also makes
  the score independent of the order of the contacts;
- 5 is best, and the best value always scores ``1 + floor(5 * w / n)`` with w
  the count of everyone else below it, so a base where everyone ties is all 1s;
- the scores can be checked by hand on a small base.

``rfm_segment`` follows the usual grid on R and FM = floor((F + M) / 2 + 0.5)
(the mean of F and M, halves rounded up), looked up in a 5x5 array.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import RFM_SEGMENTS

_H, _L, _AR, _CL = "hibernating", "lost", "at_risk", "cannot_lose"
_SL, _NA, _LO, _PR = "about_to_sleep", "need_attention", "loyal", "promising"
_NW, _PL, _CH = "new", "potential_loyalist", "champions"

#: GRID[r - 1, fm - 1] is the segment of recency score r and FM score fm.
GRID = np.array(
    [
        [_L, _H, _AR, _AR, _CL],  # R1
        [_H, _H, _AR, _AR, _CL],  # R2
        [_SL, _SL, _NA, _LO, _LO],  # R3
        [_PR, _PL, _PL, _LO, _LO],  # R4
        [_NW, _PL, _PL, _CH, _CH],  # R5
    ],
    dtype=object,
)
assert set(GRID.ravel()) == set(RFM_SEGMENTS)

_CODES = np.array(
    [f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)], dtype=object
)


def quintile(values: np.ndarray, has: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Scores 1..5 where ``has`` (see the module docstring), 0 elsewhere."""
    v = np.asarray(values)[has]
    n = len(v)
    scores = np.zeros(len(has), dtype=np.int64)
    if n == 0:
        return scores
    ordered = np.sort(v)
    if higher_is_better:
        worse = np.searchsorted(ordered, v, side="left")  # how many strictly lower
    else:
        worse = n - np.searchsorted(ordered, v, side="right")  # how many strictly higher
    scores[has] = 1 + (5 * worse) // n
    return scores


def fm_score(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """floor((F + M) / 2 + 0.5) in integers: the mean of F and M, halves rounded up."""
    return (f + m + 1) // 2


def segment_names(r: np.ndarray, fm: np.ndarray) -> np.ndarray:
    """The grid's names for scores 1..5 (vectorised lookup)."""
    return GRID[r - 1, fm - 1]


def rfm_columns(
    days_since_last: np.ndarray, count: np.ndarray, revenue: np.ndarray, has: np.ndarray
) -> dict[str, pd.api.extensions.ExtensionArray]:
    """r_score, f_score, m_score (nullable Int64), rfm and rfm_segment (strings); null without
    orders. ``days_since_last``, ``count`` and ``revenue`` are per contact; ``has`` marks the
    contacts with at least one order."""
    r = quintile(days_since_last, has, higher_is_better=False)
    f = quintile(count, has, higher_is_better=True)
    m = quintile(revenue, has, higher_is_better=True)
    none = ~has
    names = np.full(len(has), None, dtype=object)
    codes = np.full(len(has), None, dtype=object)
    names[has] = segment_names(r[has], fm_score(f[has], m[has]))
    codes[has] = _CODES[(r[has] - 1) * 25 + (f[has] - 1) * 5 + (m[has] - 1)]
    return {
        "r_score": pd.arrays.IntegerArray(r, none.copy()),
        "f_score": pd.arrays.IntegerArray(f, none.copy()),
        "m_score": pd.arrays.IntegerArray(m, none.copy()),
        "rfm": pd.array(codes, dtype="string"),
        "rfm_segment": pd.array(names, dtype="string"),
    }
