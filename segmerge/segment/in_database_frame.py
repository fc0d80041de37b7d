"""The contacts a database answered, conformed as segmerge.ports.schema.conform would.

Why not conform itself: it is the contract check of a connector's pull, and on a
million contacts it spent 0.8 s of CPU proving what the in-database path already
knows: it copies every column, turns the ids into a million Python strings for a
set (duplicates: counted here by Arrow's hash instead), and walks every tags value
to see it is a list (here, when the caller reads no tags, all are the same empty
list). Each column is then typed exactly as conform types it; anything unusual
(a duplicate id, tags that are not lists) goes through conform, whose message and
answer are the reference.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports.schema import CONTACT_COLUMNS, STRING, Tables, conform


def conformed(tables: Tables, source: str, *, lists: bool) -> Tables:
    """``conform(tables, source)``; ``lists``: every tags value is known to be a list."""
    c = tables.contacts
    ids = pa.array(c["contact_id"], from_pandas=True) if "contact_id" in c.columns else None
    plain = (
        lists
        and ids is not None
        and "subscribed" in c.columns
        and all(col in c.columns for col in CONTACT_COLUMNS)
        and pc.count_distinct(ids, mode="all").as_py() == len(c)
    )
    if not plain:
        return conform(tables, source)
    shape = conform(replace(tables, contacts=c.iloc[:0]), source)  # notes, orders, events
    c = c.copy(deep=False)
    for col in ("contact_id", "email", "first_name", "last_name"):
        c[col] = c[col].astype(STRING)
    c["subscribed"] = c["subscribed"].fillna(False).astype(bool)
    for col in ("created_at", "updated_at"):
        c[col] = pd.to_datetime(c[col], utc=True)
    ordered = list(CONTACT_COLUMNS) + [x for x in c.columns if x not in CONTACT_COLUMNS]
    c = c[ordered].reset_index(drop=True)
    return replace(shape, contacts=c)
