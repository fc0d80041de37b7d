"""Backups of the workspace's precious state, and putting one back.

After every run (done or failed, never a dry run) the ledger and the unsubscribe
audit database are copied with SQLite's backup API (a consistent copy even while
another process writes) and the signing key beside them, into a temporary folder
that is fsynced and then renamed into place: a backup is whole or absent. The
last few are kept in `.segmerge/backup/` and, when `[state] backup_dir` is set,
in that folder too. Only the latter survives the loss of `.segmerge/` (or of the
disk, if it is elsewhere): the local copy is for a corrupt file, not a deleted
folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segmerge.errors import SegmergeError
from segmerge.i18n import _
from segmerge.ledger.health import check_state, ledger_facts
from segmerge.ports.locks import hold
from segmerge.workspace.config import Workspace
from segmerge.workspace.state import (
    ACCEPT_HINT,
    KEY_FILE,
    LEDGER_FILE,
    adopt_key,
    key_fingerprint,
    read_key,
    read_marker,
)
from segmerge.workspace.storage import RESTORE_HINT, StateError, named_storage_errors

AUDIT_FILE = "unsubscribes.sqlite"
MANIFEST = "manifest.json"
LOCAL_DIR = "backup"
#: how many backups each folder keeps
KEEP = 5
DATABASES = (LEDGER_FILE, AUDIT_FILE)


def backup_roots(ws: Workspace) -> list[Path]:
    """The workspace's own backup folder, then the configured one (if any)."""
    roots = [ws.state_dir / LOCAL_DIR]
    configured = _configured(ws)
    if configured is not None:
        roots.append(configured)
    return roots


def _configured(ws: Workspace) -> Path | None:
    value = ws.config.state.backup_dir
    return ws.path(value).resolve() if value else None


def outside_workspace(ws: Workspace) -> bool:
    """Whether a backup folder survives the loss of the workspace folder."""
    folder = _configured(ws)
    if folder is None:
        return False
    try:
        folder.resolve().relative_to(ws.root.resolve())
    except ValueError:
        return True
    return False


# making one ---------------------------------------------------------------------------


def back_up(ws: Workspace) -> list[Path]:
    """A new backup in every backup folder; the paths written. Nothing there yet: []."""
    if not (ws.state_dir / LEDGER_FILE).exists() and not (ws.state_dir / KEY_FILE).exists():
        return []
    return [_back_up_into(ws, root) for root in backup_roots(ws)]


def _back_up_into(ws: Workspace, root: Path) -> Path:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    with hold(root / ".lock", f"backup of {ws.root}"):
        tmp = root / f".tmp-{stamp}-{os.getpid()}"
        tmp.mkdir(mode=0o700)
        try:
            manifest = _copy_state(ws, tmp, stamp)
            _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
            fsync_dir(tmp)
            final = root / stamp
            os.rename(tmp, final)
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _prune(root)
    return final


def _copy_state(ws: Workspace, into: Path, stamp: str) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for name in DATABASES:
        src = ws.state_dir / name
        if src.exists():
            _sqlite_copy(src, into / name)
            os.chmod(into / name, 0o600)  # addresses: for the owner's eyes only
            damaged = ledger_facts(into / name, deep=True).problem
            if damaged:  # a damaged copy must not push a good backup out
                raise StateError(
                    _("not backed up: {name} {damaged}").format(name=name, damaged=damaged),
                    file=src,
                    hint=_(RESTORE_HINT),
                )
            files[name] = _describe(into / name)
    key_fp = None
    key_path = ws.state_dir / KEY_FILE
    if key_path.exists():
        key = read_key(key_path)
        _write_synced(into / KEY_FILE, key, mode=0o600)
        files[KEY_FILE] = _describe(into / KEY_FILE)
        key_fp = key_fingerprint(key)
    facts = ledger_facts(into / LEDGER_FILE, deep=False) if LEDGER_FILE in files else None
    marker = read_marker(ws.root) or {}
    return {
        "created_at": datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ")
        .replace(tzinfo=UTC)
        .isoformat(timespec="seconds"),
        "workspace": str(ws.root),
        "ledger_id": facts.ledger_id if facts else None,
        "key_fingerprint": key_fp,
        "first_run": marker.get("first_run"),
        "runs": facts.runs if facts else 0,
        "suppressions": facts.suppressions if facts else 0,
        "files": files,
    }


