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
from segmerge.render.batches import Batch, RowBatch
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

    def warm(self) -> RunPool:
        """Start the workers now: a spawned worker takes a second or more to import and
        load the letters, which a dry run spends choosing its sends instead of waiting."""
        if self.workers > 1:
            try:
                pool = self._started()
                for _ in range(self.workers - 1):
                    pool.submit(_ready)
            except (BrokenProcessPool, OSError):
                self._alone()
        return self

    def fit(self, total: int) -> RunPool:
        """The run has ``total`` letters, fewer than the pool was started for: too few for
        workers, they go (a pool is started for the contacts, an upper bound)."""
        if self.workers > 1 and total < PARALLEL_MIN:
            self._alone()
        return self

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


def _ready() -> None:
    """A worker's first job: nothing, once it has started (see :meth:`RunPool.warm`)."""


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
