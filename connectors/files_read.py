"""Turn a real-world export (CSV, Excel, Parquet) into one raw table with line numbers.

Exports come from spreadsheets and old CRMs: any of three delimiters, UTF-8 with
or without BOM or CP1252, blank lines, empty trailing columns. This module only
gets the cells out, as text, and remembers the physical line of every row so that
a later error can point the user at the exact line of the file. Turning text into
typed values is `files_values`; naming columns canonically is `header_names`.
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports import DataError, _, ngettext

from .files_arrow import strings, stripped
from .files_sheets import excel_text, open_sheet
from .files_text import (
    MAX_EXTRA_VALUES,
    TOO_MANY_FIELDS,
    bare_utf16,
    header_width,
    record_line,
    refuse_nul,
    unclosed_quote_line,
)

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
OLD_EXCEL_SUFFIXES = (".xls",)
ALL_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES + OLD_EXCEL_SUFFIXES
DELIMITERS = (";", "\t", ",")  # preference order on a tie
_QUOTED = re.compile(r'"(?:[^"]|"")*"')

Kind = Literal["csv", "excel", "parquet"]


@dataclass
class RawTable:
    """The cells of one file, before any typing.

    ``data`` has one column per kept header (named by position 0..n-1), values
    stripped, empty cells as NA; for Parquet the columns keep their own types.
    ``lines`` is the physical line (CSV, header = 1), the sheet row (Excel) or the
    1-based row number (Parquet) of each row of ``data``.
    """

    path: Path
    display: str
    kind: Kind
    headers: list[str]
    positions: list[int]
    data: pd.DataFrame
    lines: np.ndarray
    header_line: int
    delimiter: str | None = None
    encoding: str | None = None
    bom: bool = False


# -- text encodings and delimiters -------------------------------------------------------


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str, bool]:
    """Bytes to text: (text, encoding, had a UTF-8 BOM).

    Strict UTF-8 first because a CP1252 file almost never decodes as UTF-8 by
    accident, then CP1252 (what Excel on Windows writes), then Latin-1, which
    never fails, for the five bytes CP1252 leaves undefined.
    """
    if encoding:
        bom = encoding.replace("_", "-").lower() in ("utf-8", "utf8") and data.startswith(
            codecs.BOM_UTF8
        )
        body = data[len(codecs.BOM_UTF8) :] if bom else data
        return body.decode(encoding), encoding, bom
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8", True
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16", False
    bare = bare_utf16(data)
    if bare:
        return data.decode(bare), bare, False
    for candidate in ("utf-8", "cp1252"):
        try:
            return data.decode(candidate), candidate, False
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1", False


def sniff_delimiter(text: str) -> str:
    """The delimiter used in the header line: headers hardly ever contain one.

    Counting in the header only (quoted parts removed) keeps a decimal comma in
    the data from passing for a delimiter.
    """
    header = next((line for line in text.split("\n", 200) if line.strip()), "")
    header = _QUOTED.sub("", header)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


# -- header names --------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a header, for matching."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def snake(text: str) -> str:
    """An attribute name the rule language can use: `Date de naissance` -> `date_de_naissance`."""
    name = re.sub(r"[^a-z0-9]+", "_", fold(text)).strip("_")
    if name and name[0].isdigit():
        name = f"c_{name}"
    return name


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text))


def header_names(
    headers: Iterable[str], mapping: Mapping[str, str], canonical: Iterable[str]
) -> list[str]:
    """The name each header gets: from ``columns``, else a canonical name, else snake case.

    Canonical names match whatever the case, accents or separators
    (`Contact ID`, `E-mail`); anything else becomes a lower-snake-case attribute.
    """
    by_fold = {fold(k): v for k, v in mapping.items()}
    canon = {_squash(c): c for c in canonical}
    names = []
    for header in headers:
        if fold(header) in by_fold:
            names.append(by_fold[fold(header)])
        elif _squash(header) in canon:
            names.append(canon[_squash(header)])
        else:
            names.append(snake(header))
    return names


# -- readers -------------------------------------------------------------------------------


def read_raw(
    path: Path,
    display: str,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, display, sheet)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, display)
    if suffix in OLD_EXCEL_SUFFIXES:
        raise DataError(
            _("old-style .xls workbooks cannot be read"),
            file=display,
            hint=_("open it in Excel or LibreOffice and save it as .xlsx or CSV"),
        )
    return read_csv(path, display, encoding=encoding, delimiter=delimiter)


def read_csv(
    path: Path, display: str, *, encoding: str | None = None, delimiter: str | None = None
) -> RawTable:
    try:
        text, used, bom = decode(path.read_bytes(), encoding)
    except UnicodeDecodeError as exc:
        said = _("the file is not valid {encoding}: {problem} at byte {byte}")
        raise DataError(
            said.format(encoding=encoding, problem=exc.reason, byte=exc.start),
            file=display,
            field="encoding",
            hint=_("remove the `encoding` setting to let segmerge detect it"),
        ) from None
    except OSError as exc:
        said = _("cannot read the file: {problem}").format(problem=exc.strerror)
        raise DataError(said, file=display) from None
    refuse_nul(text, display)
    sep = delimiter or sniff_delimiter(text)
    per_line = pc.count_substring(pa.array(text.split("\n"), type=pa.string()), sep)
    width = int(pc.max(per_line).as_py() or 0) + 1  # an upper bound, quoted delimiters and all
    if width > MAX_EXTRA_VALUES:  # a stray line of 100,000 `x;` would cost minutes of columns
        width = min(width, header_width(text, sep) + MAX_EXTRA_VALUES)
    try:
        cells = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            names=list(range(width)),
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        too_wide = TOO_MANY_FIELDS.search(str(exc))
        if too_wide:
            raise DataError(
                _("this line has {n} values; the header has {columns} columns").format(
                    n=too_wide.group(3), columns=width - MAX_EXTRA_VALUES
                ),
                file=display,
                line=record_line(text, sep, int(too_wide.group(2))),
                hint=_("check the delimiter, or quote values that contain it"),
            ) from None
        opened = unclosed_quote_line(text, sep) if "EOF inside string" in str(exc) else None
        if opened is not None:
            raise DataError(
                _("a quoted value opened on this line is never closed"),
                file=display,
                line=opened,
                hint=_('close the quote, or double a quote that is part of a value ("")'),
            ) from None
        said = _("the file is not a readable CSV export: {problem}").format(problem=exc)
        raise DataError(said, file=display) from None
    flat, n, columns = _cells(cells)
    record_lines = _record_lines(flat, n, columns, text)
    raw = _frame_to_raw(stripped(flat), n, record_lines, path, display, "csv")
    raw.delimiter, raw.encoding, raw.bom = sep, used, bom
    return raw


def _cells(frame: pd.DataFrame) -> tuple[pa.Array, int, int]:
    """All cells column after column in one Arrow array, with the row and column counts:
    a file costs a few kernel calls however many columns it has (see files_arrow)."""
    return strings(frame.to_numpy(dtype=object).ravel(order="F")), len(frame), frame.shape[1]


def _record_lines(cells: pa.Array, n: int, width: int, text: str) -> np.ndarray:
    """Physical line of each record: its position, plus newlines inside earlier quoted cells."""
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    base = np.arange(1, n + 1)
    if physical <= n or not width:
        return base
    counts = np.asarray(pc.count_substring(cells, "\n").fill_null(0), dtype=np.int64)
    inner = counts.reshape(width, n).sum(axis=0)
    return base + np.concatenate(([0], np.cumsum(inner)[:-1]))


def _frame_to_raw(
    cells: pa.Array, n: int, lines: np.ndarray, path: Path, display: str, kind: Kind
) -> RawTable:
    """Find the header, drop blank rows and empty unnamed columns, check row widths.

    ``cells`` holds the stripped cells column after column, ``n`` to a column.
    """
    width = len(cells) // n if n else 0
    filled = np.asarray(cells.is_valid(), dtype=bool).reshape(width, n).T
    nonblank = np.asarray(filled.any(axis=1), dtype=bool)
    if not nonblank.any():
        raise DataError(_("the file is empty: no header line"), file=display)
    head_at = int(np.argmax(nonblank))
    header_row = [cells[c * n + head_at].as_py() for c in range(width)]
    header_line = int(lines[head_at])
    body = np.flatnonzero(nonblank[head_at + 1 :]) + head_at + 1
    body_lines = lines[body]
    named = np.array([name is not None for name in header_row], dtype=bool)
    last_named = int(np.flatnonzero(named).max()) if named.any() else -1
    if last_named + 1 < width:
        extra = filled[body, last_named + 1 :].any(axis=1)
        if extra.any():
            first = int(np.flatnonzero(extra)[0])
            others = int(extra.sum()) - 1
            also = ngettext(", and so do {n} other line", ", and so do {n} other lines", others)
            also = also.format(n=others) if others else ""
            raise DataError(
                _("this line has more values than the header has columns ({n}){also}").format(
                    n=last_named + 1, also=also
                ),
                file=display,
                line=int(body_lines[first]),
                hint=_("check the delimiter, or quote values that contain it"),
            )
    headers, positions, keep = [], [], []
    for pos in range(last_named + 1):
        name = header_row[pos]
        if name is None:
            if not filled[body, pos].any():
                continue  # an empty column with no header: harmless
            name = f"column_{pos + 1}"
        headers.append(str(name))
        positions.append(pos + 1)
        keep.append(pos)
    rows = len(body)
    taken = cells.take(pa.array((np.asarray(keep, dtype=np.int64)[:, None] * n + body).ravel()))
    data = pd.DataFrame(
        {i: pd.arrays.ArrowStringArray(taken.slice(i * rows, rows)) for i in range(len(keep))},
        index=pd.RangeIndex(rows),
    )
    return RawTable(
        path=path,
        display=display,
        kind=kind,
        headers=headers,
        positions=positions,
        data=data,
        lines=np.asarray(body_lines, dtype=np.int64),
        header_line=header_line,
    )


def read_excel(path: Path, display: str, sheet: str | int | None = None) -> RawTable:
    """openpyxl gives rows one at a time; that loop is the price of the format (≤ 1M rows)."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        said = _("cannot open the workbook: {problem}").format(problem=exc)
        raise DataError(said, file=display) from None
    try:
        ws = open_sheet(workbook, sheet, display)
        rows = [[excel_text(v) for v in row] for row in ws.iter_rows(min_row=1, values_only=True)]
    finally:
        workbook.close()
    width = max((len(r) for r in rows), default=0)
    cells = pd.DataFrame(rows, columns=list(range(width)), dtype=object)
    flat, n, _columns = _cells(cells)
    return _frame_to_raw(stripped(flat), n, np.arange(1, n + 1), path, display, "excel")


def read_parquet(path: Path, display: str) -> RawTable:
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas(date_as_object=False)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        said = _("cannot read the Parquet file: {problem}").format(problem=exc)
        raise DataError(said, file=display) from None
    headers = [str(c) for c in frame.columns]
    data = {}
    for i, col in enumerate(frame.columns):
        s = frame[col]
        textual = s.dtype == object or isinstance(s.dtype, pd.StringDtype)
        if textual and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            s = s.astype("string[pyarrow]").str.strip()
            s = s.mask(s == "")
        data[i] = s.reset_index(drop=True)
    return RawTable(
        path=path,
        display=display,
        kind="parquet",
        headers=headers,
        positions=list(range(1, len(headers) + 1)),
        data=pd.DataFrame(data),
        lines=np.arange(1, len(frame) + 1),
        header_line=0,
    )
