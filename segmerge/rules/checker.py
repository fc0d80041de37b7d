"""Static checks: every name known, every operator applied to the right kinds.

Run when a rule set is loaded, so that a typo or a comparison of a city with a
number fails before any data is pulled. The kind rules live here once and the
evaluator asks the same functions, so what passes the check is exactly what
the evaluator knows how to compute.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from segmerge.i18n import _, number
from segmerge.metrics.catalog import FUNCTIONS, SCALAR_METRICS, TREND_MEASURES, Kind, MetricCall
from segmerge.rules import ast
from segmerge.rules.kinds import (
    CONDITION,
    KindProblem,
    arith_kind,
    compare_kind,
    condition_kind,
    neg_kind,
    said,
)
from segmerge.rules.parser import ExprError


@dataclass(frozen=True)
class Scope:
    """What names mean: contact columns and their kinds, and (if known) the orders columns."""

    columns: Mapping[str, Kind]
    orders_columns: Collection[str] | None = None

    def kind_of_name(self, name: str) -> Kind | None:
        if name in SCALAR_METRICS:
            return SCALAR_METRICS[name]
        kind = self.columns.get(name)
        if kind == Kind.ANY:  # a column without a single value: every comparison is null
            return Kind.NULL
        return kind


def suggest(name: str, known: Collection[str]) -> list[str]:
    return difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)


def _did_you_mean(name: str, known: Collection[str]) -> str:
    close = suggest(name, known)
    if not close:
        return ""
    return _("; did you mean {names}?").format(names=_(" or ").join(repr(c) for c in close))


def _at(node: ast.Node) -> int:
    return node.pos.start if node.pos else 0


def check_condition(expr: ast.Node, scope: Scope) -> None:
    """Raise :class:`ExprError` unless ``expr`` is a well-typed condition over ``scope``."""
    kind = kind_of(expr, scope)
    if kind not in CONDITION:
        hint = _("compare it, e.g. age > 30") if kind == Kind.NUMBER else None
        raise ExprError(
            _("expected {expected}, got {got}").format(expected=said(Kind.BOOL), got=said(kind)),
            _at(expr),
            hint,
        )


def kind_of(node: ast.Node, scope: Scope) -> Kind:
    """The kind of ``node``, raising :class:`ExprError` at the offending sub-expression."""
    try:
        return _kind(node, scope)
    except KindProblem as problem:  # pragma: no cover - _kind always locates its problems
        raise ExprError(problem.message, _at(node), problem.hint) from None


def _kind(node: ast.Node, scope: Scope) -> Kind:
    if isinstance(node, ast.Number):
        return Kind.NUMBER
    if isinstance(node, ast.String):
        return Kind.STRING
    if isinstance(node, ast.Bool):
        return Kind.BOOL
    if isinstance(node, ast.Null):
        return Kind.NULL
    if isinstance(node, ast.DateLit | ast.Today):
        return Kind.DATETIME
    if isinstance(node, ast.Name):
        return _name_kind(node, scope)
    if isinstance(node, ast.Func):
        bind_call(node, scope.orders_columns)
        return FUNCTIONS[node.name].returns
    if isinstance(node, ast.Neg):
        return _apply(neg_kind, {"operand": node.operand}, scope)
    if isinstance(node, ast.Arith):
        sides = {"left": node.left, "right": node.right}
        return _apply(lambda a, b: arith_kind(node.op, a, b), sides, scope)
    if isinstance(node, ast.Compare):
        _no_null_literal(node.left, node.right)
        sides = {"left": node.left, "right": node.right}
        return _apply(lambda a, b: compare_kind(node.op, a, b), sides, scope)
    if isinstance(node, ast.In):
        for item in node.items or (ast.Null(),):
            sides = {"left": node.operand, "right": item}
            _apply(lambda a, b: compare_kind("==", a, b), sides, scope)
        return Kind.BOOL
    if isinstance(node, ast.Between):
        for op, bound in ((">=", node.low), ("<=", node.high)):
            sides = {"left": node.operand, "right": bound}
            _apply(lambda a, b, op=op: compare_kind(op, a, b), sides, scope)
        return Kind.BOOL
    if isinstance(node, ast.IsNull):
        _kind(node.operand, scope)
        return Kind.BOOL
    if isinstance(node, ast.Contains | ast.StartsWith):
        return _string_test(node, scope)
    if isinstance(node, ast.Not):
        return _apply(condition_kind, {"operand": node.operand}, scope)
    if isinstance(node, ast.And | ast.Or):
        _apply(condition_kind, {"operand": node.left}, scope)
        return _apply(condition_kind, {"operand": node.right}, scope)
    raise TypeError(f"not a rule node: {node!r}")  # pragma: no cover


def _apply(rule: Callable[..., Kind], sides: dict[str, ast.Node], scope: Scope) -> Kind:
    kinds = [_kind(n, scope) for n in sides.values()]
    try:
        return rule(*kinds)
    except KindProblem as problem:
        blamed = sides.get(problem.side) or next(iter(sides.values()))
        raise ExprError(problem.message, _at(blamed), problem.hint) from None


def _no_null_literal(*nodes: ast.Node) -> None:
    for n in nodes:
        if isinstance(n, ast.Null):
            raise ExprError(
                _("a comparison with null is never true"),
                _at(n),
                _("write `x is null` or `x is not null`"),
            )


def _string_test(node: ast.Contains | ast.StartsWith, scope: Scope) -> Kind:
    word = "contains" if isinstance(node, ast.Contains) else "startswith"
    operand, needle = (
        (node.operand, node.needle)
        if isinstance(node, ast.Contains)
        else (node.operand, node.prefix)
    )
    kind = _kind(operand, scope)
    allowed = (
        (Kind.LIST, Kind.STRING, Kind.NULL) if word == "contains" else (Kind.STRING, Kind.NULL)
    )
    if kind not in allowed:
        expected = _("a list or a string") if word == "contains" else _("a string")
        hint = _("for a list, use contains") if kind == Kind.LIST else None
        raise ExprError(
            _("{word} expected {expected} on its left, got {got}").format(
                word=word, expected=expected, got=said(kind)
            ),
            _at(operand),
            hint,
        )
    if not isinstance(needle, ast.String):
        raise ExprError(
            _("expected a quoted string after '{word}', got {got}").format(
                word=word, got=said(_kind(needle, scope))
            ),
            _at(needle),
            _("e.g. tags {word} 'vip'").format(word=word),
        )
    return Kind.BOOL


def _name_kind(node: ast.Name, scope: Scope) -> Kind:
    kind = scope.kind_of_name(node.name)
    if kind is not None:
        return kind
    if node.name in FUNCTIONS:
        fn = FUNCTIONS[node.name]
        example = ", ".join(_EXAMPLE[p.kind].format(name=p.name) for p in fn.params)
        raise ExprError(
            _("{name} is a metric function and needs arguments").format(name=node.name),
            _at(node),
            _("e.g. {call} — {doc}").format(call=f"{node.name}({example})", doc=fn.doc),
        )
    known = set(scope.columns) | set(SCALAR_METRICS)
    message = _("unknown name {name}").format(name=repr(node.name)) + _did_you_mean(
        node.name, known
    )
    shown = ", ".join(sorted(scope.columns)[:15])
    hint = _("names are contact columns ({columns}) or metrics ({metrics})").format(
        columns=shown, metrics=", ".join(SCALAR_METRICS)
    )
    raise ExprError(message, _at(node), hint)


def bind_call(node: ast.Func, orders_columns: Collection[str] | None = None) -> MetricCall:
    """Match a call's arguments to its declaration; the bound call names its metric column."""
    fn = FUNCTIONS.get(node.name)
    if fn is None:
        message = _("unknown function {name}").format(name=repr(node.name)) + _did_you_mean(
            node.name, FUNCTIONS
        )
        hint = _("functions: {names}").format(names=", ".join([*FUNCTIONS, "date", "today"]))
        raise ExprError(message, _at(node), hint)
    signature = f"{fn.name}({', '.join(p.name + ('' if p.required else '=…') for p in fn.params)})"
    if len(node.args) > len(fn.params):
        extra = node.args[len(fn.params)]
        raise ExprError(
            _("too many arguments: {signature} takes {n}").format(
                signature=signature, n=len(fn.params)
            ),
            _at(extra),
        )
    given: dict[str, ast.Node] = {p.name: a for p, a in zip(fn.params, node.args, strict=False)}
    names = [p.name for p in fn.params]
    for i, (key, value) in enumerate(node.kwargs):
        where = node.kwarg_pos[i] if i < len(node.kwarg_pos) else None
        at = where.start if where else _at(value)
        if key not in names:
            message = _("{function}() has no argument {name}").format(
                function=fn.name, name=repr(key)
            ) + _did_you_mean(key, names)
            raise ExprError(message, at, _("it takes {signature}").format(signature=signature))
        if key in given:
            raise ExprError(_("argument {name} is given twice").format(name=key), at)
        given[key] = value
    bound: dict[str, int | str | None] = {}
    for param in fn.params:
        if param.name not in given:
            if param.required:
                example = _EXAMPLE[param.kind].format(name=param.name)
                raise ExprError(
                    _("{function}() needs its argument {name}").format(
                        function=fn.name, name=param.name
                    ),
                    _at(node),
                    _("e.g. {call}; it takes {signature}").format(
                        call=f"{fn.name}({example})", signature=signature
                    ),
                )
            continue
        value = given[param.name]
        if param.kind == "int":
            bound[param.name] = _days(param.name, value)
        elif param.kind == "measure":
            bound[param.name] = _measure(param.name, value)
        elif param.kind == "text":
            if not isinstance(value, ast.String):
                raise ExprError(
                    _("{name} must be a quoted text, e.g. 'last'").format(name=param.name),
                    _at(value),
                )
            bound[param.name] = value.value
        else:
            bound[param.name] = _orders_column(param.name, value, orders_columns)
    return MetricCall.bind(fn.name, **bound)


