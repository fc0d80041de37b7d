"""The `segmerge schedule add/list/remove` and `segmerge serve` commands.

Kept out of bot.py so the daemon's options live next to each other; bot.py
calls :func:`register`. Like bot.py, these only parse, call the engine and
print: user errors are SegmergeErrors that bot.main turns into one line and
exit 2 (or 1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segmerge.cli.console import err, out
from segmerge.cli.options import WorkspaceOpt, load_workspace
from segmerge.errors import ConfigError
from segmerge.i18n import _, lang, ngettext

if TYPE_CHECKING:
    from segmerge.workspace import config as wsmod

schedule_app = typer.Typer(
    help="Cron-style schedules, in the workspace time zone (see `segmerge serve`).",
    no_args_is_help=True,
)


@schedule_app.command("add")
def schedule_add(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    cron: Annotated[str, typer.Argument(help='Cron expression, e.g. "0 9 * * MON".')],
    workspace: WorkspaceOpt = None,
) -> None:
    """Run CAMPAIGN on a cron schedule (minute hour day month weekday, workspace time zone).

    Example: segmerge schedule add profils "0 9 * * MON"
    """
    ws = load_workspace(workspace)
    ws.campaign(campaign)  # an unknown campaign is an error naming the known ones
    from segmerge.serve.cron import ScheduleStore, next_fires, normalize_cron, parse_cron

    trig = parse_cron(cron, ws.tz, field="CRON")
    expr = normalize_cron(cron)
    store = ScheduleStore(ws)
    try:
        new = store.add(campaign, expr)
    finally:
        store.close()
    fires = ", ".join(_fmt(t, ws) for t in next_fires(trig, 3))
    said = (
        _("Added: {campaign} {cron} ({zone}); next: {fires}")
        if new
        else _("Already there: {campaign} {cron} ({zone}); next: {fires}")
    )
    out.print(
        said.format(campaign=campaign, cron=expr, zone=ws.config.timezone, fires=fires),
        highlight=False,
        markup=False,
    )
    out.print(_("A running `segmerge serve` picks it up when restarted."), style="dim")


@schedule_app.command("list")
def schedule_list(
    count: Annotated[int, typer.Option("--next", help="How many next fire times.")] = 3,
    workspace: WorkspaceOpt = None,
) -> None:
    """Every schedule (from segmerge.toml and added) and its next fire times.

    Example: segmerge schedule list
    """
    ws = load_workspace(workspace)
    from rich.table import Table

    from segmerge.serve.cron import load_schedules, next_fires

    schedules = load_schedules(ws)
    if not schedules:
        out.print(
            _('No schedule. Add one: segmerge schedule add CAMPAIGN "0 9 * * MON"'), markup=False
        )
        return
    t = Table(title=_("schedules ({zone})").format(zone=ws.config.timezone))
    for c in (_("campaign"), "cron", _("time zone"), _("origin"), _("next fire times")):
        t.add_column(c)
    for s in schedules:
        fires = "\n".join(_fmt(x, ws) for x in next_fires(s.trigger, count))
        origin = _(s.origin) + ("" if s.known else " " + _("(unknown campaign)"))
        t.add_row(s.campaign, s.cron, ws.config.timezone, origin, fires)
    out.print(t)


@schedule_app.command("remove")
def schedule_remove(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    cron: Annotated[str | None, typer.Argument(help="Only this expression.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove the schedules added for CAMPAIGN (those in segmerge.toml are edited there).

    Example: segmerge schedule remove profils
    """
    ws = load_workspace(workspace)
    from segmerge.serve.cron import ScheduleStore, normalize_cron

    store = ScheduleStore(ws)
    try:
        n = store.remove(campaign, normalize_cron(cron) if cron else None)
    finally:
        store.close()
    in_toml = campaign in ws.config.campaigns and ws.config.campaigns[campaign].schedule
    if n:
        gone = ngettext(
            "Removed {n} schedule of {campaign}.", "Removed {n} schedules of {campaign}.", n
        )
        out.print(gone.format(n=n, campaign=campaign), markup=False)
        if in_toml:
            still = _("{campaign} still has `schedule =` in segmerge.toml.")
            out.print(still.format(campaign=campaign), style="dim", markup=False)
        return
    if in_toml:
        raise ConfigError(
            _("the schedule of {campaign} comes from segmerge.toml").format(campaign=campaign),
            file=ws.config_file,
            field=f"campaigns.{campaign}.schedule",
            hint=_("delete or change the `schedule =` line there"),
        )
    out.print(_("No added schedule for {campaign}.").format(campaign=campaign), markup=False)


