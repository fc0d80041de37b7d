"""Write tags back into a Parquet contacts file (see `files_write` for the promise kept)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import files_values as fv
from .files_atomic import atomic_write
from .files_tag_edit import apply_tags, positions, to_arrow, to_series


class ParquetWriter:
    """Only the tags cells of the contacts whose tags change are replaced.

    The others keep their value and the column its type (an empty cell stays ""
    or null as it was), so that a shop re-importing the file sees no other change.
    """

    def write(
        self, path: Path, display: str, ops: pd.DataFrame, mapping: dict[str, str]
    ) -> tuple[pd.Series, dict[str, str]]:
        import pyarrow.parquet as pq

        before = os.stat(path)
        table = pq.read_table(path)
        id_pos, tags_pos = positions(table.column_names, mapping, display)
        ids = fv.identifier(table.column(id_pos).to_pandas(), "a contact id").values
        col = table.column(tags_pos) if tags_pos is not None else None
        old = pd.Series("", index=ids.index, dtype=fv.TEXT)
        if col is not None:
            old = fv.tag_text(_tags_cells(col, ids.index), None)
        new = apply_tags(ids, old, ops)
        change = (new != old).to_numpy(dtype=bool)
        if col is not None and not change.any():
            return ids, {}
        array = _tags_column(new, change, col)
        if tags_pos is None:
            table = table.append_column("tags", array)
        else:
            field = table.schema.field(tags_pos).with_type(array.type)
            table = table.set_column(tags_pos, field, array)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp), before)
        return ids, {}


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _tags_cells(col: pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A Parquet tags column as `a|b` text: lists joined, null cells empty."""
    if _is_list(col.type):
        return to_series(pc.binary_join(col, "|").fill_null(""), index)
    return pd.Series(col.to_pandas().to_numpy(), index=index)


def _tags_column(
    new: pd.Series, change: np.ndarray, col: pa.ChunkedArray | None
) -> pa.Array | pa.ChunkedArray:
    """The new tags column: ``new`` where ``change``, the cells as they were elsewhere.

    No tag is a null cell (an empty list for a list column). Arrow kernels all
    through: a Python list of the values would hold pandas' NA for the contacts
    without tags, which Arrow refuses (the crash of a real run on a Parquet shop).
    """
    text = to_arrow(new)
    empty = pc.equal(text, "")
    if col is not None and _is_list(col.type):
        none = pa.scalar([], pa.list_(pa.string()))
        written = pc.if_else(empty, none, pc.split_pattern(text, "|")).cast(col.type)
        return pc.if_else(pa.array(change), written, col)
    written = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    if col is None:
        return written
    kept = col.type
    if pa.types.is_null(kept) or pa.types.is_dictionary(kept):
        kept = pa.string()  # a column of no tag yet, or of few distinct ones: plain text now
    elif not (pa.types.is_string(kept) or pa.types.is_large_string(kept)):
        return written  # not text (numbers?): every cell rewritten, as text
    return pc.if_else(pa.array(change), written.cast(kept), col.cast(kept))
