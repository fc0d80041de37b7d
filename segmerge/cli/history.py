"""`segmerge history` as a person reads it in an 80-column terminal.

The ledger's rows have a dozen columns (keys, ISO instants to the
millisecond, run ids repeated on every line); printed as they are, an
80-column terminal cuts every cell to two letters and an ellipsis, and the
page says nothing. The table shows what a person asks of a run: who, what,
in which segment, how it ended and why; the run itself is said once, above.
Cells wrap inside their column rather than being cut: an address or a
refusal is read whole. CSV and JSON keep every column as stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import tzinfo
from typing import Any

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from segmerge.cli.console import visible
from segmerge.i18n import _, label, ngettext, number

#: rows a terminal table shows; the rest is one line pointing to --format csv
SHOWN = 500


def local(iso: str | None, tz: tzinfo) -> str:
    """An instant of the ledger (ISO UTC) as the workspace's clock reads it, to the minute."""
    if not iso:
        return "—"
    return f"{pd.Timestamp(iso).tz_convert(tz):%Y-%m-%d %H:%M}"


def said(key: str | None) -> str:
    """A ledger word (an action's kind, a run's or an action's status) in the command's
    language: the ledger keeps its English keys, which CSV and JSON show as stored."""
    if not key:
        return ""
    run_words = {"running": _("running"), "partial": _("partial")}
    return run_words.get(key) or _(key)  # the action words are in cli.po, as the run prints them


def counts_text(counts: Mapping[str, Mapping[str, int]]) -> str:
    """``send: 2,052 done, 3 failed; tag: 2,090 done``."""
    return "; ".join(
        f"{label(said(kind))} "
        + ", ".join(f"{number(n)} {said(status)}" for status, n in by.items())
        for kind, by in counts.items()
    )


def _table(*heads: tuple[str, dict[str, Any]]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), expand=False)
    for head, opts in heads:
        t.add_column(escape(head), overflow="fold", **opts)
    return t


class Rows:
    """A table of one-line rows, drawn as rich draws it but without rich's work per cell.

    Why: rich measures and lays out every cell of a table on its own, about a
    millisecond each, so the 500 rows of a run's history took half a second to print.
    The columns' widths depend only on the longest cell and the longest word of each
    column: rich lays out a table of those rows alone (and the header), and each row
    is then written at those widths. When that table's rows are not each one line as
    written here (a terminal narrower than the widest rows, a cell on several lines),
    rich draws every row. A stranger's control characters are made visible before the
    widths are taken, so a row keeps its columns.
    """

    def __init__(self, heads: Sequence[tuple[str, dict[str, Any]]], rows: list[list[str]]):
        self.heads = heads
        self.rows = [[visible(cell) for cell in row] for row in rows]  # the width shown

    def _table(self, rows: Sequence[Sequence[str]]) -> Table:
        t = _table(*self.heads)
        for row in rows:
            t.add_row(*(Text(cell) for cell in row))
        return t

    def _widest(self) -> list[list[str]]:
        """The rows holding a column's longest cell or longest word, in table order."""
        picked: set[int] = set()
        for j in range(len(self.heads)):
            picked.add(max(range(len(self.rows)), key=lambda i: cell_len(self.rows[i][j])))
            words = [max(map(cell_len, r[j].split()), default=0) for r in self.rows]
            picked.add(max(range(len(words)), key=words.__getitem__))
        return [self.rows[i] for i in sorted(picked)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        if not self.rows or any("\n" in c or "\t" in c for row in self.rows for c in row):
            yield self._table(self.rows)
            return
        widest = self._widest()
        lines = console.render_lines(self._table(widest), options, pad=False)
        widths = [
            max(cell_len(visible(head)), *(cell_len(r[j]) for r in self.rows))
            for j, (head, _opts) in enumerate(self.heads)
        ]

        def line(row: Sequence[str]) -> str:
            cells = [c + " " * (w - cell_len(c)) for c, w in zip(row, widths, strict=True)]
            return " " + "   ".join(cells) + " "

        drawn = ["".join(seg.text for seg in ln) for ln in lines[3:-1]]
        if len(lines) != len(widest) + 4 or drawn != [line(r) for r in widest]:
            yield self._table(self.rows)  # laid out otherwise: rich draws every row
            return
        new_line = Segment.line()
        for ln in lines[:3]:
            yield from ln
            yield new_line
        for row in self.rows:
            yield Segment(line(row))
            yield new_line
        yield from lines[-1]
        yield new_line


def runs_view(runs: Sequence[Mapping[str, Any]], counts: Mapping[str, Any], tz: tzinfo) -> Table:
    """One line per run: what it was, how it ended, when, and its actions by status."""
    t = _table(
        (_("run"), {"no_wrap": True}),
        (_("status"), {}),
        (_("started"), {"no_wrap": True}),
        (_("actions"), {"ratio": 1}),
    )
    for r in runs:
        tries = int(r.get("attempts") or 1)
        status = said(str(r.get("status") or ""))
        if tries > 1:
            status += " " + ngettext("({n} try)", "({n} tries)", tries).format(n=number(tries))
        t.add_row(
            Text(str(r["run_id"])),
            Text(status),
            local(r.get("started_at"), tz),
            Text(counts_text(counts.get(r["run_id"], {})) or "—"),
        )
    return t


def _action(row: Mapping[str, Any]) -> str:
    kind = said(str(row.get("kind") or ""))
    return f"{kind} {row['variant']}" if row.get("variant") else kind


def _detail(row: Mapping[str, Any], tz: tzinfo) -> str:
    parts = [str(row[k]) for k in ("target", "detail") if row.get(k)]
    if row.get("not_before"):
        parts.append(_("not before {when}").format(when=local(row["not_before"], tz)))
    return " — ".join(parts)


def actions_view(
    run: Mapping[str, Any] | None,
    counts: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    tz: tzinfo,
) -> RenderableType:
    """A run said once (status, times, counts), then one line per contact and action."""
    parts: list[RenderableType] = []
    if run is not None:
        head = _("{run}: {status}, started {started}, ended {ended}").format(
            run=run["run_id"],
            status=said(run.get("status")) or "?",
            started=local(run.get("started_at"), tz),
            ended=local(run.get("ended_at"), tz),
        )
        parts.append(Text(head, style="bold"))
        if counts:
            parts.append(Text(counts_text(counts)))
    several_runs = len({r.get("run_id") for r in rows}) > 1
    heads: list[tuple[str, dict[str, Any]]] = (
        [(_("run"), {"no_wrap": True})] if several_runs else []
    )
    cells = [
        [
            *([str(r.get("run_id") or "")] if several_runs else []),
            str(r.get("contact_id") or ""),
            _action(r),
            str(r.get("segment") or ""),
            said(r.get("status")),
            _detail(r, tz),
        ]
        for r in rows[:SHOWN]
    ]
    table = Rows(
        [
            *heads,
            (_("contact"), {"no_wrap": True}),
            (_("action"), {}),
            (_("segment"), {"max_width": 16}),
            (_("status"), {}),
            (_("to / detail"), {"ratio": 1}),
        ],
        cells,
    )
    parts.append(table if rows else Text(_("No action to show.")))
    if len(rows) > SHOWN:
        more = len(rows) - SHOWN
        parts.append(
            Text(
                ngettext(
                    "… {n} more (use --format csv)", "… {n} more (use --format csv)", more
                ).format(n=number(more))
            )
        )
    return Group(*parts)
