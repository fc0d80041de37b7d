"""`segmerge preview` and `segmerge render`: every letter as it will be sent."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.preview.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.preview import one as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.preview.{name} moved to segmerge.preview.one.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
