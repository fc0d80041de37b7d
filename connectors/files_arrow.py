"""Text columns as Arrow arrays, stripped and wrapped back into pandas without pandas' overhead.

A small shop's export has a few dozen rows, so reading it costs what each pandas
call costs to set up (dtype checks, alignment, copies), not what its values cost:
`astype`, `str.strip` and `mask` took 1.6 ms a column, and a command reads the
same columns several times. Arrow's kernels do the same work in microseconds, on
a million rows as on forty. The results are the same ``string[pyarrow]`` Series
(`files_values.TEXT`), empty cells as NA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TEXT = pd.StringDtype("pyarrow")  # files_values.TEXT, NA as its missing value
_NULL = pa.scalar(None, pa.large_string())


def strings(values: pd.Series | np.ndarray) -> pa.Array | pa.ChunkedArray:
    """Cells as Arrow large strings: zero-copy for an Arrow-backed string Series (what
    pandas' CSV reader gives, and ``string[pyarrow]``).

    Anything else must hold only str and missing values (None, NaN, NA).
    """
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
            return pa.array(values.array)
        values = values.to_numpy(dtype=object)
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def stripped(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Whitespace off both ends (as ``str.strip`` does on Arrow strings), empty as null."""
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), _NULL, arr)


def series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """Arrow strings as a ``string[pyarrow]`` Series on ``index``."""
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=index, copy=False)
