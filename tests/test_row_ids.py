"""A run's contact ids stay Arrow strings until a row's id is asked: each row still
gives exactly the id ``str`` gave it, in any order of asking, and only a few blocks of
Python strings are held at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmerge.run import row_ids as r


def test_each_row_gives_its_id_in_any_order_and_few_blocks_are_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(r, "BLOCK", 16)  # small blocks: the same walk, cheaper
    n = r.BLOCK * (r.KEPT + 3) + 5  # more blocks than are kept, the last one short
    column = pd.Series([f"C{i:07d}é" for i in range(n)], dtype="string[pyarrow]")
    ids = r.row_ids(column)
    assert isinstance(ids, r.RowIds)
    order = np.random.default_rng(7).permutation(n)[:3000].tolist() + [0, n - 1, -1]
    assert [ids[i] for i in order] == [f"C{i % n:07d}é" for i in order]
    assert len(ids._blocks) <= r.KEPT
    rows = np.array([5, n - 1, r.BLOCK, 5])
    assert r.take(ids, rows) == [f"C{i:07d}é" for i in rows.tolist()]
    assert ids[2:5] == ["C0000002é", "C0000003é", "C0000004é"]
    assert len(ids) == n


def test_ids_that_are_not_strings_are_made_as_str_makes_them() -> None:
    for column in (
        pd.Series([10, 2, 33]),
        pd.Series(["a", None, "c"], dtype="string[pyarrow]"),
        pd.Series(["a", "b", "c"], dtype="string[python]"),
    ):
        ids = r.row_ids(column)
        want = [str(x) for x in column.tolist()]
        assert [ids[i] for i in range(len(column))] == want
        assert r.take(ids, np.array([2, 0])) == [want[2], want[0]]
