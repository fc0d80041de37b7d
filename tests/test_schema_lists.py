"""A database's answer with a tags list per contact, as the engine reads it: every cell a
Python list (missing ones empty), the many empty ones costing next to nothing."""

from __future__ import annotations

import tracemalloc

import pyarrow as pa

from segmerge.ports.schema import Tables, conform, empty_events, empty_orders, frame_from_arrow


def answer(n: int) -> pa.Table:
    """``n`` contacts, one in ten tagged, one in ten a missing (NULL) tags cell."""
    tags = [["vip", "fr"] if i % 10 == 0 else None if i % 10 == 1 else [] for i in range(n)]
    ids = [f"C{i:07d}" for i in range(n)]
    return pa.table({"contact_id": ids, "tags": pa.array(tags, pa.list_(pa.string()))})


def test_tags_are_lists_and_a_missing_cell_is_empty() -> None:
    table = answer(30)
    frame = frame_from_arrow(table)
    expected = [t if t is not None else [] for t in table.column("tags").to_pylist()]
    assert frame["tags"].tolist() == expected
    assert all(type(t) is list for t in frame["tags"])
    contacts = conform(Tables(frame, empty_orders(), empty_events()), "shop").contacts
    assert contacts["tags"].tolist() == expected  # conform takes them as they are


def test_a_large_answer_holds_no_list_per_untagged_contact() -> None:
    """200,000 contacts, 180,000 of them untagged: a list each held 15 MiB, now 5."""
    table = answer(200_000)
    tracemalloc.start()
    try:
        frame = frame_from_arrow(table.select(["tags"]))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert frame["tags"].iloc[20] == ["vip", "fr"] and frame["tags"].iloc[21] == []
    assert held < 8 * 2**20
