"""The `segmerge` command line: parse arguments, call the engine, print, exit.

The command modules print for the user; only :mod:`segmerge.cli.errors` exits.
User mistakes (`SegmergeError`) become one message and exit 2 (1 for a failed
run); a bug shows its traceback only with `--traceback`, and never a secret.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from segmerge.cli.admin import register as register_admin
from segmerge.cli.console import err, out, visible
from segmerge.cli.doctor import register as register_doctor
from segmerge.cli.errors import run_cli, warn_exposed
from segmerge.cli.help import SpeakingGroup
from segmerge.cli.leave import engine_imported, leaving
from segmerge.cli.options import AsOfOpt, WorkspaceOpt
from segmerge.cli.preview import register as register_preview
from segmerge.cli.report import register as register_report
from segmerge.cli.schedule import register as register_schedule
from segmerge.cli.segmenting import print_sizes, segmented
from segmerge.errors import SegmergeError
from segmerge.i18n import _, ngettext, number, use_workspace_language

if TYPE_CHECKING:
    from rich.tree import Tree

    from segmerge.workspace import config as wsmod

# Every `segmerge` command, `--help` included, imports this module: what only some
# commands need (the config's pydantic models, pandas, rich's tables and progress bars,
# the scheduler) is imported inside those commands, so each pays only for its own.

app = typer.Typer(
    help="Segmerge: segment your contacts and send each segment its own letter.\n\n"
    "Example: segmerge run profils --dry-run",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    cls=SpeakingGroup,  # --help and usage errors in the workspace's language
)


@app.callback()
def _main(
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show a traceback on errors (for bug reports).")
    ] = False,
) -> None:
    # --traceback is declared here for --help; run_cli reads it from argv, before any parsing
    # the language was chosen before parsing, -w included (segmerge.cli.help.SpeakingGroup)
    del traceback


def _ws(workspace: Path | None) -> wsmod.Workspace:
    from segmerge.workspace.config import load

    return load(workspace)


# init -----------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create (must be empty or absent).")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="A workspace for a shop's own exports: prestashop, woocommerce or shopify.",
        ),
    ] = None,
) -> None:
    """Scaffold a workspace: config, rule sets, templates and demo data.

    With --preset, the source reads that shop's exports (sample files in exports/).

    Example: segmerge init ~/boutique && cd ~/boutique && segmerge run profils --dry-run
    """
    import shutil
    from importlib.resources import as_file, files

    target = directory.expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise SegmergeError(
            _("{path} is not empty").format(path=target), hint=_("choose a new folder")
        )
    with as_file(files("segmerge") / "scaffold") as src:
        shops = sorted(p.name for p in (src / "presets").iterdir() if p.is_dir())
        if preset is not None and preset not in shops:
            raise SegmergeError(
                _("no preset {name}").format(name=repr(preset)),
                hint=_("one of: {names}").format(names=", ".join(shops)),
            )
        # real files, never links: a workspace must outlive the package it came from
        skip = shutil.ignore_patterns("presets", *(["segmerge.toml", "examples"] if preset else []))
        shutil.copytree(src, target, dirs_exist_ok=True, symlinks=False, ignore=skip)
        if preset is not None:
            shutil.copytree(src / "presets" / preset, target, dirs_exist_ok=True, symlinks=False)
    use_workspace_language(target)  # from here on, the new workspace's own language
    out.print(f"[green]{escape(_('Workspace created in {path}').format(path=target))}[/]")
    command = escape(f"segmerge validate -w {directory}")
    out.print(_("Next: {command}").format(command=f"[bold]{command}[/]"))


# validate -------------------------------------------------------------------


@app.command()
def validate(
    campaign: Annotated[str | None, typer.Argument(help="One campaign (default: all).")] = None,
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Check config, rules, templates and credentials without sending anything.

    Every letter is filled for every contact of its segment; one that cannot be is an error.

    Example: segmerge validate profils
    """
    from segmerge.cli.validate import validate_workspace

    ws = _ws(workspace)
    warn_exposed(ws.root)
    names = [campaign] if campaign else [*ws.config.campaigns]
    engine_imported(ws, () if campaign else None, names)
    validate_workspace(ws, campaign, as_of)


