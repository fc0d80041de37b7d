"""Which folder is the workspace: `--workspace`, then `$SEGMERGE_WORKSPACE`, then `.`.

Apart from :mod:`segmerge.workspace.config` because every command asks it first,
`--help` and usage errors included (to choose their language), and the answer needs
none of the config's validation: pydantic and babel are loaded only by commands that
read segmerge.toml.
"""

from __future__ import annotations

import os
from pathlib import Path


def find_root(workspace: str | Path | None) -> Path:
    """`--workspace`, then `$SEGMERGE_WORKSPACE`, then the current folder."""
    chosen = workspace or os.environ.get("SEGMERGE_WORKSPACE") or "."
    return Path(chosen).expanduser().resolve()
