"""`segment` and `explain`'s shared steps: the rule set evaluated on a source (the one
already opening, when `segment` started it early) and the sizes table they print."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from segmerge.cli.console import out
from segmerge.errors import SegmergeError
from segmerge.i18n import _, day, ngettext, number, percent_of

if TYPE_CHECKING:
    from segmerge.workspace import config as wsmod


def segmented(
    ws: wsmod.Workspace,
    rules: Path,
    source: str | None,
    as_of: str | None,
    columns: list[str] | None = None,
    early: Any = None,
) -> Any:
    """``columns``: all a command reads of the contacts besides the assignment (None: any);
    ``early``: the source already opening (segmerge.cli.early), when it is the one read."""
    from segmerge.segment.segmentation import default_source_for
    from segmerge.segment.segmentation import segment as do_segment

    rules = Path(rules).resolve()
    opened = None
    if early is not None:
        with contextlib.suppress(SegmergeError):  # do_segment says it in its turn
            opened = early.take(source or default_source_for(ws, rules))
    ruleset = early.ruleset if opened is not None else None
    try:
        return do_segment(
            ws,
            rules,
            source_name=source,
            as_of=as_of,
            columns=columns,
            source=opened,
            ruleset=ruleset,
        )
    finally:
        if opened is not None:
            opened.close()


def print_sizes(seg: Any, tz: Any) -> None:
    from rich.table import Table

    sizes = seg.assignment.sizes()
    total = len(seg.frame)
    contacts = ngettext("{n} contact", "{n} contacts", total).format(n=number(total))
    title = _("{rules} — {contacts}, as of {day}").format(
        rules=seg.ruleset.name, contacts=contacts, day=day(seg.as_of.tz_convert(tz).date())
    )
    table = Table(title=escape(title))
    table.add_column(_("segment"))
    table.add_column(_("label"))
    table.add_column(_("contacts"), justify="right")
    table.add_column(_("share"), justify="right")
    for s in seg.ruleset.segments:
        n = sizes.get(s.name, 0)
        table.add_row(escape(s.name), escape(s.label), number(n), percent_of(n, total))
    matrix = seg.assignment.matrix  # in no segment: a row of False (no text per contact built)
    none = total - int(matrix.to_numpy(dtype=bool).any(axis=1).sum()) if matrix.shape[1] else total
    table.add_row(f"[dim]{_('(none)')}[/]", "", number(none), percent_of(none, total))
    out.print(table)
    for w in seg.ruleset.warnings():
        out.print(f"[yellow]![/] {escape(str(w))}")
