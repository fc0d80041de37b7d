"""`segmerge doctor`: is the workspace's state sound, and the ways back when it is not.

A run refuses to start over a lost or damaged signing key or ledger (see
:mod:`segmerge.workspace.state`); this command says what is wrong and repairs it:
``--restore`` puts back the newest good backup, ``--accept-new-state`` is the
one explicit way to start over. With ``[tracking]`` on, it also checks that ``/t/``
reaches `serve` (:mod:`segmerge.serve.endpoint.reachability`): otherwise every tracked link of the
next run is broken. Exit 0 when healthy, 2 when a problem is left.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from segmerge.cli.console import err, out
from segmerge.cli.options import WorkspaceOpt, load_workspace
from segmerge.i18n import _, label, ngettext

if TYPE_CHECKING:
    from segmerge.serve.endpoint.reachability import Probe
    from segmerge.workspace import config as wsmod


def new_state_warning() -> str:
    """What starting over costs, in the command's language (built when printed)."""
    return _(
        "starting over with a new signing key and an empty ledger: every unsubscribe link "
        "already sent stops working, the suppression list is empty, and every contact may be "
        "mailed again. The old files are kept in {aside}."
    )


def doctor(
    restore: Annotated[
        bool, typer.Option("--restore", help="Put back the newest good backup (checked first).")
    ] = False,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Restore from this folder (one backup, or a folder of "
            "them), e.g. your \\[state] backup_dir or a copy of it.",
        ),
    ] = None,
    accept_new_state: Annotated[
        bool,
        typer.Option(
            "--accept-new-state",
            help="Start over with a new key and an empty "
            "ledger: old unsubscribe links stop working, everyone may be mailed "
            "again. Only when there is no backup at all.",
        ),
    ] = False,
    backup_now: Annotated[bool, typer.Option("--backup", help="Make a backup now.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Check the signing key, the ledger and the backups; restore or start over.

    Example: segmerge doctor --restore --from /mnt/backups/boutique
    """
    from segmerge.ledger.backup import back_up
    from segmerge.ledger.restore import accept_new_state as abandon
    from segmerge.ledger.restore import restore as put_back

    ws = load_workspace(workspace)
    if restore or source is not None:
        chosen, notes = put_back(ws, source.expanduser() if source else None)
        where = escape(str(chosen.path))
        done = _("[green]restored[/] the backup of {created} from {path}")
        out.print(done.format(created=escape(str(chosen.created_at)), path=where), highlight=False)
        for note in notes:
            out.print(f"  {note}", markup=False, highlight=False)
    elif accept_new_state:
        from segmerge.ledger.health import signing_key
        from segmerge.ledger.store import Ledger

        aside = abandon(ws)
        Ledger(ws.ledger_path).close()  # a new, empty ledger
        signing_key(ws.state_dir, create=True)
        err.print(
            label(_("warning")) + " " + new_state_warning().format(aside=aside),
            style="yellow",
            markup=False,
            highlight=False,
        )
    if backup_now:
        for path in back_up(ws):
            out.print(
                _("[green]backed up[/] into {path}").format(path=escape(str(path))), highlight=False
            )
    if not _report(ws):
        raise typer.Exit(2)


def _report(ws: wsmod.Workspace, ask: Probe | None = None) -> bool:
    """Print every finding; True when nothing is a problem."""
    from segmerge.ledger.backup import (
        backup_roots,
        check_before_run,
        find_backups,
        outside_workspace,
    )
    from segmerge.ledger.health import inspect
    from segmerge.serve.endpoint.reachability import check_tracking
    from segmerge.workspace.state import Finding
    from segmerge.workspace.storage import StateError

    found = inspect(ws.root)
    if not any(f.level == "problem" for f in found):
        try:
            check_before_run(ws)
        except StateError as exc:
            found.append(Finding("problem", exc.message, exc.hint or ""))
    backups = find_backups(ws)
    good = [b for b in backups if not b.problems]
    if good:
        found.append(
            Finding(
                "ok",
                _("last good backup {age} ago: {path}").format(
                    age=_age(good[0].created_at), path=good[0].path
                ),
            )
        )
    elif any(f.topic == "ledger sound" for f in found):
        found.append(
            Finding(
                "warn",
                _("no good backup yet"),
                _("every run makes one; `segmerge doctor --backup` makes one now"),
            )
        )
    for b in backups:
        if b.problems:
            found.append(
                Finding(
                    "warn",
                    _("backup {path} is unusable: {problems}").format(
                        path=b.path, problems="; ".join(b.problems)
                    ),
                )
            )
    if not outside_workspace(ws):
        found.append(
            Finding(
                "warn",
                _(
                    "backups are only kept inside the workspace "
                    "({path}): a deleted .segmerge/ or a lost disk "
                    "takes them too"
                ).format(path=backup_roots(ws)[0]),
                _('set [state] backup_dir = "/another/disk/segmerge-boutique" in segmerge.toml'),
            )
        )
    if (reach := check_tracking(ws, ask)) is not None:  # a broken /t/ breaks every link
        found.append(Finding("ok" if reach.ok else "problem", reach.what, reach.fix))
    marks = {"ok": "[green]✓[/]", "note": "·", "warn": "[yellow]![/]", "problem": "[red]✗[/]"}
    for f in found:
        out.print(f"{marks[f.level]} ", end="")
        out.print(f.what, markup=False, highlight=False)
        if f.fix and f.level != "ok":
            out.print(f"    {label(_('fix'))} {f.fix}", markup=False, highlight=False)
    return not any(f.level == "problem" for f in found)


def _age(iso: str) -> str:
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return _("some time")
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds >= 86400:
        return ngettext("{n} day", "{n} days", seconds // 86400).format(n=seconds // 86400)
    if seconds >= 3600:
        return ngettext("{n} hour", "{n} hours", seconds // 3600).format(n=seconds // 3600)
    if seconds >= 60:
        return ngettext("{n} minute", "{n} minutes", seconds // 60).format(n=seconds // 60)
    return f"{seconds} s"


def register(app: typer.Typer) -> None:
    """Add `doctor` to the segmerge CLI."""
    app.command()(doctor)
