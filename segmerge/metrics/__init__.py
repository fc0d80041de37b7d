"""Per-contact metrics: RFM, windows, engagement, and the catalog a rule may name."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.metrics.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.metrics import compute as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.metrics.{name} moved to segmerge.metrics.compute.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
