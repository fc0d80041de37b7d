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
    cols = [c for c in orders.columns if c.name in ("order_id", "contact_id")]
    said = ", ".join(f"{c.expr} AS {quote(c.name)}" for c in cols)
    source = f"read_parquet({text_literal(str(orders.path))}, file_row_number = true)"
    where = f" WHERE file_row_number < {int(window)}" if window is not None else ""
    numbered = f"SELECT {said}, file_row_number AS segmerge_at FROM {source} AS file{where}"
    return (
        f"SELECT o.order_id, o.contact_id FROM ({numbered}) AS o "
        f"WHERE NOT EXISTS (SELECT 1 FROM {contacts.relation()} AS c "
        f"WHERE c.contact_id = o.contact_id) ORDER BY o.segmerge_at LIMIT {int(limit)}"
    )
