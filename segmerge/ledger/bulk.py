"""Status changes of many actions at once, the hot path of a push.

A push records a batch of outcomes (thousands of keys) while the connector's
threads keep sending: the statement that writes them is chosen here for speed.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

#: from this many rows, one UPDATE over a JSON array of keys beats a statement per row
#: (a third faster, and SQLite runs it without holding Python's interpreter lock, so the
#: connector's threads keep their connections busy while a batch is recorded)
BULK_ROWS = 64


def update_keys(
    db: sqlite3.Connection,
    assignments: str,
    values: tuple[Any, ...],
    keys: list[str],
    only_if: str | None = None,
) -> None:
    """Set ``assignments`` (SQL with ``?`` for ``values``) on the actions of these keys."""
    condition = f" AND {only_if}" if only_if else ""
    if len(keys) >= BULK_ROWS:
        try:
            db.execute(
                f"UPDATE actions SET {assignments} "  # noqa: S608 - fixed SQL, values bound
                f"WHERE key IN (SELECT value FROM json_each(?)){condition}",
                (*values, json.dumps(keys)),
            )
            return
        except sqlite3.OperationalError as exc:  # an SQLite built without JSON functions
            if "json_each" not in str(exc):
                raise
    db.executemany(
        f"UPDATE actions SET {assignments} WHERE key=?{condition}",  # noqa: S608
        [(*values, k) for k in keys],
    )
