"""The unsubscribe audit and the platform notifications it still owes, in one SQLite file.

`.segmerge/unsubscribes.sqlite` holds two tables:

- ``unsubscribes``: one row per unsubscribe recorded (never per replay), with
  the addresses suppressed and, in ``told``/``source``, whether the source
  platform was told (``pending``, ``yes``, ``no`` when it cannot be,
  ``failed`` when it gave up) and what it said;
- ``pending_notifications``: the platform calls still to make, one row per
  unsubscribe, with the sources not told yet, the attempts made and when to
  try again.

The platform call used to be a ~130 MB child process started per request
(replays included). A queue in a file instead: the answer to the person never
waits on a platform, a flood of requests costs one row each at most, and a
`serve` that is stopped or killed finds its pending rows on the next start
(:class:`segmerge.serve.endpoint.notify.Notifier` drains them). Writes use
``synchronous=FULL``: an unsubscribe acknowledged is on disk, not only in the
OS cache.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

AUDIT_FILE = "unsubscribes.sqlite"
MAX_ATTEMPTS = 10  # with RETRY_BASE 30 s doubling up to RETRY_MAX: about seven hours
RETRY_BASE = 30.0
RETRY_MAX = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unsubscribes (
    contact_id TEXT NOT NULL, addresses TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL,
    told TEXT NOT NULL DEFAULT 'pending');
CREATE INDEX IF NOT EXISTS unsubscribes_by_contact ON unsubscribes(contact_id);
CREATE TABLE IF NOT EXISTS pending_notifications (
    audit_id INTEGER PRIMARY KEY,
    contact_id TEXT NOT NULL,
    addresses TEXT NOT NULL,
    sources TEXT NOT NULL,
    said TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
"""


@dataclass
class Job:
    """One unsubscribe whose sources are not all told yet."""

    audit_id: int
    contact_id: str
    addresses: list[str]
    sources: list[str]  # still to tell
    said: dict[str, list[str]] = field(default_factory=dict)  # source -> [status, text]
    attempts: int = 0


@contextmanager
def connect(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The audit database, created if needed (the first unsubscribe makes it)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / AUDIT_FILE, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        _ensure_schema(db)
        yield db
    finally:
        db.close()


def _ensure_schema(db: sqlite3.Connection) -> None:
    """Tables created, and an older audit file given its ``told`` column, in one commit:
    a reader never sees half a schema."""
    if (
        db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
            "('unsubscribes', 'pending_notifications')"
        ).fetchone()[0]
        == 2
    ):
        return
    with _transaction(db):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        cols = {r[1] for r in db.execute("PRAGMA table_info(unsubscribes)")}
        if "told" not in cols:  # an audit file from before the queue: its rows were told inline
            db.execute("ALTER TABLE unsubscribes ADD COLUMN told TEXT NOT NULL DEFAULT 'yes'")


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def already_recorded(db: sqlite3.Connection, contact_id: str) -> bool:
    row = db.execute("SELECT 1 FROM unsubscribes WHERE contact_id=? LIMIT 1", (contact_id,))
    return row.fetchone() is not None


def record(
    db: sqlite3.Connection, contact_id: str, addresses: list[str], sources: list[str], now: float
) -> int:
    """The audit row and, when a source is to be told, its pending notification: one commit."""
    at = datetime.fromtimestamp(now, UTC).isoformat()
    told, said = ("pending", "pending") if sources else ("no", "no source")
    with _transaction(db):
        cur = db.execute(
            "INSERT INTO unsubscribes(contact_id, addresses, at, source, told) VALUES (?,?,?,?,?)",
            (contact_id, ",".join(addresses), at, said, told),
        )
        audit_id = int(cur.lastrowid or 0)
        if sources:
            db.execute(
                "INSERT INTO pending_notifications(audit_id, contact_id, addresses, sources, "
                "next_at) VALUES (?,?,?,?,?)",
                (audit_id, contact_id, json.dumps(addresses), json.dumps(sources), now),
            )
    return audit_id


def due(db: sqlite3.Connection, now: float, limit: int) -> list[Job]:
    rows = db.execute(
        "SELECT audit_id, contact_id, addresses, sources, said, attempts "
        "FROM pending_notifications WHERE next_at <= ? ORDER BY next_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [
        Job(int(r[0]), str(r[1]), json.loads(r[2]), json.loads(r[3]), json.loads(r[4]), int(r[5]))
        for r in rows
    ]


def next_due(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT MIN(next_at) FROM pending_notifications").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def pending_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM pending_notifications").fetchone()[0])


def backoff(attempts: int, base: float = RETRY_BASE) -> float:
    """Seconds before attempt ``attempts + 1``: base, doubling, at most RETRY_MAX."""
    return float(min(base * 2 ** max(attempts - 1, 0), RETRY_MAX))


def settle(
    db: sqlite3.Connection,
    job: Job,
    answers: dict[str, tuple[str, str]],
    now: float,
    *,
    retry_base: float = RETRY_BASE,
) -> str:
    """Apply one attempt's answers (source -> (status, text), status ``yes``/``no``/``retry``).

    The job leaves the queue when no source asks for a retry, or after
    MAX_ATTEMPTS; the audit row then says what each source answered. Returns
    the audit text."""
    job.attempts += 1
    retry = sorted(s for s, (status, _) in answers.items() if status == "retry")
    gave_up = bool(retry) and job.attempts >= MAX_ATTEMPTS
    for s, (status, text) in answers.items():
        if status != "retry":
            job.said[s] = [status, text]
        elif gave_up:
            job.said[s] = ["failed", f"{text}; gave up after {job.attempts} attempts"]
    now_said = {**{s: list(a) for s, a in answers.items()}, **job.said}
    text = "; ".join(now_said[s][1] for s in sorted(now_said))
    with _transaction(db):
        if retry and not gave_up:
            db.execute(
                "UPDATE pending_notifications SET sources=?, said=?, attempts=?, next_at=?, "
                "last_error=? WHERE audit_id=?",
                (
                    json.dumps(retry),
                    json.dumps(job.said),
                    job.attempts,
                    now + backoff(job.attempts, retry_base),
                    text,
                    job.audit_id,
                ),
            )
            db.execute(
                "UPDATE unsubscribes SET source=? WHERE rowid=?",
                (f"pending (attempt {job.attempts}: {text})", job.audit_id),
            )
            return text
        statuses = {status for status, _ in job.said.values()}
        told = statuses.pop() if len(statuses) == 1 else "partly"
        db.execute("DELETE FROM pending_notifications WHERE audit_id=?", (job.audit_id,))
        db.execute(
            "UPDATE unsubscribes SET source=?, told=? WHERE rowid=?", (text, told, job.audit_id)
        )
    return text
