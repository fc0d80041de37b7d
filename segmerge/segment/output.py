"""`segment --format csv|json|parquet`: the rows written in batches, by Arrow.

Why not ``DataFrame.to_csv``: on a million contacts pandas spent a third of the
command formatting the text, one Python string for the whole file. Here each column
becomes Arrow strings with column-wide compute kernels, the cells of a row are joined
by Arrow, and each batch's bytes go to the file as they are (the joined strings'
data buffer is the CSV text itself), so memory holds one batch of text at a time.

The CSV keeps exactly the bytes pandas wrote (scripts read it): integers as
integers, floats as Python's ``repr`` (``4.0``, ``1e-05``), booleans ``True`` and
``False``, instants in UTC with the precision the column needs
(``2025-05-07 22:00:00+00:00``), missing values empty, a cell quoted only when it
holds a comma, a double quote or a newline. Columns of Python objects (a tags list)
are formatted as pandas formats them, value by value: they are only written when
asked for. JSON keeps pandas' layout and number formatting, written batch by batch;
Parquet is the Arrow table as it is.
"""

from __future__ import annotations

import csv
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FORMATS = ("csv", "json", "parquet")
#: rows per batch: large enough for Arrow's kernels, small enough to hold its text
BATCH = 65_536
#: threads formatting CSV batches (the machines this runs on have two cores or more)
WRITERS = 2


def write_rows(rows: pd.DataFrame, fmt: str, out_file: Path | None) -> None:
    """Write ``rows`` as ``fmt`` to ``out_file``, or to standard output when None."""
    with _sink(out_file) as sink:
        if fmt == "csv":
            for chunk in csv_chunks(rows):
                sink.write(chunk)
        elif fmt == "json":
            for text in json_chunks(rows):
                sink.write(text.encode("utf-8"))
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(arrow_table(rows), sink)
        else:  # pragma: no cover - the command checks the format first
            raise ValueError(fmt)


@contextmanager
def _sink(out_file: Path | None) -> Iterator[IO[bytes]]:
    if out_file is not None:
        with out_file.open("wb") as fh:
            yield fh
        return
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        yield buffer
        buffer.flush()
        return
    text = _TextSink()
    yield text  # type: ignore[misc]
    sys.stdout.write(text.value())


class _TextSink:
    """Bytes collected for a standard output that takes only text (rare: a test's)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def value(self) -> str:
        return b"".join(self.parts).decode("utf-8")


# --- CSV ---------------------------------------------------------------------------------


def csv_chunks(rows: pd.DataFrame, batch: int = BATCH) -> Iterator[memoryview | bytes]:
    """The CSV bytes: the header, then one chunk per batch of rows, in order.

    Batches are formatted by :data:`WRITERS` threads, a few ahead of the one written:
    Arrow's kernels release the GIL, so on two cores the text of a million rows takes
    about half the time, and memory holds only the batches in flight."""
    yield (",".join(_quote_text(str(c)) for c in rows.columns) + "\n").encode("utf-8")
    # what pandas decides per whole column: an instant's precision, a fallback's text
    digits = {c: _column_precision(rows[c]) for c in rows.columns if _utc(rows[c].dtype)}
    whole = {c: _as_pandas_writes(rows[c]) for c in rows.columns if not _native(rows[c])}
    # only text can hold a comma, a quote or a newline: numbers, booleans and instants
    # are written without looking (a third of the writing went into looking)
    texts = {c for c in rows.columns if c in whole or _text(rows[c])}

    def lines(start: int) -> memoryview | bytes:
        part = rows.iloc[start : start + batch]
        cells = [
            whole[c].slice(start, len(part)) if c in whole else csv_cells(part[c], digits.get(c))
            for c in part.columns
        ]  # contact_id and segment at least: no row is a lone empty cell
        cells = [_quoted(v) if c in texts else v for c, v in zip(part.columns, cells, strict=True)]
        line = pc.binary_join_element_wise(*cells, ",")
        return _text_of(pc.binary_join_element_wise(line, "", "\n"))  # each line ends "\n"

    starts = range(0, len(rows), batch)
    if len(starts) < 2:
        yield from map(lines, starts)
        return
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="segmerge-csv") as pool:
        ahead: deque[Future[memoryview | bytes]] = deque()
        for start in starts:
            ahead.append(pool.submit(lines, start))
            if len(ahead) > 2 * WRITERS:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _text_of(lines: pa.Array | pa.ChunkedArray) -> memoryview | bytes:
    """The concatenated values of a string array: its data buffer, no copy."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.null_count:  # pragma: no cover - every cell is a string by then
        lines = pc.fill_null(lines, "")
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    if len(lines) == 0:
        return b""
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    data = lines.buffers()[2]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]


