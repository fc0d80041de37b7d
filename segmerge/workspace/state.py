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
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from segmerge.i18n import _, label, ngettext, number
from segmerge.workspace.marker import (
    FIX,
    RESTORE_HINT,
    STATE_DIR,
    is_workspace_state,
    read_marker,
    update_marker,
)
from segmerge.workspace.marker import MARKER as MARKER  # re-exported: the tests name it
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


# the ledger -----------------------------------------------------------------


@dataclass
class LedgerFacts:
    ledger_id: str | None = None
    runs: int = 0
    letters: bool = False  # a letter was sent: its unsubscribe link was signed with the key
    suppressions: int = 0
    problem: str | None = None


def ledger_facts(path: Path, *, deep: bool) -> LedgerFacts:
    """What the ledger file is, without creating or changing it; ``deep`` runs quick_check."""
    facts = LedgerFacts()
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        facts.problem = _("cannot be read: {reason}").format(reason=exc.strerror)
        return facts
    if size == 0:
        facts.problem = _("is empty (truncated to 0 bytes)")
        return facts
    if head != SQLITE_HEADER:
        facts.problem = _("is not an SQLite database")
        return facts
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        facts.problem = _("cannot be opened: {exc}").format(exc=exc)
        return facts
    try:
        if deep:
            rows = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
            if rows != ["ok"]:
                facts.problem = _("is damaged (quick_check: {rows})").format(
                    rows="; ".join(rows)[:300]
                )
                return facts
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key='ledger_id'").fetchone()
            facts.ledger_id = row[0] if row else None
        if "runs" in tables:
            facts.runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        if "actions" in tables:
            sql = "SELECT 1 FROM actions WHERE kind IN ('send', 'test') LIMIT 1"
            facts.letters = db.execute(sql).fetchone() is not None
        if "suppressions" in tables:
            facts.suppressions = db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        facts.problem = _("is damaged ({exc})").format(exc=exc)
    finally:
        db.close()
    return facts


# the whole state --------------------------------------------------------------


def inspect(root: Path, *, deep: bool = True) -> list[Finding]:
    """Every finding about the key, the ledger and the marker, worst first not guaranteed."""
    state = root / STATE_DIR
    found: list[Finding] = []
    try:
        marker = read_marker(root)
    except StateError as exc:
        return [Finding("problem", exc.message, exc.hint or _(FIX))]
    marker = marker or {}
    lpath = state / LEDGER_FILE
    facts = ledger_facts(lpath, deep=deep) if lpath.exists() else None
    rel = f"{STATE_DIR}/{LEDGER_FILE}"
    if facts is None:
        if marker.get("ledger_id"):
            found.append(
                Finding(
                    "problem",
                    _(
                        "{path} is missing (the suppression list and who was mailed are in it)"
                    ).format(path=rel),
                    _(FIX),
                )
            )
        else:
            found.append(Finding("ok", _("no ledger yet: the first run creates it")))
    elif facts.problem:
        found.append(
            Finding(
                "problem", _("{path} {problem}").format(path=rel, problem=facts.problem), _(FIX)
            )
        )
    elif marker.get("ledger_id") and facts.ledger_id != marker["ledger_id"]:
        found.append(
            Finding(
                "problem",
                _(
                    "{path} is not this workspace's ledger (a new or another one: its id "
                    "differs from .segmerge-state.json)"
                ).format(path=rel),
                _("{fix} (its suppressions are kept)").format(fix=_(FIX)),
            )
        )
    else:
        runs = ngettext("{n} run", "{n} runs", facts.runs).format(n=number(facts.runs))
        blocked = ngettext(
            "{n} suppressed address", "{n} suppressed addresses", facts.suppressions
        ).format(n=number(facts.suppressions))
        found.append(
            Finding(
                "ok",
                _("ledger sound: {runs}, {blocked}").format(runs=runs, blocked=blocked),
                topic="ledger sound",
            )
        )
    kpath = state / KEY_FILE
    krel = f"{STATE_DIR}/{KEY_FILE}"
    if kpath.exists():
        try:
            key = read_key(kpath)
            check_key(root, key, kpath)
        except StateError as exc:
            found.append(Finding("problem", f"{label(krel)} {exc.message}", _(FIX)))
        else:
            found.append(Finding("ok", _("signing key present ({path})").format(path=krel)))
    elif marker.get("key_fingerprint") or (facts is not None and facts.letters):
        missing = _(
            "{path} is missing: every unsubscribe link already sent was signed with it"
        ).format(path=krel)
        found.append(Finding("problem", missing, _(FIX)))
    else:
        found.append(Finding("ok", _("no signing key yet: the first run creates it")))
    return found


def problems(root: Path, *, deep: bool = True) -> list[Finding]:
    return [f for f in inspect(root, deep=deep) if f.level == "problem"]


def check_state(root: Path, *, deep: bool = True) -> None:
    """Raise a :class:`StateError` for the first problem: a run must not start over it."""
    found = problems(root, deep=deep)
    if found:
        raise StateError(
            _("the workspace's state is not usable: {problems}").format(
                problems="; ".join(f.what for f in found)
            ),
            file=root / STATE_DIR,
            hint=_("`segmerge doctor` says what is wrong; {value}; {accept_hint}").format(
                value=found[0].fix, accept_hint=_(ACCEPT_HINT)
            ),
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


def ledger_id(db: sqlite3.Connection) -> str:
    """The ledger's id, given at its creation (or its first open by this version)."""
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('ledger_id', ?)", (uuid4().hex,))
    return str(db.execute("SELECT value FROM meta WHERE key='ledger_id'").fetchone()[0])


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


# the signing key ----------------------------------------------------------------


def load_key(state_dir: Path, *, create: bool) -> bytes | None:
    """See :func:`segmerge.mail.tokens.signing_key`, whose contract this implements."""
    path = state_dir / KEY_FILE
    ours = is_workspace_state(state_dir)
    root = state_dir.parent
    if path.exists():
        key = read_key(path)
        if ours:
            check_key(root, key, path)
        return key
    if ours and (create or read_marker(root)):
        # a key that existed and is gone: a new one would void every link already sent
        check_state(root, deep=False)
    if not create:
        return None
    key = _new_key(path)
    if ours:
        update_marker(root, key_fingerprint=key_fingerprint(key))
    return key


def _new_key(path: Path) -> bytes:
    """Written whole under a temporary name, then linked into place: a reader never sees
    half a key, and of two processes creating one at once, both end up with the same."""
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
