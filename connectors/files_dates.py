"""Dates and timestamps from exports, to UTC, a million cells in about a second.

Almost every column uses one format throughout, so each value goes to the first
of three paths that fits: `dd/mm/yyyy[ HH:MM[:SS]]` through Arrow's C++
`strptime` (with a check that the day did not overflow into the next month,
which strptime allows: 31/02 would become 03/03), ISO 8601 through pandas' ISO
parser, and anything else (`dd.mm.yyyy`, `14h30`, an offset after a space)
through one general regex, which is slower but sees few values.
"""

from __future__ import annotations

import re
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports import _

from .files_arrow import strings

UTC: Final = "datetime64[ns, UTC]"  # segmerge.ports.schema.UTC, as a literal for the type checker

_DAYFIRST = r"^\d{1,2}/\d{1,2}/\d{4}(?: \d{1,2}:\d{2}(?::\d{2})?)?$"
_DAYFIRST_FORMATS = ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")  # by number of ':'
# Shopify writes the offset after a space: `2026-12-31 14:30:00 +0100`
_ISO = (
    r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?)?$"
)
_ZONED = r"(?:Z|[+-]\d{2}:?\d{2})$"
_GENERAL = re.compile(
    r"^(?:(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4})"
    r"|(?P<Y>\d{4})-(?P<M>\d{1,2})-(?P<D>\d{1,2}))"
    r"(?:(?:[ T]|\s+)(?P<H>\d{1,2})[:h](?P<N>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?)?"
    r"\s*(?P<Z>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def match(t: pd.Series, pattern: str) -> np.ndarray:
    """Which cells of a text column match, NA as no; RE2 through Arrow, not Python's re."""
    hits = pc.match_substring_regex(pa.array(t, type=pa.string()), pattern)
    return np.asarray(hits.fill_null(False), dtype=bool)


def isin(s: pd.Series, values: pd.Series) -> np.ndarray:
    """``s.isin(values)`` for text, hashed by Arrow (pandas loops in Python over Arrow strings)."""
    hits = pc.is_in(pa.array(s, type=pa.string()), value_set=pa.array(values, type=pa.string()))
    return np.asarray(hits.fill_null(False), dtype=bool)


def parse(t: pd.Series, tz: ZoneInfo) -> tuple[pd.Series, str]:
    """Stripped text (NA for empty) to UTC timestamps, NaT where unreadable; plus an example
    of the format the column mostly uses, for the error message.

    The instants are gathered in one numpy array, not set into a Series path by path:
    on a small export each pandas assignment costs more than its values.
    """
    arr = strings(t)
    out = np.full(len(t), np.datetime64("NaT", "ns"))
    todo = np.asarray(arr.is_valid(), dtype=bool)
    dayfirst = todo & _hits(arr, _DAYFIRST)
    if dayfirst.any():
        out[dayfirst] = _instants(_dayfirst(t[dayfirst], tz))
    iso = todo & ~dayfirst & _hits(arr, _ISO)
    if iso.any():
        out[iso] = _iso(t[iso], tz)
    rest = todo & ~dayfirst & ~iso
    if rest.any():
        out[rest] = _instants(_general(t[rest], tz))
    values = pd.Series(out, index=t.index, dtype=UTC)
    if iso.sum() > dayfirst.sum():
        return values, _("{day} or {moment}").format(day="2026-12-31", moment="2026-12-31 14:30")
    return values, _("{day} or {moment}").format(day="31/12/2026", moment="31/12/2026 14:30")


def _hits(arr: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    return np.asarray(pc.match_substring_regex(arr, pattern).fill_null(False), dtype=bool)


def _instants(s: pd.Series) -> np.ndarray:
    """UTC timestamps as numpy's naive instants (NaT kept)."""
    return s.to_numpy(dtype="datetime64[ns]")


def localize(naive: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Wall time to UTC; a repeated autumn hour reads as summer time, a skipped spring one
    moves forward: an export has no way to say which was meant."""
    naive = naive.astype("datetime64[ns]")
    aware = naive.dt.tz_localize(
        tz, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    return aware.dt.tz_convert("UTC").astype(UTC)


def _in_range(ts: pa.Array) -> pa.Array:
    """Nanosecond timestamps, what pandas holds, only reach 1678-2261."""
    year = pc.year(ts)
    return pc.if_else(pc.and_(pc.greater_equal(year, 1678), pc.less_equal(year, 2261)), ts, None)


def _dayfirst(t: pd.Series, tz: ZoneInfo) -> pd.Series:
    arr = pa.array(t, type=pa.string())
    colons = np.asarray(pc.count_substring(arr, ":"))
    ts = pa.nulls(len(arr), pa.timestamp("s"))
    for n, fmt in enumerate(_DAYFIRST_FORMATS):
        if (colons == n).any():
            parsed = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
            ts = pc.if_else(pa.array(colons == n), parsed, ts)
    day = pc.cast(pc.list_element(pc.split_pattern(arr, "/"), 0), pa.int64())
    ts = _in_range(pc.if_else(pc.equal(pc.day(ts), day), ts, None))
    naive = pd.Series(ts.to_numpy(zero_copy_only=False), index=t.index)
    return localize(naive, tz)


def _iso(t: pd.Series, tz: ZoneInfo) -> np.ndarray:
    out = np.full(len(t), np.datetime64("NaT", "ns"))
    zoned = match(t, _ZONED)
    if not zoned.all():
        naive = pd.to_datetime(t[~zoned].astype(object), format="ISO8601", errors="coerce")
        ok = naive.dt.year.between(1678, 2261)
        out[~zoned] = _instants(localize(naive.where(ok), tz))
    if zoned.any():
        aware = pd.to_datetime(t[zoned].astype(object), format="ISO8601", utc=True, errors="coerce")
        out[zoned] = _instants(aware.where(aware.dt.year.between(1678, 2261)))
    return out


def _general(t: pd.Series, tz: ZoneInfo) -> pd.Series:
    parts = t.astype(object).str.extract(_GENERAL.pattern)
    year = parts["y"].fillna(parts["Y"])
    month = parts["m"].fillna(parts["M"]).str.zfill(2)
    day = parts["d"].fillna(parts["D"]).str.zfill(2)
    frac = parts["F"].fillna("0").str.slice(0, 6).str.pad(6, side="right", fillchar="0")
    stamp = (
        year
        + "-"
        + month
        + "-"
        + day
        + " "
        + parts["H"].fillna("0").str.zfill(2)
        + ":"
        + parts["N"].fillna("00")
        + ":"
        + parts["S"].fillna("00")
        + "."
        + frac
    )
    naive = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    in_range = pd.to_numeric(year, errors="coerce").between(1678, 2261)
    naive = naive.where(in_range.fillna(False)).astype("datetime64[ns]")
    zone = parts["Z"]
    out = pd.Series(pd.NaT, index=t.index, dtype=UTC)
    local = (naive.notna() & zone.isna()).to_numpy(dtype=bool)
    if local.any():
        out[local] = localize(naive[local], tz)
    fixed = (naive.notna() & zone.notna()).to_numpy(dtype=bool)
    if fixed.any():
        out[fixed] = (naive[fixed] - _offset(zone[fixed])).dt.tz_localize("UTC").astype(UTC)
    return out


def _offset(zone: pd.Series) -> pd.Series:
    z = zone.str.replace("Z", "+00:00").str.replace(":", "")
    sign = np.where(z.str.slice(0, 1) == "-", -1, 1)
    hours = pd.to_numeric(z.str.slice(1, 3))
    minutes = pd.to_numeric(z.str.slice(3, 5).replace("", "0")).fillna(0)
    return pd.Series(pd.to_timedelta(sign * (hours * 60 + minutes), unit="min"), index=zone.index)
