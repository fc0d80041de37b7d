"""Trend and engagement metrics, against values worked out by hand, and in rules.

The seed cases: "bought less than last year" is ``trend(revenue, days=365) <
1``; "opened the last campaign or not" is ``opened('last')``; "no open for six
months" is ``last_open_days > 180 or last_open_days is null``.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import RuleError
from segmerge.metrics.catalog import MetricCall
from segmerge.metrics.compute import compute_metrics, reference_instant
from segmerge.ports.schema import Tables, conform
from segmerge.rules import PandasEvaluator, kinds_from_frame, load_ruleset, parse_expression
from segmerge.rules.checker import bind_call
from segmerge.rules.sql import DuckDBEvaluator

PARIS = ZoneInfo("Europe/Paris")
AS_OF = reference_instant("2026-12-01", PARIS)  # 2026-11-30 23:00 UTC


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def shop() -> Tables:
    contacts = pd.DataFrame(
        {"contact_id": ["a", "b", "c"], "email": ["a@x.fr", "b@x.fr", "c@x.fr"]}
    )
    orders = pd.DataFrame(
        {
            "contact_id": ["a", "a", "a", "b", "b"],
            "order_id": ["1", "2", "3", "4", "5"],
            # a: 100 + 20 in the last 30 days, 60 in the 30 before; b: only before
            "ordered_at": [
                utc("2026-11-20T10:00"),
                utc("2026-11-30T22:00"),
                utc("2026-10-15T10:00"),
                utc("2026-10-20T10:00"),
                utc("2026-12-02T10:00"),
            ],  # b's 2nd: after as_of
            "amount": [100.0, 20.0, 60.0, 45.0, 999.0],
        }
    )
    events = pd.DataFrame(
        {
            "contact_id": ["a", "b", "a", "b", "a", "a", "b", "zz"],
            "campaign_id": ["nov", "nov", "nov", "oct", "nov", "oct", "oct", "nov"],
            "event": ["sent", "sent", "open", "open", "click", "open", "sent", "open"],
            "at": [
                utc("2026-11-18T08:00"),
                utc("2026-11-18T08:00"),
                utc("2026-11-19T22:30"),
                utc("2026-10-01T09:00"),
                utc("2026-11-20T09:00"),
                utc("2026-10-02T09:00"),
                utc("2026-09-30T08:00"),
                utc("2026-11-25T09:00"),
            ],
        }
    )
    return conform(Tables(contacts, orders, events), "test")


def metrics(*calls: MetricCall) -> pd.DataFrame:
    return compute_metrics(shop(), AS_OF, PARIS, calls)


def test_last_open_and_click_in_local_days():
    m = metrics()
    # a opened on 2026-11-19 22:30 UTC = 2026-11-19 23:30 Paris: 12 days before 1 December
    assert m["last_open_days"].tolist() == [12, 61, pd.NA]
    assert m["last_click_days"].tolist() == [11, pd.NA, pd.NA]


def test_opened_and_clicked_a_campaign_or_the_last_one():
    calls = [
        MetricCall.bind("opened", campaign="last"),
        MetricCall.bind("opened", campaign="oct"),
        MetricCall.bind("clicked", campaign="last"),
        MetricCall.bind("opened", campaign="x"),
    ]
    m = metrics(*calls)
    assert m[calls[0].key].tolist() == [True, False, False]  # "nov" was sent last
    assert m[calls[1].key].tolist() == [True, True, False]
    assert m[calls[2].key].tolist() == [True, False, False]
    assert m[calls[3].key].tolist() == [False, False, False]  # unknown campaign: nobody


def test_trend_is_this_period_over_the_previous_one():
    rev = MetricCall.bind("trend", measure="revenue", days=30)
    orders = MetricCall.bind("trend", measure="orders", days=30)
    opens = MetricCall.bind("trend", measure="opens", days=60)
    m = metrics(rev, orders, opens)
    assert m[rev.key].tolist()[:2] == [pytest.approx(120 / 60), 0.0]
    assert np.isnan(m[rev.key].iloc[2])  # nothing before: no trend, not "infinitely better"
    assert m[orders.key].tolist()[:2] == [2.0, 0.0]
    # opens: a has 1 in the last 60 days (nov) and 0 in the 60 before (oct 2 is inside 60)
    assert np.isnan(m[opens.key].iloc[2])


def frame_with(*texts: str) -> tuple[pd.DataFrame, list]:
    t = shop()
    exprs = [parse_expression(x) for x in texts]
    from segmerge.rules import ast

    calls = [bind_call(n) for e in exprs for n in ast.walk(e) if isinstance(n, ast.Func)]
    m = compute_metrics(t, AS_OF, PARIS, calls)
    return pd.concat([t.contacts.reset_index(drop=True), m], axis=1), exprs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trend(revenue, days=30) < 1", [False, True, None]),  # "bought less than before"
        ("opened('last')", [True, False, False]),
        ("not opened(campaign='last')", [False, True, True]),
        ("last_open_days > 30 or last_open_days is null", [False, True, True]),
    ],
)
def test_seed_cases_in_rules_agree_with_duckdb(text, expected):
    frame, (expr,) = frame_with(text)
    kinds = kinds_from_frame(frame)
    ours = PandasEvaluator(frame, kinds, AS_OF, PARIS).values(expr)
    assert ours == expected
    duck = DuckDBEvaluator(frame, kinds, AS_OF, PARIS).values(expr)
    assert duck == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trend(revnue, days=365) < 1", "did you mean 'revenue'"),
        ("trend(revenue) < 1", "needs its argument days"),
        ("opened(last)", "quoted text"),
    ],
)
def test_mistakes_are_rule_errors_with_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "regles.yaml"
    path.write_text(f"version: 1\nname: r\nsegments:\n  - name: s\n    when: {text}\n")
    frame, _ = frame_with("opened('last')")
    with pytest.raises(RuleError, match=message) as info:
        rs = load_ruleset(path)
        rs.check(kinds_from_frame(frame), set(shop().orders.columns))
        rs.metric_calls()
    assert info.value.file == str(path) and info.value.line == 5 and info.value.column
