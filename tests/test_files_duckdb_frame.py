"""The in-database contacts, conformed column-wise, are exactly conform's answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import DataError
from segmerge.ports.schema import STRING, UTC, Tables, conform, empty_events, empty_orders
from segmerge.segment.in_database_frame import conformed


def contacts(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    tags = np.empty(n, dtype=object)
    tags.fill([])
    return pd.DataFrame(
        {
            "contact_id": pd.Series(ids, dtype=STRING),
            "age": pd.Series([30.0, np.nan, 41.0][:n]),
            "subscribed": pd.Series([True, None, False][:n], dtype="boolean"),
            "email": pd.Series(["a@b.fr", None, "c@d.fr"][:n], dtype=STRING),
            "first_name": pd.Series(["Léa", None, "Hugo"][:n], dtype=STRING),
            "last_name": pd.Series(pd.NA, index=range(n), dtype=STRING),
            "created_at": pd.to_datetime(
                ["2026-01-02 03:04:05", None, "2025-05-06 00:00:00"][:n], utc=True
            ),
            "updated_at": pd.Series(pd.NaT, index=range(n), dtype=UTC),
            "tags": pd.Series(tags, dtype=object),
            "city": pd.Series(["Lyon", "Paris", None][:n], dtype=STRING),
        }
    )


def test_the_same_frame_and_notes_as_conform() -> None:
    tables = Tables(contacts(["1", "2", "3"]), empty_orders(), empty_events(), notes=["n"])
    fast, slow = conformed(tables, "shop", lists=True), conform(tables, "shop")
    pd.testing.assert_frame_equal(fast.contacts, slow.contacts)
    assert list(fast.contacts.columns) == list(slow.contacts.columns)
    assert (fast.notes, fast.warnings, fast.origins) == (slow.notes, slow.warnings, slow.origins)
    pd.testing.assert_frame_equal(fast.orders, slow.orders)


def test_a_duplicate_id_is_conforms_error() -> None:
    tables = Tables(contacts(["1", "2", "1"]), empty_orders(), empty_events())
    with pytest.raises(DataError, match="duplicate contact_id '1'"):
        conformed(tables, "shop", lists=True)


def test_no_subscribed_column_is_conforms_note() -> None:
    frame = contacts(["1", "2"]).drop(columns=["subscribed"])
    tables = Tables(frame, empty_orders(), empty_events())
    fast, slow = conformed(tables, "shop", lists=True), conform(tables, "shop")
    pd.testing.assert_frame_equal(fast.contacts, slow.contacts)
    assert fast.notes == slow.notes and fast.notes
