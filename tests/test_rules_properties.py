"""Property tests: the column-wise evaluator agrees with an obviously-correct per-row one.

Random well-typed trees over a small random frame are evaluated twice: by the
real engine (whole columns, null masks, caching) and by `reference`, a direct
transcription of the language's rules for one row in plain Python with
three-valued logic. Trees also survive printing and re-parsing unchanged.
"""

from __future__ import annotations

import datetime as dt
import operator
import textwrap
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmerge.metrics.catalog import Kind
from segmerge.rules import PandasEvaluator, kinds_from_frame, load_ruleset
from segmerge.rules import ast as A
from segmerge.rules.checker import Scope, bind_call, check_condition, kind_of
from segmerge.rules.parser import parse
from segmerge.rules.sql import DuckDBEvaluator

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC
# Days around both daylight-saving changes; times of day away from the 2-3 am gap/overlap.
DAYS = [dt.date(2025, 3, d) for d in (29, 30, 31)] + [dt.date(2025, 10, d) for d in (25, 26, 27)]
DAYS += [dt.date(2026, 1, 30), dt.date(2026, 1, 31)]
HOURS = [0, 6, 12, 18]
NUMBERS = [-3, -1, 0, 1, 2, 0.5, -2.5, 4]
TEXTS = ["", "a", "ab", "b", "ba", "A"]
METRIC_KEY = "orders(days=30, offset=0)"
_DUCK = duckdb.connect()
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _moment(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).astimezone(UTC)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


def cells(values: list[Any]) -> list[Any]:
    """A column's cell choices: null half the time, else one of ``values`` (a zero
    byte, where shrinking goes, is null)."""
    return [None] * len(values) + values


_NUMBER = cells(NUMBERS)
_TEXT = cells(TEXTS)
_BOOL = cells([True, False])
_MOMENT = cells([_moment(day, hour) for day in DAYS for hour in HOURS])
#: the cells of each column, in the frame's bytes: each column one byte a cell, the
#: list column two (its null-or-length, its items as base-6 digits)
_COLUMNS = (_NUMBER, _NUMBER, _TEXT, _TEXT, _BOOL, _BOOL, _MOMENT, _NUMBER)
_WIDTH = len(_COLUMNS) + 2


