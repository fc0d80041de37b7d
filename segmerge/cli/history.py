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

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

import pandas as pd
from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
    t = _table(
        *heads,
        (_("contact"), {"no_wrap": True}),
        (_("action"), {}),
        (_("segment"), {"max_width": 16}),
        (_("status"), {}),
        (_("to / detail"), {"ratio": 1}),
    )
    for r in rows[:SHOWN]:
        lead = [Text(str(r.get("run_id") or ""))] if several_runs else []
        t.add_row(
            *lead,
            Text(str(r.get("contact_id") or "")),
            Text(_action(r)),
            Text(str(r.get("segment") or "")),
            Text(said(r.get("status"))),
            Text(_detail(r, tz)),
        )
    parts.append(t if rows else Text(_("No action to show.")))
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
