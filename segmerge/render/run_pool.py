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
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from types import TracebackType
from typing import Any

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
    cores,
)
from segmerge.render.rendered import RenderContext, Rendered


class RunPool:
    """Workers for all the chunks of one run: ``with RunPool(letters, total) as pool:``,
    then :meth:`render` for each chunk, in order. ``total``, the letters of the whole
    run, decides whether workers are worth starting, as for :func:`render_many`."""

    def __init__(self, ts: Letters, total: int, workers: int | None = None) -> None:
        self.ts = ts
        if workers is None:
            many = total >= PARALLEL_MIN
            workers = min(cores(), max(1, total // (PARALLEL_MIN // 2))) if many else 1
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

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

    def render(
        self, items: Sequence[Item], ctx: RenderContext | Sequence[RenderContext]
    ) -> list[Rendered | TemplateError]:
        """One chunk's letters, in order, one result per item (see ``render_many``)."""
        base, rows = _rows(items, ctx)
        if self.workers <= 1 or len(rows) < 2:
            return _render_rows(self.ts, base, rows)
        try:
            return self._share(base, rows)
        except (BrokenProcessPool, OSError):  # no processes here (a sandbox, a limit)
            self.close()
            self.workers = 1
            return _render_rows(self.ts, base, rows)

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

    def _share(
        self, base: RenderContext | None, rows: list[_Row]
    ) -> list[Rendered | TemplateError]:
        """The workers' shares go to files first; then this process renders its own."""
        pool = self._started()
        own = int(len(rows) / self.workers * PARENT_SHARE)
        size = max(1, -(-(len(rows) - own) // ((self.workers - 1) * CHUNKS_PER_WORKER)))
        paths = [_spill(rows[a : a + size]) for a in range(own, len(rows), size)]
        try:
            futures: list[Future[str]] = [pool.submit(_render_chunk, (base, p)) for p in paths]
            out: list[Rendered | TemplateError] = _render_rows(self.ts, base, rows[:own])
            for f in futures:
                part = _collect(f.result())
                out.extend(x if isinstance(x, TemplateError) else Rendered(*x) for x in part)
            return out
        finally:
            for p in paths:  # read and removed by its worker, unless the pool broke
                with suppress(FileNotFoundError):
                    os.unlink(p)


def _spill(rows: Sequence[tuple[str, Mapping[str, Any], Any, Any]]) -> str:
    fd, path = tempfile.mkstemp(prefix="segmerge-rows-", dir=_spill_dir())
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(list(rows), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path
