"""A full disk or a corrupt database page during a run: a clear message naming the file,
exit 1, and nothing recorded as done that was not (so the next run mails nobody twice)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli import segmerge
from state_ws import DAY1, DAY2, letters, make_workspace, run_campaign

from segmerge.ledger import store as ledger_mod
from segmerge.run import pipeline
from segmerge.workspace.storage import StorageError


def done_sends(root: Path, day: str) -> set[str]:
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        rows = db.execute(
            "SELECT target FROM actions WHERE kind='send' AND status='done' AND run_id=?",
            (f"news@{day}",),
        ).fetchall()
    return {r[0] for r in rows}


def test_a_full_ledger_mid_push_names_it_and_records_nothing_done_that_was_not(
    tmp_path, monkeypatch
):
    root = make_workspace(tmp_path / "ws", contacts=300)  # two outbox batches: 200, 100
    real_mark = ledger_mod.Ledger.mark_in_flight
    calls = []

    def fill_the_disk_once_the_second_batch_is_in_flight(self, keys):  # type: ignore[no-untyped-def]
        real_mark(self, keys)
        calls.append(len(keys))
        if len(calls) == 2:  # the batch is written, then its outcome cannot be recorded
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(
        ledger_mod.Ledger, "mark_in_flight", fill_the_disk_once_the_second_batch_is_in_flight
    )
    with pytest.raises(StorageError) as caught:
        run_campaign(root, day=DAY1)
    assert caught.value.exit_code == 1
    assert caught.value.file == str(root / ".segmerge" / "ledger.sqlite")
    assert "full" in caught.value.message
    assert len(letters(root, day=DAY1)) == 300  # both batches reached the outbox...
    assert len(done_sends(root, DAY1)) == 200  # ...the second was never recorded as done

    monkeypatch.undo()  # space is freed: the run resumes, and nobody gets a second letter
    summary = run_campaign(root, day=DAY1)
    assert summary.resumed and summary.outcome["send"] == {"done": 300}
    assert all(len(runs) == 1 for runs in letters(root, day=DAY1).values())
    assert len(letters(root, day=DAY1)) == 300


def test_a_page_corrupted_during_the_run_stops_it_naming_the_ledger(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "ws", contacts=60)
    run_campaign(root, day=DAY1)
    path = root / ".segmerge" / "ledger.sqlite"
    real_open = pipeline.open_campaign

    def open_then_a_page_goes_bad(*args, **kwargs):  # type: ignore[no-untyped-def]
        camp = real_open(*args, **kwargs)  # after the state was checked, the disk fails
        with sqlite3.connect(path) as db:
            size = db.execute("PRAGMA page_size").fetchone()[0]
            pages = db.execute("PRAGMA page_count").fetchone()[0]
        assert pages > 8, pages  # the ledger spans pages enough that some go bad
        with open(path, "r+b") as fh:
            for page in range(2, pages):
                fh.seek(page * size + 100)
                fh.write(b"\xa5" * (size - 200))
        return camp

    monkeypatch.setattr(pipeline, "open_campaign", open_then_a_page_goes_bad)
    with pytest.raises(StorageError) as caught:
        run_campaign(root, day=DAY2)
    assert caught.value.exit_code == 1 and caught.value.file == str(path)
    assert "damaged" in caught.value.message and "doctor --restore" in (caught.value.hint or "")
    assert letters(root, day=DAY2) == {}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 48 KiB file system (tmpfs): the disk really fills up."""
    mount = tmp_path / "ws" / "box"  # inside the workspace, as an outbox must be
    mount.mkdir(parents=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_under_the_outbox_is_exit_1_naming_the_file_then_resumes(tmp_path, tiny_disk):
    extra = '\n[destinations.box]\nconnector = "outbox"\npath = "box"\n'
    root = make_workspace(tmp_path / "ws", contacts=40, extra=extra)
    config = root / "segmerge.toml"
    config.write_text(
        config.read_text().replace(
            'templates = "templates/news"\ndestination = "outbox"',
            'templates = "templates/news"\ndestination = "box"',
        )
    )
    cmd = ("run", "news", "-w", str(root), "--as-of", DAY1)
    proc = segmerge(*cmd)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No space left on device" in proc.stderr and ".eml" in proc.stderr
    assert "internal error" not in proc.stderr
    on_disk = {p.name.split("-")[0] for p in tiny_disk.rglob("*.eml")}
    recorded = {t.split("@")[0].removeprefix("c") for t in done_sends(root, DAY1)}
    assert 0 < len(on_disk) < 40
    assert recorded <= on_disk  # nothing is "done" that is not on the disk

    subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_disk)], check=True)
    proc = segmerge(*cmd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(p.name for p in tiny_disk.rglob("*.eml"))
    assert len(files) == 40 and len(set(files)) == 40  # each contact exactly one letter
