"""A run's letters rendered chunk after chunk by workers kept for the whole run: the same
letters as this process alone makes, errors at their place, the workers started once
(not per chunk) as new interpreters, and a pool that cannot start still renders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from test_render import CTX, _batch_set

from segmerge.errors import TemplateError
from segmerge.render import batches, run_pool
from segmerge.render.pool import PARALLEL_MIN
from segmerge.render.templates import Rendered, TemplateSet

CHUNKS = [list(range(a, a + 40)) for a in range(0, 120, 40)]


class Spilled:
    """The files in memory this process's pools hand the workers and get back from them,
    to prove none is left behind: other processes on the machine (a run, another test)
    add and remove theirs in the same folder meanwhile, so a listing of it proves nothing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        self.futures: list[Future[str]] = []
        spill, collect = run_pool._spill, run_pool._collect

        def spilled(batch: batches.Batch) -> str:
            self.paths.append(spill(batch))
            return self.paths[-1]

        def collected(path: str) -> list:
            self.paths.append(path)
            return collect(path)

        monkeypatch.setattr(run_pool, "_spill", spilled)
        monkeypatch.setattr(run_pool, "_collect", collected)

    def watch(self, tickets: list[run_pool.Ticket]) -> None:
        """The workers' answers to these chunks, which the run may never ask for."""
        self.futures.extend(f for t in tickets for f in t.futures)

    def left(self) -> list[str]:
        answers = [f.result() for f in self.futures if f.done() and not f.cancelled()]
        return [p for p in self.paths + answers if os.path.exists(p)]


def _items(rows: list[int]) -> list[tuple[str, dict[str, str | None], str]]:
    return [
        (
            "a" if i % 3 else "b",
            {"contact_id": str(i), "first_name": f"P{i}", "ville": None if i % 7 == 0 else "Lyon"},
            f"https://b.fr/u?t={i}",
        )
        for i in rows
    ]


def _same(got: list, want: list) -> None:
    assert [type(x) for x in got] == [type(x) for x in want]
    assert [x for x in got if isinstance(x, Rendered)] == [
        x for x in want if isinstance(x, Rendered)
    ]
    fields = [(e.field, e.line, e.file) for e in got if isinstance(e, TemplateError)]
    assert fields == [(e.field, e.line, e.file) for e in want if isinstance(e, TemplateError)]


@pytest.fixture(scope="module")
def kept(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[run_pool.RunPool, TemplateSet, list[str]]]:
    """One pool of two workers for the tests that only render through it (a spawned
    worker is the dearest part of these tests), and how its workers were started."""
    ts = _batch_set(tmp_path_factory.mktemp("kept"))
    started: list[str] = []
    real = run_pool.ProcessPoolExecutor

    def pool(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(kwargs["mp_context"].get_start_method())
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_pool, "ProcessPoolExecutor", pool)
        with run_pool.RunPool(ts, total=120, workers=2) as shared:
            yield shared, ts, started


