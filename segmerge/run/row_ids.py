"""A run's contact ids by frame row, left in the frame's Arrow column until asked.

A run asks for the id of each row it renders (its link, its send key, its ledger
row), one chunk after the other, and of the few it holds out or back; made into
Python strings all at once and kept for the whole run, a million ids were some
52 MiB. Here a row's id is made when asked, with the block of rows around it (the
next ones are asked next), and only the last few blocks are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa

#: rows made into Python strings at a time, and blocks kept (a chunk's rows and the
#: next chunk's, handed to the render workers meanwhile, span a few blocks)
BLOCK = 4096
KEPT = 8


class RowIds(Sequence[str]):
    """``ids[row]``: the contact id of a frame row, as ``str(value)`` gives it."""

    def __init__(self, column: pd.Series) -> None:
        values = pa.array(column, from_pandas=True)
        self._values: pa.Array | pa.ChunkedArray = values
        self._blocks: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, row: int) -> str: ...

    @overload
    def __getitem__(self, row: slice) -> list[str]: ...

    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return take(self, np.arange(len(self))[row])
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        block = self._blocks.get(row // BLOCK)
        if block is None:
            block = self._block(row // BLOCK)
        return block[row % BLOCK]

    def _block(self, number: int) -> list[str]:
        if len(self._blocks) >= KEPT:
            del self._blocks[next(iter(self._blocks))]  # the oldest
        block = self._values.slice(number * BLOCK, BLOCK).to_pylist()
        self._blocks[number] = block
        return block

    def take(self, rows: np.ndarray) -> list[str]:
        return list(self._values.take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist())


def row_ids(column: pd.Series) -> Sequence[str]:
    """The ids of a frame's rows: Arrow strings kept as they are; any other column (ids
    that are numbers, missing ids) made into Python strings now, as ``str`` makes them."""
    if isinstance(column.dtype, pd.StringDtype) and not column.hasnans:
        return RowIds(column)
    return [str(x) for x in column.tolist()]


def take(ids: Sequence[str], rows: Any) -> list[str]:
    """The ids of these rows (an array of positions), as Python strings."""
    if isinstance(ids, RowIds):
        return ids.take(rows)
    return [ids[r] for r in np.asarray(rows, dtype=np.int64).tolist()]
