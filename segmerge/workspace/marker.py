"""The state marker, `.segmerge-state.json` in the workspace root: what state it must find.

It names the signing key (a fingerprint) and the ledger (its id) once a workspace has
them, so that :mod:`segmerge.workspace.state` can tell a lost or replaced key or
ledger from a fresh workspace. Written atomically under a lock shared by every
process of the workspace (runs, `serve`, `doctor --restore`).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segmerge.i18n import _
from segmerge.workspace.storage import StateError

FIX = "`segmerge doctor --restore` puts back the newest good backup (`--from DIR`: from a copy)"
RESTORE_HINT = (
    "`segmerge doctor` says what is wrong; `segmerge doctor --restore` puts back the newest good "
    "backup (`--from DIR`: from a copy)"
)

MARKER = ".segmerge-state.json"
STATE_DIR = ".segmerge"
CONFIG_NAME = "segmerge.toml"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def marker_path(root: Path) -> Path:
    return root / MARKER


def read_marker(root: Path) -> dict[str, Any] | None:
    path = marker_path(root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(
            _("the state marker cannot be read: {exc}").format(exc=exc),
            file=path,
            hint=_("`segmerge doctor --restore` rewrites it from the newest good backup"),
        ) from None
    if not isinstance(data, dict):
        raise StateError(
            _("the state marker is not a JSON object"), file=path, hint=_(RESTORE_HINT)
        )
    return data


@contextmanager
def state_lock(root: Path) -> Iterator[None]:
    """Serialises changes to the marker and the restore of state between processes."""
    folder = root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "state.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_marker(root: Path, data: dict[str, Any]) -> None:
    """Atomically (temp file, fsync, rename): a crash leaves the old marker or the new one."""
    path = marker_path(root)
    body = {
        "about": "segmerge: this workspace has a signing key and a ledger; keep this file "
        "(see `segmerge doctor`)",
        **{k: v for k, v in data.items() if k != "about"},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def update_marker(root: Path, **fields: str) -> None:
    """Fill in the marker's fields that are not set yet (never change one that is)."""
    known = read_marker(root) or {}
    if known and all(known.get(k) or not v for k, v in fields.items()):
        return  # the usual case, every time a ledger is opened: no lock, no write
    with state_lock(root):
        data = read_marker(root) or {}
        missing = {k: v for k, v in fields.items() if v and not data.get(k)}
        if not missing and data:
            return
        data.update(missing)
        data.setdefault("first_run", now_iso())
        write_marker(root, data)


def is_workspace_state(state_dir: Path) -> bool:
    """A `.segmerge/` folder of a real workspace (not a ledger a test put anywhere)."""
    return state_dir.name == STATE_DIR and (state_dir.parent / CONFIG_NAME).is_file()
