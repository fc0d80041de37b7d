"""A run's render workers make each contact's record a column at a time: the letters
must see exactly what ``DataFrame.to_dict("records")`` gave them, value and type."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd

from segmerge.render.batches import _records


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a is b or (type(a) is type(b) and a == b)  # NaT and None are singletons


def test_records_are_to_dicts_values_of_every_type_a_frame_holds() -> None:
    n = 4
    frame = pd.DataFrame(
        {
            "arrow_str": pd.Series(["Zoé", None, "", "x"], dtype="string[pyarrow]"),
            "py_str": pd.Series(["a", None, "b", "c"], dtype="string[python]"),
            "str_nan": pd.Series(["a", None, "b", "c"], dtype="str"),
            "int": np.arange(n, dtype=np.int64),
            "uint": np.arange(n, dtype=np.uint8),
            "float": [1.5, math.nan, -0.0, 1e300],
            "f32": np.array([1.5, math.nan, 2.25, 0], dtype=np.float32),
            "Int64": pd.array([1, None, 3, 4], dtype="Int64"),
            "Float64": pd.array([1.5, None, 3.0, 4.0], dtype="Float64"),
            "bool": [True, False, True, False],
            "boolean": pd.array([True, None, False, True], dtype="boolean"),
            "ts_utc": pd.to_datetime(["2026-01-01", None, "2026-03-03", "2026-12-01"], utc=True),
            "ts": pd.to_datetime(["2026-01-01", None, "2026-03-03", "2026-12-01"]),
            "delta": pd.to_timedelta([1, None, 3, 4], unit="D"),
            "object": [np.int64(3), None, Decimal("1.10"), np.float64(2.5)],
            "category": pd.Categorical(["a", None, "b", "a"]),
            "arrow_int": pd.Series([1, None, 3, 4], dtype="int64[pyarrow]"),
        }
    ).iloc[[3, 1, 0, 2]]  # a slice of the frame, as a chunk is
    want = frame.to_dict("records")
    got = _records(frame)
    assert [list(r) for r in got] == [list(r) for r in want]  # same columns, same order
    for g, w in zip(got, want, strict=True):
        bad = {k: (g[k], w[k]) for k in w if not same(g[k], w[k])}
        assert not bad, bad
