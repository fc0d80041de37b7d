"""The first orders naming no contact in the orders file, as the pandas pull names them.

Why: the warning about orders of nobody names a few of them. The pandas pull names the
first ones in the file; a bare ``LIMIT`` on DuckDB's anti-join names whichever its
threads meet first, different from one run to the next. Here the orders are numbered
by their row in the file and the first ones taken, in a window of the file's first
rows at first (its other row groups are never read, DuckDB prunes them by row number),
widened until enough are found: on 10 M orders whose first unmatched one is near the
start, one row group read instead of the whole file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmerge.ports import quote_name as quote
from segmerge.ports import text_literal

from .files_duckdb import Decided, Scan

#: the first window's rows (about one Parquet row group), then sixteen times more each time
FIRST_WINDOW = 2**17
GROWTH = 16


def first_unmatched(rows: Callable[[str], Any], decided: Decided, limit: int) -> Any:
    """The first ``limit`` orders of the file (``order_id``, ``contact_id``, as Arrow)
    whose contact is not among the contacts' (``rows``: a statement's rows)."""
    orders, contacts = decided.scans["orders"], decided.scans["contacts"]
    total = decided.order_counts[0]
    window: int | None = FIRST_WINDOW
    while True:
        if window is not None and window >= total:
            window = None
        got = rows(_sql(orders, contacts, window, limit))
        if got.num_rows >= limit or window is None:
            return got
        window *= GROWTH


def _sql(orders: Scan, contacts: Scan, window: int | None, limit: int) -> str:
    """The first window's few ids are looked up among the contacts (a hash table of at
    most a window's rows, not of every contact: 0.29 -> 0.15 s of CPU on a million
    contacts); a larger window's orders are looked up in a hash table of the contacts."""
    cols = [c for c in orders.columns if c.name in ("order_id", "contact_id")]
    said = ", ".join(f"{c.expr} AS {quote(c.name)}" for c in cols)
    source = f"read_parquet({text_literal(str(orders.path))}, file_row_number = true)"
    where = f" WHERE file_row_number < {int(window)}" if window is not None else ""
    numbered = f"SELECT {said}, file_row_number AS segmerge_at FROM {source} AS file{where}"
    if window is not None and window <= FIRST_WINDOW:
        known = (
            f"SELECT c.contact_id FROM {contacts.relation()} AS c "
            "WHERE c.contact_id IN (SELECT contact_id FROM w)"
        )
    else:
        known = f"SELECT c.contact_id FROM {contacts.relation()} AS c"
    return (
        f"WITH w AS ({numbered}), known AS ({known}) "
        "SELECT w.order_id, w.contact_id FROM w LEFT JOIN known AS k "
        "ON k.contact_id = w.contact_id WHERE k.contact_id IS NULL "
        f"ORDER BY w.segmerge_at LIMIT {int(limit)}"
    )
