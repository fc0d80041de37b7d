"""Condition text → typed tree, with errors a marketer can act on.

lark does the parsing (LALR, so a condition parses in linear time and the
grammar stays unambiguous); this module turns lark's parse tree into
:mod:`segmerge.rules.ast` nodes and lark's exceptions into an
:class:`ExprError` that says what was found, what was expected, and at which
offset, so the rule-set loader can point at the right spot in the YAML file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.rules import ast
from segmerge.rules.grammar_cache import cached_parser
from segmerge.rules.syntax_errors import ExprError, syntax_error

__all__ = ["MAX_DEPTH", "ExprError", "line_column", "parse", "parse_expression"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FIRST_DAY, _LAST_DAY = dt.date(1700, 1, 1), dt.date(2200, 12, 31)
#: Levels of operators inside each other a condition may have. Every later pass (checker,
#: evaluator, explain, SQL, printing) walks the tree recursively, a few frames per level, and
#: Python stops at 1,000 frames; no rule a person writes comes near 100. Parentheses add no
#: level, and a chain of `and`s or `or`s counts for the depth of a balanced tree of its terms.
MAX_DEPTH = 100
#: `a or b or c` chains up to this many terms keep the left-leaning shape they are written in
#: (what explain shows); longer ones are rebuilt balanced, so their depth is the log of their
#: length and 20,000 terms evaluate like any rule.
_SHORT_CHAIN = 16


@cache
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    # No propagate_positions: lark's per-reduction bookkeeping was 60% of parsing a long
    # `or`; _ToAst.build works out the same spans from the tokens, once per tree.
    return cached_parser(grammar, parser="lalr", lexer="contextual")


def parse(text: str) -> ast.Node:
    """Parse one condition; raises :class:`ExprError` with an offset into ``text``."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(_lark(), text, exc) from None
    except RecursionError:  # pragma: no cover - lark's LALR parser keeps its own stack
        raise ExprError(_too_deep_message(), 0, _depth_hint()) from None
    node = _ToAst(text).build(tree)
    deep = _too_deep(node)
    if deep is not None:
        raise ExprError(_too_deep_message(), deep.pos.start if deep.pos else 0, _depth_hint())
    return node


def _depth_hint() -> str:
    return _("split it into simpler conditions; long chains of `and` or `or` are fine")


def _too_deep_message() -> str:
    return _("the condition is too deeply nested (more than {n} levels of operators)").format(
        n=MAX_DEPTH
    )


