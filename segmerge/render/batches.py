"""A chunk of a run's contacts as the render workers receive it, and what becomes of its
letters (:class:`Finish`): apart from :mod:`segmerge.render.run_pool`, which hands them
out, since a worker unpickles these and nothing of the pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from segmerge.errors import TemplateError
from segmerge.render.pool import _Row
from segmerge.render.rendered import Rendered


class Finish(ABC):
    """What the process that renders a share of a chunk makes of its letters, sent back
    instead of them. A dry run (segmerge.run) checks each letter as a send would and
    sends back its verdict: the checks run on every core that renders, and a verdict
    pickles in a fraction of the time of a letter."""

    @abstractmethod
    def part(self, start: int, end: int) -> Finish:
        """The same, for rows ``start`` to ``end`` of the chunk."""

    @abstractmethod
    def __call__(self, letters: list[Rendered | TemplateError]) -> list[Any]:
        """One picklable result per letter, in order (``letters`` are this part's)."""


class Batch(ABC):
    """A chunk's contacts as the workers receive them; :meth:`rows` makes the rows
    :func:`_render_rows` renders, in the process that renders them. ``finish``: what
    becomes of the letters (None: they come back as they are)."""

    finish: Finish | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def part(self, start: int, end: int) -> Batch:
        """Rows ``start`` to ``end``, to be pickled for a worker."""

    @abstractmethod
    def rows(self, start: int, end: int) -> list[_Row]:
        """Rows ``start`` to ``end`` as :func:`_render_rows` takes them."""


class RowBatch(Batch):
    """Rows made already: (letter, contact record, unsubscribe link, context)."""

    def __init__(self, rows: list[_Row]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def part(self, start: int, end: int) -> Batch:
        return RowBatch(self._rows[start:end])

    def rows(self, start: int, end: int) -> list[_Row]:
        return self._rows[start:end]


class FrameBatch(Batch):
    """The contacts as a slice of the run's data frame, with each one's letter and
    link. A worker gets its share as a :class:`ColumnBatch`: columns pickle some twenty
    times cheaper than the same rows as dicts, and the worker zips them into records,
    not the process building the messages."""

    def __init__(
        self, letters: list[str], frame: Any, urls: list[str], finish: Finish | None = None
    ) -> None:
        self.letters, self.frame, self.urls, self.finish = letters, frame, urls, finish

    def __len__(self) -> int:
        return len(self.letters)

    def part(self, start: int, end: int) -> Batch:
        """The rows as columns of plain values: a worker that unpickled a data frame
        would import pandas for it, some 80 MiB more in each worker."""
        names, values = _columns(self.frame.iloc[start:end])
        finish = self.finish.part(start, end) if self.finish is not None else None
        return ColumnBatch(self.letters[start:end], names, values, self.urls[start:end], finish)

    def rows(self, start: int, end: int) -> list[_Row]:
        return self.part(start, end).rows(0, end - start)


class ColumnBatch(Batch):
    """Contacts as one list of values per column, each value what ``to_dict`` gives
    (see :func:`_columns`), with each one's letter and link."""

    def __init__(
        self,
        letters: list[str],
        names: list[str],
        values: list[list[Any]],
        urls: list[str],
        finish: Finish | None = None,
    ) -> None:
        self.letters, self.names, self.values, self.urls = letters, names, values, urls
        self.finish = finish

    def __len__(self) -> int:
        return len(self.letters)

    def part(self, start: int, end: int) -> Batch:
        values = [v[start:end] for v in self.values]
        finish = self.finish.part(start, end) if self.finish is not None else None
        return ColumnBatch(
            self.letters[start:end], self.names, values, self.urls[start:end], finish
        )

    def rows(self, start: int, end: int) -> list[_Row]:
        records = _zip(self.names, [v[start:end] for v in self.values], end - start)
        pairs = zip(self.letters[start:end], records, self.urls[start:end], strict=True)
        return [(letter, contact, url, None) for letter, contact, url in pairs]


def _records(frame: Any) -> list[dict[str, Any]]:
    """``frame.to_dict("records")``, the same values of the same types."""
    names, values = _columns(frame)
    return _zip(names, values, len(frame))


def _zip(names: list[str], values: list[list[Any]], n: int) -> list[dict[str, Any]]:
    if not names:  # letters that read no column of the contact
        return [{} for _ in range(n)]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _columns(frame: Any) -> tuple[list[str], list[list[Any]]]:
    """The frame's names and values, a column at a time, each value of the type
    ``frame.to_dict("records")`` gives: pandas boxes each value of a row on its own,
    several times the cost of the letter's Jinja. Numbers of a NumPy column come out
    of ``tolist`` as iterating gives them (``item()``); strings as NumPy boxes them
    (their missing value None where pandas' is NA); the others are iterated and boxed
    as ``to_dict`` boxes them."""
    import numpy as np
    import pandas as pd
    from pandas.api.extensions import ExtensionDtype
    from pandas.core.dtypes.cast import maybe_box_native

    values: list[list[Any]] = []
    for k, dtype in enumerate(frame.dtypes.values):
        column = frame.iloc[:, k]
        if isinstance(dtype, pd.StringDtype):  # str, or a missing value boxing makes None
            na = None if dtype.na_value is pd.NA else dtype.na_value
            values.append(column.to_numpy(dtype=object, na_value=na).tolist())
        elif dtype == np.dtype(object) or isinstance(dtype, ExtensionDtype):
            values.append(list(map(maybe_box_native, column)))
        elif dtype.kind in "biuf":
            values.append(column.to_numpy().tolist())
        else:  # datetimes, durations: iterated as Timestamps and Timedeltas
            values.append(list(column))
    return frame.columns.tolist(), values
