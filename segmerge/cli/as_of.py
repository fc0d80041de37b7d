"""`--as-of` as French users write a date: ``01/12/2026`` is the 1st of December.

Every command's ``--as-of`` goes through :func:`as_of_option` (the option is
declared once, in cli_options), so a run started as ``--as-of 01/12/2026`` and
resumed as ``--as-of 2026-12-01`` is the same run.

What the forms mean:

- ``2026-12-01`` (ISO), with or without a time (``2026-12-01 09:30``): as before.
- ``01/12/2026``, ``1/12/2026``, ``01.12.2026``, ``01-12-2026``: day first,
  always, as in France and most of Europe; never the US month-first order.
  So ``12/31/2026`` is refused (there is no 31st month), with a hint, rather than
  guessed, and ``05/06/2026`` is the 5th of June.
- ``2026/12/01`` and ``2026.12.01`` (the year first) are the 1st of December too.
- A two-digit year (``01/12/26``) is refused: write the year in full.
"""

from __future__ import annotations

import re
from datetime import date

import typer

from segmerge.i18n import _

_DAY_FIRST = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{2,4})")
_YEAR_FIRST = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})")


def parse_as_of(value: str) -> str:
    """The ISO text of ``value`` (``YYYY-MM-DD``), or ``value`` itself when it is not
    day-first; raises ValueError with what is wrong."""
    text = value.strip()
    y = _YEAR_FIRST.fullmatch(text)
    if y is not None:  # 2026/12/01: the year first is never ambiguous
        try:
            return date(int(y.group(1)), int(y.group(2)), int(y.group(3))).isoformat()
        except ValueError:
            raise ValueError(
                _("{value} is not a day (year, month, day)").format(value=repr(value))
            ) from None
    m = _DAY_FIRST.fullmatch(text)
    if m is None:
        return text  # ISO, or not a date at all: the reference-instant parser says which
    day, month, year = int(m.group(1)), int(m.group(3)), m.group(4)
    if len(year) != 4:
        raise ValueError(
            _("{value}: write the year in full, e.g. 01/12/2026").format(value=repr(value))
        )
    try:
        return date(int(year), month, day).isoformat()
    except ValueError:
        said = _("{value} is not a day: dates are read day first, DD/MM/YYYY")
        if day <= 12 < month:
            said = _(
                "{value} is not a day: dates are read day first, DD/MM/YYYY "
                "(did you mean {swapped}?)"
            )
        raise ValueError(
            said.format(value=repr(value), swapped=f"{month:02d}/{day:02d}/{year}")
        ) from None


def as_of_option(value: str | None) -> str | None:
    """Typer callback of every ``--as-of``: a bad day is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
