"""`segmerge validate`: each campaign opened as a run opens it, every letter filled.

What validate prints per campaign: its segment sizes, the connectors' checks,
how many letters were filled for how many contacts (every contact of every
segment: :mod:`segmerge.run.letters_check`), the contact pressure that applies
(the default cap when the workspace sets none, said so: a second campaign
the same day is held back by it, which must not surprise), and the warnings.
A letter that cannot be filled for some contact stops it with exit 2, the
count and three examples, so `run` never finds it first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

from segmerge.cli.console import out
from segmerge.i18n import _
from segmerge.workspace.config import Workspace

if TYPE_CHECKING:
    from segmerge.ports.schema import Tables


def validate_workspace(ws: Workspace, campaign: str | None, as_of: str | None) -> None:
    """Open each campaign (or the one named) as a run would and fill its letters; then,
    when no campaign is named, read every source no campaign uses."""
    from segmerge.cli.sources import validate_unused_sources
    from segmerge.ledger.backup import check_before_run
    from segmerge.ledger.health import signing_key
    from segmerge.run.campaign import open_campaign, validate_templates
    from segmerge.run.letters_check import fill_every_letter, refuse_unfilled
    from segmerge.serve.endpoint.reachability import check_tracking

    check_before_run(ws)  # a lost or damaged key or ledger is the first thing to fix
    names = [campaign] if campaign else list(ws.config.campaigns)
    pulled: dict[str, Tables] = {}  # campaigns on one source: one pull
    for name in names:
        camp = open_campaign(ws, name, as_of=as_of, pulled=pulled)
        try:
            filled = None
            if "send" in camp.destination.accepts:  # our own sends: every contact's letter
                filled = fill_every_letter(camp, signing_key(ws.state_dir, create=False))
                refuse_unfilled(name, filled)
            notes = validate_templates(camp)  # empty segments, drafts: one sample each
        finally:
            camp.close()
        sizes = ", ".join(f"{k} {v}" for k, v in camp.seg.assignment.sizes().items())
        out.print(f"[green]✓[/] {escape(name)}: {escape(sizes)}")
        for c in camp.checks:
            out.print(f"  [green]✓[/] {escape(str(c))}")
        if filled is not None:
            out.print(f"  [green]✓[/] {escape(filled.summary())}")
        for w in [*camp.seg.ruleset.warnings(), *notes, *camp.seg.tables.notes]:
            out.print(f"  [yellow]![/] {escape(str(w))}")
    if names:
        out.print(f"[dim]{escape(pressure_line(ws))}[/]")
    if (reach := check_tracking(ws)) is not None:  # tracking on: does /t/ reach serve?
        mark = "[green]✓[/]" if reach.ok else "[yellow]![/]"
        fix = f"\n  {escape(reach.fix)}" if reach.fix else ""
        out.print(f"{mark} {escape(reach.what)}{fix}")
    if campaign is None:
        validate_unused_sources(ws)


def pressure_line(ws: Workspace) -> str:
    """The contact pressure every campaign's sends obey, and where it comes from."""
    p = ws.config.pressure
    if p.default_cap:
        return _(
            "contact pressure: the default cap applies, at most one message per address "
            "per day, all campaigns together (set [pressure] in segmerge.toml to change "
            "it, max_messages = 0 for none)"
        )
    return _("contact pressure: {policy}").format(policy=p.shown() or _("no cap"))
