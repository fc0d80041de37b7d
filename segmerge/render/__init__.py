"""Letters: sandboxed Jinja templates, their checks, limits and the pool that renders them."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def __getattr__(name: str) -> Any:
    """`segmerge.render.X` of Segmerge 0.1 still finds X, for one release."""
    here = Path(__file__).parent
    if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
        raise AttributeError(name)
    from segmerge.render import templates as moved

    value = getattr(moved, name)
    warnings.warn(
        f"segmerge.render.{name} moved to segmerge.render.templates.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
