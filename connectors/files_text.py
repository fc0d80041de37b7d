"""What makes a CSV export unreadable, told with its line: UTF-16 without BOM, NUL, open quotes.

`files_read` stays the fast path (pandas' C parser on the decoded text); these
checks cost one ``find`` on a normal file, and the line-by-line work happens only
once pandas has already failed, to say where.
"""

from __future__ import annotations

import csv
import io
import re

from segmerge.ports import DataError, _

#: Values a line may have beyond the header's and still be read (and reported with the
#: others like it); past that the line is refused on its own, before pandas makes a
#: column of each.
MAX_EXTRA_VALUES = 64
TOO_MANY_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def bare_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM, told by its zero bytes: in a Latin-script export, one byte in two.

    Only a sample is looked at, and only when it holds a NUL at all, so a normal file
    pays one ``find``.
    """
    sample = data[:4096]
    if len(sample) < 4 or b"\0" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def refuse_nul(text: str, display: str) -> None:
    """A NUL byte means a binary or damaged file; pandas would cut the cell there or keep it."""
    at = text.find("\0")
    if at >= 0:
        line = text.count("\n", 0, at) + 1
        raise DataError(
            _(
                "this line contains a NUL byte: the file is binary, damaged, or in an encoding "
                "that was not recognised"
            ),
            file=display,
            line=line,
            column=at - (text.rfind("\n", 0, at) + 1) + 1,
            hint=_("export it again as CSV (UTF-8), or set `encoding` in the source"),
        )


def unclosed_quote_line(text: str, sep: str) -> int | None:
    """The physical line where the value that never ends opened (error path only).

    Once pandas has said "EOF inside string", the last record the csv module reads is the
    one that swallowed the rest of the file: it starts one line after the record before it.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    start, before = None, 0
    try:
        for _record in reader:
            start, before = before + 1, reader.line_num
    except csv.Error:  # pragma: no cover - the lenient reader only fails on NUL, refused earlier
        return None
    return start


def header_width(text: str, sep: str) -> int:
    """Values in the first non-blank record, the header (quoted delimiters read as such)."""
    for record in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
        if any(cell.strip() for cell in record):
            return len(record)
    return 1


def record_line(text: str, sep: str, record: int) -> int:
    """The physical line where the ``record``-th (1-based) record starts (error path only)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    before = 0
    for number, _cells in enumerate(reader, start=1):
        if number == record:
            return before + 1
        before = reader.line_num
    return before + 1
