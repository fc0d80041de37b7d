"""The ledger's suppression lists: by address, and by contact id.

Kept apart from the run/action bookkeeping because it is the workspace's most
precious state and has its own rules: an address is stored and compared
normalised (:mod:`segmerge.addresses`), so two spellings of one mailbox are
one entry; and a contact id is suppressed on its own, so a contact who
unsubscribed and then changed address in the CRM is still never mailed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

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
        """Add (address, reason) pairs; addresses are compared lower-cased. Returns how many new."""
        ts = _now()
        rows = [(a.strip().lower(), r, ts) for a, r in entries if a and a.strip()]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO suppressions(address, reason, added_at) VALUES (?,?,?)", rows
            )
            return db.total_changes - before

    def unsuppress(self, address: str) -> bool:
        with self.transaction() as db:
            cur = db.execute("DELETE FROM suppressions WHERE address=?", (address.strip().lower(),))
        return cur.rowcount > 0

    def suppressed(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM suppressions ORDER BY address")]

    def suppressed_addresses(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT address FROM suppressions")}

    # by contact id --------------------------------------------------------

    def suppress_contacts(self, entries: Iterable[tuple[str, str]]) -> int:
        """Add (contact_id, reason) pairs, kept whatever address the contact has later.
        Returns how many are new."""
        ts = _now()
        rows = [(str(c).strip(), r, ts) for c, r in entries if c is not None and str(c).strip()]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO suppressed_contacts(contact_id, reason, added_at) "
                "VALUES (?,?,?)",
                rows,
            )
            return db.total_changes - before

    def suppressed_contact_ids(self) -> set[str]:
        return {str(r[0]) for r in self.db.execute("SELECT contact_id FROM suppressed_contacts")}

    def suppressed_contacts(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.db.execute("SELECT * FROM suppressed_contacts ORDER BY contact_id")
        ]
