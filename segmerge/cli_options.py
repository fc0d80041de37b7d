"""The options every command spells the same way, defined once.

Typer reads an option's flags and help from its annotation, so the same
``--workspace`` written out in each command module would drift apart (one
module's help already said less than the others').
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .as_of import as_of_option

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $SEGMERGE_WORKSPACE, or .)"),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Reference day, e.g. 2026-01-31 or 31/01/2026 (day first; default: today).",
        callback=as_of_option,
    ),
]
