"""The ledger: the local record of every run and action, its suppressions and its backups."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.ledger.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.ledger import store as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.ledger.{name} moved to segmerge.ledger.store.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
