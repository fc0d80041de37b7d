"""Typing one table's columns, and telling the user where a cell could not be read.

Each canonical column has its parser (`files_values`); anything else is an
attribute whose type is inferred from all its values. A cell that cannot be
read becomes a :class:`Problem` of its column; the first one in file order is
the error the user sees, with how many more there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from segmerge.ports import DataError, _, ngettext, number

from . import files_values as fv
from .files_read import RawTable

SKIP_HINT = 'fix the file, or set on_bad_rows = "skip" in the source to leave such rows out'


@dataclass
class Problem:
    """Cells of one column that could not be read, and how to describe one of them."""

    position: int
    header: str
    bad: np.ndarray
    describe: Callable[[int], str]


def parse_column(
    role: str, name: str, raw: RawTable, i: int, tz: ZoneInfo
) -> tuple[pd.Series, Problem | None]:
    s = raw.data[i]
    parsed: fv.Parsed | None = None
    if name == "contact_id":
        parsed = fv.identifier(s, _("a contact id"))
    elif name == "email":
        return fv.email(s), None
    elif role == "contacts" and name in ("first_name", "last_name"):
        return fv.text(s), None
    elif role == "contacts" and name == "subscribed":
        parsed = fv.boolean(s)
    elif role == "contacts" and name in ("created_at", "updated_at"):
        parsed = fv.datetimes(s, tz)
    elif role == "contacts" and name == "tags":
        return fv.tags(s, raw.delimiter), None
    elif role == "orders" and name == "order_id":
        parsed = fv.identifier(s, _("an order number"))
    elif role == "orders" and name == "ordered_at":
        parsed = fv.datetimes(s, tz, required=True)
    elif role == "orders" and name == "amount":
        parsed = fv.number(s, required=True, what=_("an amount like 12,50"))
    elif role == "orders" and name in ("category", "status"):
        return fv.text(s), None
    elif role == "orders" and name == "rating":
        parsed = fv.rating(s)
    elif role == "events" and name == "campaign_id":
        parsed = fv.identifier(s, _("a campaign id"))
    elif role == "events" and name == "event":
        parsed = fv.event(s)
    elif role == "events" and name == "at":
        parsed = fv.datetimes(s, tz, required=True)
    else:
        return fv.infer(s, tz), None
    if not parsed.bad.any():
        return parsed.values, None
    return parsed.values, problem(raw, i, parsed.bad, parsed.expected)


def problem(raw: RawTable, i: int, bad: np.ndarray, expected: str) -> Problem:
    s = raw.data[i]

    def describe(row: int) -> str:
        value = s.iloc[row]
        text = str(value) if len(str(value)) <= 80 else str(value)[:80] + "…"  # one line
        got = _("an empty value") if pd.isna(value) else repr(text)
        return _("expected {expected}, got {got}").format(expected=expected, got=got)

    return Problem(raw.positions[i], raw.headers[i], bad, describe)


def duplicates(raw: RawTable, i: int, ids: pd.Series) -> Problem:
    dup = ids.duplicated(keep="first").to_numpy(dtype=bool) & ids.notna().to_numpy(dtype=bool)

    def describe(row: int) -> str:  # the error path only: no grouping for a clean file
        first = int(np.argmax((ids == ids.iloc[row]).to_numpy(dtype=bool, na_value=False)))
        said = _("duplicate contact id {id} (already on line {line})")
        return said.format(id=repr(ids.iloc[row]), line=raw.lines[first])

    return Problem(raw.positions[i], raw.headers[i], dup, describe)


def first_error(raw: RawTable, problems: list[Problem]) -> DataError:
    """The first unreadable cell in file order, with how many more its column has."""
    firsts = [(int(raw.lines[np.argmax(p.bad)]), p.position, p) for p in problems if p.bad.any()]
    line, _column, p = min(firsts, key=lambda x: (x[0], x[1]))
    row = int(np.argmax(p.bad))
    message = p.describe(row)
    others = raw.lines[p.bad][1:]
    if len(others):
        shown = ", ".join(str(x) for x in others[:5]) + (", …" if len(others) > 5 else "")
        message += ngettext(
            "; {n} other bad value in this column (line {lines})",
            "; {n} other bad values in this column (lines {lines})",
            len(others),
        ).format(n=number(len(others)), lines=shown)
    more = sum(int(q.bad.any()) for q in problems if q is not p)
    also = (
        ""
        if not more
        else ngettext(
            "; another column has bad values too", "; {n} other columns have bad values too", more
        ).format(n=number(more))
    )
    return DataError(
        message,
        file=raw.display,
        line=line,
        column=p.position,
        field=p.header,
        hint=_(SKIP_HINT) + also,
    )


def ambiguous_amounts(raw: RawTable, i: int) -> str | None:
    """`1,234` or `1.234 €`: a decimal, or a thousand without its cents? Said, not guessed silently.

    Such a value is read as a decimal (1,234 -> 1.234), as a French export means
    it, but one digit group of three after a single separator is also how an
    English export writes a thousand: the warning names the first such cell.
    """
    s = raw.data[i]
    if not fv.is_text(s):
        return None
    hits = fv.match(fv.text(s), fv.AMBIGUOUS_THOUSANDS)
    if not hits.any():
        return None
    row = int(np.argmax(hits))
    n = int(hits.sum())
    more = (
        ""
        if n < 2
        else ngettext(
            " (and {n} more in this column)", " (and {n} more in this column)", n - 1
        ).format(n=number(n - 1))
    )
    return _(
        "{file}, line {line}, column {column} ({header}): {value} is read as {read}, but it "
        "could be a thousand separator{more}; write 1234,00 or 1 234,00 to be sure"
    ).format(
        file=raw.display,
        line=int(raw.lines[row]),
        column=raw.positions[i],
        header=raw.headers[i],
        value=repr(str(s.iloc[row])),
        read=fv.read_as(str(s.iloc[row])),
        more=more,
    )