# segment ---------------------------------------------------------------------


@app.command()
def segment(
    rules: Annotated[Path, typer.Argument(help="Rule set file, e.g. segrules/profils-vpc.yaml")],
    source: Annotated[str | None, typer.Option("--source", help="Source name.")] = None,
    as_of: AsOfOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write rows to this file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or parquet.")] = "table",
    columns: Annotated[
        str | None, typer.Option("--columns", help="Extra columns or metrics, e.g. age,rfm")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Evaluate a rule set: segment sizes, and one row per contact and segment.

    Example: segmerge segment segrules/profils-vpc.yaml --format csv --out segments.csv
    """
    if fmt not in ("table", "csv", "json", "parquet"):
        raise SegmergeError(_("expected table, csv, json or parquet"), field="--format")
    ws = _ws(workspace)
    from segmerge.cli.early import early_source

    with early_source(ws, rules, source) or contextlib.nullcontext() as early:
        engine_imported(ws, [source] if source else None)  # while the source's checks run
        from segmerge.cli.sources import tell_source
        from segmerge.segment.rows import segment_rows

        extra = [c.strip() for c in columns.split(",")] if columns else []
        seg = segmented(ws, rules, source, as_of, extra, early)
    rows = segment_rows(seg, extra)
    # rows on stdout stay pure CSV/JSON: what was read and the warnings go to stderr
    tell_source(ws, seg, rules, source, err if out_file is None and fmt != "table" else out)
    if out_file is not None or fmt != "table":
        from segmerge.segment.output import write_rows

        write_rows(rows, "csv" if fmt == "table" else fmt, out_file)
        if out_file is None:
            return
    print_sizes(seg, ws.tz)
    if out_file is not None:
        written = ngettext("{n} row written to {path}", "{n} rows written to {path}", len(rows))
        out.print(escape(written.format(n=number(len(rows)), path=out_file)))


# explain ---------------------------------------------------------------------


@app.command()
def explain(
    rules: Annotated[Path, typer.Argument(help="Rule set file.")],
    contact_id: Annotated[str, typer.Argument(help="The contact's id.")],
    source: Annotated[str | None, typer.Option("--source", help="Source name.")] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Why a contact is (not) in each segment, condition by condition.

    Example: segmerge explain segrules/profils-vpc.yaml 00042
    """
    from rich.tree import Tree

    from segmerge.cli.contact_ids import check_contact_id
    from segmerge.cli.sources import tell_source
    from segmerge.rules import explain as do_explain

    ws = _ws(workspace)
    engine_imported(ws, [source] if source else None)
    seg = segmented(ws, rules, source, as_of)
    tell_source(ws, seg, rules, source, out)
    check_contact_id(seg.frame, contact_id)  # X5: "42" -> did you mean 00042?
    for e in do_explain(seg.ruleset, seg.frame, contact_id, seg.as_of, ws.tz):
        mark = "[green]✓[/]" if e.matched else "[red]✗[/]"
        title = _("exclude") if e.is_exclude else f"{e.name} ({e.label})"
        tree = Tree(f"{mark} [bold]{escape(title)}[/] — {escape(e.decided_by)}")
        if e.condition is not None:
            _add_condition(tree, e.condition)
        out.print(tree)


def _add_condition(tree: Tree, node: Any) -> None:
    value = "null" if node.value is None else repr(node.value)
    branch = tree.add(f"{escape(node.text)} [dim]→[/] [cyan]{escape(value)}[/]")
    for child in node.children:
        _add_condition(branch, child)


# render ----------------------------------------------------------------------


@app.command()
def render(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    contact: Annotated[str, typer.Option("--contact", help="Contact id.")],
    text: Annotated[bool, typer.Option("--text", help="Show the text part instead.")] = False,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print one contact's message: headers, subject and HTML source (or text part).

    Example: segmerge render profils --contact 00042 --text
    """
    from segmerge.preview.one import render_one

    ws = _ws(workspace)
    headers, body = render_one(ws, campaign, contact, as_of=as_of, text=text)
    for k, v in headers:
        out.print(f"[bold]{k}:[/] {escape(v)}", highlight=False, markup=True)  # RFC 5322 names
    out.print()
    body = visible(body)  # the letter holds contact data: no control sequence reaches the tty
    sys.stdout.write(body if body.endswith("\n") else body + "\n")


# run -------------------------------------------------------------------------


@app.command("run")
def run_cmd(
    campaign: Annotated[str | None, typer.Argument(help="Campaign (default: all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be done.")] = False,
    as_of: AsOfOpt = None,
    resend_uncertain: Annotated[
        bool, typer.Option("--resend-uncertain", help="Resend messages whose fate is unknown.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Retry actions that failed.")
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Pull everything, not only what changed since the last pull (API sources).",
        ),
    ] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Run every campaign of the workspace.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """One full run: pull, segment, render, push, record. Same campaign and day again resumes.

    Name the campaign, or give --all for every campaign of the workspace.

    Example: segmerge run profils --as-of 2026-12-01 --dry-run
    """
    ws = _ws(workspace)
    warn_exposed(ws.root)
    from segmerge.run.checks import campaigns_to_run, finished_note

    names = campaigns_to_run(ws, campaign, every)
    engine_imported(ws, (), names)
    from segmerge.cli.run_output import print_summary, progress_bar, reporter
    from segmerge.run.pipeline import RunOptions, run

    failed = 0
    for name in names:
        with progress_bar() as progress:
            report = reporter(progress, name)
            opts = RunOptions(
                as_of, dry_run, resend_uncertain, retry_failed, report, full_refresh=full_refresh
            )
            summary = run(ws, name, opts)
        print_summary(summary)
        if dry_run and (note := finished_note(ws, summary)):
            out.print(f"[bold]{escape(note)}[/]")
        failed += summary.failed
    if failed:
        raise typer.Exit(1)


@app.command("test-send")
def test_send_cmd(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    to: Annotated[str, typer.Option("--to", help="The seed address that gets the tests.")],
    destination: Annotated[
        str | None, typer.Option("--destination", help="Send through another destination.")
    ] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Send each segment's letter (and each variant) once to your own address, marked [TEST].

    Filled with a real contact of the segment, through the campaign's destination;
    recorded in the ledger as a test, never counted.

    Example: segmerge test-send profils --to moi@example.org
    """
    from segmerge.cli.admin import emit
    from segmerge.run.testsend import test_send

    ws = _ws(workspace)
    results = test_send(ws, campaign, to, as_of=as_of, destination=destination)
    emit(
        [
            {_("letter"): letter, _("status"): _(status), _("detail"): detail}
            for letter, status, detail in results
        ],
        "table",
        _("test messages to {address}").format(address=to),
    )
    if any(status != "done" for _, status, _ in results):
        raise typer.Exit(1)


# history ---------------------------------------------------------------------


# commands kept in their own modules, each importing its heavy parts lazily
register_admin(app)  # history, connectors, auth, suppress
register_schedule(app)  # schedule add/list/remove, serve
register_report(app)  # report, kpi
register_preview(app)  # preview
register_doctor(app)  # doctor: the signing key, the ledger, their backups


def main() -> None:
    """Entry point: user errors are one message and exit 2 (1 for failed runs); no secret is
    ever printed, tracebacks included (see :mod:`segmerge.cli.errors`); the console script
    leaves without tearing the interpreter down (segmerge.cli.leave)."""
    leaving(main, lambda: run_cli(lambda: _tree()()))


@functools.cache
def _tree() -> Any:
    """The app's click command tree, built once per process: Typer rebuilds it from every
    command's signature on each call (30 ms), which a process running many commands (the
    test suite, in process) paid for each. Each command still says its help in its own
    language (segmerge.cli.help.speak)."""
    return typer.main.get_command(app)


if __name__ == "__main__":
    main()
