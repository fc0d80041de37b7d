"""Column-wise evaluation on small frames whose answers are worked out by hand."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import RuleError
from segmerge.metrics.catalog import Kind
from segmerge.rules import PandasEvaluator, kinds_from_frame, parse_expression
from segmerge.rules import evaluator as evaluator_module
from segmerge.rules.sql import DuckDBEvaluator, compile_condition

PARIS = ZoneInfo("Europe/Paris")
AS_OF = pd.Timestamp("2026-01-31T15:00:00Z")  # 16:00 in Paris: today() is 2026-01-30T23:00Z


def contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["a", "b", "c", "d"],
            "age": [30.0, np.nan, 45.0, 20.0],
            "city": pd.Series(["Paris", None, "Lyon", "paris"], dtype="string"),
            "tags": [["vip", "bio"], [], None, ["VIP"]],
            "subscribed": [True, False, True, True],
            "last_order_at": pd.to_datetime(
                ["2026-01-30T22:59Z", None, "2026-01-30T23:01Z", "2025-11-02T10:00Z"], utc=True
            ),
            "orders(days=90, offset=0)": [3.0, 0.0, 1.0, 0.0],
            "avg_basket": [100.0, np.nan, 30.0, 50.0],
        }
    )


def values(text: str, frame: pd.DataFrame | None = None, as_of: pd.Timestamp = AS_OF) -> list:
    frame = contacts() if frame is None else frame
    ev = PandasEvaluator(frame, kinds_from_frame(frame), as_of, PARIS)
    return ev.values(parse_expression(text))


CONDITIONS = pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age > 25", [True, None, True, False]),
        ("age >= 30", [True, None, True, False]),
        ("age == 30", [True, None, False, False]),
        ("age != 30", [False, None, True, True]),
        ("age between 20 and 30", [True, None, False, True]),
        ("age in [20, 45]", [False, None, True, True]),
        ("age not in [20, 45]", [True, None, False, False]),
        ("age in [30, null]", [True, None, None, None]),
        ("age not in [30, null]", [False, None, None, None]),
        ("age in []", [False, False, False, False]),
        ("age is null", [False, True, False, False]),
        ("age is not null", [True, False, True, True]),
        ("city == 'Paris'", [True, None, False, False]),
        ("city == 'paris'", [False, None, False, True]),
        ("city < 'M'", [False, None, True, False]),
        ("city contains 'ar'", [True, None, False, True]),
        ("city startswith 'P'", [True, None, False, False]),
        ("city in ['Lyon', 'Paris']", [True, None, True, False]),
        ("tags contains 'vip'", [True, False, None, False]),
        ("tags contains 'VIP'", [False, False, None, True]),
        ("tags is null", [False, False, True, False]),
        ("subscribed", [True, False, True, True]),
        ("not subscribed", [False, True, False, False]),
        ("orders(days=90) >= 1", [True, False, True, False]),
        ("today() - last_order_at", [1, None, 0, 90]),
        ("age / (age - 30)", [None, None, 3, -2]),
        ("date('2026-03-28') + 2 == date('2026-03-30')", [True] * 4),
    ],
)


@CONDITIONS
def test_conditions_per_contact(text: str, expected: list) -> None:
    assert values(text) == expected


@CONDITIONS
def test_the_duckdb_engine_gives_the_same_answers(text: str, expected: list) -> None:
    frame = contacts()
    ev = DuckDBEvaluator(frame, kinds_from_frame(frame), AS_OF, PARIS)
    assert ev.values(parse_expression(text)) == expected


def test_conditions_compile_to_one_sql_expression() -> None:
    kinds = kinds_from_frame(contacts())
    sql = compile_condition(
        parse_expression("tags contains 'vip' and age / avg_basket > 0.5 or city in []"),
        kinds,
        AS_OF,
        PARIS,
    )
    assert sql == (
        '((ARRAY_CONTAINS("tags", \'vip\') AND ((CAST("age" AS DOUBLE) / '
        'NULLIF(CAST("avg_basket" AS DOUBLE), 0)) > CAST(0.5 AS DOUBLE))) OR FALSE)'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age + 1", [31, None, 46, 21]),
        ("age - 2 * 10", [10, None, 25, 0]),
        ("(age - 20) / 10", [1, None, 2.5, 0]),
        ("age / (age - 30)", [None, None, 3, -2]),  # 30 / 0 is null
        ("age / 0", [None, None, None, None]),
        ("-age", [-30, None, -45, -20]),
        ("avg_basket * orders(days=90)", [300, None, 30, 0]),
    ],
)
def test_arithmetic_division_by_zero_is_null(text: str, expected: list) -> None:
    assert values(text) == expected


def truth_table() -> pd.DataFrame:
    x = [True, True, True, False, False, False, None, None, None]
    y = [True, False, None] * 3
    return pd.DataFrame(
        {
            "contact_id": [str(i) for i in range(9)],
            "x": pd.Series(x, dtype="boolean"),
            "y": pd.Series(y, dtype="boolean"),
        }
    )


def test_and_or_not_follow_three_valued_logic() -> None:
    frame = truth_table()
    T, F, N = True, False, None
    assert values("x and y", frame) == [T, F, N, F, F, F, N, F, N]
    assert values("x or y", frame) == [T, T, T, T, F, N, T, N, N]
    assert values("not x", frame) == [F, F, F, T, T, T, N, N, N]
    assert values("x == y", frame) == [T, F, N, F, T, N, N, N, N]
    assert values("x is null or y is null", frame) == [F, F, T, F, F, T, T, T, T]


def test_null_literals_follow_the_same_logic() -> None:
    assert values("null and false") == [False] * 4
    assert values("null or true") == [True] * 4
    assert values("not null") == [None] * 4
    assert values("null and true") == [None] * 4
    assert values("age > 25 and null") == [None, None, None, False]
    assert values("age + null") == [None] * 4


def test_today_is_midnight_of_the_reference_day_in_the_workspace_zone() -> None:
    today = values("today()")[0]
    assert today == pd.Timestamp("2026-01-31T00:00", tz=PARIS)
    # 23:30 UTC on the 30th is already the 31st in Paris
    late = values("today()", as_of=pd.Timestamp("2026-01-30T23:30Z"))[0]
    assert late == pd.Timestamp("2026-01-31T00:00", tz=PARIS)
    naive = values("today()", as_of=pd.Timestamp("2026-01-31 00:10"))[0]  # wall time in Paris
    assert naive == pd.Timestamp("2026-01-31T00:00", tz=PARIS)


def test_date_literal_is_midnight_in_the_workspace_zone() -> None:
    assert values("date('2026-07-14')")[0] == pd.Timestamp("2026-07-13T22:00Z")
    assert values("date('2026-01-31') == today()") == [True] * 4


def test_whole_days_between_dates_are_calendar_days_in_the_zone() -> None:
    # 22:59Z is 23:59 on the 30th in Paris (1 day ago); 23:01Z is already the 31st (0 days)
    assert values("today() - last_order_at") == [1, None, 0, 90]


def test_adding_days_keeps_the_wall_clock_across_daylight_saving() -> None:
    # Paris moves to summer time in the night of 28 to 29 March 2026
    assert values("date('2026-03-28') + 1")[0] == pd.Timestamp("2026-03-29T00:00", tz=PARIS)
    assert values("date('2026-03-28') + 2")[0] == pd.Timestamp("2026-03-30T00:00", tz=PARIS)
    assert values("2 + date('2026-03-28') == date('2026-03-30')") == [True] * 4
    assert values("date('2026-03-30') - date('2026-03-28')") == [2] * 4
    assert values("date('2026-10-26') - 1 == date('2026-10-25')") == [True] * 4


def test_recent_orders_against_a_moving_date() -> None:
    assert values("last_order_at >= today() - 1") == [True, None, True, False]
    assert values("last_order_at < today() - 60") == [False, None, False, True]


def test_truth_is_a_nullable_boolean_series_on_the_frame_index() -> None:
    frame = contacts()
    ev = PandasEvaluator(frame, kinds_from_frame(frame), AS_OF, PARIS)
    truth = ev.truth(parse_expression("age > 25"))
    assert str(truth.dtype) == "boolean"
    assert truth.index.equals(frame.index)
    assert truth.isna().tolist() == [False, True, False, False]


def test_kinds_from_frame() -> None:
    frame = contacts().assign(
        n=pd.array([1, None, 3, 4], dtype="Int64"),
        flag=pd.array([True, None, False, True], dtype="boolean"),
        nothing=[None, None, None, None],
        obj_city=["a", None, "b", "c"],
        day=pd.to_datetime(["2026-01-01", None, "2026-01-02", "2026-01-03"]),
        cat=pd.Categorical(["x", "y", "x", None]),
    )
    kinds = kinds_from_frame(frame)
    assert kinds["age"] == Kind.NUMBER and kinds["n"] == Kind.NUMBER
    assert kinds["city"] == Kind.STRING and kinds["obj_city"] == Kind.STRING
    assert kinds["cat"] == Kind.STRING and kinds["contact_id"] == Kind.STRING
    assert kinds["tags"] == Kind.LIST
    assert kinds["subscribed"] == Kind.BOOL and kinds["flag"] == Kind.BOOL
    assert kinds["last_order_at"] == Kind.DATETIME and kinds["day"] == Kind.DATETIME
    assert kinds["nothing"] == Kind.ANY


def test_nullable_and_object_columns_evaluate_like_native_ones() -> None:
    frame = pd.DataFrame(
        {
            "contact_id": ["a", "b", "c"],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "nothing": [None, None, None],
            "town": ["Lyon", None, "Nice"],
            "day": pd.to_datetime(["2026-01-31", None, "2026-02-01"]),  # naive: Paris wall time
            "cat": pd.Categorical(["x", "y", None]),
        }
    )
    assert values("n >= 2", frame) == [False, None, True]
    assert values("flag or n > 2", frame) == [True, None, True]
    assert values("nothing == 3", frame) == [None, None, None]
    assert values("nothing is null", frame) == [True, True, True]
    assert values("town == 'Nice'", frame) == [False, None, True]
    assert values("day == date('2026-01-31')", frame) == [True, None, False]
    assert values("cat in ['y']", frame) == [False, True, None]


def test_each_distinct_sub_expression_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = evaluator_module.load_column

    def counting_load(series: pd.Series, kind: Kind, tz: ZoneInfo):  # noqa: ANN202
        loads.append(str(series.name))
        return real_load(series, kind, tz)

    flattened: list[object] = []
    real_flatten = evaluator_module.flatten_lists

    def counting_flatten(series: pd.Series):  # noqa: ANN202
        flattened.append(series.name)
        return real_flatten(series)

    monkeypatch.setattr(evaluator_module, "load_column", counting_load)
    monkeypatch.setattr(evaluator_module, "flatten_lists", counting_flatten)
    frame = contacts()
    ev = PandasEvaluator(frame, kinds_from_frame(frame), AS_OF, PARIS)
    first = parse_expression("tags contains 'vip' or (age > 25 and tags contains 'bio')")
    second = parse_expression("age > 25 and not tags contains 'x'")
    assert ev.values(first) == [True, False, None, False]
    assert ev.values(second) == [True, None, None, False]
    assert sorted(loads) == ["age", "tags"]
    assert flattened == ["tags"]


def test_a_missing_metric_column_is_a_clear_error() -> None:
    frame = contacts().drop(columns=["orders(days=90, offset=0)"])
    with pytest.raises(RuleError, match=r"no metric 'orders\(days=90, offset=0\)'"):
        values("orders(days=90) > 1", frame)


def test_list_contains_on_a_large_column_is_vectorised() -> None:
    n = 300_000
    pool = [[], ["vip"], ["bio", "vip"], ["promo"], None, ["VIP", "bio"]]
    picks = np.random.default_rng(7).integers(0, len(pool), n)
    frame = pd.DataFrame({"contact_id": np.arange(n).astype(str), "tags": [pool[i] for i in picks]})
    ev = PandasEvaluator(frame, {"tags": Kind.LIST, "contact_id": Kind.STRING}, AS_OF, PARIS)
    got = ev.truth(parse_expression("tags contains 'vip'"))
    assert got.isna().to_numpy().tolist() == (picks == 4).tolist()
    assert got.fillna(False).to_numpy(dtype=bool).tolist() == np.isin(picks, [1, 2]).tolist()


def test_list_elements_that_are_not_strings_compare_as_text() -> None:
    frame = pd.DataFrame({"contact_id": ["a", "b", "c"], "codes": [[1, 2], ["3"], (4,)]})
    assert values("codes contains '2'", frame) == [True, False, False]
    assert values("codes contains '4'", frame) == [False, False, True]
