"""Every metric against values computed by hand on a tiny shop."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from segmerge.catalog import MetricCall
from segmerge.metrics import compute_metrics, reference_instant
from segmerge.rfm import GRID, quintile
from segmerge.schema import Tables, conform

PARIS = ZoneInfo("Europe/Paris")


def shop(orders: list[tuple[str, str, float, str, float | None]], ids=("a", "b", "c")) -> Tables:
    contacts = pd.DataFrame({"contact_id": list(ids), "email": [f"{i}@x.fr" for i in ids],
                             "subscribed": True})  # fmt: skip
    o = pd.DataFrame(orders, columns=["contact_id", "ordered_at", "amount", "category", "rating"])
    o["order_id"] = [str(i) for i in range(len(o))]
    o["ordered_at"] = pd.to_datetime(o["ordered_at"]).dt.tz_localize(PARIS).dt.tz_convert("UTC")
    return conform(Tables(contacts, o), "test")


AS_OF = reference_instant("2026-03-31", PARIS)


def test_reference_instant_is_local_midnight():
    assert pd.Timestamp("2026-03-30 22:00", tz="UTC") == AS_OF  # CEST, UTC+2
    assert reference_instant("2026-01-31", PARIS) == pd.Timestamp("2026-01-30 23:00", tz="UTC")


def test_counts_sums_days_and_nulls():
    t = shop([
        ("a", "2026-03-30 10:00", 10.0, "jazz", 5.0),
        ("a", "2026-01-15 09:00", 30.0, "livres", None),
        ("b", "2025-12-31 23:30", 100.0, "jazz", 3.0),
        ("b", "2026-04-02 10:00", 999.0, "jazz", 1.0),  # after as_of: ignored
        ("zz", "2026-03-01 10:00", 5.0, "jazz", 1.0),  # unknown contact: ignored
    ])  # fmt: skip
    m = compute_metrics(t, AS_OF, PARIS)
    assert m["orders_count"].tolist() == [2, 1, 0]
    assert m["revenue"].tolist() == [40.0, 100.0, 0.0]
    assert m["avg_basket"].iloc[:2].tolist() == [20.0, 100.0] and np.isnan(m["avg_basket"].iloc[2])
    assert m["days_since_last_order"].tolist()[:2] == [1, 90]  # 31 Dec -> 31 Mar = 90 days
    assert pd.isna(m["days_since_last_order"].iloc[2])
    assert m["days_since_first_order"].tolist()[:2] == [75, 90]
    assert m["avg_rating"].iloc[0] == 5.0 and m["max_rating"].iloc[1] == 3.0
    assert m["last_order_at"].iloc[0] == pd.Timestamp("2026-03-30 08:00", tz="UTC")
    assert pd.isna(m["first_order_at"].iloc[2]) and pd.isna(m["rfm"].iloc[2])


def test_windows_are_half_open_on_local_days():
    t = shop([
        ("a", "2026-03-01 00:00", 1.0, "x", None),   # exactly as_of - 30 days: out, but in offset=30
        ("a", "2026-03-01 00:01", 2.0, "y", None),   # in
        ("a", "2026-03-30 23:59", 4.0, "y", None),   # in (before as_of midnight)
        ("a", "2026-01-30 12:00", 8.0, "z", None),   # in (as_of-60, as_of-30]
        ("b", "2026-02-15 12:00", 16.0, "x", None),  # in (as_of-60, as_of-30]
    ])  # fmt: skip
    calls = [MetricCall.bind("orders", days=30), MetricCall.bind("revenue", days=30),
             MetricCall.bind("orders", days=30, offset=30),
             MetricCall.bind("distinct", column="category", days=365),
             MetricCall.bind("distinct", column="category")]  # fmt: skip
    m = compute_metrics(t, AS_OF, PARIS, calls)
    assert m["orders(days=30, offset=0)"].tolist() == [2, 0, 0]
    assert m["revenue(days=30, offset=0)"].tolist() == [6.0, 0.0, 0.0]
    assert m["orders(days=30, offset=30)"].tolist() == [2, 1, 0]
    assert m["distinct(column=category, days=365)"].tolist() == [3, 1, 0]
    assert m["distinct(column=category, days=None)"].tolist() == [3, 1, 0]


def test_day_counts_do_not_shift_across_dst():
    # 29 March 2026 is the spring change in Paris: 28 March 23:30 -> 31 March is 3 days
    t = shop([("a", "2026-03-28 23:30", 1.0, "x", None), ("b", "2026-03-29 00:30", 1.0, "x", None)])
    m = compute_metrics(t, AS_OF, PARIS)
    assert m["days_since_last_order"].tolist()[:2] == [3, 2]
    autumn = reference_instant("2026-10-26", PARIS)  # the day after the October change
    t2 = shop([("a", "2026-10-24 23:59", 1.0, "x", None)])
    assert compute_metrics(t2, autumn, PARIS)["days_since_last_order"].iloc[0] == 2


def test_opens_and_clicks_in_window():
    t = shop([])
    t.events = pd.DataFrame({
        "contact_id": ["a", "a", "a", "b"], "campaign_id": "c",
        "event": ["open", "open", "click", "open"],
        "at": pd.to_datetime(["2026-03-20", "2025-01-01", "2026-03-21", "2026-04-05"], utc=True),
    })  # fmt: skip
    t = conform(t, "test")
    m = compute_metrics(t, AS_OF, PARIS, [MetricCall.bind("opens", days=30),
                                          MetricCall.bind("clicks", days=30)])  # fmt: skip
    assert m["opens(days=30)"].tolist() == [1, 0, 0]  # b's open is after as_of
    assert m["clicks(days=30)"].tolist() == [1, 0, 0]


def test_quintiles_tie_and_direction():
    has = np.ones(10, dtype=bool)
    values = np.array([1, 1, 1, 1, 2, 2, 3, 4, 5, 6])
    # strictly lower counts: 0,0,0,0,4,4,6,7,8,9 -> 1 + 5*k//10
    assert quintile(values, has, higher_is_better=True).tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    days = np.array([5, 5, 10, 400])
    # strictly more days: 2, 2, 1, 0 -> 1 + 5*k//4
    assert quintile(days, np.ones(4, bool), higher_is_better=False).tolist() == [3, 3, 2, 1]


@pytest.mark.parametrize(("r", "fm", "name"), [
    (1, 1, "lost"), (2, 1, "hibernating"), (1, 4, "at_risk"), (2, 5, "cannot_lose"),
    (3, 2, "about_to_sleep"), (3, 3, "need_attention"), (4, 5, "loyal"), (4, 1, "promising"),
    (5, 1, "new"), (5, 3, "potential_loyalist"), (5, 4, "champions"),
])  # fmt: skip
def test_rfm_grid(r, fm, name):
    assert GRID[r - 1, fm - 1] == name


def test_rfm_scores_on_a_base():
    rows = [("a", "2026-03-30 10:00", 500.0, "x", None)] * 3 + [("b", "2025-06-01 10:00", 10.0, "x", None)]
    m = compute_metrics(shop(rows), AS_OF, PARIS)
    # a: best on R, F, M (1 other strictly worse of 2 -> 1 + 5*1//2 = 3); b: worst -> 1
    assert m["rfm"].tolist()[:2] == ["333", "111"]
    assert m["rfm_segment"].tolist()[:2] == ["need_attention", "lost"]
