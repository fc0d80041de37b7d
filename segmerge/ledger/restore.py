"""Putting a backup back, or starting over: the two ways out of a lost or damaged state.

Nothing is ever deleted here: the files being replaced are moved into
`.segmerge/replaced-<time>/` (or `abandoned-<time>/` when starting over), and the
suppressions recorded since the backup (an unsubscribe taken by `serve` on a
ledger it had to create again) are carried into the restored ledger, so a
restore can never un-suppress anybody.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from segmerge.i18n import _
from segmerge.ledger.backup import (
    AUDIT_FILE,
    Backup,
    backup_roots,
    find_backups,
    foreign,
    fsync_dir,
)
from segmerge.ledger.health import ledger_facts
from segmerge.workspace.config import Workspace
from segmerge.workspace.state import (
    KEY_FILE,
    LEDGER_FILE,
    read_marker,
    state_lock,
    write_marker,
)
from segmerge.workspace.storage import StateError


def restore(ws: Workspace, source: Path | None = None) -> tuple[Backup, list[str]]:
    """Put back the newest good backup; what was there goes to `.segmerge/replaced-…/`.

    Suppressions recorded since (in the ledger being replaced, if it can be read)
    are carried over: an unsubscribe is never lost by a restore.
    """
    try:
        marker = read_marker(ws.root) or {}
    except StateError:  # a garbled marker is rewritten from the backup's manifest
        marker = {}
    notes: list[str] = []
    chosen = None
    for b in find_backups(ws, source):
        why = "; ".join(b.problems) or foreign(b, marker)
        if why:
            notes.append(_("skipped {path}: {why}").format(path=b.path, why=why))
            continue
        chosen = b
        break
    if chosen is None:
        where = source or " or ".join(str(r) for r in backup_roots(ws))
        raise StateError(
            _("no good backup in {where}").format(where=where)
            + (" ({notes})".format(notes="; ".join(notes)) if notes else ""),
            hint=_(
                "pass --from DIR with a folder of backups (your `[state] "
                "backup_dir`, or a copy); if there is none, `segmerge doctor "
                "--accept-new-state` starts over"
            ),
        )
    with state_lock(ws.root):
        refuse_if_busy(ws)
        # the live audit log, when sound, is newer than any backup of it: it stays
        live = {AUDIT_FILE} if _sound(ws.state_dir / AUDIT_FILE) else set()
        wanted = set(chosen.manifest.get("files") or {}) - live
        aside = _move_aside(ws, "replaced", wanted)
        for name in sorted(wanted):
            tmp = ws.state_dir / f".{name}.restore"
            shutil.copyfile(chosen.path / name, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, ws.state_dir / name)
        fsync_dir(ws.state_dir)
        old = aside / LEDGER_FILE
        if old.exists():
            notes.append(_merge_suppressions(ws.state_dir / LEDGER_FILE, old))
        if any(aside.iterdir()):
            notes.append(_("what was there is kept in {path}").format(path=aside))
        else:
            aside.rmdir()
        data = dict(marker)
        for name in ("ledger_id", "key_fingerprint", "first_run"):
            if chosen.manifest.get(name):
                data[name] = chosen.manifest[name]
        write_marker(ws.root, data)
    return chosen, notes


def refuse_if_busy(ws: Workspace) -> None:
    """A run or `serve` holding the ledger open would go on writing into the file moved
    aside, and what it records (who was mailed) would be lost: wait for them."""
    for lock in sorted(ws.state_dir.glob("*.lock")):
        if lock.name == "state.lock":
            continue
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            what = (
                "`segmerge serve`"
                if lock.name == "serve.lock"
                else _("a run ({name})").format(name=lock.stem)
            )
            raise StateError(
                _("{what} is using the workspace's state").format(what=what),
                file=lock,
                hint=_("wait for the run to end, or stop `segmerge serve`, then try again"),
            ) from None
        finally:
            os.close(fd)


def _move_aside(ws: Workspace, label: str, names: set[str]) -> Path:
    """The current state files into `.segmerge/<label>-<time>/`: never deleted, only moved."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = ws.state_dir / f"{label}-{stamp}"
    aside.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in names:
        for suffix in ("", "-wal", "-shm"):
            p = ws.state_dir / f"{name}{suffix}"
            if p.exists():
                os.replace(p, aside / p.name)
    return aside


def _sound(path: Path) -> bool:
    return path.exists() and ledger_facts(path, deep=True).problem is None


def _merge_suppressions(target: Path, old: Path) -> str:
    """Suppressions in the replaced ledger that the backup lacks, added to it."""
    try:
        db = sqlite3.connect(target.resolve().as_uri(), uri=True, isolation_level=None)
        try:
            db.execute("ATTACH DATABASE ? AS old", (old.resolve().as_uri() + "?mode=ro",))
            added = 0
            for table in ("suppressions", "suppressed_contacts"):
                cols = _columns(db, "main", table) & _columns(db, "old", table)
                if not cols:
                    continue
                names = ", ".join(sorted(cols))
                before = db.total_changes
                db.execute(
                    f"INSERT OR IGNORE INTO main.{table}({names}) "  # noqa: S608
                    f"SELECT {names} FROM old.{table}"
                )
                added += db.total_changes - before
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return f"the replaced ledger's suppressions could not be read ({exc}): check them"
    return f"{added} suppression(s) recorded since the backup kept"


def _columns(db: sqlite3.Connection, schema: str, table: str) -> set[str]:
    return {str(r[1]) for r in db.execute(f"PRAGMA {schema}.table_info({table})")}


def accept_new_state(ws: Workspace) -> Path:
    """Start over: the key, the ledger and the marker are moved aside (never deleted)."""
    with state_lock(ws.root):
        refuse_if_busy(ws)
        aside = _move_aside(ws, "abandoned", {LEDGER_FILE, KEY_FILE})
        marker = ws.root / ".segmerge-state.json"
        if marker.exists():
            os.replace(marker, aside / marker.name)
    return aside