def _sqlite_copy(src: Path, dst: Path) -> None:
    """SQLite's online backup: a consistent copy even while a run or `serve` writes."""
    source = sqlite3.connect(src.resolve().as_uri() + "?mode=rw", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        target.close()
        source.close()
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())


def _describe(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256(path), "size": path.stat().st_size}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(root: Path) -> None:
    for old in sorted(_stamped(root))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def _stamped(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir() and p.name[:1].isdigit()]
    except OSError:
        return []


@contextmanager
def kept(ws: Workspace, notes: list[str]) -> Iterator[None]:
    """Around a run's writes: a full disk or a corrupt page becomes a message naming the
    file, and the state is backed up afterwards, whether the run went well or not."""
    adopt_key(ws.root)
    try:
        with named_storage_errors(ws.state_dir / LEDGER_FILE):
            yield
    finally:
        try:
            back_up(ws)
        except (OSError, sqlite3.Error, SegmergeError) as exc:
            notes.append(f"state not backed up: {exc} (`segmerge doctor` checks the state)")


def check_before_run(ws: Workspace) -> None:
    """Refuse to run on a lost or damaged state (see :mod:`segmerge.workspace.state`), also
    when the marker went with `.segmerge/` but a backup shows the workspace had state."""
    check_state(ws.root)
    if read_marker(ws.root) is not None:
        return
    if (ws.state_dir / LEDGER_FILE).exists() or (ws.state_dir / KEY_FILE).exists():
        return
    kept_elsewhere = [r for r in backup_roots(ws) if _stamped(r)]
    if kept_elsewhere:
        raise StateError(
            _(
                "the workspace has no ledger and no signing key, but it had them: "
                "there are backups in {value}"
            ).format(value=kept_elsewhere[0]),
            file=ws.state_dir,
            hint=_("{restore_hint}; {accept_hint}").format(
                restore_hint=_(RESTORE_HINT), accept_hint=_(ACCEPT_HINT)
            ),
        )


# finding and checking them -------------------------------------------------------------


@dataclass
class Backup:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("created_at") or self.path.name)


def find_backups(ws: Workspace, source: Path | None = None) -> list[Backup]:
    """Backups in ``source`` (one backup, or a folder of them) or in the backup folders,
    newest first, each checked (its files' hashes, the ledger's pages, the key)."""
    if source is not None:
        folders = [source] if (source / MANIFEST).exists() else _stamped(source)
    else:
        folders = [p for root in backup_roots(ws) for p in _stamped(root)]
    found = [verify(p) for p in folders]
    # the folder name (to the microsecond) breaks ties between backups of the same second
    return sorted(found, key=lambda b: (b.created_at, b.path.name), reverse=True)


def verify(folder: Path) -> Backup:
    b = Backup(folder)
    try:
        b.manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        b.problems.append(f"no readable {MANIFEST}: {exc}")
        return b
    files = b.manifest.get("files") or {}
    if LEDGER_FILE not in files:
        b.problems.append("holds no ledger")
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            b.problems.append(f"{name} is missing")
        elif _sha256(path) != info.get("sha256"):
            b.problems.append(f"{name} changed since the backup (its hash differs)")
    if b.problems:
        return b
    facts = ledger_facts(folder / LEDGER_FILE, deep=True)
    if facts.problem:
        b.problems.append(f"{LEDGER_FILE} {facts.problem}")
    if KEY_FILE in files:
        try:
            if key_fingerprint(read_key(folder / KEY_FILE)) != b.manifest.get("key_fingerprint"):
                b.problems.append("the key is not the one the manifest names")
        except StateError as exc:
            b.problems.append(exc.message)
    return b


def foreign(b: Backup, marker: dict[str, Any]) -> str | None:
    """Why a sound backup is not this workspace's state (the marker names other ones)."""
    for name, what in (("ledger_id", "ledger"), ("key_fingerprint", "signing key")):
        if marker.get(name) and b.manifest.get(name) and marker[name] != b.manifest[name]:
            return f"its {what} is not the one .segmerge-state.json names"
    return None
