"""From whatever dtypes a connector produced to the evaluator's few representations.

Connectors hand over object columns, nullable extension dtypes, pandas 3
strings, naive or aware datetimes; the evaluator wants one shape per kind
(float64 with NaN, bool + mask, UTC nanoseconds + mask, nullable strings,
lists). Doing the conversion here, once per column, keeps the operators simple.
Calendar arithmetic lives here too, because "N days" means N calendar days in
the workspace time zone, which only pandas' time-zone machinery gets right.
"""

from __future__ import annotations

import datetime as dt
from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.metrics.catalog import Kind

DAY_NS = 86_400 * 10**9
_SAFE_MIN = pd.Timestamp.min.value + 2 * DAY_NS
_SAFE_MAX = pd.Timestamp.max.value - 2 * DAY_NS

try:  # Arrow-backed strings compare and search much faster; same NA semantics
    import pyarrow as pa
    import pyarrow.compute as pc

    _STORAGE = "pyarrow"
except ImportError:  # pragma: no cover - pyarrow is a dependency
    pa = pc = None
    _STORAGE = "python"
STRING_DTYPE: Any = pd.StringDtype(_STORAGE)

_NUMBER_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}
_DATETIME_INFERRED = {"datetime", "datetime64", "date"}


def kinds_from_frame(frame: pd.DataFrame) -> dict[str, Kind]:
    """The rule-language kind of every column (lists of tags are LIST, all-null columns ANY)."""
    return {str(name): kind_of_series(frame[name]) for name in frame.columns}


def kind_of_series(series: pd.Series) -> Kind:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = pd.Series(dtype.categories)
        return kind_of_series(cats) if len(cats) else Kind.ANY
    if ptypes.is_bool_dtype(dtype):
        return Kind.BOOL
    if ptypes.is_datetime64_any_dtype(dtype):
        return Kind.DATETIME
    if ptypes.is_numeric_dtype(dtype):
        return Kind.NUMBER
    if dtype is not np.dtype(object) and ptypes.is_string_dtype(dtype):
        return Kind.STRING
    inferred = ptypes.infer_dtype(series, skipna=True)
    if inferred == "string":
        return Kind.STRING
    if inferred == "empty":
        return Kind.ANY
    if inferred == "boolean":
        return Kind.BOOL
    if inferred in _NUMBER_INFERRED:
        return Kind.NUMBER
    if inferred in _DATETIME_INFERRED:
        return Kind.DATETIME
    present = series.dropna()
    first = present.iloc[0] if len(present) else None
    if isinstance(first, list | tuple | set | frozenset | np.ndarray):
        return Kind.LIST
    return Kind.STRING


def load_column(series: pd.Series, kind: Kind, tz: tzinfo) -> tuple[Any, np.ndarray]:
    """(values, null mask) in the evaluator's representation for ``kind``."""
    s = series.reset_index(drop=True)
    try:
        if kind == Kind.NUMBER:
            if s.dtype.kind in "fiu":
                vals = s.to_numpy(dtype=np.float64)
            else:
                num = pd.to_numeric(s, errors="coerce").astype("Float64")
                vals = num.to_numpy(dtype=np.float64, na_value=np.nan)
            return vals, np.isnan(vals)
        if kind == Kind.BOOL:
            if s.dtype == bool:
                return s.to_numpy(), np.zeros(len(s), dtype=bool)
            b = s.astype("boolean")
            return b.to_numpy(dtype=bool, na_value=False), b.isna().to_numpy()
        if kind == Kind.STRING:
            st = s.astype(STRING_DTYPE)
            return st, st.isna().to_numpy()
        if kind == Kind.DATETIME:
            return _datetime_ns(s, tz)
        if kind == Kind.LIST:
            return s.astype(object), s.isna().to_numpy()
    except (TypeError, ValueError) as exc:
        raise RuleError(
            _("column '{name}' cannot be read as {kind}: {problem}").format(
                name=series.name, kind=kind, problem=exc
            ),
            field=str(series.name),
        ) from None
    raise RuleError(
        _("column '{name}' has no usable values").format(name=series.name), field=str(series.name)
    )


