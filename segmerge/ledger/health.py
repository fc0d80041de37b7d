"""The ledger's health, read straight from its file: what `doctor`, the backups and a
key about to be created need to know of the workspace's state.

Why here: the ledger is the only door to its database, and these checks open it raw
(a look that changes nothing, ``quick_check`` on demand) because the file may be
truncated, foreign or damaged, which is exactly what they are asked. The key's and the marker's
side, which need no database, stay in :mod:`segmerge.workspace.state`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from segmerge.i18n import _, label, ngettext, number
from segmerge.workspace.marker import FIX, STATE_DIR, is_workspace_state, read_marker, update_marker
from segmerge.workspace.state import (
    ACCEPT_HINT,
    KEY_FILE,
    LEDGER_FILE,
    SQLITE_HEADER,
    Finding,
    check_key,
    key_fingerprint,
    new_key,
    read_key,
)
from segmerge.workspace.storage import StateError


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


def ledger_id(db: sqlite3.Connection) -> str:
    """The ledger's id, given at its creation (or its first open by this version)."""
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('ledger_id', ?)", (uuid4().hex,))
    return str(db.execute("SELECT value FROM meta WHERE key='ledger_id'").fetchone()[0])


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


def signing_key(state_dir: Path, *, create: bool) -> bytes | None:
    """The workspace's token key: random, kept in `.segmerge/` (never committed).

    Every unsubscribe link already sent was signed with it, so it is never silently
    replaced: an empty, garbled or foreign key is an error (exit 2), and a missing one
    is created (``create``) only in a workspace that never had state; in one that had
    (see :mod:`segmerge.workspace.state`) its loss is an error telling how to restore it.
    It lives here, not beside the tokens in :mod:`segmerge.mail.tokens`, because
    whether a key existed is partly the ledger's to tell (a letter it recorded was
    signed with one)."""
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
    key = new_key(path)
    if ours:
        update_marker(root, key_fingerprint=key_fingerprint(key))
    return key
