"""A run's letters go a chunk at a time: rendered, built, recorded and pushed, so a run
holds one chunk of letters whatever the size of the base, and does exactly what a run
holding them all did: the same letters, in the same order, the same ledger, the same
summary, and a run stopped between two chunks resumes without sending anything twice.

The demo workspace (its first 120 contacts, 110 letters or so) with chunks of 5 letters
against one chunk larger than the base: some twenty chunks against one, and more letters
than one chunk and an outbox batch together (what a chunked run may hold at most). The
outbox's batches are cut to 40 letters for these runs (200 otherwise): the bound a
chunked run keeps is stated for any batch size, and a smaller one lets a smaller base,
cheaper to run four times, hold more than a chunk and a batch.
"""

from __future__ import annotations

import shutil
import sqlite3
import weakref
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from connectors.outbox import OutboxConnector
from segmerge.run import campaign, letter_check, sends
from segmerge.run.pipeline import RunOptions, RunSummary, run
from segmerge.workspace import config as wsmod
from tests.demo_fixtures import copy_of

AS_OF = "2026-12-01"
CONTACTS = 120  # of the demo's 2,252
SMALL = 5  # letters per chunk in these tests
BIG = 10**6  # every letter in one chunk: the run as it was before chunks
BATCH = 40  # letters per outbox batch in these tests


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OutboxConnector, "batch_size", BATCH)