def test_chunks_rendered_by_kept_workers_are_the_letters_this_process_makes(
    kept: tuple[run_pool.RunPool, TemplateSet, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, ts, started = kept
    spilled = Spilled(monkeypatch)
    for rows in CHUNKS:
        _same(pool.render(_items(rows), CTX), ts.render_many(_items(rows), CTX, workers=1))
    assert pool.workers == 2  # still in use after three chunks: nothing broke
    assert started == ["spawn"]  # once for all the chunks, never a fork of this heap
    assert spilled.paths and not spilled.left()  # each chunk's files gone with it


def test_a_small_run_stays_in_this_process_and_a_pool_that_cannot_start_still_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = _batch_set(tmp_path)
    assert run_pool.RunPool(ts, total=PARALLEL_MIN - 1).workers == 1

    def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("no processes here")

    monkeypatch.setattr(run_pool, "ProcessPoolExecutor", refused)
    with run_pool.RunPool(ts, total=10**6, workers=2) as kept:
        got = kept.render(_items(CHUNKS[0]), CTX)
        assert kept.workers == 1  # the next chunks do not try again
    _same(got, ts.render_many(_items(CHUNKS[0]), CTX, workers=1))


def test_the_next_chunk_renders_while_this_one_is_built_and_nothing_is_left_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run hands chunk k+1 to the workers before it builds chunk k's messages: the
    letters come back the same, in order, and a run stopped with a chunk still handed
    out (a push that failed) leaves no file of it in /dev/shm."""
    ts = _batch_set(tmp_path)
    spilled = Spilled(monkeypatch)
    with run_pool.RunPool(ts, total=120, workers=2) as kept:
        tickets = [kept.submit(_items(rows), CTX) for rows in CHUNKS]  # all handed out
        assert all(t.futures for t in tickets)  # the workers have them, none is rendered here
        spilled.watch(tickets)
        for rows, t in zip(CHUNKS[:2], tickets, strict=False):
            _same(kept.result(t), ts.render_many(_items(rows), CTX, workers=1))
        # the third chunk is never asked for: the run stops here
    assert kept.workers == 2
    assert len(spilled.futures) >= 3 and not spilled.left()


def test_contacts_sent_as_a_frame_are_the_letters_of_the_same_rows_as_records(
    kept: tuple[run_pool.RunPool, TemplateSet, list[str]],
) -> None:
    """A run hands the workers its contacts as a slice of the data frame (cheap to
    pickle), the workers make the records: missing values must stay missing (a
    ``default`` in the letter, an error where it is required) exactly as before. The
    workers never import pandas for it (some 80 MiB more in each of them)."""
    import pandas as pd

    pool, ts, _started = kept
    items = _items(CHUNKS[0])
    frame = pd.DataFrame([c for _, c, _ in items]).astype({"ville": "string"})
    batch = batches.FrameBatch([s for s, _, _ in items], frame, [u for _, _, u in items])
    want = ts.render_many(items, CTX, workers=1)
    _same(pool.result(pool.submit(batch, CTX)), want)
    assert pool.workers == 2
    worker_has = "sorted({'pandas', 'numpy', 'pyarrow'} & set(__import__('sys').modules))"
    assert pool._started().submit(eval, worker_has).result() == []
    with run_pool.RunPool(ts, total=120, workers=1) as alone:
        _same(alone.result(alone.submit(batch, CTX)), want)


def test_a_balanced_dry_run_moves_letters_to_the_side_that_waited(
    kept: tuple[run_pool.RunPool, TemplateSet, list[str]],
) -> None:
    """A dry run's process renders a share of each chunk besides checking the letters:
    when it waits for the workers it takes more letters, when the workers idle it takes
    fewer; the first chunk (the workers starting) teaches nothing. Same letters."""
    pool, ts, _started = kept
    for rows in CHUNKS:  # balanced chunks through the real workers: the same letters
        got = pool.result(pool.submit(_items(rows), CTX, own=0.7, balance=True))
        _same(got, ts.render_many(_items(rows), CTX, workers=1))

    learner = run_pool.RunPool(ts, total=10**6, workers=2)

    def chunk(waited: float, idle: float) -> float | None:
        ticket = run_pool.Ticket(None, batches.RowBatch([None] * 4000), own=1000)  # type: ignore[list-item]
        ticket.idle = idle
        learner._learn(ticket, own_time=1.0, waited=waited)  # 1 ms a letter here
        return learner._share

    assert chunk(waited=5.0, idle=0.0) is None  # the workers were starting
    assert chunk(waited=0.4, idle=0.0) == pytest.approx(1100 / 4000)  # half of 200 letters
    assert chunk(waited=0.0, idle=0.4) == pytest.approx(900 / 4000)
    assert chunk(waited=0.0, idle=0.0) == pytest.approx(1000 / 4000)
    assert chunk(waited=60.0, idle=0.0) == 0.95  # never all of it: the workers stay busy
