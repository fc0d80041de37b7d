"""What `segmerge run` checks before it runs, and says after a dry run.

A bare `segmerge run` used to run every campaign of the workspace: one
forgotten argument mailed every list at once. It now needs a campaign's name,
or `--all` to say that is really meant. And a dry run of a run that already
finished must say so: "would do: send 0" alone reads as "the campaign mails
nobody", when it means "this run is done".
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segmerge.errors import ConfigError
from segmerge.i18n import _, ngettext, number
from segmerge.workspace.config import Workspace


def campaigns_to_run(ws: Workspace, campaign: str | None, every: bool) -> list[str]:
    """The campaigns a `run` command names: one, or all of them with ``--all``."""
    names = list(ws.config.campaigns)
    if campaign is not None and every:
        raise ConfigError(_("give one campaign or --all, not both"), field="--all")
    if campaign is not None:
        return [campaign]
    if every:
        return names
    example = names[0] if names else "CAMPAIGN"
    raise ConfigError(
        _("no campaign given: `segmerge run` runs one campaign, or every campaign with --all"),
        field="CAMPAIGN",
        hint=_("campaigns: {names}; e.g. segmerge run {example} --dry-run").format(
            names=", ".join(names) or "-", example=example
        ),
    )


def finished_note(ws: Workspace, summary: Any) -> str | None:
    """For a dry run: whether its run already ran, and what running it again would do."""
    from segmerge.ledger.store import Ledger

    ledger = Ledger.open_existing(ws.ledger_path)
    if ledger is None:
        return None
    with ledger:
        past = ledger.run(summary.run_id)
    if past is None:
        return None
    left = sum(summary.planned.values())
    when = _local(ws, past.get("ended_at") or past.get("started_at"))
    if past.get("status") != "done":
        return _(
            "run {run} was started on {when} and is not finished: running it again completes it"
        ).format(run=summary.run_id, when=when)
    if not left:
        return _(
            "run {run} is finished (ended {when}): nothing is left to do, running it "
            "again sends nothing"
        ).format(run=summary.run_id, when=when)
    return ngettext(
        "run {run} is finished (ended {when}): running it again would only do the {n} "
        "action above (contacts or data new since)",
        "run {run} is finished (ended {when}): running it again would only do the {n} "
        "actions above (contacts or data new since)",
        left,
    ).format(run=summary.run_id, when=when, n=number(left))


def _local(ws: Workspace, iso: str | None) -> str:
    if not iso:
        return "?"
    return f"{pd.Timestamp(iso).tz_convert(ws.tz):%Y-%m-%d %H:%M}"
