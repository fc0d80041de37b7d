"""A run killed with SIGKILL in the middle, then started again, sends every letter exactly once."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from cli import SCRIPT, script_env, segmerge

AS_OF = "2026-12-01"


def _done(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM actions WHERE status='done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_then_resume_sends_each_letter_once(tmp_path):
    root = tmp_path / "ws"
    env = script_env()
    segmerge("init", str(root), check=True)
    ledger = root / ".segmerge" / "ledger.sqlite"
    cmd = [SCRIPT, "run", "profils", "-w", str(root), "--as-of", AS_OF]
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        base = _done(ledger)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _done(ledger) <= base and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1, "the run finished before it could be killed: the test proves nothing"

    final = segmerge(*cmd[1:])  # the resume needs no process of its own: the kills did
    assert final.returncode == 0, final.stdout + final.stderr

    with sqlite3.connect(ledger) as db:
        statuses = dict(
            db.execute(
                "SELECT status, COUNT(*) FROM actions WHERE kind='send' GROUP BY status"
            ).fetchall()
        )
        planned_contacts = [
            r[0]
            for r in db.execute(
                "SELECT contact_id FROM actions WHERE kind='send' AND status='done'"
            )
        ]
    assert set(statuses) == {"done"}, statuses
    files = sorted((root / "outbox").rglob("*.eml"))
    assert len(files) == len(planned_contacts) == len(set(planned_contacts))
    # a fresh copy of the workspace, run once without interruption, sends the same set
    clean = tmp_path / "clean"
    segmerge("init", str(clean), check=True)
    ref = segmerge("run", "profils", "-w", str(clean), "--as-of", AS_OF)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    names = sorted(p.name for p in files)
    assert names == sorted(p.name for p in (clean / "outbox").rglob("*.eml"))
    leftovers = [p for p in (root / "outbox").rglob("*") if p.is_file() and p.suffix != ".eml"]
    assert not leftovers, leftovers  # no half-written temp file left behind
    shutil.rmtree(clean)
