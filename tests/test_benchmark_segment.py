"""The segmentation benchmark's yardstick is right: its DuckDB SQL gives our answer.

benchmarks/segment.py races `segmerge segment` against a DuckDB query written by
hand; a ratio means something only if that query does the same job. Here, on the
benchmark's own generated shop at its tiny size (1,000 contacts, 10,000 orders),
both run and every contact must get the same segment and metrics. Nothing is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

from tests.cli import segmerge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import segment as bench  # noqa: E402
import shopgen  # noqa: E402


def test_the_duckdb_peer_and_segmerge_segment_agree_on_every_contact(tmp_path):
    root = shopgen.workspace(tmp_path / "ws")
    data = root / "data"
    shopgen.generate(data, shopgen.SIZES["tiny"])
    orders = pd.read_parquet(data / "orders.parquet", columns=["status"])
    assert orders["status"].isin(shopgen.NOT_COUNTED).mean() > 0.03  # some must not count

    ours, peer = tmp_path / "ours.csv", tmp_path / "peer.csv"
    ran = segmerge(*bench.ours_segment(root, ours)[1:])
    assert ran.returncode == 0, ran.output
    con = duckdb.connect()
    con.execute(shopgen.SET_ZONE)
    con.execute(f"COPY ({shopgen.peer_query(data.resolve())}) TO '{peer}' (HEADER)")
    con.close()

    assert shopgen.compare(ours, peer) == 1_000
    sizes = pd.read_csv(ours, keep_default_na=False)["segment"].value_counts()
    # every branch of the hand-written CASE is exercised, and the exclusion too
    assert {"vip", "fonceurs", "decouvreurs", "a_risque", "reconquete", "lyonnais", ""} <= set(
        sizes.index
    ), sizes
