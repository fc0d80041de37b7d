"""What `segmerge run` shows while it works and when it is done: progress bars and the
run's counts, in the command's language.

The engine names tables, action kinds, statuses and reasons with English keys;
they are translated here, at the edge, and the contacts' data never is.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmerge.cli.console import err, out
from segmerge.i18n import _, label, number


def reporter(progress: Progress, name: str) -> Any:
    tasks: dict[str, Any] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(f"{label(name)} {_phase(phase)}", total=total)
        progress.update(tasks[phase], completed=done, total=total)

    return report


def _phase(phase: str) -> str:
    """A run's phase as the progress bar names it (the engine says "render", "tag"...)."""
    names = {
        "render": _("writing the letters"),
        "tag": _("tags"),
        "list": _("lists"),
        "campaign": _("draft campaigns"),
        "send": _("sending"),
    }
    return names.get(phase, phase)


def _deferral(reason: str, policy: str) -> str:
    """Why messages wait, by the run's fixed key; a frequency cap names its policy (already
    in the command's language), so the row follows the workspace's settings and language."""
    if reason == "frequency_cap":
        return _("frequency cap ({policy})").format(policy=policy)
    if reason == "quiet_hours":
        return _("quiet hours or days")
    return _(reason)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def print_summary(s: Any) -> None:
    """The run's counts in the command's language; the keys the engine gives (table names,
    action kinds, statuses, reasons) are English words translated here, data never."""
    from segmerge.mail.consent import said  # pandas is loaded by now: a run made the summary

    title = s.run_id
    if s.resumed:
        title = _("{run} (resumed)").format(run=title)
    if s.dry_run:
        title = _("[dry run] {run}").format(run=title)
    t = Table(title=escape(title), show_header=False)
    t.add_column("what")
    t.add_column("count", justify="right")

    def row(text: str, n: int) -> None:
        t.add_row(escape(text), number(n))

    for k, v in s.pulled.items():
        row(_("pulled {table}").format(table=_(k)), v)
    for f, n in s.skipped_rows.items():
        row(_("bad rows skipped in {file}").format(file=f), n)
    for k, v in s.segments.items():
        row(_("segment {name}").format(name=k), v)
    row(_("excluded by the rule set"), s.excluded)
    for k, v in s.not_mailed.items():
        row(_("not mailed: {reason}").format(reason=said(k)), v)
    if s.render_errors:
        row(_("skipped: letter could not be filled"), len(s.render_errors))
    for k, v in s.deferred.items():
        row(_("deferred: {reason}").format(reason=_deferral(k, s.pressure_policy)), v)
    verb = _("would do: {action}") if s.dry_run else _("planned: {action}")
    for k, v in s.planned.items():
        row(verb.format(action=_(k)), v)
    for kind, statuses in s.outcome.items():
        for status, n in statuses.items():
            row(_("{action} {status}").format(action=_(kind), status=_(status)), n)
    out.print(t)
    if s.changes:
        heading = _("changes pushed back, by segment")
        if s.dry_run:
            heading = _("changes pushed back, by segment (would be)")
        c = Table(title=heading)
        kinds = sorted({k for v in s.changes.values() for k in v})
        c.add_column(_("segment"))
        for k in kinds:
            c.add_column(_(k), justify="right")
        for segname, counts in s.changes.items():
            c.add_row(escape(segname), *(number(counts.get(k, 0)) for k in kinds))
        out.print(c)
    draft = _("draft campaign: {name}")
    if s.dry_run:
        draft = _("draft campaign (would be created): {name}")
    for d in s.drafts:
        out.print(escape(draft.format(name=d)))
    for e in s.render_errors[:5]:
        out.print(f"[yellow]![/] {escape(str(e))}")  # may quote contact data
    for n in s.notes:
        out.print(f"[yellow]![/] {escape(str(n))}")
