"""The typed tree of a rule condition.

Frozen dataclasses with no pandas in sight, so the same tree can be checked,
evaluated column-wise on a DataFrame, explained for one contact or compiled to
SQL. Source positions ride along but take no part in equality or hashing: two
occurrences of ``orders(days=90)`` are the same sub-expression, which is what
lets the evaluator compute each distinct sub-expression once, and what makes
"print, re-parse, compare" a meaningful round-trip test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

KEYWORDS = frozenset(
    {"and", "or", "not", "in", "between", "is", "null", "true", "false", "contains", "startswith"}
)
_IDENT = re.compile(r"[^\W\d]\w*")


@dataclass(frozen=True)
class Pos:
    """Where a node sits in its expression text: offsets, then 1-based line and column."""

    start: int
    end: int
    line: int
    column: int


@dataclass(frozen=True)
class Node:
    pos: Pos | None = field(default=None, compare=False, repr=False, kw_only=True)

    def children(self) -> tuple[Node, ...]:
        return ()

    def to_text(self) -> str:
        return to_text(self)


# --- literals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number(Node):
    value: int | float


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Null(Node):
    pass


@dataclass(frozen=True)
class DateLit(Node):
    """``date('2026-01-31')``: midnight of that day in the workspace time zone."""

    value: dt.date


@dataclass(frozen=True)
class Today(Node):
    """``today()``: midnight of the run's reference day in the workspace time zone."""


LITERALS = (Number, String, Bool, Null, DateLit)

# --- references -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Name(Node):
    """A contact column or a scalar metric."""

    name: str


@dataclass(frozen=True)
class Func(Node):
    """A metric function call as written (positional and keyword arguments kept apart)."""

    name: str
    args: tuple[Node, ...] = ()
    kwargs: tuple[tuple[str, Node], ...] = ()
    kwarg_pos: tuple[Pos | None, ...] = field(default=(), compare=False, repr=False)

    def children(self) -> tuple[Node, ...]:
        return self.args + tuple(v for _, v in self.kwargs)


# --- operators ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Neg(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class In(Node):
    operand: Node
    items: tuple[Node, ...]
    negated: bool = False

    def children(self) -> tuple[Node, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True)
class Between(Node):
    """Inclusive on both ends, like SQL."""

    operand: Node
    low: Node
    high: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.low, self.high)


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negated: bool = False

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Contains(Node):
    """List column contains an element, or string contains a substring (both exact)."""

    operand: Node
    needle: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.needle)


@dataclass(frozen=True)
class StartsWith(Node):
    operand: Node
    prefix: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.prefix)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class And(Node):
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Or(Node):
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


Expr = Node


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children, left to right. Its own stack, not
    ``yield from`` itself: that hands each node up through every generator above it, which
    made a 5,000-term `or` cost a dozen steps per node."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


# --- printing back to text ------------------------------------------------------------------

# Binding strength, loosest first; mirrors grammar.lark.
_OR, _AND, _NOT, _PRED, _SUM, _PRODUCT, _UNARY, _ATOM = range(8)


def _prec(node: Node) -> int:
    if isinstance(node, Or):
        return _OR
    if isinstance(node, And):
        return _AND
    if isinstance(node, Not):
        return _NOT
    if isinstance(node, Compare | In | Between | IsNull | Contains | StartsWith):
        return _PRED
    if isinstance(node, Arith):
        return _SUM if node.op in "+-" else _PRODUCT
    if isinstance(node, Neg) or (isinstance(node, Number) and _is_negative(node.value)):
        return _UNARY
    return _ATOM


def _is_negative(value: float) -> bool:
    return value < 0 or (value == 0 and str(value).startswith("-"))


def _wrap(node: Node, at_least: int) -> str:
    text = to_text(node)
    return f"({text})" if _prec(node) < at_least else text


