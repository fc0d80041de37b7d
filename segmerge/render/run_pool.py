"""Rendering a run's letters chunk after chunk on every core, with workers kept for the run.

A run renders its letters a chunk at a time (:mod:`segmerge.run.sends`), so that it
never holds them all. :func:`segmerge.render.pool.render_many` would start a pool for
every chunk, and a forked pool carries the run's whole heap (its data frames) into
each worker, counted again in each worker's memory. These workers start once, at
the first chunk, as new interpreters (spawned: a forkserver would stay beside the
run with its own imports, for nothing once the workers are up), load the same
letters from their folder, and find each share of a chunk in a file in memory
(tmpfs), written here before this process renders its own share: the pool's pipe
would have a thread of this process pickle them while it renders, for the GIL.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field
from time import monotonic
from types import TracebackType
from typing import Any, cast

from segmerge.errors import TemplateError
from segmerge.i18n import lang
from segmerge.render.pool import (
    CHUNKS_PER_WORKER,
    PARALLEL_MIN,
    PARENT_SHARE,
    Item,
    Letters,
    _collect,
    _init_worker,
    _render_chunk,
    _render_rows,
    _Row,
    _rows,
    _spill_dir,
    _worker,
    cores,
)
from segmerge.render.rendered import RenderContext, Rendered


class RunPool:
    """Workers for all the chunks of one run: ``with RunPool(letters, total) as pool:``,
    then :meth:`render` for each chunk, in order, or :meth:`submit` a chunk and take its
    :meth:`result` later: the workers render the next chunk while this process builds
    the messages of the current one (a pipeline; both cores work). ``total``, the
    letters of the whole run, decides whether workers are worth starting, as for
    :func:`render_many`."""

    def __init__(self, ts: Letters, total: int, workers: int | None = None) -> None:
        self.ts = ts
        if workers is None:
            many = total >= PARALLEL_MIN
            workers = min(cores(), max(1, total // (PARALLEL_MIN // 2))) if many else 1
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[Ticket] = []
        self._share: float | None = None  # of a chunk, what this process renders: learnt
        self._learnt = 0  # chunks balanced so far

    def __enter__(self) -> RunPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        for ticket in self._pending:  # submitted, never asked for: their files go too
            ticket.discard()
        self._pending.clear()

    def render(
        self, items: Sequence[Item], ctx: RenderContext | Sequence[RenderContext]
    ) -> list[Rendered | TemplateError]:
        """One chunk's letters, in order, one result per item (see ``render_many``);
        this process renders its share while the workers render theirs."""
        return self.result(self.submit(items, ctx, own=PARENT_SHARE))

    def submit(
        self,
        items: Sequence[Item] | Batch,
        ctx: RenderContext | Sequence[RenderContext],
        own: float = 0.0,
        balance: bool = False,
    ) -> Ticket:
        """Hand a chunk to the workers now; ``own``, of an even share, is what this
        process renders itself when :meth:`result` is asked (0: the workers render it
        all, while this process does something else). ``balance``: ``own`` is only the
        first chunks' share, then learnt from how long each side waited for the other
        (see :meth:`_learn`). A :class:`FrameBatch` lets the workers turn the contacts'
        rows into records themselves."""
        if isinstance(items, Batch):
            base = ctx if isinstance(ctx, RenderContext) else None
            batch: Batch = items
        else:
            base, rows = _rows(items, ctx)
            batch = RowBatch(rows)
        ticket = Ticket(base, batch, len(batch), balance=balance)
        if self.workers <= 1 or len(batch) < 2:
            return ticket
        if balance and self._pending:  # the workers idled since the last chunk was done
            last = self._pending[-1]
            if last.futures and len(last.done_at) == len(last.futures):
                last.idle = monotonic() - max(last.done_at)
        share = own / self.workers
        if balance and self._share is not None:
            share = self._share
        ticket.own = int(len(batch) * share)
        try:
            ticket.futures, ticket.paths = self._spread(base, batch, ticket.own)
        except (BrokenProcessPool, OSError):  # no processes here (a sandbox, a limit)
            self._alone()
            return ticket
        for f in ticket.futures:
            f.add_done_callback(ticket.finished)
        self._pending.append(ticket)
        return ticket

    def result(self, ticket: Ticket) -> list[Any]:
        """A submitted chunk's letters, in order: this process's share rendered here.
        A batch with a :class:`Finish` gives what it makes of each letter instead."""
        if ticket in self._pending:
            self._pending.remove(ticket)
        started = monotonic()
        batch = ticket.batch
        out = self._here(ticket, 0, ticket.own if ticket.futures else len(batch))
        reached, waited = monotonic(), 0.0
        try:
            for f in ticket.futures:
                if not f.done():
                    before = monotonic()
                    f.result()
                    waited += monotonic() - before
                part = _collect(f.result())
                if batch.finish is not None:
                    out.extend(part)
                else:
                    out.extend(x if isinstance(x, TemplateError) else Rendered(*x) for x in part)
            if ticket.balance and ticket.futures:
                self._learn(ticket, reached - started, waited)
        except (BrokenProcessPool, OSError):  # a worker died: this process renders the rest
            self._alone()
            out.extend(self._here(ticket, len(out), len(batch)))
        finally:
            ticket.discard()
        return out

    def _here(self, ticket: Ticket, start: int, end: int) -> list[Any]:
        """Rows ``start`` to ``end`` of a chunk rendered (and finished) in this process."""
        letters = _render_rows(self.ts, ticket.base, ticket.batch.rows(start, end))
        finish = ticket.batch.finish
        return letters if finish is None else finish.part(start, end)(letters)

    def _learn(self, ticket: Ticket, own_time: float, waited: float) -> None:
        """The next chunks' share of this process, from this chunk's: when this process
        waited for the workers' letters they had more to do; when they had rendered
        this chunk before the next one came, they idled. Either way the letters that
        time renders change sides, half of them at a time (two chunks are in flight,
        so a correction shows one chunk late). The first chunk also waits for the
        workers to start: it teaches nothing."""
        self._learnt += 1
        if self._learnt == 1 or ticket.own <= 0:
            return
        rate = own_time / ticket.own  # seconds a letter, here; the workers' alike
        both = rate + rate / (self.workers - 1)
        moved = 0.5 * (waited - ticket.idle) / both
        self._share = min(0.95, max(0.05, (ticket.own + moved) / len(ticket.batch)))

    def _alone(self) -> None:
        self.close()
        self.workers = 1

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers - 1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                # each worker loads the same set, and speaks the same language
                initargs=("", type(self.ts).load, self.ts.spec, lang()),
            )
        return self._pool

    def _spread(
        self, base: RenderContext | None, batch: Batch, own: int
    ) -> tuple[list[Future[str]], list[str]]:
        """The workers' shares go to files, then to the workers; this process's own
        share (the first ``own`` rows) waits for :meth:`result`."""
        pool = self._started()
        n = len(batch)
        size = max(1, -(-(n - own) // ((self.workers - 1) * CHUNKS_PER_WORKER)))
        paths = [_spill(batch.part(a, min(a + size, n))) for a in range(own, n, size)]
        try:
            return [pool.submit(_render_batch, (base, p)) for p in paths], paths
        except BaseException:
            _unlink(paths)
            raise


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


def _render_batch(job: tuple[RenderContext | None, str]) -> str:
    """A worker's share: its rows made from the file in memory, then rendered."""
    base, path = job
    batch = cast(Batch, _collect(path))
    rows = batch.rows(0, len(batch))
    if batch.finish is None:
        return _render_chunk((base, rows))
    return _spill(batch.finish(_render_rows(_worker["ts"], base, rows)), "segmerge-letters-")


@dataclass(eq=False)
class Ticket:
    """A chunk handed to the workers: its contacts, the workers' futures and the files in
    memory that carry their shares (removed by the workers, or here if the pool broke)."""

    base: RenderContext | None
    batch: Batch
    own: int
    futures: list[Future[str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    balance: bool = False
    done_at: list[float] = field(default_factory=list)  # when each worker's share was done
    idle: float = 0.0  # how long the workers then waited for the next chunk

    def finished(self, _future: Future[str]) -> None:
        self.done_at.append(monotonic())

    def discard(self) -> None:
        """Nothing of this chunk left in /dev/shm: the rows' files a worker did not
        read, and the letters' files of a worker that finished but was never asked."""
        _unlink(self.paths)
        for f in self.futures:
            if f.done() and not f.cancelled() and f.exception() is None:
                _unlink([f.result()])
            else:
                f.cancel()
        self.futures, self.paths = [], []


def _unlink(paths: Sequence[str]) -> None:
    for p in paths:
        with suppress(FileNotFoundError):
            os.unlink(p)


def _spill(obj: Any, prefix: str = "segmerge-rows-") -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, dir=_spill_dir())
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path
