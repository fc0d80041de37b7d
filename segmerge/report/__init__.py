"""What a segmentation and a campaign did: quality, movements, KPIs and their verdicts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.report.segment_rows` of Segmerge 0.1 still works, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists():
        raise AttributeError(name)
    from segmerge.segment import rows as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.report.{name} moved to segmerge.segment.rows.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
