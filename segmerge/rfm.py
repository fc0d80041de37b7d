"""RFM quintile scores and the usual named RFM map, vectorised.

Score definition: among the n contacts with at least one order, a value x
scores 1 + floor(5 * (number of contacts strictly worse than x) / n). Equal
values therefore always get equal scores (no arbitrary tie-breaking, unlike
`qcut` on ranks), 5 is best, and the scores are easy to check by hand.
"Worse" is more days since the last order for R, fewer orders for F and less
revenue for M.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import RFM_SEGMENTS

# GRID[r - 1][fm - 1], fm = floor((F + M) / 2 + 0.5)
_H, _L, _AR, _CL = "hibernating", "lost", "at_risk", "cannot_lose"
GRID = np.array(
    [
        [_L, _H, _AR, _AR, _CL],
        [_H, _H, _AR, _AR, _CL],
        ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
        ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
        ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    ],
    dtype=object,
)
assert set(GRID.ravel()) == set(RFM_SEGMENTS)


def quintile(values: np.ndarray, has: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Scores 1..5 for rows where `has`, 0 elsewhere."""
    v = values[has].astype("float64")
    n = len(v)
    scores = np.zeros(len(values), dtype="int64")
    if n == 0:
        return scores
    ordered = np.sort(v)
    if higher_is_better:
        worse = np.searchsorted(ordered, v, side="left")  # strictly lower values
    else:
        worse = n - np.searchsorted(ordered, v, side="right")  # strictly higher values
    scores[has] = 1 + (5 * worse) // n
    return scores


def rfm_columns(
    days_since_last: pd.Series, count: np.ndarray, revenue: np.ndarray, has: np.ndarray
) -> dict[str, pd.Series]:
    days = days_since_last.to_numpy(dtype="float64", na_value=np.nan)
    r = quintile(days, has, higher_is_better=False)
    f = quintile(count, has, higher_is_better=True)
    # scored on cents: sums of float amounts differ in the last bits by summation order,
    # and equal revenues must get equal scores whatever engine added them up
    m = quintile(np.round(revenue, 2), has, higher_is_better=True)
    fm = np.floor((f + m) / 2 + 0.5).astype("int64")
    seg = np.full(len(has), None, dtype=object)
    seg[has] = GRID[r[has] - 1, fm[has] - 1]
    code = np.full(len(has), None, dtype=object)
    code[has] = (r[has] * 100 + f[has] * 10 + m[has]).astype(str)

    def score(x: np.ndarray) -> pd.Series:
        return pd.Series(pd.arrays.IntegerArray(x, ~has))

    return {
        "r_score": score(r),
        "f_score": score(f),
        "m_score": score(m),
        "rfm": pd.Series(code, dtype="string"),
        "rfm_segment": pd.Series(seg, dtype="string"),
    }
