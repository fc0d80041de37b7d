"""Tabular outputs of a segmentation: one row per contact and segment."""

from __future__ import annotations

import difflib

import pandas as pd

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.segment.segmentation import Segmented


def segment_rows(seg: Segmented, extra: list[str]) -> pd.DataFrame:
    """`contact_id,segment[,extra...]`; a contact in no segment gets one row with an empty segment.

    In `mode: all` a contact in several segments gets one row per segment.
    """
    unknown = [c for c in extra if c not in seg.frame.columns]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(seg.frame.columns), n=3)
        raise ConfigError(
            _("unknown column or metric {name}").format(name=repr(unknown[0])),
            field="--columns",
            hint=_("did you mean {names}?").format(names=", ".join(close)) if close else None,
        )
    matrix = seg.assignment.matrix
    long = matrix.stack()
    long = long[long]
    pairs = pd.DataFrame(
        {"row": long.index.get_level_values(0), "segment": long.index.get_level_values(1)}
    )
    none = matrix.index[~matrix.any(axis=1)]
    pairs = pd.concat([pairs, pd.DataFrame({"row": none, "segment": ""})], ignore_index=True)
    pairs = pairs.sort_values(["row"], kind="stable")
    frame = seg.frame
    out = pd.DataFrame(
        {
            "contact_id": frame["contact_id"].to_numpy()[pairs["row"].to_numpy()],
            "segment": pairs["segment"].to_numpy(),
        }
    )
    rows = pairs["row"].to_numpy()
    for c in extra:  # by position, keeping each column's type: an RFM score stays 4, not 4.0
        out[c] = frame[c].iloc[rows].reset_index(drop=True)
    return out.reset_index(drop=True)
