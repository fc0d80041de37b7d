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

from segmerge.ports import DataError

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
        parsed = fv.identifier(s, "a contact id")
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
        parsed = fv.identifier(s, "an order number")
    elif role == "orders" and name == "ordered_at":
        parsed = fv.datetimes(s, tz, required=True)
    elif role == "orders" and name == "amount":
        parsed = fv.number(s, required=True, what="an amount like 12,50")
    elif role == "orders" and name in ("category", "status"):
        return fv.text(s), None
    elif role == "orders" and name == "rating":
        parsed = fv.rating(s)
    elif role == "events" and name == "campaign_id":
        parsed = fv.identifier(s, "a campaign id")
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
        got = "an empty value" if pd.isna(value) else repr(text)
        return f"expected {expected}, got {got}"

    return Problem(raw.positions[i], raw.headers[i], bad, describe)


def duplicates(raw: RawTable, i: int, ids: pd.Series) -> Problem:
    dup = (ids.duplicated(keep="first") & ids.notna()).to_numpy(dtype=bool)
    first_line = pd.Series(raw.lines, index=ids.index).groupby(ids).transform("first")

    def describe(row: int) -> str:
        return f"duplicate contact id {ids.iloc[row]!r} (already on line {first_line.iloc[row]})"

    return Problem(raw.positions[i], raw.headers[i], dup, describe)


def first_error(raw: RawTable, problems: list[Problem]) -> DataError:
    """The first unreadable cell in file order, with how many more its column has."""
    firsts = [(int(raw.lines[np.argmax(p.bad)]), p.position, p) for p in problems if p.bad.any()]
    line, _, p = min(firsts, key=lambda x: (x[0], x[1]))
    row = int(np.argmax(p.bad))
    message = p.describe(row)
    others = raw.lines[p.bad][1:]
    if len(others):
        shown = ", ".join(str(x) for x in others[:5]) + (", …" if len(others) > 5 else "")
        plural = "s" if len(others) > 1 else ""
        message += f"; {len(others)} other bad value{plural} in this column (line{plural} {shown})"
    more = sum(int(q.bad.any()) for q in problems if q is not p)
    also = {0: "", 1: "; another column has bad values too"}.get(
        more, f"; {more} other columns have bad values too"
    )
    return DataError(
        message,
        file=raw.display,
        line=line,
        column=p.position,
        field=p.header,
        hint=SKIP_HINT + also,
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
    more = f" (and {n - 1} more in this column)" if n > 1 else ""
    return (
        f"{raw.display}, line {int(raw.lines[row])}, column {raw.positions[i]} "
        f"({raw.headers[i]}): {str(s.iloc[row])!r} is read as {fv.read_as(str(s.iloc[row]))}, "
        f"but it could be a thousand separator{more}; write 1234,00 or 1 234,00 to be sure"
    )
