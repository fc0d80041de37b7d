"""RFM scores and the named RFM map, by hand.

Score of x among n buyers: 1 + floor(5 * (buyers strictly worse than x) / n).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from segmerge.metrics.catalog import RFM_SEGMENTS
from segmerge.metrics.compute import compute_metrics, reference_instant
from segmerge.metrics.rfm import quintile, rfm_columns
from segmerge.ports.schema import Tables, conform

PARIS = ZoneInfo("Europe/Paris")
AS_OF = reference_instant("2026-03-31", PARIS)


def test_quintiles_by_hand_with_ties():
    values = np.array([1, 1, 1, 1, 2, 2, 3, 4, 5, 6])
    # strictly lower: 0,0,0,0,4,4,6,7,8,9 -> 1 + 5k // 10
    got = quintile(values, np.ones(10, bool), higher_is_better=True)
    assert got.tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]


def test_fewer_days_is_better_for_recency():
    days = np.array([5, 5, 10, 400])
    # strictly more days: 2, 2, 1, 0 -> 1 + 5k // 4
    assert quintile(days, np.ones(4, bool), higher_is_better=False).tolist() == [3, 3, 2, 1]


def test_quintiles_of_floats_and_of_wide_ranges():
    revenue = np.array([0.5, 1e9, 0.5, 20.25, 7.0])
    # strictly lower: 0, 4, 0, 3, 2 -> 1 + 5k // 5
    assert quintile(revenue, np.ones(5, bool), higher_is_better=True).tolist() == [1, 5, 1, 4, 3]
    wide = np.array([0, 10**12, 3])
    assert quintile(wide, np.ones(3, bool), higher_is_better=True).tolist() == [1, 4, 2]


def test_only_buyers_are_ranked():
    values = np.array([100, 0, 1, 0])
    has = np.array([True, False, True, False])
    # among the two buyers: 1 is worse than 100 -> 100 scores 1 + 5 * 1 // 2 = 3
    assert quintile(values, has, higher_is_better=True).tolist() == [3, 0, 1, 0]


def test_everyone_equal_scores_one_and_a_single_buyer_too():
    assert (
        quintile(np.array([7, 7, 7]), np.ones(3, bool), higher_is_better=True).tolist() == [1] * 3
    )
    assert quintile(np.array([7]), np.ones(1, bool), higher_is_better=False).tolist() == [1]
    assert quintile(np.array([], dtype=int), np.zeros(0, bool), higher_is_better=True).size == 0


def test_equal_values_always_get_equal_scores():
    rng = np.random.default_rng(4)
    for _ in range(50):
        v = rng.integers(0, 6, rng.integers(1, 40))
        s = quintile(v, np.ones(len(v), bool), higher_is_better=True)
        for x in np.unique(v):
            assert len(set(s[v == x])) == 1
        assert s.min() >= 1 and s.max() <= 5
        assert (np.diff(s[np.argsort(v, kind="stable")]) >= 0).all()  # more is never worse


def expected_segment(r: int, fm: int) -> str:
    """The usual RFM map, written out from its definition (independent of rfm.GRID)."""
    if r <= 2 and fm <= 2:
        return "lost" if (r, fm) == (1, 1) else "hibernating"
    if r <= 2:
        return "at_risk" if fm <= 4 else "cannot_lose"
    if r == 3 and fm <= 2:
        return "about_to_sleep"
    if r == 3 and fm == 3:
        return "need_attention"
    if fm >= 4:
        return "loyal" if r in (3, 4) else "champions"
    if fm == 1:
        return "promising" if r == 4 else "new"
    return "potential_loyalist"


def five_buyers(r: int, f: int, m: int) -> dict:
    """Five buyers whose values are all distinct, so the scores are exactly the ranks 1..5;
    the first buyer gets scores (r, f, m)."""

    def ranks(first: int) -> np.ndarray:
        return np.array([first] + [x for x in range(1, 6) if x != first])

    days = 100 - 10 * ranks(r)  # more days = worse, so rank 5 has the fewest
    count = ranks(f)
    revenue = 10.0 * ranks(m)
    return rfm_columns(days, count, revenue, np.ones(5, bool))


@pytest.mark.parametrize("r", range(1, 6))
@pytest.mark.parametrize("fm", range(1, 6))
def test_every_cell_of_the_grid(r, fm):
    out = five_buyers(r, fm, fm)
    assert out["r_score"][0] == r and out["f_score"][0] == fm and out["m_score"][0] == fm
    assert out["rfm"][0] == f"{r}{fm}{fm}"
    assert out["rfm_segment"][0] == expected_segment(r, fm)


@pytest.mark.parametrize(
    ("f", "m", "fm"), [(1, 2, 2), (2, 1, 2), (3, 4, 4), (4, 5, 5), (1, 5, 3), (5, 4, 5), (2, 5, 4)]
)
def test_fm_is_the_mean_of_f_and_m_with_halves_up(f, m, fm):
    out = five_buyers(4, f, m)
    assert out["rfm_segment"][0] == expected_segment(4, fm)
    assert out["rfm"][0] == f"4{f}{m}"


def test_columns_are_nullable_without_orders():
    out = rfm_columns(
        np.array([3, 0]), np.array([2, 0]), np.array([9.0, 0.0]), np.array([True, False])
    )
    for name in ("r_score", "f_score", "m_score"):
        assert str(out[name].dtype) == "Int64" and out[name][0] == 1 and pd.isna(out[name][1])
    assert out["rfm"][0] == "111" and pd.isna(out["rfm"][1])
    assert out["rfm_segment"][0] == "lost" and pd.isna(out["rfm_segment"][1])


def test_rfm_through_compute_metrics_ties_and_nulls():
    contacts = pd.DataFrame({"contact_id": ["a", "b", "c", "d", "e"]})
    when = {"recent": "2026-03-30 10:00", "old": "2025-06-01 10:00"}
    rows = (
        [("a", when["recent"], 500.0)] * 3  # a and b: the same figures -> the same scores
        + [("b", when["recent"], 500.0)] * 3
        + [("c", when["old"], 10.0)]
        + [("d", when["old"], 10.0), ("d", when["recent"], 5.0)]
    )  # e never ordered
    o = pd.DataFrame(rows, columns=["contact_id", "ordered_at", "amount"])
    o["ordered_at"] = pd.to_datetime(o["ordered_at"]).dt.tz_localize(PARIS)
    o["order_id"] = [str(i) for i in range(len(o))]
    m = compute_metrics(conform(Tables(contacts, o), "test"), AS_OF, PARIS)
    # R: days a=b=d=1, c=303: a, b, d have 1 worse of 4 -> 1 + 5 // 4 = 2; c -> 1
    # F: a=b=3, d=2, c=1 -> a, b: 2 worse -> 3; d: 1 worse -> 2; c -> 1
    # M: a=b=1500, d=15, c=10 -> a, b: 3; d: 2; c: 1
    assert m["r_score"].tolist() == [2, 2, 1, 2, pd.NA]
    assert m["f_score"].tolist() == [3, 3, 1, 2, pd.NA]
    assert m["m_score"].tolist() == [3, 3, 1, 2, pd.NA]
    assert m["rfm"].tolist() == ["233", "233", "111", "222", pd.NA]
    assert m["rfm_segment"].tolist() == ["at_risk", "at_risk", "lost", "hibernating", pd.NA]
    assert set(m["rfm_segment"].dropna()) <= set(RFM_SEGMENTS)
