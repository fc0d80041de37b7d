"""The ledger's and the installation's commands: `history`, `suppress add/import/list`,
`auth set/remove` and `connectors`.

Kept out of bot.py (which calls :func:`register`) so each CLI module stays small;
like bot.py, these only parse, call the engine and print. :func:`emit` is the one
table/CSV/JSON printer the CLI's listings share.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from segmerge.cli.console import out
from segmerge.cli.options import WorkspaceOpt, load_workspace
from segmerge.i18n import _, ngettext, number

if TYPE_CHECKING:
    from segmerge.ports.connector import Connector

auth_app = typer.Typer(help="Credentials in the system keyring.")
suppress_app = typer.Typer(help="The workspace's suppression list, applied to every destination.")


def history(
    run_id: Annotated[str | None, typer.Argument(help="One run, e.g. profils@2026-12-01")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed actions.")] = False,
    uncertain: Annotated[bool, typer.Option("--uncertain", help="Only uncertain ones.")] = False,
    deferred: Annotated[
        bool, typer.Option("--deferred", help="Only messages held back by contact pressure.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    csv: Annotated[bool, typer.Option("--csv", help="Same as --format csv.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Past runs, and what each did, down to each contact and action.

    Example: segmerge history profils@2026-12-01 --failed --csv
    """
    from segmerge.ledger.store import Ledger

    fmt = "csv" if csv else fmt
    ws = load_workspace(workspace)
    ledger = Ledger.open_existing(ws.ledger_path)
    if ledger is None:
        out.print(_("No run yet."))
        return
    from segmerge.cli.history import actions_view, runs_view  # pandas: only with a ledger

    flags = (("failed", failed), ("uncertain", uncertain), ("deferred", deferred))
    statuses = [s for s, on in flags if on] or None
    with ledger:
        if run_id is None and statuses is None:
            runs = ledger.runs()
            counts = {r["run_id"]: ledger.counts(r["run_id"]) for r in runs}
            rows = [
                {k: r[k] for k in ("run_id", "status", "started_at", "ended_at", "attempts")}
                | _counts(counts[r["run_id"]])
                for r in runs
            ]
            view: Any = runs_view(runs, counts, ws.tz)
        else:
            rows = ledger.actions(run_id, statuses)
            run = ledger.run(run_id) if run_id else None
            counts_of = ledger.counts(run_id) if run_id and run else None
            view = actions_view(run, counts_of, rows, ws.tz)
    if fmt != "table":  # files keep every column as stored
        emit(rows, fmt, title="history")
    elif run_id is not None or rows:
        out.print(view)  # reads at 80 columns (segmerge.cli.history)
    else:
        out.print(_("Nothing to show."))


