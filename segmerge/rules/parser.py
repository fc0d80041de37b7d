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

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta

from ..errors import RuleError
from . import ast

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_TERMINALS = {
    "OR": "'or'",
    "AND": "'and'",
    "NOT": "'not'",
    "IN": "'in'",
    "BETWEEN": "'between'",
    "IS": "'is'",
    "NULL": "'null'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "CONTAINS": "'contains'",
    "STARTSWITH": "'startswith'",
    "COMPARE": "a comparison (== != < <= > >=)",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "NAME": "a name",
    "QNAME": "a name",
    "$END": "the end of the condition",
}
# Whatever can start a value; listed one by one they drown the message.
_VALUE_STARTERS = {"NUMBER", "STRING", "NAME", "QNAME", "TRUE", "FALSE", "NULL", "LPAR", "MINUS"}
_VALUE = "a value (a number, a 'string', a name, a function call or '(')"
_PREDICATES = {"COMPARE", "IN", "NOT", "BETWEEN", "IS", "CONTAINS", "STARTSWITH"}
_PREDICATE = "a comparison (== != < <= > >= in between is contains startswith)"
_ARITHMETICS = {"PLUS", "MINUS", "STAR", "SLASH"}
_ARITHMETIC = "an operator (+ - * /)"

_HINTS = {
    "=": "to compare, write ==",
    "&": "write `and`",
    "|": "write `or`",
    "!": "write `not` (or != to compare)",
    '"': "a string is missing its closing quote",
    "'": "a string is missing its closing quote",
    "`": "a back-quoted name is missing its closing back-quote",
}


class ExprError(Exception):
    """A problem at an offset of one expression's text; the caller knows which file it is in."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


@cache
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


def parse(text: str) -> ast.Node:
    """Parse one condition; raises :class:`ExprError` with an offset into ``text``."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return _ToAst(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExprError):
            raise exc.orig_exc from None
        raise


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


def _describe_expected(names: set[str]) -> str:
    names = {n for n in names if n in _TERMINALS}
    words: list[str] = []
    if {"NUMBER", "STRING", "NAME"} <= names:
        words.append(_VALUE)
        names -= _VALUE_STARTERS
    if {"COMPARE", "IN", "IS"} <= names:
        words.append(_PREDICATE)
        names -= _PREDICATES
    if {"PLUS", "STAR"} <= names:
        words.append(_ARITHMETIC)
        names -= _ARITHMETICS
    words += sorted({_TERMINALS[n] for n in names})
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of the condition"
    if token.type == "STRING":
        return f"string {token.value}"
    if token.type == "NUMBER":
        return f"number {token.value}"
    if token.type in ("NAME", "QNAME"):
        return f"name {token.value}"
    return repr(str(token.value))


def _accepted_after(prefix: str) -> set[str]:
    """Terminals the parser would take after ``prefix`` (exact, unlike lark's lexer guess)."""
    try:
        parser = _lark().parse_interactive(prefix)
        parser.exhaust_lexer()
        return set(parser.accepts())
    except UnexpectedInput:
        return set()


def _syntax_error(text: str, exc: UnexpectedInput) -> ExprError:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            offset = len(text.rstrip())
        else:
            offset = token.start_pos if token.start_pos is not None else len(text)
        # Replaying the prefix gives the exact set; lark's own is blurred by LALR reductions.
        expected = _accepted_after(text[:offset]) or set(exc.expected)
        hint = _HINTS.get(str(token.value)) if token.type != "$END" else None
        if str(token.value).lower() in ast.KEYWORDS and "NAME" in expected:
            hint = f"{token.value} is a keyword; write a column of that name as `{token.value}`"
        message = f"unexpected {_describe_token(token)}; expected {_describe_expected(expected)}"
        return ExprError(message, offset, hint)
    if isinstance(exc, UnexpectedCharacters):
        at = int(exc.pos_in_stream or 0)
        char = text[at] if at < len(text) else ""
        message = f"unexpected character {char!r}"
        allowed = _accepted_after(text[:at]) or set(exc.allowed or ())
        if allowed:
            message += f"; expected {_describe_expected(allowed)}"
        return ExprError(message, at, _HINTS.get(char))
    if isinstance(exc, UnexpectedEOF):
        wanted = _describe_expected(set(exc.expected))
        return ExprError(f"unexpected end of the condition; expected {wanted}", len(text))
    return ExprError(str(exc), 0)  # pragma: no cover - lark has no other kind


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body, flags=re.S)


def _pos(meta: Meta) -> ast.Pos | None:
    if getattr(meta, "empty", True):
        return None
    return ast.Pos(meta.start_pos, meta.end_pos, meta.line, meta.column)


def _tpos(token: Token) -> ast.Pos:
    return ast.Pos(token.start_pos or 0, token.end_pos or 0, token.line or 1, token.column or 1)