_EXAMPLE = {"int": "{name}=90", "column": "category", "measure": "revenue", "text": "'last'"}


def _measure(param: str, value: ast.Node) -> str:
    name = value.name if isinstance(value, ast.Name) else getattr(value, "value", None)
    if name not in TREND_MEASURES:
        shown = value.to_text()
        raise ExprError(
            _("{name} must be one of {values}; got {shown}").format(
                name=param, values=", ".join(TREND_MEASURES), shown=shown
            )
            + _did_you_mean(str(shown), TREND_MEASURES),
            _at(value),
        )
    return str(name)


#: A century: windows reaching further back than pandas' datetimes (1677) would crash the
#: metrics, and no shop has orders that old.
MAX_DAYS = 36_500


def _days(param: str, value: ast.Node) -> int:
    ok = isinstance(value, ast.Number) and float(value.value).is_integer()
    if not ok or value.value < 0:  # type: ignore[attr-defined]
        shown = value.to_text()
        raise ExprError(
            _("{name} must be a whole number of days, 0 or more; got {shown}").format(
                name=param, shown=shown
            ),
            _at(value),
        )
    if value.value > MAX_DAYS:  # type: ignore[attr-defined]
        raise ExprError(
            _("{name} must be at most {days} days (a century); got {shown}").format(
                name=param, days=number(MAX_DAYS), shown=value.to_text()
            ),
            _at(value),
        )
    return int(value.value)  # type: ignore[attr-defined]


def _orders_column(param: str, value: ast.Node, orders_columns: Collection[str] | None) -> str:
    if isinstance(value, ast.Name):
        name = value.name
    elif isinstance(value, ast.String):
        name = value.value
    else:
        raise ExprError(
            _("{name} must name a column of the orders, e.g. category").format(name=param),
            _at(value),
        )
    if orders_columns is not None and name not in orders_columns:
        message = _("the orders have no column '{name}'").format(name=name) + _did_you_mean(
            name, orders_columns
        )
        hint = _("orders columns: {names}").format(names=", ".join(sorted(orders_columns)))
        raise ExprError(message, _at(value), hint)
    return name