def _too_deep(node: ast.Node) -> ast.Node | None:
    """The first node deeper than :data:`MAX_DEPTH`, found without recursion."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            return current
        stack.extend((child, depth + 1) for child in current.children())
    return None


def parse_expression(text: str, *, file: str | None = None) -> ast.Node:
    """Parse a condition given on its own (command line, tests): errors carry line and column."""
    try:
        return parse(text)
    except ExprError as exc:
        line, column = line_column(text, exc.offset)
        raise RuleError(exc.message, file=file, line=line, column=column, hint=exc.hint) from None


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body, flags=re.S)


def _tpos(token: Token) -> ast.Pos:
    return ast.Pos(token.start_pos or 0, token.end_pos or 0, token.line or 1, token.column or 1)


@dataclasses.dataclass
class _Chain:
    """``a or b or c`` while it is being read: its terms, flat, whatever their number."""

    op: type[ast.And] | type[ast.Or]
    terms: list[ast.Node]

    def node(self) -> ast.Node:
        if len(self.terms) <= _SHORT_CHAIN:
            acc = self.terms[0]
            for term in self.terms[1:]:
                acc = self.op(acc, term, pos=_span(acc, term))
            return acc
        return self._balanced(0, len(self.terms))

    def _balanced(self, lo: int, hi: int) -> ast.Node:
        if hi - lo == 1:
            return self.terms[lo]
        mid = (lo + hi + 1) // 2
        left, right = self._balanced(lo, mid), self._balanced(mid, hi)
        return self.op(left, right, pos=_span(left, right))


def _span(first: ast.Node, last: ast.Node) -> ast.Pos | None:
    if first.pos is None or last.pos is None:
        return None
    return ast.Pos(first.pos.start, last.pos.end, first.pos.line, first.pos.column)


def _node(value: Any) -> Any:
    return value.node() if isinstance(value, _Chain) else value


class _ToAst:
    """lark tree → ast nodes, rejecting what the grammar lets through but the language does not.

    The walk keeps its own stack instead of lark's recursive Transformer: 5,000 nested
    parentheses or a 20,000-term `or` make a lark tree that deep, and Python's recursion
    limit is 1,000. Each rule's method gets the span of its text, from its first token
    to its last (what lark's ``propagate_positions`` gave, for a fraction of its cost).
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def build(self, tree: Tree[Token]) -> ast.Node:
        todo: list[Any] = [tree]  # lark's trees, tokens and Nones; (tree,): its children are done
        done: list[Any] = []
        spans: list[Any] = []  # done's, item by item: (start, end, line, column) or None
        while todo:
            item = todo.pop()
            if isinstance(item, Token):
                done.append(item)
                spans.append((item.start_pos, item.end_pos, item.line, item.column))
            elif isinstance(item, Tree):
                todo.append((item,))
                todo.extend(reversed(item.children))
            elif item is None:  # an absent optional part
                done.append(None)
                spans.append(None)
            else:
                reduced: Tree[Token] = item[0]
                cut = len(done) - len(reduced.children)
                children, where = done[cut:], [w for w in spans[cut:] if w is not None]
                del done[cut:], spans[cut:]
                span = (where[0][0], where[-1][1], where[0][2], where[0][3])
                done.append(self._reduce(reduced, children, span))
                spans.append(span)
        result: ast.Node = _node(done[0])
        return result

    def _reduce(self, tree: Tree[Token], children: list[Any], span: tuple[int, ...]) -> Any:
        rule = str(tree.data)
        if rule in ("and_", "or_"):
            op = ast.And if rule == "and_" else ast.Or
            left, right = children[0], _node(children[2])
            if isinstance(left, _Chain) and left.op is op:
                left.terms.append(right)
                return left
            return _Chain(op, [_node(left), right])
        method = getattr(self, rule, None)
        if method is None:  # pragma: no cover - every rule of grammar.lark has a method
            raise TypeError(f"no rule {rule!r} in the condition grammar")
        return method(ast.Pos(*span), [_node(c) for c in children])

    # literals and names
    def number(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        raw = str(children[0])
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        if raw.isdigit() and len(raw) > 300:  # past a float's range (and int()'s 4,300 digits)
            raise ExprError(_("number {value} is too large").format(value=shown), pos.start)
        value: int | float = int(raw) if raw.isdigit() else float(raw)
        if not math.isfinite(value):
            raise ExprError(_("number {value} is too large").format(value=shown), pos.start)
        return ast.Number(value, pos=pos)

    def string(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        return ast.String(_unquote(str(children[0])), pos=pos)

    def true(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        return ast.Bool(True, pos=pos)

    def false(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        return ast.Bool(False, pos=pos)

    def null(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        return ast.Null(pos=pos)

    def name(self, pos: ast.Pos, children: list[Token]) -> ast.Node:
        token = children[0]
        text = str(token)[1:-1] if token.type == "QNAME" else str(token)
        return ast.Name(text, pos=pos)

    def paren(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        inner: ast.Node = children[1]
        # The parentheses belong to the sub-expression's text (explain shows "(a or b)").
        return _with_pos(inner, pos)

    # calls
    def call(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        fname: ast.Name = children[0]
        raw = self.text[fname.pos.start] if fname.pos else ""
        args: list[tuple[str | None, ast.Node, ast.Pos | None]] = children[2] or []
        positional: list[ast.Node] = []
        keywords: list[tuple[str, ast.Node]] = []
        key_pos: list[ast.Pos | None] = []
        for key, value, where in args:
            if key is None:
                if keywords:
                    raise ExprError(
                        _("a positional argument cannot follow a keyword argument"),
                        where.start if where else 0,
                    )
                positional.append(value)
            else:
                if key in dict(keywords):
                    raise ExprError(
                        _("argument {name}= is given twice").format(name=key),
                        where.start if where else 0,
                    )
                keywords.append((key, value))
                key_pos.append(where)
        lowered = fname.name.lower()
        if raw != "`" and lowered == "today":
            if positional or keywords:
                raise ExprError(_("today() takes no argument"), pos.start)
            return ast.Today(pos=pos)
        if raw != "`" and lowered == "date":
            return self._date(pos, positional, keywords)
        return ast.Func(fname.name, tuple(positional), tuple(keywords), tuple(key_pos), pos=pos)

    def _date(
        self, pos: ast.Pos, positional: list[ast.Node], keywords: list[tuple[str, ast.Node]]
    ) -> ast.Node:
        usage = _("date() takes one quoted day, e.g. date('2026-01-31')")
        if keywords or len(positional) != 1 or not isinstance(positional[0], ast.String):
            raise ExprError(usage, pos.start)
        arg = positional[0]
        where = arg.pos.start if arg.pos else pos.start
        try:
            if not _DATE.fullmatch(arg.value):
                raise ValueError
            day = dt.date.fromisoformat(arg.value)
        except ValueError:
            raise ExprError(
                _("invalid date {value}; expected a real day as YYYY-MM-DD").format(
                    value=repr(arg.value)
                ),
                where,
            ) from None
        if not _FIRST_DAY <= day <= _LAST_DAY:  # instants are int64 nanoseconds downstream
            raise ExprError(
                _("date {value} is out of range; dates go from {first} to {last}").format(
                    value=repr(arg.value), first=_FIRST_DAY, last=_LAST_DAY
                ),
                where,
            )
        return ast.DateLit(day, pos=pos)

    def args(self, pos: ast.Pos, children: list[Any]) -> list[tuple[str | None, ast.Node, Any]]:
        out: list[tuple[str | None, ast.Node, Any]] = []
        for child in children:
            if isinstance(child, Token):  # COMMA
                continue
            if isinstance(child, tuple):
                out.append(child)
            else:
                out.append((None, child, child.pos))
        return out

    def kwarg(self, pos: ast.Pos, children: list[Any]) -> tuple[str, ast.Node, ast.Pos | None]:
        return (str(children[0]), children[2], _tpos(children[0]))

    # operators
    def neg(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        operand: ast.Node = children[1]
        written_bare = operand.pos is not None and self.text[operand.pos.start] != "("
        if isinstance(operand, ast.Number) and written_bare:
            return ast.Number(-operand.value, pos=pos)  # "-3" is a literal
        return ast.Neg(operand, pos=pos)

    def arith(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.Arith(str(children[1]), children[0], children[2], pos=pos)

    def compare(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.Compare(str(children[1]), children[0], children[2], pos=pos)

    def items(self, pos: ast.Pos, children: list[Any]) -> tuple[ast.Node, ...]:
        return tuple(c for c in children if isinstance(c, ast.Node))

    def in_(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.In(children[0], children[2], False, pos=pos)

    def not_in(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.In(children[0], children[3], True, pos=pos)

    def between(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.Between(children[0], children[2], children[4], pos=pos)

    def is_null(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.IsNull(children[0], False, pos=pos)

    def is_not_null(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.IsNull(children[0], True, pos=pos)

    def contains(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.Contains(children[0], children[2], pos=pos)

    def startswith(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.StartsWith(children[0], children[2], pos=pos)

    def not_(self, pos: ast.Pos, children: list[Any]) -> ast.Node:
        return ast.Not(children[1], pos=pos)


def _with_pos(node: ast.Node, pos: ast.Pos | None) -> ast.Node:
    return dataclasses.replace(node, pos=pos)