@v_args(meta=True)
class _ToAst(Transformer[Token, ast.Node]):
    """lark tree → ast nodes, rejecting what the grammar lets through but the language does not."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    # literals and names
    def number(self, meta: Meta, children: list[Token]) -> ast.Node:
        raw = str(children[0])
        value: int | float = int(raw) if raw.isdigit() else float(raw)
        if not math.isfinite(value):
            raise ExprError(f"number {raw} is too large", _start(meta))
        return ast.Number(value, pos=_pos(meta))

    def string(self, meta: Meta, children: list[Token]) -> ast.Node:
        return ast.String(_unquote(str(children[0])), pos=_pos(meta))

    def true(self, meta: Meta, children: list[Token]) -> ast.Node:
        return ast.Bool(True, pos=_pos(meta))

    def false(self, meta: Meta, children: list[Token]) -> ast.Node:
        return ast.Bool(False, pos=_pos(meta))

    def null(self, meta: Meta, children: list[Token]) -> ast.Node:
        return ast.Null(pos=_pos(meta))

    def name(self, meta: Meta, children: list[Token]) -> ast.Node:
        token = children[0]
        text = str(token)[1:-1] if token.type == "QNAME" else str(token)
        return ast.Name(text, pos=_pos(meta))

    def paren(self, meta: Meta, children: list[Any]) -> ast.Node:
        inner: ast.Node = children[1]
        # The parentheses belong to the sub-expression's text (explain shows "(a or b)").
        return _with_pos(inner, _pos(meta))

    # calls
    def call(self, meta: Meta, children: list[Any]) -> ast.Node:
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
                        "a positional argument cannot follow a keyword argument",
                        where.start if where else 0,
                    )
                positional.append(value)
            else:
                if key in dict(keywords):
                    raise ExprError(f"argument {key}= is given twice", where.start if where else 0)
                keywords.append((key, value))
                key_pos.append(where)
        lowered = fname.name.lower()
        if raw != "`" and lowered == "today":
            if positional or keywords:
                raise ExprError("today() takes no argument", _start(meta))
            return ast.Today(pos=_pos(meta))
        if raw != "`" and lowered == "date":
            return self._date(meta, positional, keywords)
        return ast.Func(
            fname.name, tuple(positional), tuple(keywords), tuple(key_pos), pos=_pos(meta)
        )

    def _date(
        self, meta: Meta, positional: list[ast.Node], keywords: list[tuple[str, ast.Node]]
    ) -> ast.Node:
        usage = "date() takes one quoted day, e.g. date('2026-01-31')"
        if keywords or len(positional) != 1 or not isinstance(positional[0], ast.String):
            raise ExprError(usage, _start(meta))
        arg = positional[0]
        where = arg.pos.start if arg.pos else _start(meta)
        try:
            if not _DATE.fullmatch(arg.value):
                raise ValueError
            day = dt.date.fromisoformat(arg.value)
        except ValueError:
            raise ExprError(
                f"invalid date {arg.value!r}; expected a real day as YYYY-MM-DD", where
            ) from None
        return ast.DateLit(day, pos=_pos(meta))

    def args(self, meta: Meta, children: list[Any]) -> list[tuple[str | None, ast.Node, Any]]:
        out: list[tuple[str | None, ast.Node, Any]] = []
        for child in children:
            if isinstance(child, Token):  # COMMA
                continue
            if isinstance(child, tuple):
                out.append(child)
            else:
                out.append((None, child, child.pos))
        return out

    def kwarg(self, meta: Meta, children: list[Any]) -> tuple[str, ast.Node, ast.Pos | None]:
        return (str(children[0]), children[2], _tpos(children[0]))

    # operators
    def neg(self, meta: Meta, children: list[Any]) -> ast.Node:
        operand: ast.Node = children[1]
        written_bare = operand.pos is not None and self.text[operand.pos.start] != "("
        if isinstance(operand, ast.Number) and written_bare:
            return ast.Number(-operand.value, pos=_pos(meta))  # "-3" is a literal
        return ast.Neg(operand, pos=_pos(meta))

    def arith(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Arith(str(children[1]), children[0], children[2], pos=_pos(meta))

    def compare(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Compare(str(children[1]), children[0], children[2], pos=_pos(meta))

    def items(self, meta: Meta, children: list[Any]) -> tuple[ast.Node, ...]:
        return tuple(c for c in children if isinstance(c, ast.Node))

    def in_(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.In(children[0], children[2], False, pos=_pos(meta))

    def not_in(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.In(children[0], children[3], True, pos=_pos(meta))

    def between(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Between(children[0], children[2], children[4], pos=_pos(meta))

    def is_null(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.IsNull(children[0], False, pos=_pos(meta))

    def is_not_null(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.IsNull(children[0], True, pos=_pos(meta))

    def contains(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Contains(children[0], children[2], pos=_pos(meta))

    def startswith(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.StartsWith(children[0], children[2], pos=_pos(meta))

    def not_(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Not(children[1], pos=_pos(meta))

    def and_(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.And(children[0], children[2], pos=_pos(meta))

    def or_(self, meta: Meta, children: list[Any]) -> ast.Node:
        return ast.Or(children[0], children[2], pos=_pos(meta))

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:  # pragma: no cover
        return Tree(data, children, meta)


def _start(meta: Meta) -> int:
    return 0 if getattr(meta, "empty", True) else int(meta.start_pos)


def _with_pos(node: ast.Node, pos: ast.Pos | None) -> ast.Node:
    return dataclasses.replace(node, pos=pos)
