"""What `validate`, `segment` and `explain` print about the sources they read.

Kept out of bot.py, which only parses arguments: `validate` (validate_campaigns)
then reads every source no campaign uses; `segment` and `explain` say
which source they read and show its warnings (orders naming no contact,
unknown status words), because a wrong join must show where one segments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from segmerge.cli.console import out
from segmerge.i18n import _
from segmerge.workspace.config import Workspace


def validate_unused_sources(ws: Workspace) -> None:
    """A source no campaign uses yet is still the one being set up: read it and say how."""
    from segmerge.segment.source_check import check_source, unused_sources

    for name in unused_sources(ws):
        checked = check_source(ws, name)
        said = _("source {name} (no campaign uses it): {summary}")
        out.print(f"[green]✓[/] {escape(said.format(name=name, summary=checked.summary()))}")
        for c in checked.checks:
            out.print(f"  [green]✓[/] {escape(c)}")
        for n in checked.tables.notes:
            out.print(f"  [yellow]![/] {escape(str(n))}")


def tell_source(ws: Workspace, seg: Any, rules: Path, source: str | None, console: Console) -> None:
    """Which source was read when ``--source`` was left out, and its warnings."""
    from segmerge.segment.source_check import default_source_reason

    if source is None:
        console.print(f"[dim]{escape(default_source_reason(ws, Path(rules), seg.source_name))}[/]")
    for w in seg.tables.warnings:
        console.print(f"[yellow]![/] {escape(str(w))}")
