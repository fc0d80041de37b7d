"""The ledger's suppression lists: by address, and by contact id.

Kept apart from the run/action bookkeeping because it is the workspace's most
precious state and has its own rules: an address is stored and compared
normalised (:mod:`segmerge.ports.addresses`), so two spellings of one mailbox are
one entry; and a contact id is suppressed on its own, so a contact who
unsubscribed and then changed address in the CRM is still never mailed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from segmerge.ports.addresses import normalise_all, normalise_set, normalised_or_none

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressed_contacts (
    contact_id TEXT PRIMARY KEY,
    reason TEXT,
    added_at TEXT
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SuppressionMixin:
    """Methods of :class:`segmerge.ledger.Ledger` (which provides ``db`` and ``transaction``)."""

    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by Ledger

    # by address -----------------------------------------------------------

    def suppress(self, entries: Iterable[tuple[str, str]]) -> int:
        """Add (address, reason) pairs, stored normalised (an address that cannot be is kept
        stripped and lower-cased: it can never be mailed, but nothing given is lost).
        Returns how many are new."""
        pairs = [(a.strip(), r) for a, r in entries if a and a.strip()]
        if not pairs:
            return 0
        ts = _now()
        normal = normalise_all([a for a, _ in pairs])
        rows = [(n or a.lower(), r, ts) for (a, r), n in zip(pairs, normal, strict=True)]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO suppressions(address, reason, added_at) VALUES (?,?,?)", rows
            )
            return db.total_changes - before

    def unsuppress(self, address: str) -> bool:
        """Remove an address, in whatever form it was stored (an old ledger's lower-cased
        spelling of the same mailbox included)."""
        target = normalised_or_none(address) or address.strip().lower()
        stored = [r[0] for r in self.db.execute("SELECT address FROM suppressions")]
        normal = normalise_all(stored)
        gone = [a for a, n in zip(stored, normal, strict=True) if target in (a, n)]
        if not gone:
            return False
        with self.transaction() as db:
            db.executemany("DELETE FROM suppressions WHERE address=?", [(a,) for a in gone])
        return True

    def suppressed(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM suppressions ORDER BY address")]

    def suppressed_addresses(self) -> set[str]:
        """Every suppressed address in normal form: entries written before normalisation
        (only lower-cased) still match the contacts they were meant for."""
        stored = [r[0] for r in self.db.execute("SELECT address FROM suppressions")]
        return normalise_set(stored) | {a for a in stored if a}

    # by contact id --------------------------------------------------------

    def suppress_contacts(self, entries: Iterable[tuple[str, str]]) -> int:
        """Add (contact_id, reason) pairs, kept whatever address the contact has later.
        Returns how many are new."""
        ts = _now()
        # kept exactly as given: the id in a token is the id as the data spelled it
        rows = [(str(c), r, ts) for c, r in entries if c is not None and str(c).strip()]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO suppressed_contacts(contact_id, reason, added_at) "
                "VALUES (?,?,?)",
                rows,
            )
            return db.total_changes - before

    def suppressed_contact_ids(self) -> set[str]:
        return {str(r[0]) for r in _rows(self.db, "SELECT contact_id FROM suppressed_contacts")}

    def is_suppressed_contact(self, contact_id: str) -> bool:
        sql = "SELECT 1 FROM suppressed_contacts WHERE contact_id=?"
        return bool(_rows(self.db, sql, (contact_id,)))

    def suppressed_contacts(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.db.execute("SELECT * FROM suppressed_contacts ORDER BY contact_id")
        ]


def _rows(db: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """The rows, or none from a ledger opened read only before contact suppressions
    existed (:meth:`Ledger.reader` never adds the table)."""
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return []
