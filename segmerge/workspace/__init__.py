"""The workspace: `segmerge.toml`, its settings, and the precious state it keeps."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.workspace.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.workspace import config as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.workspace.{name} moved to segmerge.workspace.config.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
