"""The ledger's tables, and the changes an older ledger gets in place when opened.

Apart from :mod:`segmerge.ledger.store` so that the record's logic reads without
its DDL, and so that every change of shape is in one place: a ledger is the
workspace's memory and is never recreated, only mended.
"""

from __future__ import annotations

import re
import sqlite3
import time

from segmerge.ledger.suppression import SCHEMA as SUPPRESSION_SCHEMA
from segmerge.ledger.tracking import SCHEMA as TRACKING_SCHEMA

SCHEMA_VERSION = 1

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    as_of TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    contact_id TEXT,
    kind TEXT NOT NULL,
    destination TEXT NOT NULL,
    segment TEXT,
    target TEXT,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_run ON actions(run_id, status);
-- (contact_id, kind) without status: every status change of a push would rewrite it
CREATE INDEX IF NOT EXISTS actions_by_contact_kind ON actions(contact_id, kind);
"""
    + SUPPRESSION_SCHEMA
    + TRACKING_SCHEMA
)


def migrate(db: sqlite3.Connection) -> None:
    """Columns, indexes and tables changed since schema 1, changed in place: an old ledger
    keeps its history.

    The ``cursors`` table of the first versions is dropped: it was written and never
    read (each source's progress lives with its pulled copy, in the snapshot's
    manifest, :mod:`segmerge.segment.cache`), so an old ledger loses nothing.
    """
    columns = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
    for name in ("not_before", "variant", "platform_id"):
        if name not in columns:
            db.execute(f"ALTER TABLE actions ADD COLUMN {name} TEXT")
    if "platform_id" not in columns:
        _platform_ids_from_details(db)
    db.execute("DROP INDEX IF EXISTS actions_by_contact")  # had status: see SCHEMA
    db.execute("DROP TABLE IF EXISTS cursors")


#: how a draft's id was written in ``detail`` before outcomes carried it: Mailchimp's
#: "draft campaign ID created", HubSpot's "draft e-mail ID created", Brevo's "draft ID created"
_OLD_DRAFT_DETAIL = re.compile(r"draft(?: campaign| e-mail)? (\S+)")


def _platform_ids_from_details(db: sqlite3.Connection) -> None:
    """Once, when the ``platform_id`` column is added: the ids of the drafts made before
    outcomes carried them (``Outcome.platform_id``), read from the sentence their
    connector wrote then, so that `kpi` still matches the events of those campaigns.
    The only reading of ``detail`` for an id, and only of rows older than the column."""
    rows = db.execute(
        "SELECT key, detail FROM actions WHERE kind='create_campaign' AND status='done'"
    ).fetchall()
    ids = [(m.group(1), key) for key, detail in rows if (m := _OLD_DRAFT_DETAIL.search(detail))]
    db.executemany("UPDATE actions SET platform_id=? WHERE key=?", ids)


def use_wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Write-ahead logging, waiting for another process switching the same new file to it:
    SQLite answers that switch with "database is locked" at once, without its busy wait."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
