"""Text cells to canonical values, a whole column at a time.

Exports reach a million rows, so every parser here works on a pandas Series
with vectorised string methods and returns, next to the values, a mask of the
cells it could not read and what it expected instead: the caller turns that
into an error naming the line, or into skipped rows. Typed columns (Parquet,
and Excel dates once printed) go through the same functions unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from segmerge.schema import EVENT_KINDS

UTC: Final = "datetime64[ns, UTC]"  # segmerge.schema.UTC, as a literal for the type checker

_DATE = re.compile(
    r"^(?:(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4})"
    r"|(?P<Y>\d{4})-(?P<M>\d{1,2})-(?P<D>\d{1,2}))"
    r"(?:(?:[ T]|\s+)(?P<H>\d{1,2})[:h](?P<N>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?)?"
    r"\s*(?P<Z>Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
# What an attribute must look like to be read as a number: spaces only between
# groups of three digits, so that phone numbers ("06 12 34 56 78") stay text.
_ATTR_DECIMAL = r"^-?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)?(?:\s*€)?$"
_ATTR_INT = r"^-?\d{1,18}$"
_LEADING_ZERO = r"^-?0\d"
_TRUE = ("oui", "yes", "true", "vrai", "1", "x", "y", "o")
_FALSE = ("non", "no", "false", "faux", "0", "n")
_EVENTS = {
    **{k: k for k in EVENT_KINDS},
    "envoi": "sent",
    "envoye": "sent",
    "send": "sent",
    "delivered": "sent",
    "ouverture": "open",
    "ouvert": "open",
    "opened": "open",
    "clic": "click",
    "clicked": "click",
    "desinscription": "unsubscribe",
    "desabonnement": "unsubscribe",
    "unsubscribed": "unsubscribe",
    "rebond": "bounce",
    "bounced": "bounce",
}


@dataclass
class Parsed:
    """A parsed column: values, the cells that could not be read, and what was expected."""

    values: pd.Series
    bad: np.ndarray
    expected: str = ""


def is_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or s.dtype == object


def text(s: pd.Series) -> pd.Series:
    """Stripped text, empty as NA, in the canonical string dtype."""
    if not is_text(s):
        s = s.astype("string")
    s = s.astype("string").str.strip()
    return s.mask(s == "")


def _folded(s: pd.Series) -> pd.Series:
    """Lower case, accents off: how yes/no words and event names are compared."""
    s = text(s).str.lower().str.normalize("NFKD")
    return s.str.replace(r"[\u0300-\u036f]", "", regex=True)


def _none(s: pd.Series) -> np.ndarray:
    return np.zeros(len(s), dtype=bool)


def identifier(s: pd.Series, what: str) -> Parsed:
    """An id stays the string as written ("00042"); only an empty one is unreadable."""
    if pd.api.types.is_float_dtype(s) and bool((s.dropna() % 1 == 0).all()):
        s = s.astype("Int64")
    v = text(s)
    return Parsed(v, v.isna().to_numpy(), what)


def email(s: pd.Series) -> pd.Series:
    return text(s).str.lower()


def boolean(s: pd.Series) -> Parsed:
    if pd.api.types.is_bool_dtype(s):
        return Parsed(s.fillna(False).astype(bool), _none(s))
    if pd.api.types.is_numeric_dtype(s):
        bad = s.notna() & ~s.isin([0, 1])
        return Parsed((s == 1).fillna(False).astype(bool), bad.to_numpy(), "1 or 0")
    f = _folded(s)
    yes = f.isin(_TRUE).fillna(False)
    bad = (f.notna() & ~yes & ~f.isin(_FALSE)).fillna(False)
    return Parsed(
        yes.astype(bool),
        bad.to_numpy(dtype=bool),
        "oui or non (also yes/no, true/false, vrai/faux, 1/0, x, or empty for no)",
    )


def datetimes(s: pd.Series, tz: ZoneInfo, *, required: bool = False) -> Parsed:
    """Dates and timestamps to UTC; a value without an offset is wall time in ``tz``."""
    if pd.api.types.is_datetime64_any_dtype(s):
        v = s if getattr(s.dt, "tz", None) is not None else _localize(s, tz)
        v = v.dt.tz_convert("UTC").astype(UTC)
        return Parsed(v, (v.isna() & required).to_numpy(), "a date like 31/12/2026")
    t = text(s)
    parts = t.str.extract(_DATE.pattern)
    iso = int(parts["Y"].notna().sum()) > int(parts["d"].notna().sum())
    example = "2026-12-31 or 2026-12-31 14:30" if iso else "31/12/2026 or 31/12/2026 14:30"
    year = parts["y"].fillna(parts["Y"])
    month = parts["m"].fillna(parts["M"]).str.zfill(2)
    day = parts["d"].fillna(parts["D"]).str.zfill(2)
    frac = parts["F"].fillna("0").str.slice(0, 6).str.pad(6, side="right", fillchar="0")
    stamp = (
        year + "-" + month + "-" + day + " "
        + parts["H"].fillna("0").str.zfill(2) + ":" + parts["N"].fillna("00") + ":"
        + parts["S"].fillna("00") + "." + frac
    )  # fmt: skip
    naive = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    in_range = pd.to_numeric(year, errors="coerce").between(1678, 2261)
    naive = naive.where(in_range.fillna(False)).astype("datetime64[ns]")
    zone = parts["Z"]
    out = pd.Series(pd.NaT, index=t.index, dtype=UTC)
    local = naive.notna() & zone.isna()
    if local.any():
        out[local] = _localize(naive[local], tz).dt.tz_convert("UTC").astype(UTC)
    fixed = naive.notna() & zone.notna()
    if fixed.any():
        out[fixed] = (naive[fixed] - _offset(zone[fixed])).dt.tz_localize("UTC").astype(UTC)
    bad = (t.notna() & out.isna()) | (t.isna() & required)
    return Parsed(out, bad.fillna(True).to_numpy(dtype=bool), f"a date like {example}")


def _localize(naive: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Wall time to an instant; a repeated autumn hour reads as summer time, a skipped one
    moves forward: an export has no way to say which was meant."""
    naive = naive.astype("datetime64[ns]")
    return naive.dt.tz_localize(
        tz, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
    )


