"""The kind rules of the rule language: which operator takes which kinds, and what it gives.

They live here once: the checker applies them when a rule set is loaded and the
evaluator asks the same functions, so what passes the check is exactly what the
evaluator knows how to compute.
"""

from __future__ import annotations

from segmerge.i18n import _
from segmerge.metrics.catalog import Kind


def said(kind: Kind) -> str:
    """A kind in words, in the command's language (built when an error is)."""
    words = {
        Kind.NUMBER: _("a number"),
        Kind.STRING: _("a string"),
        Kind.BOOL: _("a condition (true/false)"),
        Kind.DATETIME: _("a date"),
        Kind.LIST: _("a list"),
        Kind.NULL: "null",
        Kind.ANY: _("a value"),
    }
    return words[kind]


ORDERED = (Kind.NUMBER, Kind.STRING, Kind.DATETIME)
CONDITION = (Kind.BOOL, Kind.NULL)


class KindProblem(Exception):
    """An operator got the wrong kinds; ``side`` says which operand to blame."""

    def __init__(self, message: str, side: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.side = side
        self.hint = hint


def _mismatch(expected: str, got: Kind, side: str, hint: str | None = None) -> KindProblem:
    return KindProblem(
        _("expected {expected}, got {got}").format(expected=expected, got=said(got)), side, hint
    )


def arith_kind(op: str, left: Kind, right: Kind) -> Kind:
    """Result kind of ``left op right``; dates move by calendar days, date − date is days."""
    for side, kind in (("left", left), ("right", right)):
        if kind not in (Kind.NUMBER, Kind.DATETIME, Kind.NULL):
            return _raise(_mismatch(_("a number or a date"), kind, side))
    if Kind.NULL in (left, right):
        return Kind.NULL
    if left == right == Kind.NUMBER:
        return Kind.NUMBER
    if op in "+-" and left == Kind.DATETIME and right == Kind.NUMBER:
        return Kind.DATETIME
    if op == "+" and left == Kind.NUMBER and right == Kind.DATETIME:
        return Kind.DATETIME
    if op == "-" and left == right == Kind.DATETIME:
        return Kind.NUMBER
    if op in "*/":
        side = "left" if left == Kind.DATETIME else "right"
        return _raise(
            _mismatch(_("a number"), Kind.DATETIME, side, _("dates can only be added to"))
        )
    hint = _("write the date first: date - number of days") if op == "-" else None
    return _raise(_mismatch(_("a number"), Kind.DATETIME, "right", hint))


def _raise(problem: KindProblem) -> Kind:
    raise problem


def neg_kind(operand: Kind) -> Kind:
    if operand in (Kind.NUMBER, Kind.NULL):
        return operand
    return _raise(_mismatch(_("a number"), operand, "operand"))


def compare_kind(op: str, left: Kind, right: Kind) -> Kind:
    """Comparisons need the same kind on both sides (null goes with anything)."""
    for side, kind in (("left", left), ("right", right)):
        if kind == Kind.LIST:
            raise KindProblem(
                _("a list cannot be compared"),
                side,
                _("to test a list, write: tags contains 'vip'"),
            )
    if Kind.NULL in (left, right):
        return Kind.BOOL
    if left != right:
        hint: str | None = None
        if left == Kind.DATETIME and right == Kind.STRING:
            hint = _("write a date as date('2026-01-31')")
        raise _mismatch(said(left), right, "right", hint)
    if left == Kind.BOOL and op not in ("==", "!="):
        raise KindProblem(_("true/false values can only be compared with == or !="), "left")
    return Kind.BOOL


def condition_kind(operand: Kind) -> Kind:
    if operand in CONDITION:
        return Kind.BOOL
    return _raise(_mismatch(said(Kind.BOOL), operand, "operand", _("compare it, e.g. age > 30")))
