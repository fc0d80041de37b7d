"""Syntax errors in a condition, said the way a marketer can act on.

lark reports a token and the set of terminals its LALR tables expected; this
turns them into "unexpected 'x'; expected a value or '('", replaying the prefix
to get the exact set, with a hint for the usual slips (``=`` for ``==``, ``&``).
"""

from __future__ import annotations

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from segmerge.i18n import _
from segmerge.rules import ast

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
    "COMPARE": "",  # words, in the command's language: _words()
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
    "NUMBER": "",
    "STRING": "",
    "NAME": "",
    "QNAME": "",
    "$END": "",
}
# Whatever can start a value; listed one by one they drown the message.
_VALUE_STARTERS = {"NUMBER", "STRING", "NAME", "QNAME", "TRUE", "FALSE", "NULL", "LPAR", "MINUS"}
_PREDICATES = {"COMPARE", "IN", "NOT", "BETWEEN", "IS", "CONTAINS", "STARTSWITH"}
_ARITHMETICS = {"PLUS", "MINUS", "STAR", "SLASH"}


def _words() -> dict[str, str]:
    """The terminals said in words, in the command's language (built when an error is)."""
    return {
        "COMPARE": _("a comparison (== != < <= > >=)"),
        "NUMBER": _("a number"),
        "STRING": _("a quoted string"),
        "NAME": _("a name"),
        "QNAME": _("a name"),
        "$END": _("the end of the condition"),
    }


def _hint(found: str) -> str | None:
    """The usual slip behind an unexpected ``found``, if it is one."""
    hints = {
        "=": _("to compare, write =="),
        "&": _("write `and`"),
        "|": _("write `or`"),
        "!": _("write `not` (or != to compare)"),
        '"': _("a string is missing its closing quote"),
        "'": _("a string is missing its closing quote"),
        "`": _("a back-quoted name is missing its closing back-quote"),
    }
    return hints.get(found)


class ExprError(Exception):
    """A problem at an offset of one expression's text; the caller knows which file it is in."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


def _describe_expected(names: set[str]) -> str:
    names = {n for n in names if n in _TERMINALS}
    words: list[str] = []
    if {"NUMBER", "STRING", "NAME"} <= names:
        words.append(_("a value (a number, a 'string', a name, a function call or '(')"))
        names -= _VALUE_STARTERS
    if {"COMPARE", "IN", "IS"} <= names:
        words.append(_("a comparison (== != < <= > >= in between is contains startswith)"))
        names -= _PREDICATES
    if {"PLUS", "STAR"} <= names:
        words.append(_("an operator (+ - * /)"))
        names -= _ARITHMETICS
    said = _words()
    words += sorted({_TERMINALS[n] or said[n] for n in names})
    if not words:
        return _("something else")
    if len(words) == 1:
        return words[0]
    return _("{some} or {last}").format(some=", ".join(words[:-1]), last=words[-1])


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return _("end of the condition")
    if token.type == "STRING":
        return _("string {value}").format(value=token.value)
    if token.type == "NUMBER":
        return _("number {value}").format(value=token.value)
    if token.type in ("NAME", "QNAME"):
        return _("name {value}").format(value=token.value)
    return repr(str(token.value))


def _accepted_after(lark: Lark, prefix: str) -> set[str]:
    """Terminals the parser would take after ``prefix`` (exact, unlike lark's lexer guess)."""
    try:
        parser = lark.parse_interactive(prefix)
        parser.exhaust_lexer()
        return set(parser.accepts())
    except UnexpectedInput:
        return set()


def syntax_error(lark: Lark, text: str, exc: UnexpectedInput) -> ExprError:
    """lark's exception as what was found, what was expected, and where."""
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            offset = len(text.rstrip())
        else:
            offset = token.start_pos if token.start_pos is not None else len(text)
        # Replaying the prefix gives the exact set; lark's own is blurred by LALR reductions.
        expected = _accepted_after(lark, text[:offset]) or set(exc.expected)
        hint = _hint(str(token.value)) if token.type != "$END" else None
        if str(token.value).lower() in ast.KEYWORDS and "NAME" in expected:
            hint = _("{word} is a keyword; write a column of that name as `{word}`").format(
                word=token.value
            )
        message = _("unexpected {found}; expected {expected}").format(
            found=_describe_token(token), expected=_describe_expected(expected)
        )
        return ExprError(message, offset, hint)
    if isinstance(exc, UnexpectedCharacters):
        at = int(exc.pos_in_stream or 0)
        char = text[at] if at < len(text) else ""
        message = _("unexpected character {char}").format(char=repr(char))
        allowed = _accepted_after(lark, text[:at]) or set(exc.allowed or ())
        if allowed:
            message += _("; expected {expected}").format(expected=_describe_expected(allowed))
        return ExprError(message, at, _hint(char))
    if isinstance(exc, UnexpectedEOF):
        wanted = _describe_expected(set(exc.expected))
        return ExprError(
            _("unexpected end of the condition; expected {expected}").format(expected=wanted),
            len(text),
        )
    return ExprError(str(exc), 0)  # pragma: no cover - lark has no other kind
