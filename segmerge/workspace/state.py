"""Is the workspace's precious state (signing key, ledger) present, sound and its own?

Every unsubscribe link already sent was signed with `.segmerge/signing.key`, and
the ledger holds the suppression list and who was already mailed. Losing either
and silently starting over would invalidate every link and mail everyone again.
So the first time a workspace gets a key or a ledger, a small marker is written
*outside* `.segmerge/` (`.segmerge-state.json` in the workspace root, gitignored):
the key's fingerprint (a hash, never the key), the ledger's id and the first
run's date. From then on, a missing, garbled or different key or ledger is a
:class:`StateError` (exit 2) telling how to restore it, instead of a new one.
A fresh workspace (no marker, nothing recorded) just works.

This module holds the key's and the marker's side, which need no database; what the
ledger file holds, the whole check and the loading of the key it guards are
:mod:`segmerge.ledger.health`'s: the ledger is the only door to its database.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from segmerge.i18n import _
from segmerge.workspace.marker import MARKER as MARKER  # re-exported: the tests name it
from segmerge.workspace.marker import (
    RESTORE_HINT,
    STATE_DIR,
    is_workspace_state,
    read_marker,
    update_marker,
)
from segmerge.workspace.marker import state_lock as state_lock  # re-exported for restore
from segmerge.workspace.marker import write_marker as write_marker  # re-exported for restore
from segmerge.workspace.storage import StateError

KEY_FILE = "signing.key"
LEDGER_FILE = "ledger.sqlite"
SQLITE_HEADER = b"SQLite format 3\x00"
_KEY_RE = re.compile(rb"[\x21-\x7e]{32,}")
ACCEPT_HINT = (
    "if there is no backup at all, `segmerge doctor --accept-new-state` starts over: every "
    "unsubscribe link already sent stops working and everyone may be mailed again"
)


@dataclass(frozen=True)
class Finding:
    """One line of `segmerge doctor`: ``level`` is ok, note, warn or problem."""

    level: str
    what: str
    fix: str = ""
    #: what the finding is about, for code that reacts to one (the text is translated)
    topic: str = ""


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it (a hash of a 256-bit random key cannot be reversed)."""
    return hashlib.sha256(b"segmerge signing key\x00" + key).hexdigest()[:32]


def read_key(path: Path) -> bytes:
    """The key in ``path``; an empty or garbled file is an error, never a reason for a new key."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise StateError(
            _("the signing key cannot be read: {strerror}").format(strerror=exc.strerror),
            file=path,
            hint=_(RESTORE_HINT),
        ) from None
    if not _KEY_RE.fullmatch(key):
        what = (
            _("the signing key is empty")
            if not key
            else _("the signing key is garbled (not a key segmerge wrote)")
        )
        raise StateError(what, file=path, hint=_(RESTORE_HINT))
    return key


def check_key(root: Path, key: bytes, path: Path) -> None:
    marker = read_marker(root)
    expected = (marker or {}).get("key_fingerprint")
    if expected and expected != key_fingerprint(key):
        raise StateError(
            _(
                "the signing key is not the one this workspace signed its "
                "unsubscribe links with (its fingerprint differs from "
                ".segmerge-state.json)"
            ),
            file=path,
            hint=_(RESTORE_HINT),
        )


def adopt_key(root: Path) -> None:
    """A key made before markers existed is recorded in the marker on the next run."""
    path = root / STATE_DIR / KEY_FILE
    if path.exists():
        update_marker(root, key_fingerprint=key_fingerprint(read_key(path)))


def refuse_foreign_file(path: Path) -> None:
    """A ledger that is not SQLite (a truncated header, something else saved over it) is
    never opened: SQLite would fail later, or take an empty file for a new ledger."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(
            _("the ledger cannot be read: {strerror}").format(strerror=exc.strerror),
            file=path,
            hint=_(RESTORE_HINT),
        ) from None
    if head and head != SQLITE_HEADER:
        raise StateError(_("the ledger is not an SQLite database"), file=path, hint=_(RESTORE_HINT))


def note_ledger(path: Path, ledger_id: str) -> None:
    """The first ledger a workspace opens is named in its marker, from then on its own."""
    if path.name == LEDGER_FILE and is_workspace_state(path.parent):
        with suppress(StateError, OSError):  # a garbled marker is `doctor`'s to report
            update_marker(path.parent.parent, ledger_id=ledger_id)


def missing_ledger(path: Path) -> None:
    """Raise when a workspace's marker names a ledger and ``path`` (it) is gone."""
    state_dir = path.parent
    if path.name != LEDGER_FILE or not is_workspace_state(state_dir):
        return
    try:
        marker = read_marker(state_dir.parent)
    except StateError:
        return  # the run's own check reports a garbled marker
    if marker and marker.get("ledger_id"):
        raise StateError(
            _("the ledger is missing (the suppression list and who was mailed are in it)"),
            file=path,
            hint=_("{restore_hint}; {accept_hint}").format(
                restore_hint=_(RESTORE_HINT), accept_hint=_(ACCEPT_HINT)
            ),
        )


def new_key(path: Path) -> bytes:
    """A new random key in ``path``, written whole under a temporary name, then linked
    into place: a reader never sees half a key, and of two processes creating one at
    once, both end up with the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key