def _datetime_ns(s: pd.Series, tz: tzinfo) -> tuple[np.ndarray, np.ndarray]:
    if not ptypes.is_datetime64_any_dtype(s.dtype):
        try:
            s = pd.to_datetime(s, errors="coerce")
        except (TypeError, ValueError):  # mixed offsets
            s = pd.to_datetime(s, errors="coerce", utc=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC")
    else:  # a date without a zone means wall time in the workspace zone
        s = s.dt.tz_localize(
            tz, ambiguous=np.zeros(len(s), dtype=bool), nonexistent="shift_forward"
        )
        s = s.dt.tz_convert("UTC")
    index = pd.DatetimeIndex(s).as_unit("ns")
    return np.asarray(index.asi8, dtype=np.int64), np.asarray(index.isna(), dtype=bool)


def day_start(value: Any, tz: tzinfo) -> pd.Timestamp:
    """Midnight (UTC instant) of the day ``value`` falls on in ``tz``; naive means wall time."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    else:
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            ts = ts.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
        day = ts.tz_convert(tz).date()
    midnight = pd.Timestamp(day).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    return midnight.tz_convert("UTC").as_unit("ns")


def _local_wall_ns(ns: np.ndarray, mask: np.ndarray, tz: tzinfo) -> np.ndarray:
    base = np.where(mask, 0, ns).astype(np.int64)
    index = pd.DatetimeIndex(base.view("M8[ns]")).tz_localize("UTC").tz_convert(tz)
    return np.asarray(index.tz_localize(None).asi8, dtype=np.int64)


def local_midnight_ns(ns: np.ndarray, mask: np.ndarray, tz: tzinfo) -> np.ndarray:
    """Naive nanoseconds of the local midnight starting each instant's day in ``tz``."""
    wall = _local_wall_ns(ns, mask, tz)
    return wall - np.mod(wall, DAY_NS)


def shift_days(
    ns: np.ndarray, mask: np.ndarray, days: np.ndarray, tz: tzinfo
) -> tuple[np.ndarray, np.ndarray]:
    """Move instants by ``days`` calendar days on the wall clock of ``tz`` (DST-proof)."""
    wall = _local_wall_ns(ns, mask, tz)
    with np.errstate(invalid="ignore", over="ignore"):
        delta = np.asarray(days, dtype=np.float64) * DAY_NS
        target = wall.astype(np.float64) + delta
        bad = mask | ~np.isfinite(target) | (target < _SAFE_MIN) | (target > _SAFE_MAX)
    moved = wall + np.where(bad, 0.0, np.round(delta)).astype(np.int64)
    local = pd.DatetimeIndex(moved.view("M8[ns]")).tz_localize(
        tz, ambiguous=np.zeros(len(moved), dtype=bool), nonexistent="shift_forward"
    )
    utc = np.asarray(local.tz_convert("UTC").asi8, dtype=np.int64)
    return utc, np.asarray(bad, dtype=bool)


def flatten_lists(series: pd.Series) -> tuple[np.ndarray, Any]:
    """(row of each element, elements as strings) for a column of lists, computed once.

    Arrow flattens a million tag lists in a fraction of what ``explode`` takes;
    lists holding something other than strings go the pandas way.
    """
    if pa is not None:
        try:
            arr = pa.array(series.to_numpy(dtype=object), type=pa.list_(pa.string()))
            rows = np.asarray(pc.list_parent_indices(arr), dtype=np.int64)
            return rows, pc.list_flatten(arr)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            pass
    flat = series.explode()
    items = np.array(flat.astype(STRING_DTYPE).astype(object), dtype=object)
    items[pd.isna(items)] = None
    return np.asarray(flat.index.to_numpy(), dtype=np.int64), items


def equal_mask(items: Any, text: str) -> np.ndarray:
    """Where the flattened elements equal ``text`` exactly."""
    if pa is not None and isinstance(items, pa.Array):
        hits = pc.fill_null(pc.equal(items, text), False)
        return np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(items == text, dtype=bool)
