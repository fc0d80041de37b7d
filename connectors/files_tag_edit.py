"""Editing tags cells as text, the same way for every file format.

A tags cell is edited in its canonical `a|b` form (see `files_values.tag_text`),
whole columns at a time with Arrow's string kernels; the writers of each format
(`files_write`, `files_write_parquet`) only read and put back the cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.ports import CONTACT_COLUMNS, DataError, _

from . import files_values as fv
from .files_dates import isin
from .files_read import header_names


def to_arrow(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A Series as Arrow strings, for `pyarrow.compute`'s string kernels."""
    return pa.array(s, type=pa.string())


def to_series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """Arrow strings back to a Series, without a copy."""
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.string())), index=index)


def apply_tags(ids: pd.Series, current: pd.Series, ops: pd.DataFrame) -> pd.Series:
    """New tags text (`a|b`) per row; one vectorised pass per distinct (kind, tag).

    The last action on a (contact, tag) wins; adding a present tag or removing an
    absent one changes nothing, which is what makes a repeated batch harmless.
    Tags are edited as `|a|b|`, so that finding one is a plain substring search.
    """
    cur = current.astype(fv.TEXT).fillna("")
    padded = ("|" + cur + "|").where(cur != "", "|")
    last = ops.drop_duplicates(["contact_id", "tag"], keep="last")
    for (kind, tag), group in last.groupby(["kind", "tag"], sort=False):
        rows = isin(ids, group["contact_id"])
        needle = f"|{tag}|"
        has = np.asarray(pc.match_substring(to_arrow(padded), needle).fill_null(False), dtype=bool)
        if kind == "tag" and (rows & ~has).any():
            padded = padded.where(~(rows & ~has), padded + f"{tag}|")
        elif kind == "untag" and (rows & has).any():
            cut = pc.replace_substring(
                pc.replace_substring(to_arrow(padded), needle, "|"), needle, "|"
            )
            padded = padded.where(~(rows & has), to_series(cut, padded.index))
    return to_series(pc.utf8_trim(to_arrow(padded), "|"), padded.index)


def positions(headers: list[str], mapping: dict[str, str], display: str) -> tuple[int, int | None]:
    names = header_names(headers, mapping, CONTACT_COLUMNS)
    if "contact_id" not in names:
        raise DataError(
            _("no {names} column among the headers {headers}").format(
                names="contact_id", headers=headers
            ),
            file=display,
            hint=_("map the file's own header, e.g. {example}").format(
                example='columns = { "N° client" = "contact_id" }'
            ),
        )
    return names.index("contact_id"), (names.index("tags") if "tags" in names else None)
