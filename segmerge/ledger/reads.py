"""What `kpi` and the unsubscribe endpoint read from the ledger: its questions, asked here.

They used to open the database themselves with their own SQL; then a change of
the tables (a column, an index) had to be found in three packages. Now the
ledger answers in plain Python values and is the only code that knows its
tables (:mod:`segmerge.ledger.schema`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class ReadsMixin:
    """Methods of :class:`segmerge.ledger.store.Ledger` (which provides ``db``)."""

    db: sqlite3.Connection

    def recipients(self, run_id: str) -> list[dict[str, Any]]:
        """contact_id, segment, variant, status, kind, sent_at (ISO UTC) of the run's
        recipients (``done``) and held-out contacts (``holdout``).

        Our sends are ``kind='send'`` rows, stamped when delivered; a platform's
        experiment has ``kind='member'`` rows, whose letters the marketer sent from the
        platform at a moment the ledger cannot know: their time is the run's start.
        """
        rows = self.db.execute(
            "SELECT a.contact_id, a.segment, a.variant, a.status, a.kind, CASE a.kind WHEN "
            "'member' THEN r.started_at ELSE a.updated_at END AS sent_at FROM actions a "
            "JOIN runs r ON r.run_id = a.run_id WHERE a.run_id=? AND a.kind IN ('send', "
            "'member') AND a.status IN ('done', 'holdout')",
            (run_id,),
        ).fetchall()
        return [dict(r) for r in rows]

    def platform_ids(self, run_id: str, kind: str) -> set[str]:
        """The platform's ids of what the run's done actions of this kind made or touched
        (its drafts' campaign ids, for ``create_campaign``), as their outcomes gave them."""
        rows = self.db.execute(
            "SELECT DISTINCT platform_id FROM actions WHERE run_id=? AND kind=? "
            "AND status='done' AND platform_id IS NOT NULL",
            (run_id, kind),
        )
        return {str(r[0]) for r in rows}

    def latest_run_with_letters(self, campaign: str, within: int = 100) -> str | None:
        """The campaign's latest run (among its last ``within``) that sent a letter or put
        a contact in a platform's group."""
        row = self.db.execute(
            "SELECT r.run_id FROM (SELECT run_id, started_at FROM runs WHERE campaign=? "
            "ORDER BY started_at DESC LIMIT ?) r WHERE EXISTS (SELECT 1 FROM actions a "
            "WHERE a.run_id=r.run_id AND a.kind IN ('send', 'member') AND a.status='done') "
            "ORDER BY r.started_at DESC LIMIT 1",
            (campaign, within),
        ).fetchone()
        return str(row[0]) if row else None

    def addresses_sent_to(self, contact_id: str) -> list[tuple[str, str]]:
        """(address, campaign) of every letter the ledger has to this contact, whatever
        its outcome: each address the contact was known by."""
        rows = self.db.execute(
            "SELECT DISTINCT a.target, r.campaign FROM actions a JOIN runs r "
            "ON r.run_id = a.run_id WHERE a.contact_id=? AND a.kind='send' "
            "AND a.target IS NOT NULL",
            (contact_id,),
        ).fetchall()
        return [(str(t), str(c)) for t, c in rows]

    def among(self, keys: Sequence[str], statuses: Sequence[str]) -> set[str]:
        """Which of ``keys`` have one of ``statuses``: a run's chunk of letters, just
        planned, asks which are still to push without reading the whole run."""
        marks, out = ",".join("?" for _ in statuses), set[str]()
        for i in range(0, len(keys), 500):  # under SQLite's limit of bound values
            part = list(keys[i : i + 500])
            rows = self.db.execute(
                f"SELECT key FROM actions WHERE status IN ({marks}) "  # noqa: S608 - values bound
                f"AND key IN ({','.join('?' for _ in part)})",
                (*statuses, *part),
            )
            out.update(r[0] for r in rows)
        return out