def _counts(c: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {f"{k}": " ".join(f"{s}={n}" for s, n in v.items()) for k, v in c.items()}


def emit(rows: list[dict[str, Any]], fmt: str, title: str) -> None:
    """JSON and CSV exactly as stored (they are file formats); a table for the terminal,
    where the console makes control characters visible (:mod:`segmerge.cli.console`)."""
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1, default=str) + "\n")
        return
    if fmt == "csv":
        import csv as csvmod

        cols = list(dict.fromkeys(k for r in rows for k in r))
        w = csvmod.DictWriter(sys.stdout, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        return
    if not rows:
        out.print(_("Nothing to show."))
        return
    from rich.table import Table

    t = Table(title=escape(title))
    cols = list(dict.fromkeys(k for r in rows for k in r))
    for c in cols:
        t.add_column(escape(str(c)))
    for r in rows[:500]:  # cells are data, not markup: "[/]" in a name is shown, not obeyed
        t.add_row(*("" if r.get(c) is None else escape(str(r.get(c))) for c in cols))
    out.print(t)
    if len(rows) > 500:
        more = len(rows) - 500
        out.print(
            ngettext("… {n} more (use --format csv)", "… {n} more (use --format csv)", more).format(
                n=number(more)
            )
        )


def connectors() -> None:
    """List the installed connectors (entry-point group segmerge.connectors.v1).

    A third-party package adds one by declaring, in its pyproject.toml:
    [project.entry-points."segmerge.connectors.v1"] myshop = "myshop_segmerge:Connector"

    Example: segmerge connectors
    """
    from segmerge.ports.connector import Destination, Source
    from segmerge.ports.registry import available, load_class

    rows = []
    for name, impl in sorted(available().items()):
        try:
            cls = load_class(name)
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append(
                {
                    "connector": name,
                    "role": _("cannot load"),
                    "actions": "",
                    "implementation": impl,
                    "description": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        role = [
            _(r)
            for r, base in (("source", Source), ("destination", Destination))
            if issubclass(cls, base)
        ]
        rows.append(
            {
                "connector": name,
                "role": ", ".join(role),
                "actions": ", ".join(sorted(cls.accepts if issubclass(cls, Destination) else ())),
                "implementation": impl,
                "description": _(_summary(cls)),
            }
        )
    # a table for people: its headings in their language (a built-in's description too)
    emit([{_(k): v for k, v in r.items()} for r in rows], "table", _("connectors"))


def _summary(cls: type[Connector]) -> str:
    """A connector's one-line description: its ``description``, else its docstring's first line."""
    return (cls.description or (cls.__doc__ or "").strip()).split("\n")[0]


@auth_app.command("set")
def auth_set(
    name: Annotated[str, typer.Argument(help="Source or destination name.")],
) -> None:
    """Store a credential in the system keyring (asked for, never echoed).

    Example: segmerge auth set shop
    """
    from segmerge.workspace import secrets

    value = typer.prompt(_("Secret for {name}").format(name=name), hide_input=True)
    secrets.store(name, value)
    out.print(
        _("Stored in the keyring (service segmerge, user {name}).").format(name=name), markup=False
    )


@auth_app.command("remove")
def auth_remove(name: Annotated[str, typer.Argument(help="Source or destination name.")]) -> None:
    """Remove a credential from the system keyring."""
    from segmerge.workspace import secrets

    out.print(_("Removed.") if secrets.remove(name) else _("Nothing stored for that name."))


@suppress_app.command("add")
def suppress_add(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    reason: Annotated[str, typer.Option("--reason")] = "manual",
    workspace: WorkspaceOpt = None,
) -> None:
    """Never mail this address again, from any campaign. Example: segmerge suppress add a@b.fr"""
    from segmerge.ledger.store import Ledger

    with Ledger(load_workspace(workspace).ledger_path) as ledger:
        n = ledger.suppress([(address, reason)])
    out.print(_("Added.") if n else _("Already suppressed."))


@suppress_app.command("import")
def suppress_import(
    file: Annotated[Path, typer.Argument(help="CSV with an e-mail column (or one per line).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Import addresses from a CSV file. Example: segmerge suppress import bounces.csv"""
    from segmerge.ledger.store import Ledger
    from segmerge.mail.suppression import read_addresses

    addresses = read_addresses(file)
    with Ledger(load_workspace(workspace).ledger_path) as ledger:
        n = ledger.suppress([(a, f"import {file.name}") for a in addresses])
    text = ngettext(
        "{n} new address suppressed ({read} read).",
        "{n} new addresses suppressed ({read} read).",
        n,
    )
    out.print(text.format(n=number(n), read=number(len(addresses))))


@suppress_app.command("list")
def suppress_list(
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    workspace: WorkspaceOpt = None,
) -> None:
    """Show the suppression list: addresses, and contacts unsubscribed by id."""
    from segmerge.ledger.store import Ledger

    ledger = Ledger.open_existing(load_workspace(workspace).ledger_path)
    rows: list[dict[str, Any]] = []
    if ledger is not None:
        with ledger:  # addresses, then contacts unsubscribed by id (blocked whatever their address)
            rows = ledger.suppressed() + ledger.suppressed_contacts()
    emit(rows, fmt, _("suppression list"))


def register(app: typer.Typer) -> None:
    """Add `history`, `connectors`, `auth` and `suppress` to the segmerge CLI."""
    app.command()(history)
    app.command()(connectors)
    app.add_typer(auth_app, name="auth")
    app.add_typer(suppress_app, name="suppress")
