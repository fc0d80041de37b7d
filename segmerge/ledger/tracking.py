"""The ledger's table of tracked opens and clicks of our own sends.

One row per (run, contact, event, link): a second click on the same link adds to
``hits``, it is not a second click. Every hit is kept, the ones the heuristics of
:mod:`segmerge.serve.endpoint.tracking_record` take for a machine too, with the reason in
``filtered``: a report can say how many it set aside, and a heuristic changed later
can be replayed. KPIs count the rows whose ``filtered`` is empty.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from segmerge.ledger.keys import send_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS tracked_events (
    run_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 1,
    filtered TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, contact_id, event, url)
);
"""

#: a person's hit on a row first made by a scanner makes it count, from the person's time
_UPSERT = (
    "INSERT INTO tracked_events(run_id, contact_id, event, url, first_at, last_at, hits, "
    "filtered, agent) VALUES (?,?,?,?,?,?,1,?,?) "
    "ON CONFLICT(run_id, contact_id, event, url) DO UPDATE SET hits=hits+1, "
    "last_at=excluded.last_at, "
    "first_at=CASE WHEN filtered!='' AND excluded.filtered='' THEN excluded.first_at "
    "ELSE first_at END, "
    "agent=CASE WHEN filtered!='' AND excluded.filtered='' THEN excluded.agent ELSE agent END, "
    "filtered=CASE WHEN excluded.filtered='' THEN '' ELSE filtered END"
)


class TrackingMixin:
    """Methods of :class:`segmerge.ledger.Ledger` (which provides ``db`` and ``transaction``)."""

    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by Ledger

    def delivered_at(self, run_id: str, contact_id: str) -> str | None:
        """When the run's letter to the contact was recorded sent (ISO UTC), if it was."""
        row = self.db.execute(
            "SELECT updated_at FROM actions WHERE key=? AND status IN ('done', 'uncertain')",
            (send_key(run_id, contact_id),),
        ).fetchone()
        return str(row[0]) if row else None

    def track(
        self,
        run_id: str,
        contact_id: str,
        event: str,
        url: str,
        at: str,
        filtered: str,
        agent: str,
        burst: tuple[str, int] | None = None,
    ) -> None:
        """Record one hit, then, with ``burst=(since, n)``: when ``n`` or more different links
        of this letter were clicked since ``since`` (this one included), set them all aside
        as a link scanner. One transaction: the answer waits for both."""
        with self.transaction() as db:
            db.execute(_UPSERT, (run_id, contact_id, event, url, at, at, filtered, agent[:200]))
            if burst is None:
                return
            since, n = burst
            rows = db.execute(
                "SELECT url FROM tracked_events WHERE run_id=? AND contact_id=? AND "
                "event='click' AND first_at>=?",
                (run_id, contact_id, since),
            ).fetchall()
            if len(rows) >= n:
                why = f"link scanner: {len(rows)} links clicked within seconds"
                db.execute(
                    "UPDATE tracked_events SET filtered=? WHERE run_id=? AND contact_id=? AND "
                    "event='click' AND first_at>=?",
                    (why, run_id, contact_id, since),
                )

    def tracked(self, run_ids: Sequence[str], *, counted_only: bool = True) -> list[dict[str, Any]]:
        """The tracked events of these runs (the ones a person made, by default)."""
        if not run_ids:
            return []
        marks = ",".join("?" for _ in run_ids)
        sql = f"SELECT * FROM tracked_events WHERE run_id IN ({marks})"  # noqa: S608
        if counted_only:
            sql += " AND filtered=''"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY first_at", tuple(run_ids))]

    def sends_to(self, contact_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(run id, contact id, when) of every letter recorded sent to these contacts."""
        rows: list[tuple[str, str, str]] = []
        for start in range(0, len(contact_ids), 500):  # under SQLite's bound-variable limit
            part = list(contact_ids[start : start + 500])
            marks = ",".join("?" for _ in part)
            rows += [
                (str(r[0]), str(r[1]), str(r[2]))
                for r in self.db.execute(
                    "SELECT run_id, contact_id, updated_at FROM actions WHERE kind='send' AND "  # noqa: S608
                    f"status IN ('done', 'uncertain') AND contact_id IN ({marks})",
                    part,
                )
            ]
        return rows

    def tracked_summary(self, run_ids: Iterable[str]) -> dict[str, int]:
        """Hits set aside, by reason (for a report's note)."""
        ids = list(run_ids)
        if not ids:
            return {}
        marks = ",".join("?" for _ in ids)
        return {
            str(r[0]): int(r[1])
            for r in self.db.execute(
                f"SELECT filtered, COUNT(*) FROM tracked_events WHERE run_id IN ({marks}) "  # noqa: S608
                "AND filtered!='' GROUP BY filtered",
                ids,
            )
        }