def csv_cells(series: pd.Series, digits: int | None = None) -> pa.Array:
    """One column's cells as pandas writes them, unquoted, missing values empty;
    ``digits``: an instant column's fractional digits (else this part's own)."""
    dtype = series.dtype
    types = pd.api.types
    if _utc(dtype):
        return _instants(series, digits)
    if types.is_integer_dtype(dtype):
        return _filled(pc.cast(_arrow(series), pa.string()))
    if types.is_float_dtype(dtype):
        return _floats(series.to_numpy(dtype=np.float64, na_value=np.nan))
    if types.is_bool_dtype(dtype):
        return _filled(pc.if_else(_arrow(series), "True", "False"))
    if _text(series):
        return _filled(_arrow(series).cast(pa.string()))
    return _as_pandas_writes(series)


def _utc(dtype: object) -> bool:
    return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) in ("UTC", "utc")


def _text(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.StringDtype):
        return True
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in (
        "string",
        "empty",
    )


def _native(series: pd.Series) -> bool:
    """Whether Arrow formats this column itself (else pandas' text is taken once)."""
    types, dtype = pd.api.types, series.dtype
    if _utc(dtype) or _text(series):
        return True
    if isinstance(dtype, pd.DatetimeTZDtype) or types.is_datetime64_any_dtype(dtype):
        return False
    return bool(
        types.is_integer_dtype(dtype) or types.is_float_dtype(dtype) or types.is_bool_dtype(dtype)
    )


def _arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(series, from_pandas=True)


def _filled(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.fill_null(values, "")


def _floats(values: np.ndarray) -> pa.Array:
    """Python's repr of each float (what pandas writes), missing ones empty.

    Arrow prints the same shortest digits as repr; it differs in layout only. Where
    Arrow uses decimal notation and repr does too (1e-4 <= |x| < 1e16, no exponent in
    Arrow's text) the texts are equal once an integral value gets repr's ``.0``; the
    few others (exponents, infinities) are formatted by numpy, which writes repr.
    Only the values to fix are touched (one replacement pass), not every cell joined."""
    arrow = pc.cast(pa.array(values, from_pandas=True), pa.string())
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)  # NaN compares False everywhere: never fixed
        odd = (magnitude >= 1e16) | ((magnitude < 1e-4) & (magnitude != 0))  # inf too
        integral = values == np.trunc(values)
    odd |= np.asarray(pc.fill_null(pc.match_substring(arrow, "e"), False))
    fix = integral | odd
    if fix.any():
        where = np.flatnonzero(fix)
        fixed = pc.binary_join_element_wise(arrow.take(pa.array(where)), ".0", "")
        odd_here = odd[where]
        if odd_here.any():
            text = pa.array(values[where][odd_here].astype(str))
            fixed = pc.replace_with_mask(fixed, pa.array(odd_here), text)
        arrow = pc.replace_with_mask(arrow, pa.array(fix), fixed)
    return pc.fill_null(arrow, "")


