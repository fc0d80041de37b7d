"""The signing key and the ledger are never silently recreated, and come back from backups.

Each test damages a real workspace the way an accident would (a deleted folder, a
truncated file, a garbled key, a corrupt page) and checks what the shop cares about:
nobody is mailed twice, nobody suppressed is mailed, links already sent still work.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli import Ran, segmerge
from state_ws import (
    DAY1,
    DAY2,
    DAY3,
    letters,
    make_workspace,
    run_campaign,
    unsubscribe_token,
)

from segmerge.ledger import backup, restore
from segmerge.ledger.health import problems, signing_key
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.mail.tokens import verify_token
from segmerge.run import pipeline
from segmerge.run.testsend import test_send as send_tests
from segmerge.workspace import config as wsmod
from segmerge.workspace.state import MARKER, key_fingerprint
from segmerge.workspace.storage import StateError

OUTSIDE = '\n[state]\nbackup_dir = "../backups"\n'


@pytest.fixture(scope="module")
def day1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("state") / "ws")
    run_campaign(root, day=DAY1)
    return root


@pytest.fixture
def ran(day1: Path, tmp_path: Path) -> Path:
    """A workspace of 12 contacts whose `news` ran on DAY1: this test's copy of the
    module's, to damage as it likes (one run a module instead of one a test)."""
    root = tmp_path / "ws"
    shutil.copytree(day1, root, symlinks=True)
    return root


@pytest.fixture(scope="module")
def day1_outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like :func:`day1`, its backups also in a folder beside it (``../backups``)."""
    root = make_workspace(tmp_path_factory.mktemp("outside") / "ws", extra=OUTSIDE)
    run_campaign(root, day=DAY1)
    return root


@pytest.fixture
def ran_outside(day1_outside: Path, tmp_path: Path) -> Path:
    """This test's copy of :func:`day1_outside`, its backups folder included."""
    shutil.copytree(day1_outside.parent / "backups", tmp_path / "backups", symlinks=True)
    return shutil.copytree(day1_outside, tmp_path / "ws", symlinks=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str) -> Ran:
    return segmerge(*args, env={"COLUMNS": "300"})


def suppress(root: Path, address: str) -> None:
    ledger = Ledger(root / ".segmerge" / "ledger.sqlite")
    try:
        ledger.suppress([(address, "unsubscribed by phone")])
    finally:
        ledger.close()


