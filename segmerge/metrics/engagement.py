"""E-mail engagement metrics: recency of opens and clicks, who opened which campaign.

Marketers segment on engagement as much as on orders ("opened the last
campaign or not", "no open for six months"). These read the events table
(``sent``, ``open``, ``click``...) with the same conventions as the order
metrics: whole local calendar days in the workspace time zone, windows ending
at ``as_of``, events after ``as_of`` ignored, column-wise numpy throughout.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NAT = np.iinfo(np.int64).min


class Engagement:
    """The events as aligned arrays: contact row (``n`` = not counted), instant, kind, campaign."""

    def __init__(
        self, rows: np.ndarray, t: np.ndarray, event: pa.Array, campaign: pa.Array | None, n: int
    ) -> None:
        self.rows, self.t, self.n = rows, t, n
        self.event, self.campaign = event, campaign

    def of(self, kind: str) -> np.ndarray:
        return pc.equal(self.event, kind).fill_null(False).to_numpy(zero_copy_only=False)

    def count(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows[mask], minlength=self.n + 1)[: self.n].astype(np.int64)

    def window(self, kind: str, lower: int, upper: int) -> np.ndarray:
        """Events of ``kind`` per contact in (lower, upper] (UTC nanoseconds)."""
        m = self.of(kind) & (self.t > lower) & (self.t <= upper)
        return self.count(m)

    def days_since_last(self, kind: str, today: int, local_days: Any, tz: tzinfo) -> pd.array:
        """Whole days from the local day of the contact's last ``kind`` event to as_of's."""
        m = self.of(kind) & (self.rows < self.n)
        last = np.full(self.n + 1, NAT, dtype=np.int64)
        np.maximum.at(last, self.rows[m], self.t[m])
        last = last[: self.n]
        has = last != NAT
        days = np.zeros(self.n, dtype=np.int64)
        if has.any():
            days[has] = today - local_days(last[has], tz)
        return pd.arrays.IntegerArray(days, ~has)

    def latest_campaign(self) -> str | None:
        """The campaign whose first `sent` (else any) event is the latest before as_of."""
        if self.campaign is None or len(self.t) == 0:
            return None
        counted = self.rows < self.n
        sent = self.of("sent") & counted
        use = sent if sent.any() else counted
        if not use.any():
            return None
        frame = pd.DataFrame(
            {"c": self.campaign.filter(pa.array(use)).to_pandas(), "t": self.t[use]}
        )
        first = frame.dropna().groupby("c")["t"].min()
        return str(first.idxmax()) if len(first) else None

    def did(self, kind: str, campaign: str) -> np.ndarray:
        """Per contact: whether it has a ``kind`` event for that campaign (``last``: the latest)."""
        target = self.latest_campaign() if campaign == "last" else campaign
        if target is None or self.campaign is None:
            return np.zeros(self.n, dtype=bool)
        same = pc.equal(self.campaign, target).fill_null(False).to_numpy(zero_copy_only=False)
        return self.count(self.of(kind) & same) > 0


def ratio(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """This period over the previous one; null (NaN) when the previous one had nothing."""
    now = now.astype(np.float64)
    before = before.astype(np.float64)
    out = np.full(len(now), np.nan)
    ok = before > 0
    out[ok] = now[ok] / before[ok]
    return out
