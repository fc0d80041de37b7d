"""`segment --format parquet` on the benchmark's shop gives DuckDB's answer, read back.

The benchmark races Parquet out too (benchmarks/segment.py --format parquet); its
comparison reads both files. Here, at the tiny size, ours and the hand-written DuckDB
query written with COPY ... (FORMAT parquet) agree on every contact, and the file
keeps the columns' types (a score an integer, an instant a UTC timestamp).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tests.cli import segmerge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import segment as bench  # noqa: E402
import shopgen  # noqa: E402


def test_parquet_rows_are_the_peer_s_and_keep_their_types(tmp_path: Path) -> None:
    root = shopgen.workspace(tmp_path / "ws")
    data = root / "data"
    shopgen.generate(data, shopgen.SIZES["tiny"])
    ours, peer = tmp_path / "ours.parquet", tmp_path / "peer.parquet"
    ran = segmerge(*bench.ours_segment(root, ours, "parquet")[1:])
    assert ran.returncode == 0, ran.output
    con = duckdb.connect()
    con.execute(shopgen.SET_ZONE)
    con.execute(f"COPY ({shopgen.peer_query(data.resolve())}) TO '{peer}' (FORMAT parquet)")
    con.close()

    assert shopgen.compare(ours, peer) == 1_000
    schema = pq.read_schema(ours)
    assert schema.names == ["contact_id", "segment", *shopgen.COLUMNS]
    assert schema.field("r_score").type == pa.int64()
    assert schema.field("orders_count").type == pa.int64()
    last = schema.field("last_order_at").type
    assert pa.types.is_timestamp(last) and last.tz == "UTC"