def quote(value: str) -> str:
    """A string literal that parses back to ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def name_text(name: str) -> str:
    """An identifier, back-quoted when it is a keyword or not a plain identifier."""
    if _IDENT.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    return f"`{name}`"


def _number_text(value: int | float) -> str:
    if isinstance(value, bool):  # pragma: no cover - the parser never builds these
        raise TypeError("a Number holds a bool")
    return str(value) if isinstance(value, int) else repr(float(value))


def to_text(node: Node) -> str:
    """Canonical source text with the fewest parentheses that keep the same tree."""
    if isinstance(node, Number):
        return _number_text(node.value)
    if isinstance(node, String):
        return quote(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Null):
        return "null"
    if isinstance(node, DateLit):
        return f"date('{node.value.isoformat()}')"
    if isinstance(node, Today):
        return "today()"
    if isinstance(node, Name):
        return name_text(node.name)
    if isinstance(node, Func):
        parts = [to_text(a) for a in node.args]
        parts += [f"{k}={to_text(v)}" for k, v in node.kwargs]
        return f"{name_text(node.name)}({', '.join(parts)})"
    if isinstance(node, Neg):
        inner = node.operand
        if isinstance(inner, Number):  # "-3" would parse back as the literal -3
            return f"-({to_text(inner)})"
        return "-" + _wrap(inner, _UNARY)
    if isinstance(node, Arith):
        own = _prec(node)
        return f"{_wrap(node.left, own)} {node.op} {_wrap(node.right, own + 1)}"
    if isinstance(node, Compare):
        return f"{_wrap(node.left, _SUM)} {node.op} {_wrap(node.right, _SUM)}"
    if isinstance(node, In):
        items = ", ".join(to_text(i) for i in node.items)
        word = "not in" if node.negated else "in"
        return f"{_wrap(node.operand, _SUM)} {word} [{items}]"
    if isinstance(node, Between):
        low, high = _wrap(node.low, _SUM), _wrap(node.high, _SUM)
        return f"{_wrap(node.operand, _SUM)} between {low} and {high}"
    if isinstance(node, IsNull):
        return f"{_wrap(node.operand, _SUM)} is {'not ' if node.negated else ''}null"
    if isinstance(node, Contains):
        return f"{_wrap(node.operand, _SUM)} contains {_wrap(node.needle, _SUM)}"
    if isinstance(node, StartsWith):
        return f"{_wrap(node.operand, _SUM)} startswith {_wrap(node.prefix, _SUM)}"
    if isinstance(node, Not):
        return "not " + _wrap(node.operand, _NOT)
    if isinstance(node, And):
        return f"{_wrap(node.left, _AND)} and {_wrap(node.right, _AND + 1)}"
    if isinstance(node, Or):
        return f"{_wrap(node.left, _OR)} or {_wrap(node.right, _OR + 1)}"
    raise TypeError(f"not a rule node: {node!r}")


# --- hashing --------------------------------------------------------------------------------


_COMPARED: dict[type, tuple[str, ...]] = {}


def _compared(cls: type[Node]) -> tuple[str, ...]:
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(f.name for f in fields(cls) if f.compare)
    return names


def _cached_hash(self: Node) -> int:
    """The dataclass hash, computed once per node.

    The evaluator looks every sub-expression up in its cache; the generated hash walks the
    whole subtree each time, which made a 20,000-term `or` spend seconds hashing.
    """
    cached: int | None = self.__dict__.get("_hash")
    if cached is None:
        cached = hash((type(self), *(getattr(self, name) for name in _compared(type(self)))))
        object.__setattr__(self, "_hash", cached)
    return cached


def _state(self: Node) -> dict[str, object]:
    """Pickled without the cached hash: string hashes differ from one process to the next."""
    return {k: v for k, v in self.__dict__.items() if k != "_hash"}


Node.__getstate__ = _state  # type: ignore[method-assign,assignment]
for _cls in (
    Node,
    *LITERALS,
    Today,
    Name,
    Func,
    Neg,
    Arith,
    Compare,
    In,
    Between,
    IsNull,
    Contains,
    StartsWith,
    Not,
    And,
    Or,
):
    _cls.__hash__ = _cached_hash  # type: ignore[method-assign,assignment]
