"""Rendering many letters on every core: what :meth:`TemplateSet.render_many` runs.

Jinja is pure Python, so one process renders a few thousand letters a second;
a base of 100,000 contacts wants every core. Compiled templates cannot be
pickled, so each worker process loads the same TemplateSet again from its
folder (or inherits it, when the pool forks from a single-threaded process)
and receives contacts in large chunks, to keep the cost of passing them small
against the cost of rendering them. Small batches stay in this process, where
starting workers would cost more than it saves.

A contact whose letter cannot be filled yields its TemplateError in the
result list, at its place: one bad contact never stops the batch.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import date
from typing import Any, Protocol, cast

from segmerge.errors import TemplateError
from segmerge.heap import frozen_heap
from segmerge.i18n import lang, use_locale
from segmerge.render.limits import Limits
from segmerge.render.rendered import RenderContext, Rendered

#: below this many letters, workers cost more to start than they save
PARALLEL_MIN = 8000
#: chunks per worker: enough to even out uneven chunks, few enough to keep overhead low
CHUNKS_PER_WORKER = 4
#: a letter that ran out of time for this many contacts gets SLOW_SECONDS for the others
SLOW_AFTER = 3
SLOW_SECONDS = 0.5
#: of an even share, what this process renders itself (benchmarks/render.py finds the best)
PARENT_SHARE = 1.0

Item = tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str]


class Letters(Protocol):
    """What the pool needs of a set of letters (a TemplateSet): render one row, and the
    arguments of ``load`` that give a spawned worker the same set again."""

    limits: Limits
    spec: dict[str, Any]

    def render_row(
        self,
        segment_name: str,
        contact: Mapping[str, Any],
        campaign: Mapping[str, Any],
        today: date,
        unsubscribe_url: str,
        limits: Limits | None = None,
    ) -> Rendered: ...

    @classmethod
    def load(cls, *args: Any, **kwargs: Any) -> Letters: ...


_Row = tuple[str, Mapping[str, Any], "str | None", "RenderContext | None"]

# The set (and the rows) a forked worker inherits from its parent, by pool token: a
# forked worker reads its share of the batch from memory instead of a pipe.
_INHERITED: dict[str, Letters] = {}
_INHERITED_ROWS: dict[str, list[_Row]] = {}
_worker: dict[str, Any] = {}


def cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def render_many(
    ts: Letters,
    items: Sequence[Item],
    ctx: RenderContext | Sequence[RenderContext] | Callable[[Mapping[str, Any]], RenderContext],
    *,
    workers: int | None = None,
) -> list[Rendered | TemplateError]:
    """Many letters, in order, one result per item: a Rendered or that contact's TemplateError.

    ``items`` are ``(segment, contact)`` or ``(segment, contact, unsubscribe_url)``: the
    third element overrides ``ctx.unsubscribe_url``, which is how each contact gets its
    own signed link without building a RenderContext per contact. ``ctx`` is one
    RenderContext for all, a sequence of them (one per item), or a function of the
    contact (called here, in this process). ``workers=None`` uses every core when the
    batch is large and this process otherwise; ``workers=1`` always renders here,
    ``workers=k`` uses k processes.
    """
    base, rows = _rows(items, ctx)
    n = len(rows)
    if workers is None:
        workers = min(cores(), max(1, n // (PARALLEL_MIN // 2))) if n >= PARALLEL_MIN else 1
    if workers <= 1 or n < 2:
        return _render_rows(ts, base, rows)
    try:
        return _parallel(ts, base, rows, workers)
    except (BrokenProcessPool, OSError):  # no processes here (a sandbox, a limit): still render
        return _render_rows(ts, base, rows)


def _rows(
    items: Sequence[Item],
    ctx: RenderContext | Sequence[RenderContext] | Callable[[Mapping[str, Any]], RenderContext],
) -> tuple[RenderContext | None, list[_Row]]:
    """Items with their unsubscribe link and, unless one context serves all, their context."""
    per_item: Sequence[RenderContext] | None = None
    base: RenderContext | None = None
    if isinstance(ctx, RenderContext):
        base = ctx
    elif callable(ctx):
        per_item = [ctx(item[1]) for item in items]
    else:
        per_item = list(ctx)
        if len(per_item) != len(items):
            raise ValueError(f"{len(per_item)} render contexts for {len(items)} items")
    rows: list[_Row] = []
    for i, item in enumerate(items):
        url = item[2] if len(item) > 2 else None
        rows.append((item[0], item[1], url, per_item[i] if per_item is not None else None))
    return base, rows


def _render_rows(
    ts: Letters, base: RenderContext | None, rows: Sequence[_Row]
) -> list[Rendered | TemplateError]:
    """The letters of ``rows``, in order. A letter that ran out of time for
    :data:`SLOW_AFTER` contacts gets :data:`SLOW_SECONDS` for the others: hostile
    data in many contacts would otherwise cost the whole limit each, and a sound
    letter renders in a millisecond, so no contact is skipped untried."""
    out: list[Rendered | TemplateError] = []
    render = ts.render_row
    timeouts: dict[str, int] = {}
    short = replace(ts.limits, seconds=min(ts.limits.seconds, SLOW_SECONDS))
    for segment, contact, url, own in rows:
        c = own if own is not None else base
        assert c is not None
        limits = short if timeouts and timeouts.get(segment, 0) >= SLOW_AFTER else None
        try:
            out.append(
                render(segment, contact, c.campaign, c.today, url or c.unsubscribe_url, limits)
            )
        except TemplateError as exc:
            exc.__traceback__ = None
            out.append(exc)
            if exc.timed_out:
                timeouts[segment] = timeouts.get(segment, 0) + 1
    return out


def _context() -> multiprocessing.context.BaseContext:
    """fork when it is safe (no other thread to deadlock on), else a clean start."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def astuple(r: Rendered) -> tuple[Any, ...]:
    return (r.subject, r.preheader, r.html, r.text, r.from_addr, r.reply_to, r.template)


