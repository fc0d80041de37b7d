"""A run killed with SIGKILL in the middle, then started again, sends every letter exactly once.

The demo workspace's campaign, its data cut to the first 250 of its 2,250
customers (their orders and events kept, in the exports' own formats), writes
its 229 letters to the outbox (one .eml file each, written to a temporary name,
then renamed), in batches of 60 (the outbox's 200 would need three times the
letters for the same kills), each marked in flight in the ledger before its
first file and recorded after its last. Real `segmerge run` processes
(forked by tests/forked_cli.py) are killed with SIGKILL the moment the fifth
file of a batch appears:

- in the first run: its first batch in flight, five files written, maybe a
  sixth half written, nothing recorded;
- in the run that resumes it: the half-written batch redone (its five files
  already there) and recorded done, the next one in flight.

The ledger read after each kill proves where it landed (a test process too slow
to kill inside the batch starts one more run). The resume must count a file
that already holds the letter's Message-ID as sent, never write it twice, and
leave no temporary file behind; the letters sent are those of one clean run.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from cli import segmerge
from forked_cli import PRELOAD, Child, forks

from connectors.outbox import OutboxConnector

AS_OF = "2026-12-01"
BATCH = 60  # the outbox destination's batch_size in these runs
IMPORTS = (*PRELOAD, "connectors.outbox", "connectors.files", "duckdb")
KEEP = b"00250"  # the last customer kept: three full batches and a part
#: the demo's exports: the column of the customer number in each
DEMO = {"contacts.csv": (b";", 0), "orders.csv": (b";", 1), "events.csv": (b",", 0)}


def demo_workspace(root: Path) -> None:
    """`segmerge init`, its exports cut to the customers up to :data:`KEEP` (bytes as they
    are: each file keeps its encoding, separator and line ends)."""
    segmerge("init", str(root), check=True)
    for name, (sep, column) in DEMO.items():
        path = root / "examples" / "demo" / name
        head, *rows = path.read_bytes().splitlines(keepends=True)
        kept = [r for r in rows if r.split(sep)[column].strip() <= KEEP]
        assert 0 < len(kept) < len(rows)
        path.write_bytes(head + b"".join(kept))


def sends(ledger: Path) -> dict[str, int]:
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT status, COUNT(*) FROM actions WHERE kind='send' GROUP BY status")
        return dict(rows.fetchall())


def letters(folder: Path) -> int:
    try:
        return sum(1 for e in folder.iterdir() if e.name.endswith(".eml"))
    except FileNotFoundError:
        return 0


def kill_in_batch(child: Child, folder: Path) -> int:
    """SIGKILL ``child`` five letters into the first batch it writes from scratch (after
    the batches whose files are there already); returns the letters recorded done by then."""
    before = -(-letters(folder) // BATCH) * BATCH
    deadline = time.monotonic() + 120
    while letters(folder) < before + 5:
        assert child.poll() is None, f"the run ended before its letter {before + 5}"
        assert time.monotonic() < deadline, f"the run never wrote its letter {before + 5}"
        time.sleep(0.002)
    child.kill()
    return before


def test_sigkill_mid_run_then_resume_sends_each_letter_once(fork_server, tmp_path, monkeypatch):
    monkeypatch.setattr(OutboxConnector, "batch_size", BATCH)  # the runs in this process
    root = tmp_path / "ws"
    demo_workspace(root)
    ledger = root / ".segmerge" / "ledger.sqlite"
    args = ["run", "profils", "-w", str(root), "--as-of", AS_OF]
    outbox = root / "outbox" / "profils" / f"profils@{AS_OF}"
    landed: list[bool] = []  # for each kill inside a batch: had its run a batch to redo?
    runs_started = 0
    batch = {"connectors.outbox.OutboxConnector.batch_size": BATCH}
    with forks(fork_server, tmp_path / "runs.log", IMPORTS, batch) as runs:
        while not (False in landed and True in landed):
            assert runs_started < 5, f"too few kills landed inside a batch: {landed}"
            half_written = letters(outbox) % BATCH != 0
            child = runs.start(*args)
            runs_started += 1
            done = kill_in_batch(child, outbox)
            assert child.wait() == -9
            # where it landed: the batch being written in flight, those before it done
            got = sends(ledger)
            if got.get("done", 0) == done and got.get("in_flight") == BATCH:
                landed.append(half_written)

    final = segmerge(*args)  # the resume needs no process of its own: the kills did
    assert final.returncode == 0, final.stdout + final.stderr

    with sqlite3.connect(ledger) as db:
        planned_contacts = [
            r[0]
            for r in db.execute(
                "SELECT contact_id FROM actions WHERE kind='send' AND status='done'"
            )
        ]
    assert set(sends(ledger)) == {"done"}, sends(ledger)
    files = sorted((root / "outbox").rglob("*.eml"))
    assert len(files) == len(planned_contacts) == len(set(planned_contacts))
    # a fresh copy of the workspace, run once without interruption, sends the same set
    clean = tmp_path / "clean"
    demo_workspace(clean)
    ref = segmerge("run", "profils", "-w", str(clean), "--as-of", AS_OF)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    names = sorted(p.name for p in files)
    assert names == sorted(p.name for p in (clean / "outbox").rglob("*.eml"))
    leftovers = [p for p in (root / "outbox").rglob("*") if p.is_file() and p.suffix != ".eml"]
    assert not leftovers, leftovers  # no half-written temp file left behind
    shutil.rmtree(clean)
    print(f"\n{runs_started} runs killed, {len(landed)} inside a batch")
