"""Files the user writes by hand (segmerge.toml, rule sets): UTF-8, bounded, or a located error.

These files are typed in an editor and their strings are compared exactly with
contact data or copied into letters. Guessing CP1252 for a file that is really
Latin-9 or MacRoman would silently turn `'Orléans'` into a condition that
matches nobody, so anything but UTF-8 (with or without BOM) is refused at its
first bad byte with the fix. CSV exports are the opposite case: they come from
tools the user does not control, so the CSV reader guesses (connectors/files_read.py).
A size limit keeps a mistaken or hostile file (a 10 MB dump, /dev/zero) from
costing minutes before the first error.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from segmerge.errors import SegmergeError
from segmerge.i18n import _, number

#: A rule set or a segmerge.toml is a few dozen lines; a megabyte is room for a
#: generated 20,000-term condition.
MAX_BYTES = 1_000_000


def read_user_text(
    path: Path, what: str, error: type[SegmergeError], limit: int = MAX_BYTES
) -> str:
    """The text of ``path``; ``what`` names the file in messages ("the rule set")."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(
            _("cannot read {what}: {reason}").format(what=_(what), reason=exc.strerror or exc),
            file=path,
        ) from None
    if len(data) > limit:
        raise error(
            _("{what} is larger than {size} MB; the limit is {limit} bytes").format(
                what=_(what), size=number(limit / 1_000_000, 6), limit=number(limit)
            ),
            file=path,
            hint=_("it should hold settings and conditions, not data"),
        )
    return decode_utf8(data, path, error)


def decode_utf8(data: bytes, path: Path, error: type[SegmergeError]) -> str:
    """Strict UTF-8 (a BOM is dropped); UTF-16, NUL bytes and other encodings name their place."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise error(
            _("the file is saved as UTF-16; it must be UTF-8"),
            file=path,
            line=1,
            column=1,
            hint=_("save it again choosing the UTF-8 encoding"),
        )
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(body, exc.start)
        raise error(
            _("the file is not UTF-8: byte 0x{byte:02X} cannot be read").format(
                byte=body[exc.start]
            ),
            file=path,
            line=line,
            column=column,
            hint=_("it was probably saved as Latin-1 or Windows-1252; save it again as UTF-8"),
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise error(
            _("the file contains a NUL byte (it is binary or damaged)"),
            file=path,
            line=line,
            column=column,
        )
    return text


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``index``; the bytes before it are UTF-8."""
    line_start = data.rfind(b"\n", 0, index) + 1
    before = data[line_start:index].decode("utf-8", errors="replace")
    return data.count(b"\n", 0, index) + 1, len(before) + 1
