"""`segmerge serve`: schedules, child runs, and the unsubscribe and tracking endpoint."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.serve.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.serve import daemon, main

    moved = main if name == "serve" else daemon
    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.serve.{name} moved to {moved.__name__}.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