def _parallel(
    ts: Letters, base: RenderContext | None, rows: list[_Row], workers: int
) -> list[Rendered | TemplateError]:
    """This process renders a share too: with ``workers`` cores, ``workers - 1`` processes
    and this one, instead of this one idling while it waits."""
    own = int(len(rows) / workers * PARENT_SHARE)
    rest = len(rows) - own
    helpers = workers - 1
    size = max(1, -(-rest // (helpers * CHUNKS_PER_WORKER)))
    bounds = [(i, min(i + size, len(rows))) for i in range(own, len(rows), size)]
    token = uuid.uuid4().hex
    mp = _context()
    forked = mp.get_start_method() == "fork"
    _INHERITED[token] = ts
    if forked:
        _INHERITED_ROWS[token] = rows
        jobs: list[Any] = [(base, token, a, b) for a, b in bounds]
    else:
        jobs = [(base, rows[a:b]) for a, b in bounds]
    # Forked workers would otherwise run the garbage collector over every object they
    # inherited (the whole batch, the parent's data frames), copying the pages it touches.
    try:
        with (
            frozen_heap(),
            ProcessPoolExecutor(
                max_workers=min(helpers, len(jobs)),
                mp_context=mp,
                initializer=_init_worker,
                # a spawned worker loads the same set, and speaks the same language
                initargs=(token, type(ts).load, ts.spec, lang()),
            ) as pool,
        ):
            futures = [pool.submit(_render_chunk, job) for job in jobs]
            out: list[Rendered | TemplateError] = _render_rows(ts, base, rows[:own])
            for f in futures:
                part = _collect(f.result())
                out.extend(x if isinstance(x, TemplateError) else Rendered(*x) for x in part)
            return out
    finally:
        del _INHERITED[token]
        _INHERITED_ROWS.pop(token, None)


def _init_worker(
    token: str, load: Callable[..., Letters], spec: dict[str, Any], language: str = "en"
) -> None:
    use_locale(language)
    inherited = _INHERITED.get(token)
    _worker["ts"] = inherited if inherited is not None else load(**spec)


def _render_chunk(job: tuple[Any, ...]) -> str:
    """Render a chunk and leave the letters in a file in memory (tmpfs), returning its path.

    Through the pool's pipe, the letters would be read by a thread of the
    parent that needs the GIL while the parent renders its own share: the
    worker would stall on a full pipe. A file written at memory speed and read
    once the parent is done costs neither. Plain tuples: far cheaper to pickle
    than dataclasses.
    """
    if len(job) == 4:  # forked: (context, token, start, end) of the inherited rows
        base, token, start, end = job
        rows = _INHERITED_ROWS[token][start:end]
    elif isinstance(job[1], str):  # (context, path): the rows in a file in memory
        base, rows = job[0], cast(list[_Row], _collect(job[1]))
    else:
        base, rows = job
    letters = [
        x if isinstance(x, TemplateError) else astuple(x)
        for x in _render_rows(_worker["ts"], base, rows)
    ]
    fd, path = tempfile.mkstemp(prefix="segmerge-letters-", dir=_spill_dir())
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(letters, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _spill_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _collect(path: str) -> list[tuple[Any, ...] | TemplateError]:
    try:
        with open(path, "rb") as fh:
            letters: list[tuple[Any, ...] | TemplateError] = pickle.load(fh)
    finally:
        os.unlink(path)
    return letters
