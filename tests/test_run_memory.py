"""A run gives back what segmentation freed before it renders (run --dry-run at a
million contacts carried some 110 MiB of Arrow's and malloc's kept pages)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segmerge.run.campaign import release_memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def test_release_memory_returns_arrow_pages_freed_by_a_step() -> None:
    parts = [pa.array(np.arange(i, i + 250_000, dtype=np.int64)) for i in range(40)]
    whole = pa.chunked_array(parts).to_pandas()  # a step's 80 MB of Arrow and pandas
    assert pa.total_allocated_bytes() >= 75 * 2**20
    del parts, whole
    kept = _rss_mib()  # freed, but Arrow's pool keeps the pages
    release_memory()
    assert _rss_mib() < kept - 40