def _offset(zone: pd.Series) -> pd.Series:
    z = zone.str.replace("Z", "+00:00").str.replace(":", "")
    sign = np.where(z.str.slice(0, 1) == "-", -1, 1)
    hours = pd.to_numeric(z.str.slice(1, 3))
    minutes = pd.to_numeric(z.str.slice(3, 5).replace("", "0")).fillna(0)
    return pd.Series(pd.to_timedelta(sign * (hours * 60 + minutes), unit="min"), index=zone.index)


def _number_text(t: pd.Series) -> pd.Series:
    """`1 234,56 €`, `1.234,56`, `12,50`, `1,234.5` to `1234.56`-style text."""
    t = t.str.replace(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", "", regex=True, case=False)
    t = t.str.replace(r"[\s\u00a0\u202f']", "", regex=True)
    comma, dot = t.str.rfind(","), t.str.rfind(".")
    both = (comma >= 0) & (dot >= 0)
    comma_decimal = (both & (comma > dot)) | ((comma >= 0) & (dot < 0) & (t.str.count(",") == 1))
    t = t.where(~comma_decimal, t.str.replace(".", "", regex=False).str.replace(",", "."))
    t = t.where(~(both & (dot > comma)), t.str.replace(",", "", regex=False))
    several = (comma < 0) & (t.str.count(r"\.") > 1)
    t = t.where(~several, t.str.replace(".", "", regex=False))
    several_commas = (dot < 0) & (t.str.count(",") > 1)
    return t.where(~several_commas, t.str.replace(",", "", regex=False))


def number(s: pd.Series, *, required: bool = False, what: str = "a number like 12,50") -> Parsed:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.astype("float64")
        return Parsed(v, (v.isna() & required).to_numpy(), what)
    t = text(s)
    n = _number_text(t)
    ok = n.str.match(_NUMBER).fillna(False).astype(bool)
    v = pd.to_numeric(n.where(ok), errors="coerce").astype("float64")
    bad = (t.notna() & ~ok) | (t.isna() & required)
    return Parsed(v, bad.to_numpy(dtype=bool), what)


def rating(s: pd.Series) -> Parsed:
    p = number(s, what="a rating from 1 to 5")
    p.bad = p.bad | (p.values.notna() & ~p.values.between(1, 5)).to_numpy(dtype=bool)
    return p


def event(s: pd.Series) -> Parsed:
    f = _folded(s)
    v = f.map(_EVENTS, na_action="ignore").astype("string")
    bad = v.isna().to_numpy(dtype=bool)
    return Parsed(v, bad, "one of sent, open, click, unsubscribe, bounce")


def tag_text(s: pd.Series, delimiter: str | None) -> pd.Series:
    """A tags cell in one canonical text form, `vip | fidèle` to `vip|fidèle` ("" for none).

    `,` separates tags too when it is not the file's delimiter, as spreadsheets
    users type it; tag write-back compares and edits this form.
    """
    sep = r"\|" if delimiter == "," else r"[|,]"
    t = text(s).str.replace(rf"\s*(?:{sep})\s*", "|", regex=True)
    t = t.str.replace(r"\|+", "|", regex=True).str.strip("|")
    return t.fillna("")


def tags(s: pd.Series, delimiter: str | None) -> pd.Series:
    """A tags column as lists of str (Parquet may already hold lists)."""
    if not is_text(s) or pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        return pd.Series(
            [list(x) if x is not None and not isinstance(x, float) else [] for x in s],
            index=s.index,
            dtype=object,
        )
    t = tag_text(s, delimiter)
    split = t.mask(t == "").str.split("|")
    return pd.Series([x if isinstance(x, list) else [] for x in split], index=s.index, dtype=object)


def infer(s: pd.Series, tz: ZoneInfo) -> pd.Series:
    """An attribute's type from all its values: integers, decimals, dates, else text.

    Integers with a leading zero (postal codes, phone numbers) stay text, since
    reading them as numbers would lose the zero.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        return datetimes(s, tz).values
    if not is_text(s):
        return s
    t = text(s)
    present = t.dropna()
    if present.empty:
        return t
    if present.str.match(_ATTR_INT).all() and not present.str.match(_LEADING_ZERO).any():
        return pd.to_numeric(t).astype("Int64")
    if present.str.match(_ATTR_DECIMAL).all() and not present.str.match(_LEADING_ZERO).any():
        p = number(t)
        if not p.bad.any():
            return p.values
    if present.str.match(r"^\d").all():
        d = datetimes(t, tz)
        if not d.bad.any():
            return d.values
    return t