def test_deleted_state_refuses_then_restore_resumes_without_mailing_anyone_twice(
    ran_outside, tmp_path
):
    root = ran_outside
    token = unsubscribe_token(root, "c1@example.org")
    suppress(root, "c3@example.org")
    run_campaign(root, day=DAY2)  # c3 is not mailed, and the backup now knows why
    assert "c3@example.org" not in letters(root, day=DAY2)
    sent = snapshot(root / "outbox")

    shutil.rmtree(root / ".segmerge")
    proc = cli("run", "news", "-w", str(root), "--as-of", DAY2)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ledger.sqlite is missing" in proc.stderr and "doctor --restore" in proc.stderr
    assert "internal error" not in proc.stderr
    assert snapshot(root / "outbox") == sent  # nobody mailed
    assert not (root / ".segmerge" / "ledger.sqlite").exists()  # and nothing recreated

    proc = cli("doctor", "--restore", "-w", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restored" in proc.stdout and str(tmp_path / "backups") in proc.stdout

    again = run_campaign(root, day=DAY2)  # the same day resumes: nothing is sent again
    assert again.resumed and again.planned["send"] == 0
    assert snapshot(root / "outbox") == sent
    run_campaign(root, day=DAY3)
    assert "c3@example.org" not in letters(root, day=DAY3)  # still suppressed
    assert len(letters(root, day=DAY3)) == 11
    key = signing_key(root / ".segmerge", create=False)
    assert key is not None and verify_token(key, token) == "1"  # an old link still works


@pytest.mark.parametrize("how", ["half", "empty", "garbage"])
def test_a_truncated_or_overwritten_ledger_stops_the_run_and_mails_nobody(ran, how):
    root = ran
    path = root / ".segmerge" / "ledger.sqlite"
    if how == "half":
        os.truncate(path, path.stat().st_size // 2)
    elif how == "empty":
        os.truncate(path, 0)
    else:
        path.write_bytes(b"PK\x03\x04 a zip saved over the ledger" * 100)
    with pytest.raises(StateError) as caught:
        run_campaign(root, day=DAY2)
    assert caught.value.exit_code == 2 and "ledger.sqlite" in caught.value.message
    assert letters(root, day=DAY2) == {}
    with pytest.raises(StateError):  # validate says so too
        backup.check_before_run(wsmod.load(root))


def test_a_corrupt_page_in_the_ledger_stops_the_run(ran):
    root = ran
    path = root / ".segmerge" / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 6
    with open(path, "r+b") as fh:  # a page in the middle of the actions table, scribbled on
        fh.seek(page * (pages // 2) + 8)
        fh.write(os.urandom(page - 16))
    with pytest.raises(StateError, match="damaged") as caught:
        run_campaign(root, day=DAY2)
    assert caught.value.exit_code == 2
    assert letters(root, day=DAY2) == {}


@pytest.mark.parametrize("content", [b"\n", b"\x00\xff not a key"])
def test_an_empty_or_garbled_key_stops_the_run_and_test_send(ran, content):
    root = ran
    (root / ".segmerge" / "signing.key").write_bytes(content)
    with pytest.raises(StateError, match="signing key") as caught:
        run_campaign(root, day=DAY2)
    assert caught.value.exit_code == 2
    with pytest.raises(StateError):
        send_tests(wsmod.load(root), "news", "seed@example.org", as_of=DAY2)
    assert letters(root, day=DAY2) == {}
    assert not any("test" in p.name for p in (root / "outbox" / "news").iterdir())


def test_a_key_from_elsewhere_is_not_taken_for_the_workspace_s_own(ran):
    root = ran
    (root / ".segmerge" / "signing.key").write_bytes(os.urandom(32).hex().encode())
    with pytest.raises(StateError, match="not the one"):
        run_campaign(root, day=DAY2)
    assert letters(root, day=DAY2) == {}


def test_a_fresh_workspace_just_works_and_its_marker_holds_no_secret(tmp_path):
    root = make_workspace(tmp_path / "ws")
    run_campaign(root, day=DAY1, dry_run=True)
    assert not (root / ".segmerge").exists() and not (root / MARKER).exists()
    run_campaign(root, day=DAY1)
    marker = json.loads((root / MARKER).read_text())
    key = (root / ".segmerge" / "signing.key").read_bytes()
    assert marker["key_fingerprint"] == key_fingerprint(key)
    assert key.decode() not in (root / MARKER).read_text()
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        ledger_id = db.execute("SELECT value FROM meta WHERE key='ledger_id'").fetchone()[0]
    assert marker["ledger_id"] == ledger_id


def test_a_ledger_rebuilt_after_a_loss_is_refused_and_its_unsubscribes_survive_the_restore(
    ran,
):
    root = ran
    (root / ".segmerge" / "ledger.sqlite").unlink()
    suppress(root, "c5@example.org")  # e.g. the unsubscribe endpoint, on a new empty ledger
    with pytest.raises(StateError, match="not this workspace's ledger"):
        run_campaign(root, day=DAY2)
    chosen, notes = restore.restore(wsmod.load(root))
    assert "1 suppression(s) recorded since the backup kept" in notes
    run_campaign(root, day=DAY2)
    sent = letters(root, day=DAY2)
    assert "c5@example.org" not in sent and len(sent) == 11


def test_restore_skips_a_damaged_backup_for_the_newest_good_one(ran):
    root = ran
    run_campaign(root, day=DAY2)
    ws = wsmod.load(root)
    newest = backup.find_backups(ws)[0]
    with open(newest.path / "ledger.sqlite", "r+b") as fh:
        fh.seek(5000)
        fh.write(b"\xff" * 64)
    os.truncate(root / ".segmerge" / "ledger.sqlite", 0)
    chosen, notes = restore.restore(ws)
    assert chosen.path != newest.path
    assert any("changed since the backup" in n for n in notes)
    assert backup.verify(chosen.path).problems == []
    again = run_campaign(root, day=DAY1)  # the older backup knows day 1 was sent
    assert again.planned["send"] == 0


def test_backups_are_whole_or_absent_and_only_the_last_five_are_kept(ran, monkeypatch):
    root = ran
    ws = wsmod.load(root)
    audit = root / ".segmerge" / "unsubscribes.sqlite"
    with sqlite3.connect(audit) as db:
        db.execute("CREATE TABLE unsubscribes (contact_id TEXT)")
        db.execute("INSERT INTO unsubscribes VALUES ('7')")
    for _ in range(6):
        backup.back_up(ws)
    folder = root / ".segmerge" / "backup"
    kept = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert len(kept) == backup.KEEP
    newest = folder / kept[-1]
    assert backup.find_backups(ws)[0].path == newest  # made within one second: still the newest
    assert {"ledger.sqlite", "unsubscribes.sqlite", "signing.key"} <= set(
        json.loads((newest / "manifest.json").read_text())["files"]
    )
    assert (newest / "signing.key").stat().st_mode & 0o077 == 0

    def crash(src: Path, dst: Path) -> None:  # the disk fills while the copy is written
        dst.write_bytes(b"half")
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(backup, "_sqlite_copy", crash)
    with pytest.raises(OSError):
        backup.back_up(ws)
    assert sorted(p.name for p in folder.iterdir() if p.name != ".lock") == kept


def test_doctor_accept_new_state_is_the_explicit_way_to_start_over(ran):
    root = ran
    shutil.rmtree(root / ".segmerge")
    proc = cli("doctor", "-w", str(root))
    assert proc.returncode == 2 and "ledger.sqlite is missing" in proc.stdout
    assert "no good backup in" in cli("doctor", "--restore", "-w", str(root)).stderr
    proc = cli("doctor", "--accept-new-state", "-w", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every unsubscribe link already sent stops working" in proc.stderr
    run_campaign(root, day=DAY2)
    assert len(letters(root, day=DAY2)) == 12


def test_a_key_is_required_once_a_letter_carried_a_link_signed_with_it(tmp_path):
    """A workspace that only tags or drafts on a platform never needed a key; one whose
    ledger recorded a letter did, and its loss is refused even without a marker."""
    root = make_workspace(tmp_path / "ws")
    ledger = Ledger(root / ".segmerge" / "ledger.sqlite")
    ledger.begin_run("news@x", "news", DAY1)
    ledger.plan("news@x", [PlannedAction("t1", "1", "tag", "crm", "tous", "news:tous")])
    (root / MARKER).unlink()
    assert problems(root) == []
    ledger.plan("news@x", [PlannedAction("s1", "1", "send", "outbox", "tous", "c1@example.org")])
    ledger.close()
    assert [p.what for p in problems(root)] == [
        ".segmerge/signing.key is missing: every unsubscribe link already sent was signed with it"
    ]


def test_losing_the_marker_with_the_state_is_still_refused_when_a_backup_survives(ran_outside):
    root = ran_outside
    shutil.rmtree(root / ".segmerge")
    (root / MARKER).unlink()  # e.g. the whole workspace restored from git, state and all gone
    with pytest.raises(StateError, match="it had them: there are backups in"):
        run_campaign(root, day=DAY2)
    assert letters(root, day=DAY2) == {}
    restore.restore(wsmod.load(root))
    assert run_campaign(root, day=DAY1).planned["send"] == 0  # day 1 is known as sent


def test_restore_waits_for_a_run_that_holds_the_ledger(ran):
    root = ran
    ws = wsmod.load(root)
    before = (root / ".segmerge" / "ledger.sqlite").read_bytes()
    with pipeline.campaign_lock(ws, "promo"), pytest.raises(StateError, match="run-promo"):
        restore.restore(ws)
    assert (root / ".segmerge" / "ledger.sqlite").read_bytes() == before


def test_a_scheduled_fire_refuses_a_lost_state_like_a_run_by_hand(ran):
    import threading

    from segmerge.serve.child import run_once

    root = ran
    (root / ".segmerge" / "signing.key").unlink()
    result = run_once(str(root), "news", DAY2, threading.Event())
    assert result.status == "error" and result.error_type == "StateError"
    assert "signing.key is missing" in result.error
    assert letters(root, day=DAY2) == {}


def test_a_garbled_marker_is_refused_and_rewritten_by_a_restore(ran):
    root = ran
    (root / MARKER).write_text("{ not json")
    with pytest.raises(StateError, match="state marker"):
        run_campaign(root, day=DAY2)
    restore.restore(wsmod.load(root))
    assert json.loads((root / MARKER).read_text())["ledger_id"]
    assert run_campaign(root, day=DAY1).planned["send"] == 0


def test_history_and_reports_say_the_ledger_is_lost_rather_than_no_run_yet(tmp_path, ran):
    fresh = make_workspace(tmp_path / "fresh")
    assert Ledger.open_existing(fresh / ".segmerge" / "ledger.sqlite") is None  # no run yet
    path = ran / ".segmerge" / "ledger.sqlite"  # after a run
    path.unlink()
    with pytest.raises(StateError, match="the ledger is missing"):
        Ledger.open_existing(path)
    assert not path.exists()


def test_restore_keeps_a_sound_live_unsubscribe_audit_and_restores_a_lost_one(tmp_path):
    root = make_workspace(tmp_path / "ws")
    audit = root / ".segmerge" / "unsubscribes.sqlite"
    audit.parent.mkdir()
    with sqlite3.connect(audit) as db:
        db.execute("CREATE TABLE unsubscribes (contact_id TEXT)")
        db.execute("INSERT INTO unsubscribes VALUES ('1')")
    run_campaign(root, day=DAY1)  # its backup holds the audit with contact 1
    with sqlite3.connect(audit) as db:  # a later unsubscribe, after the backup
        db.execute("INSERT INTO unsubscribes VALUES ('2')")
    (root / ".segmerge" / "ledger.sqlite").unlink()
    restore.restore(wsmod.load(root))
    with sqlite3.connect(audit) as db:
        assert sorted(r[0] for r in db.execute("SELECT contact_id FROM unsubscribes")) == ["1", "2"]
    audit.unlink()
    restore.restore(wsmod.load(root))
    with sqlite3.connect(audit) as db:
        assert [r[0] for r in db.execute("SELECT contact_id FROM unsubscribes")] == ["1"]