def _column_precision(series: pd.Series) -> int:
    values = series.array
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[values.unit]
    ticks = values.asi8[~series.isna().to_numpy()]
    return _precision((ticks % per_second) * (10**9 // per_second))


def _instants(series: pd.Series, digits: int | None = None) -> pa.Array:
    """UTC instants as pandas writes them: seconds, then as many fractional digits as
    the column's most precise value needs (3, 6 or 9), then ``+00:00``; a missing one
    is null through the joins, then empty."""
    values = series.array
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[values.unit]
    seconds, fraction = np.divmod(values.asi8, per_second)  # the column's own unit: no overflow
    fraction *= 10**9 // per_second  # nanoseconds
    missing = series.isna().to_numpy()
    if digits is None:
        digits = _precision(fraction[~missing])
    mask = missing if missing.any() else None
    stamp = pa.array(seconds, type=pa.timestamp("s"), mask=mask).cast(
        pa.string()
    )  # strftime: 10x slower
    if digits:
        shown = pc.utf8_lpad(
            pa.array(fraction // 10 ** (9 - digits)).cast(pa.string()), digits, "0"
        )
        return pc.fill_null(pc.binary_join_element_wise(stamp, ".", shown, "+00:00", ""), "")
    return pc.fill_null(pc.binary_join_element_wise(stamp, "+00:00", ""), "")


def _precision(fraction: np.ndarray) -> int:
    """Fractional digits pandas shows for these nanoseconds past the second: 0, 3, 6 or 9."""
    if not fraction.any():
        return 0
    if not (fraction % 1_000_000).any():
        return 3
    if not (fraction % 1_000).any():
        return 6
    return 9


def _as_pandas_writes(series: pd.Series) -> pa.Array:
    """Any other column (lists, other zones, naive times): pandas' own text, then str()."""
    frame = series.to_frame()
    values = frame._get_values_for_csv(
        float_format=None, date_format=None, decimal=".", na_rep="", quoting=csv.QUOTE_MINIMAL
    ).iloc[:, 0]
    return pa.array([v if isinstance(v, str) else str(v) for v in values], type=pa.string())


def _quoted(cells: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells holding a comma, a double quote or a newline, quoted as pandas quotes them.

    Most columns hold none: one look at the cells' bytes (numpy over the data buffer)
    decides, instead of three searches cell by cell (a tenth of a second per million)."""
    if not _has_special(cells):
        return cells
    needs = pc.or_(pc.match_substring(cells, ","), pc.match_substring(cells, '"'))
    needs = pc.or_(needs, pc.match_substring(cells, "\n"))  # three searches: faster than a regex
    doubled = pc.replace_substring(cells, '"', '""')
    return pc.if_else(needs, pc.binary_join_element_wise('"', doubled, '"', ""), cells)


def _has_special(cells: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any cell's text holds a comma, a double quote or a newline."""
    chunks = cells.chunks if isinstance(cells, pa.ChunkedArray) else [cells]
    for chunk in chunks:
        if chunk.type not in (pa.string(), pa.large_string()):
            chunk = chunk.cast(pa.string())
        if len(chunk) == 0:
            continue
        width = 8 if chunk.type == pa.large_string() else 4
        ends = np.frombuffer(
            chunk.buffers()[1],
            dtype=np.int32 if width == 4 else np.int64,
            count=len(chunk) + 1,
            offset=chunk.offset * width,
        )
        if chunk.buffers()[2] is None:
            continue
        text = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[int(ends[0]) : int(ends[-1])]
        if ((text == 44) | (text == 34) | (text == 10)).any():  # , " \n
            return True
    return False


def _quote_text(text: str) -> str:
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# --- JSON and Parquet --------------------------------------------------------------------


def json_chunks(rows: pd.DataFrame, batch: int = BATCH) -> Iterator[str]:
    """pandas' records (one-space indent, ISO instants) one batch at a time, so the
    whole document is never one string; the batches join into what pandas writes whole."""
    if len(rows) == 0:
        yield _json(rows)
        return
    yield "["
    for start in range(0, len(rows), batch):
        inner = _json(rows.iloc[start : start + batch])[1:-1]
        yield inner if start + batch >= len(rows) else inner.rstrip("\n") + ","
    yield "]"


def _json(rows: pd.DataFrame) -> str:
    return rows.to_json(orient="records", force_ascii=False, date_format="iso", indent=1)


def arrow_table(rows: pd.DataFrame) -> pa.Table:
    """The rows as Arrow; a column of mixed Python objects becomes its text."""
    columns = {}
    for name in rows.columns:
        try:
            columns[str(name)] = pa.array(rows[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[str(name)] = _as_pandas_writes(rows[name])
    return pa.table(columns)
