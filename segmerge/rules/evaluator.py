"""Column-wise evaluation of a rule tree on a pandas frame of contacts.

Every sub-expression becomes one whole column (or one constant) computed with
numpy/pandas, never a Python loop over contacts, and each distinct
sub-expression is computed once per frame (the tree's equality ignores source
positions, so it doubles as the cache key). Values carry an explicit null
mask, which keeps the SQL three-valued logic in plain numpy: a comparison with
a null is null, ``null and false`` is false, ``null or true`` is true.

Callers only see :class:`Evaluator`; the pandas implementation is one engine
behind it, so a SQL engine can take its place when the data lives elsewhere.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.metrics.catalog import FUNCTIONS, SCALAR_METRICS, Kind
from segmerge.rules import ast
from segmerge.rules.checker import Scope, bind_call
from segmerge.rules.columns import (
    DAY_NS,
    day_start,
    equal_mask,
    flatten_lists,
    load_column,
    local_midnight_ns,
    shift_days,
)
from segmerge.rules.kinds import arith_kind, compare_kind, condition_kind, neg_kind

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class V:
    """One evaluated sub-expression: values plus a null mask, or a constant.

    ``vals`` is a float64 array (NUMBER, NaN where null), a bool array (BOOL),
    an int64 array of UTC nanoseconds (DATETIME), a nullable-string Series
    (STRING) or an object Series of lists (LIST); a constant holds a scalar.
    """

    kind: Kind
    vals: Any
    mask: Any
    const: bool
    cache: dict[str, Any] = field(default_factory=dict)


_NULL = V(Kind.NULL, None, np.True_, True)
#: Bytes of per-contact results the cache may keep for operators (names and metric columns
#: are always kept). Caching every sub-expression of a generated 20,000-term `or` would
#: hold 40,000 arrays per contact; past this budget results are recomputed when needed.
_CACHE_BYTES = 64_000_000
_LEAVES = (ast.Name, ast.Func, *ast.LITERALS, ast.Today)
_LITERAL_KINDS = {ast.Number: Kind.NUMBER, ast.String: Kind.STRING, ast.DateLit: Kind.DATETIME}


def _bool(vals: Any, mask: Any, const: bool) -> V:
    return V(Kind.BOOL, vals, mask, const)


class Evaluator(ABC):
    """Evaluates rule trees over one table of contacts (one row per contact)."""

    @abstractmethod
    def truth(self, expr: ast.Node) -> pd.Series:
        """A nullable-boolean Series aligned with the frame: True, False or <NA> per contact."""

    @abstractmethod
    def values(self, expr: ast.Node) -> list[Any]:
        """Per-contact Python values of any sub-expression (None for null), for explanations."""


class PandasEvaluator(Evaluator):
    """The in-memory engine: numpy arrays with explicit null masks."""

    def __init__(
        self,
        frame: pd.DataFrame,
        kinds: Mapping[str, Kind],
        as_of: pd.Timestamp,
        tz: tzinfo,
    ) -> None:
        self.frame = frame
        self.n = len(frame)
        self.scope = Scope(kinds)
        self.tz = tz
        self.today_ns = int(day_start(as_of, tz).value)
        self._cache: dict[ast.Node, V] = {}
        # an operator's result is a bool array and a mask: about two bytes per contact
        self._room = max(256, _CACHE_BYTES // (2 * max(self.n, 1)))

    # --- public ------------------------------------------------------------------------------

    def truth(self, expr: ast.Node) -> pd.Series:
        v = self.eval(expr)
        if v.kind not in (Kind.BOOL, Kind.NULL):
            raise RuleError(
                _("expected a condition, got a {kind}: {text}").format(
                    kind=v.kind, text=expr.to_text()
                )
            )
        vals, mask = self._full(v.vals if v.kind == Kind.BOOL else False), self._full(v.mask)
        data = pd.arrays.BooleanArray(vals.astype(bool), mask.astype(bool))
        return pd.Series(data, index=self.frame.index)

    def values(self, expr: ast.Node) -> list[Any]:
        v = self.eval(expr)
        mask = self._full(v.mask).astype(bool)
        if v.kind == Kind.NULL:
            return [None] * self.n
        if v.kind in (Kind.STRING, Kind.LIST):
            series = v.vals if not v.const else pd.Series([v.vals] * self.n, dtype=object)
            raw = series.astype(object).tolist()
            if v.kind == Kind.LIST:
                raw = [list(x) if not m else None for x, m in zip(raw, mask, strict=True)]
            return [None if m else x for x, m in zip(raw, mask, strict=True)]
        vals = self._full(v.vals)
        out: list[Any] = []
        for x, m in zip(vals.tolist(), mask.tolist(), strict=True):
            if m:
                out.append(None)
            elif v.kind == Kind.DATETIME:
                out.append(pd.Timestamp(x, tz="UTC").tz_convert(self.tz))
            elif v.kind == Kind.NUMBER:
                out.append(int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x))
            else:
                out.append(bool(x))
        return out

    def eval(self, node: ast.Node) -> V:
        hit = self._cache.get(node)
        if hit is None:
            hit = self._compute(node)
            if isinstance(node, _LEAVES):
                self._cache[node] = hit
            elif self._room > 0:
                self._cache[node] = hit
                self._room -= 1
        return hit

    # --- dispatch ----------------------------------------------------------------------------

    def _compute(self, node: ast.Node) -> V:
        if isinstance(node, ast.Number):
            return V(Kind.NUMBER, np.float64(node.value), np.False_, True)
        if isinstance(node, ast.String):
            return V(Kind.STRING, node.value, np.False_, True)
        if isinstance(node, ast.Bool):
            return _bool(np.bool_(node.value), np.False_, True)
        if isinstance(node, ast.Null):
            return _NULL
        if isinstance(node, ast.DateLit):
            return V(Kind.DATETIME, np.int64(day_start(node.value, self.tz).value), np.False_, True)
        if isinstance(node, ast.Today):
            return V(Kind.DATETIME, np.int64(self.today_ns), np.False_, True)
        if isinstance(node, ast.Name):
            return self._name(node.name)
        if isinstance(node, ast.Func):
            key = bind_call(node).key
            return self._column(key, FUNCTIONS[node.name].returns)
        if isinstance(node, ast.Neg):
            v = self.eval(node.operand)
            neg_kind(v.kind)
            return v if v.kind == Kind.NULL else V(Kind.NUMBER, -v.vals, v.mask, v.const)
        if isinstance(node, ast.Arith):
            return self._arith(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.Compare):
            return self._compare(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.In):
            return self._in(node)
        if isinstance(node, ast.Between):
            low = ast.Compare(">=", node.operand, node.low)
            high = ast.Compare("<=", node.operand, node.high)
            return self.eval(ast.And(low, high))
        if isinstance(node, ast.IsNull):
            v = self.eval(node.operand)
            return _bool(~v.mask if node.negated else v.mask, np.False_, v.const)
        if isinstance(node, ast.Contains):
            return self._contains(self.eval(node.operand), node.needle)
        if isinstance(node, ast.StartsWith):
            return self._startswith(self.eval(node.operand), node.prefix)
        if isinstance(node, ast.Not):
            v = self._cond(node.operand)
            return _bool(~v.vals & ~v.mask, v.mask, v.const)
        if isinstance(node, ast.And | ast.Or):
            return self._logic(isinstance(node, ast.And), self._cond(node.left), node.right)
        raise TypeError(f"not a rule node: {node!r}")  # pragma: no cover

    # --- leaves ------------------------------------------------------------------------------

    def _name(self, name: str) -> V:
        kind = self.scope.kind_of_name(name)
        if kind is None:
            raise RuleError(_("unknown name '{name}'").format(name=name), field=name)
        return self._column(name, kind)

    def _column(self, name: str, kind: Kind) -> V:
        if kind == Kind.NULL:
            return _NULL
        if name not in self.frame.columns:
            if name in SCALAR_METRICS or "(" in name:
                said = _("the contacts have no metric '{name}' to evaluate")
            else:
                said = _("the contacts have no column '{name}' to evaluate")
            raise RuleError(said.format(name=name), field=name)
        vals, mask = load_column(self.frame[name], kind, self.tz)
        return V(kind, vals, mask, False)

    # --- operators ---------------------------------------------------------------------------

    def _cond(self, node: ast.Node) -> V:
        v = self.eval(node)
        condition_kind(v.kind)
        if v.kind == Kind.NULL:
            return _bool(np.False_, np.True_, True)
        return v

    def _logic(self, is_and: bool, left: V, right_node: ast.Node) -> V:
        right = self._cond(right_node)
        lv, lm, rv, rm = left.vals, left.mask, right.vals, right.mask
        if is_and:  # false wins over null, null over true
            false = (~lv & ~lm) | (~rv & ~rm)
            null = ~false & (lm | rm)
            return _bool(~false & ~null, null, left.const and right.const)
        true = (lv & ~lm) | (rv & ~rm)
        null = ~true & (lm | rm)
        return _bool(true, null, left.const and right.const)

    def _compare(self, op: str, left: V, right: V) -> V:
        compare_kind(op, left.kind, right.kind)
        const = left.const and right.const
        if Kind.NULL in (left.kind, right.kind):
            return _bool(np.False_, np.True_, True)
        mask = left.mask | right.mask
        if left.kind != Kind.STRING:
            with np.errstate(invalid="ignore"):
                return _bool(_OPS[op](left.vals, right.vals) & ~mask, mask, const)
        if const:
            return _bool(np.bool_(_OPS[op](left.vals, right.vals)) & ~mask, mask, True)
        if (left.const and left.mask) or (right.const and right.mask):
            return _bool(np.False_, np.True_, True)
        if left.const:
            res = _OPS[_FLIP[op]](right.vals, left.vals)
        else:
            res = _OPS[op](left.vals, right.vals)
        return _bool(_np_bool(res), mask, False)

    def _in(self, node: ast.In) -> V:
        """``x in [a, b]`` is ``x == a or x == b``: null when nothing matches and a side is null."""
        result = self._in_literals(node)
        if result is None:
            result = _bool(np.False_, np.False_, True)
            for item in node.items:
                result = self._logic(False, result, ast.Compare("==", node.operand, item))
        if node.negated:
            return _bool(~result.vals & ~result.mask, result.mask, result.const)
        return result

    def _in_literals(self, node: ast.In) -> V | None:
        """A column against literals of its own kind: one ``isin``, not one pass per item.

        A generated list can hold 100,000 codes; with no null among the items the result is
        simply "found", null where the column is null.
        """
        literal = _LITERAL_KINDS.get(type(node.items[0])) if node.items else None
        if literal is None or any(type(i) is not type(node.items[0]) for i in node.items):
            return None
        operand = self.eval(node.operand)
        if operand.const or operand.kind != literal:
            return None
        values: list[Any] = [i.value for i in node.items]  # type: ignore[attr-defined]
        if literal == Kind.STRING:
            hits = _np_bool(operand.vals.isin(set(values)))
        elif literal == Kind.NUMBER:
            hits = np.isin(operand.vals, np.asarray(values, dtype=np.float64))
        else:
            days = [day_start(v, self.tz).value for v in set(values)]
            hits = np.isin(operand.vals, np.asarray(days, dtype=np.int64))
        return _bool(hits & ~operand.mask, operand.mask, False)

    def _arith(self, op: str, left: V, right: V) -> V:
        kind = arith_kind(op, left.kind, right.kind)
        const = left.const and right.const
        if kind == Kind.NULL:
            return _NULL
        if left.kind == right.kind == Kind.NUMBER:
            with np.errstate(all="ignore"):
                if op == "/":
                    res = np.where(right.vals == 0, np.nan, np.divide(left.vals, right.vals))
                else:
                    res = {"+": np.add, "-": np.subtract, "*": np.multiply}[op](
                        left.vals, right.vals
                    )
            out: Any = np.float64(res) if const else np.asarray(res, dtype=np.float64)
            return V(Kind.NUMBER, out, np.isnan(out), const)
        if left.kind == right.kind == Kind.DATETIME:  # whole calendar days in the workspace tz
            a = local_midnight_ns(self._full(left.vals), self._full(left.mask), self.tz)
            b = local_midnight_ns(self._full(right.vals), self._full(right.mask), self.tz)
            mask = self._full(left.mask | right.mask)
            days = np.where(mask, np.nan, (a - b) // DAY_NS).astype(np.float64)
            return self._shrink(V(Kind.NUMBER, days, mask, const))
        moment, days_v = (left, right) if left.kind == Kind.DATETIME else (right, left)
        sign = -1.0 if op == "-" else 1.0
        vals, mask = shift_days(
            self._full(moment.vals),
            self._full(moment.mask | days_v.mask),
            sign * self._full(np.where(days_v.mask, 0.0, days_v.vals)),
            self.tz,
        )
        return self._shrink(V(Kind.DATETIME, vals, mask, const))

    def _contains(self, operand: V, needle_node: ast.Node) -> V:
        needle = self.eval(needle_node)
        if operand.kind == Kind.NULL or needle.kind == Kind.NULL:
            return _bool(np.False_, np.True_, True)
        text = str(needle.vals)
        if operand.const:
            return _bool(np.bool_(text in operand.vals), operand.mask, True)
        if operand.kind == Kind.STRING:
            return _bool(
                _np_bool(operand.vals.str.contains(text, regex=False)), operand.mask, False
            )
        if operand.kind != Kind.LIST:
            raise RuleError(
                _("contains expected a list or a string, got {kind}").format(kind=operand.kind)
            )
        flat = operand.cache.get("flat")
        if flat is None:  # once per list column, shared by every `contains` on it
            flat = operand.cache["flat"] = flatten_lists(operand.vals)
        rows, items = flat
        hits = np.zeros(self.n, dtype=bool)
        hits[rows[equal_mask(items, text)]] = True
        return _bool(hits & ~operand.mask, operand.mask, False)

    def _startswith(self, operand: V, prefix_node: ast.Node) -> V:
        prefix = self.eval(prefix_node)
        if operand.kind == Kind.NULL or prefix.kind == Kind.NULL:
            return _bool(np.False_, np.True_, True)
        text = str(prefix.vals)
        if operand.const:
            return _bool(np.bool_(str(operand.vals).startswith(text)), operand.mask, True)
        return _bool(_np_bool(operand.vals.str.startswith(text)), operand.mask, False)

    # --- shapes ------------------------------------------------------------------------------

    def _full(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        return np.full(self.n, arr[()]) if arr.ndim == 0 else arr

    def _shrink(self, v: V) -> V:
        """A constant computed on full columns goes back to being a scalar."""
        if v.const and self.n:
            return V(v.kind, v.vals[0], np.bool_(v.mask[0]), True)
        if v.const:
            return V(v.kind, v.vals.dtype.type(0), np.True_, True)
        return v


def _np_bool(result: Any) -> np.ndarray:
    """A pandas boolean result as a plain bool array (nulls are in the mask already)."""
    return np.asarray(result.to_numpy(dtype=bool, na_value=False), dtype=bool)


def evaluate_condition(
    expr: ast.Node,
    frame: pd.DataFrame,
    kinds: Mapping[str, Kind],
    as_of: pd.Timestamp,
    tz: tzinfo,
) -> pd.Series:
    """One-shot helper: where ``expr`` is true (null counts as not matched)."""
    truth = PandasEvaluator(frame, kinds, as_of, tz).truth(expr)
    return truth.fillna(False).astype(bool)
