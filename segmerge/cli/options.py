"""The options every command spells the same way, defined once.

Typer reads an option's flags and help from its annotation, so the same
``--workspace`` written out in each command module would drift apart (one
module's help already said less than the others').

``--workspace`` also chooses the command's language as it is parsed (before the
workspace is validated, so an error in segmerge.toml is already in its language):
see :mod:`segmerge.i18n`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segmerge.cli.as_of import as_of_option
from segmerge.i18n import use_workspace_language
from segmerge.workspace.root import find_root

if TYPE_CHECKING:
    from segmerge.workspace import config as wsmod


def _workspace_language(value: Path | None) -> Path | None:
    """Speak the workspace's language from here on; the value passes unchanged."""
    use_workspace_language(find_root(value))
    return value


def load_workspace(value: Path | None) -> wsmod.Workspace:
    """The workspace a command names, loaded and validated (see :mod:`segmerge.workspace`).

    Imported here, when a command runs, not when the CLI is built: its pydantic models cost
    more than `--help` itself.
    """
    from segmerge.workspace.config import load

    return load(value)


WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $SEGMERGE_WORKSPACE, or .)",
        callback=_workspace_language,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Reference day, e.g. 2026-01-31 or 31/01/2026 (day first; default: today).",
        callback=as_of_option,
    ),
]
