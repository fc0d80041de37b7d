"""The orders of nobody named in the warning on DuckDB are the pandas pull's: the first in the file.

The orders file has many row groups and the unmatched orders lie past the first
window DuckDB looks in (made small here), so the windows widen; a bare LIMIT on the
anti-join named whichever orders its threads met first, not the same from run to run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_files_duckdb import dialect, set_engine, workspace

from connectors import files_duckdb_examples
from segmerge.segment.segmentation import segment
from segmerge.workspace.config import load

ORDERS = 8_000


def shop(root: Path, unmatched: dict[int, str]) -> Path:
    contacts = pd.DataFrame(
        {
            "contact_id": [f"C{i}" for i in range(100)],
            "email": [f"c{i}@example.org" for i in range(100)],
            "subscribed": True,
        }
    )
    ids = [unmatched.get(i, f"C{i % 100}") for i in range(ORDERS)]
    orders = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(ORDERS)],
            "contact_id": ids,
            "ordered_at": pd.Timestamp("2026-05-01 10:00", tz="UTC"),
            "amount": 10.0,
        }
    )
    workspace(root, contacts, orders)
    table = pa.Table.from_pandas(orders, preserve_index=False)
    pq.write_table(table, root / "data" / "orders.parquet", row_group_size=500)
    return root


def warnings(root: Path, engine: str | None) -> list[str]:
    set_engine(root, engine)
    done = segment(load(root), "segrules/rfm.yaml", source_name="shop", as_of="2026-07-01")
    return done.tables.warnings


@pytest.fixture(autouse=True)
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_duckdb_examples, "FIRST_WINDOW", 500)
    monkeypatch.setattr(files_duckdb_examples, "GROWTH", 2)


def test_the_first_orders_of_nobody_in_the_file_are_named(tmp_path: Path) -> None:
    ghosts = {3001: "X1", 3200: "X1", 2999: "C5", 4000: "X2", 6000: "X3", 7999: "X4"}
    root = shop(tmp_path, ghosts)
    assert dialect(root) == "duckdb"
    ours = warnings(root, None)
    assert ours == warnings(root, "pandas")
    assert "e.g. order 'O3001' (contact 'X1'), order 'O3200' (contact 'X1'), " in ours[0]
    assert "order 'O4000' (contact 'X2'); they count for nobody" in ours[0]


def test_three_far_apart_are_named_in_the_files_order(tmp_path: Path) -> None:
    root = shop(tmp_path, {10: "X7", 7998: "X9", 7999: "X8"})  # one in the first window
    ours = warnings(root, None)
    assert ours == warnings(root, "pandas")
    assert "e.g. order 'O10' (contact 'X7'), order 'O7998' (contact 'X9'), order 'O7999'" in ours[0]