@pytest.fixture(scope="module")
def demo(demo_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_of(demo_pristine, tmp_path_factory.mktemp("demo") / "ws")
    # cheaper runs: the first contacts (ids 00001...), their orders and their events
    data = root / "examples" / "demo"
    for name, sep, column in (("contacts", b";", 0), ("orders", b";", 1), ("events", b",", 0)):
        head, *rows = (data / f"{name}.csv").read_bytes().splitlines(keepends=True)
        ids = [r.split(sep)[column].strip() if sep in r else b"" for r in rows]
        kept = [r for r, i in zip(rows, ids, strict=True) if not i.isdigit() or int(i) <= CONTACTS]
        (data / f"{name}.csv").write_bytes(b"".join([head, *kept]))
    return root


class Letters:
    """Counts every message a run builds and, at each one, how many built before it are
    still alive (held by the run): no collector needed, a message has no cycle. And the
    order in which the outbox got the letters."""

    def __init__(self) -> None:
        self.built = self.most_alive = self.checked = 0
        self.pushed: list[str] = []
        self.alive: weakref.WeakSet[Message] = weakref.WeakSet()

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> Letters:
        build, push = campaign.OpenCampaign.message, OutboxConnector.push
        check = campaign.OpenCampaign.check_message

        def checked(camp: campaign.OpenCampaign, *args: Any, **kwargs: Any) -> None:
            check(camp, *args, **kwargs)
            self.checked += 1

        def message(camp: campaign.OpenCampaign, *args: Any, **kwargs: Any) -> Message:
            self.most_alive = max(self.most_alive, len(self.alive))
            msg = build(camp, *args, **kwargs)
            self.alive.add(msg)
            self.built += 1
            return msg

        def pushed(dest: OutboxConnector, actions: Any) -> Any:
            self.pushed.extend(a.key for a in actions)
            return push(dest, actions)

        def checked_where_rendered(*args: Any, **kwargs: Any) -> None:  # a dry run's
            check_message(*args, **kwargs)
            self.checked += 1

        check_message = letter_check.check_message
        monkeypatch.setattr(campaign.OpenCampaign, "message", message)
        monkeypatch.setattr(campaign.OpenCampaign, "check_message", checked)
        monkeypatch.setattr(letter_check, "check_message", checked_where_rendered)
        monkeypatch.setattr(OutboxConnector, "push", pushed)
        return self


def _run(root: Path, chunk: int, monkeypatch: pytest.MonkeyPatch, **opts: Any) -> RunSummary:
    monkeypatch.setattr(sends, "CHUNK", chunk)
    return run(wsmod.load(root), "profils", RunOptions(as_of=AS_OF, **opts))


def _ledger(root: Path) -> list[tuple[Any, ...]]:
    """Every action as recorded (what the run did), without its times."""
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        return db.execute(
            "SELECT key, contact_id, kind, destination, segment, target, status, detail, "
            "variant FROM actions ORDER BY key"
        ).fetchall()


@pytest.fixture(scope="module")
def whole(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The run as it was before chunks: every letter in one chunk, all held at once."""
    root = tmp_path_factory.mktemp("whole") / "ws"
    shutil.copytree(demo, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OutboxConnector, "batch_size", BATCH)
        seen = Letters().watch(mp)
        summary = _run(root, BIG, mp)
    assert summary.planned["send"] > 20 * SMALL  # twenty chunks and more below
    assert summary.planned["send"] > SMALL + BATCH + 50  # see the bound
    assert summary.not_mailed  # a contact the run does not mail is in the sample
    assert seen.most_alive >= summary.planned["send"] - 1  # the counter sees them all held
    return summary, seen.pushed, _ledger(root)


def _same_summary(a: RunSummary, b: RunSummary) -> None:
    for name in ("planned", "not_mailed", "render_errors", "segments", "changes"):
        assert getattr(a, name) == getattr(b, name), name


def test_a_dry_run_checks_every_letter_builds_none_and_says_what_the_run_does(
    demo: Path, whole: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each letter's message is checked as a send checks it (the same letters refused,
    with the same errors, as the real run's), and none is built: nothing to hold."""
    seen = Letters().watch(monkeypatch)
    dry = _run(demo, SMALL, monkeypatch, dry_run=True)
    assert seen.checked == dry.planned["send"] and seen.built == 0  # the demo refuses none
    _same_summary(dry, whole[0])
    assert not (demo / ".segmerge" / "ledger.sqlite").exists()  # a dry run writes nothing


def test_a_run_pushes_chunk_by_chunk_the_same_letters_in_the_same_order(
    demo: Path, tmp_path: Path, whole: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, order, ledger = whole
    shutil.copytree(demo, tmp_path / "ws")
    seen = Letters().watch(monkeypatch)
    chunked = _run(tmp_path / "ws", SMALL, monkeypatch)
    _same_summary(chunked, summary)
    assert chunked.outcome == summary.outcome
    assert chunked.outcome["send"] == {"done": summary.planned["send"]}
    assert seen.pushed == order  # the same letters, in the same order
    # alive at most: the chunk being built, and the part of an outbox batch taken from
    # the previous chunk that waits for the first letters of this one
    assert seen.most_alive < SMALL + BATCH
    assert _ledger(tmp_path / "ws") == ledger


def test_a_run_stopped_between_chunks_resumes_and_sends_each_letter_once(
    demo: Path, tmp_path: Path, whole: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(demo, root)

    def stop(phase: str, done: int, total: int) -> None:
        if phase == "send" and done >= 5 * SMALL:  # as Ctrl-C would, at a checkpoint
            raise KeyboardInterrupt

    seen = Letters().watch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _run(root, SMALL, monkeypatch, progress=stop)
    first = list(seen.pushed)
    statuses = {r[6] for r in _ledger(root)}
    assert len(first) == sum(1 for r in _ledger(root) if r[6] == "done") >= 5 * SMALL
    assert statuses <= {"done", "planned", "skipped", "holdout", "deferred"}  # none in flight
    seen.built, seen.pushed = 0, []

    again = _run(root, SMALL, monkeypatch)
    assert not set(seen.pushed) & set(first)  # nothing sent twice
    assert seen.built == len(seen.pushed)  # a letter sent is not rendered again
    assert sorted(first + seen.pushed) == sorted(whole[1])
    assert again.outcome == whole[0].outcome
    assert _ledger(root) == whole[2]