def serve_command(
    workspace: WorkspaceOpt = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Also write JSON lines to this file.")
    ] = None,
    misfire_grace_time: Annotated[
        int,
        typer.Option(
            "--misfire-grace-time",
            min=1,
            help="Seconds a late fire may still run (after downtime or a long run).",
        ),
    ] = 3600,
    run_on_start: Annotated[
        bool, typer.Option("--run-on-start", help="Run every scheduled campaign once right away.")
    ] = False,
    unsubscribe_port: Annotated[
        int | None,
        typer.Option(
            "--unsubscribe-port",
            min=0,
            max=65535,
            help="Serve the one-click unsubscribe endpoint (RFC 8058) on this port.",
        ),
    ] = None,
    unsubscribe_host: Annotated[
        str, typer.Option("--unsubscribe-host", help="Address the endpoint listens on.")
    ] = "127.0.0.1",
    max_run_time: Annotated[
        list[str] | None,
        typer.Option(
            "--max-run-time",
            metavar="[CAMPAIGN=]TIME",
            help="Longest a run may take before it is stopped and logged as failed (90s, 30m, "
            "6h; default 6h). CAMPAIGN=TIME sets one campaign's; repeatable.",
        ),
    ] = None,
    stop_grace: Annotated[
        str,
        typer.Option(
            "--stop-grace",
            metavar="TIME",
            help="After SIGTERM (or a max run time), how long a run has to finish its batch "
            "before it is killed with every process it started.",
        ),
    ] = "10s",
) -> None:
    """Run every schedule unattended until SIGTERM or Ctrl-C; logs go to stderr.

    One serve per workspace. Campaigns run side by side, each in a process of its own;
    a run longer than --max-run-time is stopped and logged as failed, and a failed
    run is retried at its next fire. SIGTERM stops every run within --stop-grace.

    Example: segmerge serve -w ~/boutique --log-file ~/boutique/serve.jsonl
    """
    from segmerge.serve.main import ServeOptions, serve
    from segmerge.workspace.secrets import exposure_warnings

    ws = load_workspace(workspace)
    for w in exposure_warnings(ws.root):  # a credential file others can read
        err.print(f"! {w}", style="yellow", markup=False, highlight=False)
    opts = ServeOptions(
        misfire_grace_time=misfire_grace_time,
        log_file=log_file,
        run_on_start=run_on_start,
        unsubscribe_port=unsubscribe_port,
        unsubscribe_host=unsubscribe_host,
        stop_grace=parse_duration(stop_grace, "--stop-grace"),
    )
    for item in max_run_time or []:
        name, sep, value = item.rpartition("=")
        seconds = parse_duration(value, "--max-run-time")
        if not sep:
            opts.max_run_time = seconds
            continue
        if name not in ws.config.campaigns:
            raise ConfigError(
                _("--max-run-time names no campaign of this workspace: {name}").format(
                    name=repr(name)
                ),
                field="--max-run-time",
                hint=_("campaigns: {names}").format(names=", ".join(ws.config.campaigns)),
            )
        opts.max_run_times[name] = seconds
    raise typer.Exit(serve(ws, opts))


def parse_duration(text: str, option: str) -> float:
    """`90`, `90s`, `30m`, `6h`: seconds, or a ConfigError naming the option (exit 2)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(
            _("{option} expects a duration like 90s, 30m or 6h, got {text}").format(
                option=option, text=repr(text)
            ),
            field=option,
        )
    return float(m.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2) or "s"]


def _fmt(t: object, ws: wsmod.Workspace) -> str:
    from datetime import datetime

    assert isinstance(t, datetime)
    local = t.astimezone(ws.tz)
    clock = local.strftime("%H:%M" + (":%S" if local.second else "") + " %Z")
    if lang() == "fr":  # "lun. 7 déc. 2026 09:00 CET": babel's day names, the day first
        from babel.dates import format_date

        return f"{format_date(local.date(), 'EEE d MMM y', locale='fr')} {clock}"
    return local.strftime("%a %Y-%m-%d ") + clock


def register(app: typer.Typer) -> None:
    """Add `schedule` (add/list/remove) and `serve` to the segmerge app."""
    app.add_typer(schedule_app, name="schedule")
    app.command("serve")(serve_command)
