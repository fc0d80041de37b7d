"""conform on the contacts a database answers: the same frame whatever the order of the
ids, and a duplicate id still named (it checks ids without a Python string per id)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmerge.errors import DataError
from segmerge.ports.schema import (
    CONTACT_COLUMNS,
    STRING,
    UTC,
    Tables,
    conform,
    empty_events,
    empty_orders,
)


def contacts(ids: list[str | None]) -> pd.DataFrame:
    """Contacts as segmerge.segment.in_database hands them over: one shared empty tags list."""
    n = len(ids)
    tags = np.empty(n, dtype=object)
    tags.fill([])
    return pd.DataFrame(
        {
            "contact_id": pd.Series(ids, dtype=STRING),
            "age": pd.Series([30.0, np.nan, 41.0][:n]),
            "subscribed": pd.Series([True, None, False][:n], dtype="boolean"),
            "email": pd.Series(["a@b.fr", None, "c@d.fr"][:n], dtype=STRING),
            "created_at": pd.to_datetime(
                ["2026-01-02 03:04:05", None, "2025-05-06 00:00:00"][:n], utc=True
            ),
            "tags": pd.Series(tags, dtype=object),
        }
    )


@pytest.mark.parametrize("ids", [["1", "2", "3"], ["3", "1", "2"]])
def test_the_canonical_frame_whatever_the_ids_order(ids: list[str]) -> None:
    given = contacts(ids)
    got = conform(Tables(given, empty_orders(), empty_events()), "shop").contacts
    assert tuple(got.columns[:8]) == CONTACT_COLUMNS
    assert got["contact_id"].tolist() == ids
    assert got["subscribed"].tolist() == [True, False, False]
    assert str(got["updated_at"].dtype) == UTC and got["updated_at"].isna().all()
    assert got["tags"].tolist() == [[], [], []]
    assert given["subscribed"].dtype == "boolean"  # the caller's frame is left as it was


@pytest.mark.parametrize("ids", [["1", "2", "1"], ["2", "2", "3"], [None, "1", None]])
def test_a_duplicate_id_is_named(ids: list[str | None]) -> None:
    tables = Tables(contacts(ids), empty_orders(), empty_events())
    with pytest.raises(DataError, match="duplicate contact_id"):
        conform(tables, "shop")
