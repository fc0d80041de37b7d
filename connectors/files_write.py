"""Write segment tags back into a contacts export, touching nothing else.

The file is the shop's own data, often re-imported into its CRM: a rewrite must
keep every other cell byte for byte (delimiter, encoding, BOM, quoting, header
names, row order) and must never leave a half-written file. So a batch is one
rewrite of only the rows whose tags change, into a temporary file in the same
folder, fsynced, then renamed over the original with `os.replace`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports import (
    Action,
    DataError,
    Outcome,
    StorageError,
    _,
    file_lock,
    is_disk_error,
)

from . import files_values as fv
from .files_atomic import atomic_write
from .files_dates import isin
from .files_read import (
    EXCEL_SUFFIXES,
    PARQUET_SUFFIXES,
    decode,
    sniff_delimiter,
)
from .files_sheets import excel_text, open_sheet
from .files_tag_edit import apply_tags
from .files_tag_edit import positions as _positions
from .files_tag_edit import to_arrow as _a
from .files_tag_edit import to_series as _s
from .files_write_parquet import ParquetWriter

_QUOTED = r'"(?:[^"]|"")*"'
_BAD_TAG = re.compile(r"[|,\r\n]")


def _esc(sep: str) -> str:
    """A delimiter inside an RE2 pattern (which has no escape for a literal tab)."""
    return r"\t" if sep == "\t" else re.escape(sep)


def push_tags(
    path: Path,
    display: str,
    actions: Sequence[Action],
    *,
    mapping: dict[str, str],
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> list[Outcome]:
    """Apply a batch of tag/untag actions in one rewrite; one outcome per action.

    The writers return the file's contact ids, so that an unknown contact fails
    alone while the rest of the batch is done.
    """
    outcomes: dict[int, Outcome] = {}
    rows = []
    tags: dict[object, str | None] = {}  # payload tag -> clean tag, or None if unusable
    for i, a in enumerate(actions):
        raw = a.payload.get("tag")
        if raw not in tags:
            clean = raw.strip() if isinstance(raw, str) else ""
            tags[raw] = clean if clean and not _BAD_TAG.search(clean) else None
        tag = tags[raw]
        if a.kind not in ("tag", "untag"):
            outcomes[i] = Outcome(a.key, "failed", f"the files connector cannot {a.kind}")
        elif a.contact_id is None or not str(a.contact_id).strip():
            outcomes[i] = Outcome(a.key, "failed", "no contact_id")
        elif tag is None:
            outcomes[i] = Outcome(a.key, "failed", f"invalid tag {raw!r} (empty, or has | or ,)")
        else:
            rows.append((i, str(a.contact_id).strip(), a.kind, tag))
    ops = pd.DataFrame(rows, columns=["i", "contact_id", "kind", "tag"])
    if len(ops):
        ops = ops.astype({"contact_id": object, "kind": object, "tag": object})
        suffix = path.suffix.lower()
        writer = (
            _ExcelWriter(sheet)
            if suffix in EXCEL_SUFFIXES
            else ParquetWriter()
            if suffix in PARQUET_SUFFIXES
            else _CsvWriter(encoding, delimiter)
        )
        try:
            # two runs (or two workspaces) tagging this file take turns; each re-reads it
            with file_lock(path, f"tagging {display}"):
                known, unwritable = writer.write(path, display, ops, mapping)
        except OSError as exc:
            if is_disk_error(exc):  # every next batch would fail the same way: stop the run
                raise StorageError(
                    _("cannot rewrite the contacts file: {problem}").format(problem=exc.strerror),
                    file=display,
                    hint=_("free some space, then run again: tags not written stay planned"),
                ) from None
            detail = f"could not rewrite {display}: {exc}"
            for i in ops["i"]:
                outcomes[int(i)] = Outcome(actions[int(i)].key, "retry", detail)
        else:
            found = isin(ops["contact_id"], known)
            for (i, _cid, _kind, tag), seen in zip(rows, found, strict=True):
                if not seen:
                    outcomes[i] = Outcome(actions[i].key, "failed", "unknown contact")
                elif tag in unwritable:
                    outcomes[i] = Outcome(actions[i].key, "failed", unwritable[tag])
                else:
                    outcomes[i] = Outcome(actions[i].key, "done")
    return [outcomes[i] for i in range(len(actions))]


class _CsvWriter:
    """Text-level splice: rows whose tags do not change are copied exactly as read."""

    def __init__(self, encoding: str | None, delimiter: str | None) -> None:
        self.encoding = encoding
        self.delimiter = delimiter

    def write(
        self, path: Path, display: str, ops: pd.DataFrame, mapping: dict[str, str]
    ) -> tuple[pd.Series, dict[str, str]]:
        before = os.stat(path)
        text, used, bom = decode(path.read_bytes(), self.encoding)
        sep = self.delimiter or sniff_delimiter(text)
        records = _records(text)
        cr = np.asarray(pc.ends_with(_a(records), "\r"), dtype=bool)
        body = records.where(~cr, _s(pc.utf8_slice_codeunits(_a(records), 0, -1), records.index))
        blank = pc.equal(pc.utf8_trim_whitespace(_a(body)), "")
        filled = ~np.asarray(blank, dtype=bool)
        if not filled.any():
            return pd.Series([], dtype=fv.TEXT), {}
        head = int(np.argmax(filled))
        headers = [h.strip() for h in next(csv.reader(io.StringIO(body.iloc[head]), delimiter=sep))]
        id_pos, tags_pos = _positions(headers, mapping, display)
        data = filled & (np.arange(len(body)) > head)
        rows = body[data]
        quotes = '"' in text
        unquoted = pc.replace_substring_regex(_a(rows), _QUOTED, "") if quotes else _a(rows)
        count = pd.Series(np.asarray(pc.count_substring(unquoted, sep)) + 1, index=rows.index)
        ids = _cell(rows, id_pos, sep, quotes)
        current = None
        if tags_pos is not None:
            current = fv.tag_text(_cell(rows, tags_pos, sep, quotes), sep)
        unwritable = {}
        for tag in ops["tag"].unique():
            try:
                str(tag).encode(used)
            except UnicodeEncodeError:
                unwritable[str(tag)] = f"tag {tag!r} cannot be written in {used}"
        ops = ops[~ops["tag"].isin(list(unwritable))]
        old = current if current is not None else pd.Series("", index=rows.index, dtype=fv.TEXT)
        new = apply_tags(ids, old, ops)
        if tags_pos is None:
            tags_pos = len(headers)
            body.iloc[head] = body.iloc[head] + sep + "tags"
            change = np.ones(len(rows), dtype=bool)
        else:
            change = (new != old).to_numpy(dtype=bool)
        if not change.any():
            return ids, unwritable
        body.loc[rows.index[change]] = _splice(
            rows[change], count[change], tags_pos, new[change], sep, display
        )
        records = body.where(~cr, body + "\r")
        out = "\n".join(records.tolist()).encode(used)
        if bom:
            out = b"\xef\xbb\xbf" + out

        def save(tmp: Path) -> None:
            tmp.write_bytes(out)

        atomic_write(path, save, before)
        return ids, unwritable


def _records(text: str) -> pd.Series:
    """CSV records as text, a quoted value spanning lines kept in one record."""
    lines = pa.array(text.split("\n"), type=pa.string())
    odd = np.asarray(pc.count_substring(lines, '"')) % 2 == 1
    if not odd.any():
        return _s(lines, pd.RangeIndex(len(lines)))
    flips = odd.astype(int)
    inside = (np.cumsum(flips) - flips) % 2 == 1  # the line continues an open quote
    group = np.cumsum(~inside)
    joined = pd.Series(lines.to_pylist()).groupby(group).agg("\n".join)
    return joined.reset_index(drop=True).astype(fv.TEXT)


def _field(sep: str) -> str:
    return rf'(?:[ \t]*{_QUOTED}[ \t]*|[^"{_esc(sep)}\n]*)'


def _cell(rows: pd.Series, pos: int, sep: str, quotes: bool = True) -> pd.Series:
    """The unquoted, stripped value of field ``pos`` of each row (NA if the row is shorter).

    Without any quote in the file a split does it, several times faster than the regex.
    """
    if quotes:
        f, d = _field(sep), _esc(sep)
        found = pc.extract_regex(_a(rows), rf"(?s)^(?:{f}{d}){{{pos}}}(?P<v>{f})(?:{d}|$)")
        raw = pc.utf8_trim_whitespace(pc.struct_field(found, [0]))
    else:  # the padding gives every row a field `pos`, empty for short rows
        fields = pc.split_pattern(_a(rows + sep * (pos + 1)), sep)
        raw = pc.utf8_trim_whitespace(pc.list_element(fields, pos))
    quoted = pc.and_(
        pc.and_(pc.starts_with(raw, '"'), pc.ends_with(raw, '"')),
        pc.greater_equal(pc.utf8_length(raw), 2),
    )
    inner = pc.replace_substring(pc.utf8_slice_codeunits(raw, 1, -1), '""', '"')
    value = pc.utf8_trim_whitespace(pc.if_else(quoted, inner, raw))
    value = pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value)
    return _s(value, rows.index)


def _quote(values: pd.Series, sep: str) -> pd.Series:
    needs = pc.match_substring_regex(_a(values), rf'[{_esc(sep)}"\r\n]|^\s|\s$')
    quoted = '"' + _s(pc.replace_substring(_a(values), '"', '""'), values.index) + '"'
    return values.where(~np.asarray(needs, dtype=bool), quoted)


def _splice(
    rows: pd.Series, count: pd.Series, pos: int, values: pd.Series, sep: str, display: str
) -> pd.Series:
    """Put ``values`` in field ``pos`` of ``rows``, padding short rows with empty fields."""
    values = _quote(values.astype(fv.TEXT), sep)
    short = (count <= pos).to_numpy(dtype=bool)
    out = rows.copy()
    if short.any():
        pads = pa.array(pos - count[short].to_numpy() + 1, type=pa.int64())
        pad = pc.binary_repeat(pa.array([sep] * int(short.sum()), type=pa.string()), pads)
        out[short] = rows[short] + _s(pad, rows.index[short]) + values[short]
    if (~short).any():
        f, d = _field(sep), _esc(sep)
        pattern = rf"(?s)^(?P<pre>(?:{f}{d}){{{pos}}})(?P<old>{f})(?P<post>(?:{d}.*)?)$"
        parts = pc.extract_regex(_a(rows[~short]), pattern)
        if parts.null_count:
            raise DataError(
                _("a line whose tags change has quotes that cannot be rewritten safely"),
                file=display,
                hint=_("check the quotes on the lines of the contacts that were to be tagged"),
            )
        idx = rows.index[~short]
        pre, post = _s(pc.struct_field(parts, [0]), idx), _s(pc.struct_field(parts, [2]), idx)
        out[~short] = pre + values[~short] + post
    return out


class _ExcelWriter:
    """openpyxl edits cells one at a time; rows whose tags do not change are not touched."""

    def __init__(self, sheet: str | int | None) -> None:
        self.sheet = sheet

    def write(
        self, path: Path, display: str, ops: pd.DataFrame, mapping: dict[str, str]
    ) -> tuple[pd.Series, dict[str, str]]:
        import openpyxl

        before = os.stat(path)
        wb = openpyxl.load_workbook(path, keep_vba=path.suffix.lower() == ".xlsm")
        ws = open_sheet(wb, self.sheet, display)
        grid: list[Any] = list(ws.iter_rows())
        head = next((i for i, r in enumerate(grid) if any(_filled(c.value) for c in r)), None)
        if head is None:
            return pd.Series([], dtype=fv.TEXT), {}
        headers = [(excel_text(c.value) or "").strip() for c in grid[head]]
        id_pos, tags_pos = _positions(headers, mapping, display)
        body = [r for r in grid[head + 1 :] if any(_filled(c.value) for c in r)]
        ids = fv.text(pd.Series([excel_text(r[id_pos].value) for r in body], dtype=object))
        old = pd.Series("", index=ids.index, dtype=object)
        if tags_pos is not None:
            old = fv.tag_text(pd.Series([excel_text(r[tags_pos].value) for r in body]), None)
        new = apply_tags(ids, old, ops)
        change = np.flatnonzero((new != old).to_numpy(dtype=bool))
        if tags_pos is None:
            tags_pos = len(headers)
            ws.cell(row=grid[head][0].row, column=tags_pos + 1, value="tags")
        elif not len(change):
            return ids, {}
        for k in change:  # (`ws.cell(..., value=None)` would leave an untagged cell as it was)
            ws.cell(row=body[k][0].row, column=tags_pos + 1).value = new.iloc[k] or None
        atomic_write(path, lambda tmp: wb.save(tmp), before)
        return ids, {}


def _filled(value: Any) -> bool:
    return value is not None and str(value).strip() != ""
