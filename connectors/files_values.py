"""Text cells to canonical values, a whole column at a time.

Exports reach a million rows, so every parser here works on a pandas Series
with vectorised string methods and returns, next to the values, a mask of the
cells it could not read and what it expected instead: the caller turns that
into an error naming the line, or into skipped rows. Typed columns (Parquet,
and Excel dates once printed) go through the same functions unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports import EVENT_KINDS, _

from .files_arrow import series, strings, stripped
from .files_dates import UTC, localize, match
from .files_dates import parse as parse_dates

TEXT: Final = "string[pyarrow]"  # Arrow-backed on pandas 2 and 3 alike: fast string kernels
_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
#: what Python's `\s` matches in text (RE2's is ASCII only)
_SPACE = "[\\t-\\r\\x1c-\\x1f\\x85\\p{Z}]"
# What an attribute must look like to be read as a number: spaces only between
# groups of three digits, so that phone numbers ("06 12 34 56 78") stay text.
# (Not a raw string: RE2, which runs these, has no \\u escape.)
_ATTR_DECIMAL = "^-?(?:\\d{1,3}(?:[ \u00a0\u202f]\\d{3})+|\\d+)(?:[.,]\\d+)?(?: ?€)?$"
_ATTR_INT = r"^-?\d{1,18}$"
#: one group of three digits after a single `.` or `,` (`1,234`, `1.234 €`): a decimal
#: in a French export, a thousand in an English one (files_columns warns)
AMBIGUOUS_THOUSANDS = "^-?[1-9]\\d{0,2}[.,]\\d{3}(?:[ \u00a0\u202f]?(?:€|EUR))?$"
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
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype(TEXT)  # numbers and dates written as text; str and NA as they are
    return series(stripped(strings(s)), s.index)


def _folded(s: pd.Series, known: Collection[str]) -> pa.Array:
    """Lower case, and accents off for the cells not known as they are: how yes/no words and
    event names are compared (`Désinscription`, `OUI`)."""
    t = pc.utf8_lower(strings(text(s)))
    odd = pc.and_(t.is_valid(), pc.invert(pc.is_in(t, value_set=_strings(known))))
    odd_rows = np.asarray(odd, dtype=bool)
    if not odd_rows.any():
        return t
    cells = t.to_numpy(zero_copy_only=False).astype(object)
    bare = pd.Series(cells[odd_rows], dtype=object).str.normalize("NFKD")
    cells[odd_rows] = bare.str.replace(r"[\u0300-\u036f]", "", regex=True).to_numpy()
    return strings(cells)


def _strings(values: Collection[str]) -> pa.Array:
    return pa.array(list(values), type=pa.large_string())


def _among(t: pa.Array, values: Collection[str]) -> np.ndarray:
    """Which cells are one of ``values`` (null: no)."""
    return np.asarray(pc.is_in(t, value_set=_strings(values)), dtype=bool)


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
    f = _folded(s, _TRUE + _FALSE)
    yes = _among(f, _TRUE)
    bad = np.asarray(f.is_valid(), dtype=bool) & ~yes & ~_among(f, _FALSE)
    return Parsed(
        pd.Series(yes, index=s.index),
        bad,
        _("oui or non (also yes/no, true/false, vrai/faux, 1/0, x, or empty for no)"),
    )


def datetimes(s: pd.Series, tz: ZoneInfo, *, required: bool = False) -> Parsed:
    """Dates and timestamps to UTC; a value without an offset is wall time in ``tz``."""
    if pd.api.types.is_datetime64_any_dtype(s):
        v = s.dt.tz_convert("UTC").astype(UTC) if s.dt.tz is not None else localize(s, tz)
        return Parsed(v, (v.isna() & required).to_numpy(), _("a date like 31/12/2026"))
    t = text(s)
    out, example = parse_dates(t, tz)
    present = t.notna().to_numpy(dtype=bool)
    bad = (present & out.isna().to_numpy(dtype=bool)) | (~present & required)
    like = _("a date like {example}").format(example=example)
    return Parsed(out, bad, like)


def _number_values(arr: pa.Array) -> np.ndarray:
    """`1 234,56 €`, `1.234,56`, `12,50`, `1,234.5` as numbers (NaN where not a number).

    Arrow kernels, a fixed dozen calls for a column: the last separator that appears
    once is the decimal one, the others group thousands.
    """
    t = pc.replace_substring_regex(arr, f"^(?i:€|EUR){_SPACE}*|{_SPACE}*(?i:€|EUR)$", "")
    t = pc.replace_substring_regex(t, f"{_SPACE}|'", "")
    commas, dots = pc.count_substring(t, ","), pc.count_substring(t, ".")
    has_comma, has_dot = pc.greater(commas, 0), pc.greater(dots, 0)
    both = pc.and_(has_comma, has_dot)
    comma_last = pc.match_substring_regex(t, ",[^.]*$")  # the last comma after the last dot
    comma_decimal = pc.or_(
        pc.and_(both, comma_last), pc.and_(pc.invert(has_dot), pc.equal(commas, 1))
    )
    no_commas = pc.replace_substring(t, ",", "")
    t = pc.if_else(
        comma_decimal,
        pc.replace_substring(pc.replace_substring(t, ".", ""), ",", "."),
        pc.if_else(
            pc.or_(pc.and_(both, pc.invert(comma_last)), pc.and_(pc.invert(has_dot), has_comma)),
            no_commas,  # `1,234.5`, and `1,234,567` (one comma only is a decimal: above)
            pc.if_else(pc.greater(dots, 1), pc.replace_substring(t, ".", ""), t),
        ),
    )
    ok = pc.match_substring_regex(t, _NUMBER)
    values = pc.cast(pc.if_else(ok, t, pa.scalar(None, t.type)), pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype="float64")


def number(s: pd.Series, *, required: bool = False, what: str | None = None) -> Parsed:
    what = what if what is not None else _("a number like 12,50")
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.astype("float64")
        return Parsed(v, (v.isna() & required).to_numpy(), what)
    t = text(s)
    arr = strings(t)
    present = np.asarray(arr.is_valid(), dtype=bool)
    v = np.full(len(t), np.nan)
    plain = np.asarray(  # `12,50`, `12.5`, `40`: nearly every cell
        pc.match_substring_regex(arr, r"^-?\d+(?:[.,]\d+)?$").fill_null(False), dtype=bool
    )
    if plain.any():
        digits = pc.replace_substring(arr.filter(pa.array(plain)), ",", ".")
        v[plain] = np.asarray(pc.cast(digits, pa.float64()), dtype="float64")
    rest = present & ~plain
    if rest.any():
        v[rest] = _number_values(arr.filter(pa.array(rest)))
    bad = (present & np.isnan(v)) | (~present & required)
    return Parsed(pd.Series(v, index=t.index), bad, what)


def read_as(cell: str) -> str:
    """How `number` reads one cell, written back plainly for a message ("1.234")."""
    value = number(pd.Series([cell], dtype=TEXT)).values.iloc[0]
    return _("nothing") if pd.isna(value) else f"{value:g}"


def rating(s: pd.Series) -> Parsed:
    p = number(s, what=_("a rating from 1 to 5"))
    v = p.values.to_numpy()
    p.bad = p.bad | (~np.isnan(v) & ~((v >= 1) & (v <= 5)))
    return p


def event(s: pd.Series) -> Parsed:
    f = _folded(s, _EVENTS)
    kinds = pc.take(_strings(_EVENTS.values()), pc.index_in(f, value_set=_strings(_EVENTS)))
    bad = ~np.asarray(kinds.is_valid(), dtype=bool)
    return Parsed(series(kinds, s.index), bad, _("one of sent, open, click, unsubscribe, bounce"))


def tag_text(s: pd.Series, delimiter: str | None) -> pd.Series:
    """A tags cell in one canonical text form, `vip | fidèle` to `vip|fidèle` ("" for none).

    `,` separates tags too when it is not the file's delimiter, as spreadsheets
    users type it; tag write-back compares and edits this form.
    """
    sep = r"\|" if delimiter == "," else r"[|,]"
    t = text(s).fillna("")
    messy = match(t, sep)  # most cells are empty or hold one tag
    if messy.any():
        m = t[messy].astype(object).str.replace(rf"\s*(?:{sep})\s*", "|", regex=True)
        t[messy] = m.str.replace(r"\|+", "|", regex=True).str.strip("|")
    return t


def tags(s: pd.Series, delimiter: str | None) -> pd.Series:
    """A tags column as lists of str (Parquet may already hold lists)."""
    if not is_text(s) or pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        return pd.Series(
            [list(x) if x is not None and not isinstance(x, float) else [] for x in s],
            index=s.index,
            dtype=object,
        )
    t = tag_text(s, delimiter)
    out = pd.Series([[] for _ in range(len(t))], index=s.index, dtype=object)
    some = (t != "").to_numpy(dtype=bool)
    if some.any():
        out[some] = t[some].astype(object).str.split("|")
    return out


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
    present = strings(t).drop_null()
    if not len(present):
        return t

    def every(pattern: str) -> bool:
        return bool(pc.all(pc.match_substring_regex(present, pattern)).as_py())

    zero = bool(pc.any(pc.match_substring_regex(present, _LEADING_ZERO)).as_py())
    if every(_ATTR_INT) and not zero:
        ints = pc.cast(strings(t), pa.int64())
        return pd.Series(
            ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), index=t.index
        )
    if every(_ATTR_DECIMAL) and not zero:
        p = number(t)
        if not p.bad.any():
            return p.values
    if every(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"):
        d = datetimes(t, tz)
        if not d.bad.any():
            return d.values
    return t