def _list_cell(head: int, items: int) -> list[str] | None:
    if head % 2 == 0:
        return None
    return [TEXTS[items // 6**i % 6] for i in range((head >> 1) % 4)]


@cache
def _frame_bytes(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n * _WIDTH, max_size=n * _WIDTH)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A frame of 1 to 8 rows drawn as one run of bytes, one byte a cell: uniform
    random bytes, shrinking to nulls. A draw per cell (hypothesis lists of sampled
    values) cost more than evaluating the trees on the frame."""
    n = draw(st.integers(1, 8))
    raw = draw(_frame_bytes(n))
    cols = [
        [values[b % len(values)] for b in raw[j * n : (j + 1) * n]]
        for j, values in enumerate(_COLUMNS)
    ]
    n1, n2, s1, s2, b1, b2, d1, metric_values = cols
    heads, items = raw[len(_COLUMNS) * n : (len(_COLUMNS) + 1) * n], raw[(len(_COLUMNS) + 1) * n :]
    l1 = [_list_cell(h, i) for h, i in zip(heads, items, strict=True)]
    return pd.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "n1": pd.array(n1, dtype="Float64"),
            "n2": np.array([np.nan if v is None else v for v in n2], dtype=float),
            "s1": pd.Series(s1, dtype="string"),
            "s2": pd.Series(s2, dtype=object),
            "b1": pd.Series(b1, dtype="boolean"),
            "b2": pd.Series(b2, dtype="boolean"),
            "d1": pd.to_datetime(pd.Series(d1, dtype=object), utc=True),
            "l1": pd.Series(l1, dtype=object),
            METRIC_KEY: np.array([np.nan if v is None else v for v in metric_values], dtype=float),
        }
    )


# --- typed tree strategies --------------------------------------------------------------------

num_lit = st.sampled_from(NUMBERS).map(A.Number)
str_lit = st.sampled_from(TEXTS).map(A.String)
date_lit = st.sampled_from(DAYS).map(A.DateLit)
metric = st.sampled_from(
    [
        A.Func("orders", (), (("days", A.Number(30)),)),
        A.Func("orders", (A.Number(30),)),
        A.Func("orders", (A.Number(30), A.Number(0))),
        A.Func("orders", (), (("offset", A.Number(0)), ("days", A.Number(30)))),
    ]
)


_DIVISORS = [A.Number(0), A.Name("n1"), A.Name("n2"), A.Arith("-", A.Name("n1"), A.Name("n2"))]


@cache
def dates(depth: int) -> st.SearchStrategy[A.Node]:
    leaf = st.one_of(st.just(A.Name("d1")), date_lit, st.just(A.Today()))
    if depth <= 0:
        return leaf
    shift = st.one_of(num_lit, st.sampled_from([A.Name("n1"), A.Name("n2")]))
    moved = st.builds(A.Arith, st.sampled_from("+-"), leaf, shift)
    return st.one_of(leaf, moved, st.builds(A.Arith, st.just("+"), shift, leaf))


@cache
def numbers(depth: int) -> st.SearchStrategy[A.Node]:
    leaf = st.one_of(num_lit, st.sampled_from([A.Name("n1"), A.Name("n2")]), metric)
    if depth <= 0:
        return leaf
    sub = numbers(depth - 1)
    return st.one_of(
        leaf,
        st.builds(A.Arith, st.sampled_from("+-*/"), sub, sub),
        st.builds(A.Arith, st.just("/"), sub, st.sampled_from(_DIVISORS)),  # often by zero
        sub.filter(lambda n: not isinstance(n, A.Number)).map(A.Neg),
        st.builds(A.Arith, st.just("-"), dates(depth - 1), dates(depth - 1)),
    )


def texts() -> st.SearchStrategy[A.Node]:
    return st.one_of(str_lit, st.sampled_from([A.Name("s1"), A.Name("s2")]))


@cache
def conditions(depth: int) -> st.SearchStrategy[A.Node]:
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    leaf = st.one_of(
        st.sampled_from([A.Name("b1"), A.Name("b2"), A.Bool(True), A.Bool(False), A.Null()]),
        st.builds(A.Contains, st.just(A.Name("l1")), str_lit),
        st.builds(A.Contains, texts(), str_lit),
        st.builds(A.StartsWith, texts(), str_lit),
    )
    if depth <= 0:
        return leaf
    sub, num, dat = conditions(depth - 1), numbers(depth - 1), dates(depth - 1)
    not_null = sub.filter(lambda n: not isinstance(n, A.Null))  # `x == null` is refused
    scalar = st.one_of(num, texts(), dat, sub)
    return st.one_of(
        leaf,
        st.builds(A.Compare, ops, num, num),
        st.builds(A.Compare, ops, texts(), texts()),
        st.builds(A.Compare, ops, dat, dat),
        st.builds(A.Compare, st.sampled_from(["==", "!="]), not_null, not_null),
        st.builds(
            A.In,
            num,
            st.lists(st.one_of(num_lit, st.just(A.Null())), max_size=3).map(tuple),
            st.booleans(),
        ),
        st.builds(A.In, texts(), st.lists(str_lit, max_size=3).map(tuple), st.booleans()),
        st.builds(A.Between, num, num, num),
        st.builds(A.IsNull, scalar, st.booleans()),
        st.builds(A.Not, sub),
        st.builds(A.And, sub, sub),
        st.builds(A.Or, sub, sub),
    )


# --- the reference: one row, plain Python -----------------------------------------------------

_CMP = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def k_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def k_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def reference(node: A.Node, row: dict[str, Any], today: dt.datetime) -> Any:  # noqa: C901
    r = lambda n: reference(n, row, today)  # noqa: E731
    if isinstance(node, A.Number):
        return float(node.value)
    if isinstance(node, A.String | A.Bool):
        return node.value
    if isinstance(node, A.Null):
        return None
    if isinstance(node, A.DateLit):
        return _midnight(node.value)
    if isinstance(node, A.Today):
        return today
    if isinstance(node, A.Name):
        return _cell(row[node.name])
    if isinstance(node, A.Func):
        return _cell(row[bind_call(node).key])
    if isinstance(node, A.Neg):
        v = r(node.operand)
        return None if v is None else -v
    if isinstance(node, A.Arith):
        a, b = r(node.left), r(node.right)
        if a is None or b is None:
            return None
        if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
            return float((a.astimezone(PARIS).date() - b.astimezone(PARIS).date()).days)
        if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
            moment, days = (a, b) if isinstance(a, dt.datetime) else (b, a)
            days = -days if node.op == "-" else days
            wall = moment.astimezone(PARIS).replace(tzinfo=None) + dt.timedelta(days=days)
            return wall.replace(tzinfo=PARIS).astimezone(UTC)
        if node.op == "/":
            return None if b == 0 else a / b
        out = {"+": a + b, "-": a - b, "*": a * b}[node.op]
        return None if out != out else out  # NaN (inf - inf) is null
    if isinstance(node, A.Compare):
        a, b = r(node.left), r(node.right)
        return None if a is None or b is None else _CMP[node.op](a, b)
    if isinstance(node, A.In):
        result: bool | None = False
        for item in node.items:
            result = k_or(result, r(A.Compare("==", node.operand, item)))
        return (None if result is None else not result) if node.negated else result
    if isinstance(node, A.Between):
        return k_and(
            r(A.Compare(">=", node.operand, node.low)), r(A.Compare("<=", node.operand, node.high))
        )
    if isinstance(node, A.IsNull):
        return (r(node.operand) is not None) if node.negated else (r(node.operand) is None)
    if isinstance(node, A.Contains):
        haystack, needle = r(node.operand), r(node.needle)
        return None if haystack is None or needle is None else needle in haystack
    if isinstance(node, A.StartsWith):
        text, prefix = r(node.operand), r(node.prefix)
        return None if text is None or prefix is None else text.startswith(prefix)
    if isinstance(node, A.Not):
        v = r(node.operand)
        return None if v is None else not v
    if isinstance(node, A.And):
        return k_and(r(node.left), r(node.right))
    if isinstance(node, A.Or):
        return k_or(r(node.left), r(node.right))
    raise TypeError(node)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(zip(frame.columns, vals, strict=True)) for vals in frame.astype(object).values]


AS_OF = st.builds(_moment, st.sampled_from(DAYS), st.sampled_from(HOURS)).map(pd.Timestamp)


@SETTINGS
@given(frame=frames(), expr=st.one_of(conditions(3), numbers(2), dates(1)), as_of=AS_OF)
def test_column_wise_evaluator_matches_the_per_row_reference(
    frame: pd.DataFrame, expr: A.Node, as_of: pd.Timestamp
) -> None:
    kinds = kinds_from_frame(frame)
    kinds.update({c: k for c, k in _FIXED_KINDS.items()})
    kind_of(expr, Scope(kinds))  # well-typed by construction: the checker must agree
    got = PandasEvaluator(frame, kinds, as_of, PARIS).values(expr)
    today = _midnight(as_of.tz_convert(PARIS).date())
    expected = [reference(expr, row, today) for row in _rows(frame)]
    assert got == expected, expr.to_text()


# Columns that may be entirely null in a drawn frame still have their declared kind.
_FIXED_KINDS = {
    "n1": Kind.NUMBER,
    "n2": Kind.NUMBER,
    "s1": Kind.STRING,
    "s2": Kind.STRING,
    "b1": Kind.BOOL,
    "b2": Kind.BOOL,
    "d1": Kind.DATETIME,
    "l1": Kind.LIST,
}


@SETTINGS
@given(frame=frames(), expr=conditions(3))
def test_truth_is_true_exactly_where_the_reference_is_true(
    frame: pd.DataFrame, expr: A.Node
) -> None:
    kinds = {**kinds_from_frame(frame), **_FIXED_KINDS}
    check_condition(expr, Scope(kinds))
    as_of = pd.Timestamp("2026-01-31T12:00Z")
    truth = PandasEvaluator(frame, kinds, as_of, PARIS).truth(expr)
    today = _midnight(dt.date(2026, 1, 31))
    expected = [reference(expr, row, today) for row in _rows(frame)]
    assert [None if v is pd.NA else bool(v) for v in truth.astype(object)] == expected


# --- printing and re-parsing ------------------------------------------------------------------

names = st.sampled_from(["age", "city", "in", "Not", "andré", "tag_2", "_x", "order id"]).map(
    A.Name
)
any_string = st.text(alphabet="ab'\"\\ é#\n", max_size=6).map(A.String)
any_number = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
).map(A.Number)
func_args = st.one_of(any_number, names)


@cache
def any_tree(depth: int) -> st.SearchStrategy[A.Node]:
    leaf = st.one_of(
        any_number,
        any_string,
        names,
        date_lit,
        st.just(A.Today()),
        st.just(A.Null()),
        st.booleans().map(A.Bool),
        st.builds(
            A.Func,
            st.sampled_from(["orders", "distinct", "x"]),
            st.lists(func_args, max_size=2).map(tuple),
            st.lists(
                st.tuples(st.sampled_from(["days", "offset"]), func_args),
                max_size=2,
                unique_by=lambda kv: kv[0],
            ).map(tuple),
        ),
    )
    if depth <= 0:
        return leaf
    sub = any_tree(depth - 1)
    return st.one_of(
        leaf,
        sub.filter(lambda n: not isinstance(n, A.Number)).map(A.Neg),
        st.builds(A.Arith, st.sampled_from("+-*/"), sub, sub),
        st.builds(A.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), sub, sub),
        st.builds(A.In, sub, st.lists(sub, max_size=3).map(tuple), st.booleans()),
        st.builds(A.Between, sub, sub, sub),
        st.builds(A.IsNull, sub, st.booleans()),
        st.builds(A.Contains, sub, sub),
        st.builds(A.StartsWith, sub, sub),
        st.builds(A.Not, sub),
        st.builds(A.And, sub, sub),
        st.builds(A.Or, sub, sub),
    )


@settings(max_examples=60, deadline=None)
@given(tree=any_tree(3))
def test_printing_then_parsing_gives_the_same_tree(tree: A.Node) -> None:
    text = tree.to_text()
    assert parse(text) == tree, text


# --- modes ------------------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    frame=frames(),
    whens=st.lists(conditions(2), min_size=1, max_size=4),
    exclude=nullable(conditions(1)),
)
def test_mode_first_is_mode_all_minus_earlier_segments(
    tmp_path: Path, frame: pd.DataFrame, whens: list[A.Node], exclude: A.Node | None
) -> None:
    def rules(mode: str) -> Path:
        lines = [f"version: 1\nmode: {mode}\n"]
        if exclude is not None:
            lines.append(f"exclude: >-\n  {exclude.to_text()}\n")
        lines.append("segments:\n")
        for i, when in enumerate(whens):
            body = textwrap.indent(when.to_text(), "      ")
            lines.append(f"  - name: s{i}\n    when: |-\n{body}\n")
        path = tmp_path / f"{mode}.yaml"
        path.write_text("".join(lines), encoding="utf-8")
        return path

    as_of = pd.Timestamp("2026-01-31T12:00Z")
    first = load_ruleset(rules("first")).assign(frame, as_of, PARIS).matrix.to_numpy()
    every = load_ruleset(rules("all")).assign(frame, as_of, PARIS)
    matrix = every.matrix.to_numpy()
    assert (first.sum(axis=1) <= 1).all()
    earlier = np.zeros(len(frame), dtype=bool)
    for j in range(matrix.shape[1]):
        assert (first[:, j] == (matrix[:, j] & ~earlier)).all()
        earlier |= matrix[:, j]
    assert not matrix[every.excluded.to_numpy()].any()


# --- the SQL engine ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), expr=st.one_of(conditions(3), numbers(2), dates(1)), as_of=AS_OF)
def test_duckdb_engine_matches_the_per_row_reference(
    frame: pd.DataFrame, expr: A.Node, as_of: pd.Timestamp
) -> None:
    kinds = {**kinds_from_frame(frame), **_FIXED_KINDS}
    got = DuckDBEvaluator(frame, kinds, as_of, PARIS, connection=_DUCK).values(expr)
    today = _midnight(as_of.tz_convert(PARIS).date())
    expected = [reference(expr, row, today) for row in _rows(frame)]
    assert got == expected, expr.to_text()
