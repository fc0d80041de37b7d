"""One opened campaign as the preview's pages see it: its frames, or why it cannot open.

Plain data shared by the workspace's live state (:mod:`segmerge.preview.live`),
which opens it, and the pages (:mod:`segmerge.preview.pages`), which read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segmerge.run.campaign import OpenCampaign


@dataclass
class CampaignView:
    """An opened campaign (or why it cannot be), with what the pages list per segment."""

    name: str
    camp: OpenCampaign | None = None
    error: dict[str, Any] | None = None
    reasons: pd.Series | None = None  # why a contact is not mailed, <NA> when it is
    _rows: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, segment: str) -> np.ndarray:
        """The rows that get this segment's letter (their first segment), in source order."""
        if segment not in self._rows and self.camp is not None:
            primary = self.camp.seg.assignment.primary
            self._rows[segment] = np.flatnonzero((primary == segment).fillna(False).to_numpy())
        return self._rows.get(segment, np.array([], dtype=int))
