"""Did it work? Rates per segment and variant after a run, with honest intervals.

For each message a run delivered (ledger ``kind='send'``, ``status='done'``),
the attribution window is ``(send time, send time + window days]``. In it:

- open, click and unsubscribe rates: share of recipients with at least one such
  event of this campaign only (:mod:`segmerge.report.tracking_events`): for our own sends
  (SMTP, an outbox) the opens and clicks `serve` tracked for the run, for a
  platform its events carrying this campaign's name, run id or draft ids;
- conversion rate and revenue per recipient: orders in the window.

The control group (``status='holdout'``: got nothing) gets the same window from
the time it was recorded: its orders measure what would have happened anyway;
opens and clicks are not defined for it. A campaign naming a ``baseline``
(generic, unsegmented) campaign is compared with that campaign's latest run,
descriptively: another population or period is not an experiment.

Intervals are Wilson (one rate), Newcombe (a difference of rates) and Welch
(revenue per recipient), at the campaign's ``kpi_alpha``; the verdicts, their
error budget and the power figures are :mod:`segmerge.report.verdicts`'s, the
formulas :mod:`segmerge.report.stats`'s. No verdict is given before the attribution
window has closed (the last send plus the window) and the source's data reach
that moment.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from segmerge.errors import ConfigError
from segmerge.i18n import _, day
from segmerge.ledger.store import Ledger
from segmerge.ports.schema import Tables
from segmerge.report.kpi_build import EVENTS, KpiReport, Orders, add_baseline, build, data_end
from segmerge.report.kpi_orders import count_orders, kpi_tables
from segmerge.report.tracking_events import campaign_events, machines_note, tracked_events
from segmerge.report.verdicts import Comparison, Group, Rate
from segmerge.rules import load_ruleset
from segmerge.workspace.config import Workspace

__all__ = [
    "EVENTS",
    "Comparison",
    "Group",
    "KpiReport",
    "Rate",
    "add_baseline",
    "build",
    "kpi",
    "latest_run",
    "platform_note",
    "run_people",
]


# --- reading a run --------------------------------------------------------------------------


def run_people(ledger: Ledger, run_id: str) -> pd.DataFrame:
    """contact_id, segment, variant, status, kind, sent_at of the run's recipients and held-out.

    Our sends are ``kind='send'`` rows, stamped when delivered. A platform campaign with
    an experiment has ``kind='member'`` rows instead (:mod:`segmerge.run.groups`): the
    marketer sent the drafts from the platform, at a moment the ledger cannot know, so
    their send time is the run's start (the page says so).
    """
    people = pd.DataFrame(
        ledger.recipients(run_id),
        columns=["contact_id", "segment", "variant", "status", "kind", "sent_at"],
    )
    people["contact_id"] = people["contact_id"].astype("string")
    people["sent_at"] = pd.to_datetime(people["sent_at"], utc=True, format="ISO8601")
    return people


def platform_note(people: pd.DataFrame) -> str | None:
    """Why a platform campaign's windows start at the run, not at the send."""
    members = people[people["kind"] == "member"]
    if members.empty:
        return None
    at = members["sent_at"].min()
    return _(
        "a platform sent these letters from the run's drafts: Segmerge cannot know when, so "
        "each window starts at the run's time ({day} {time} UTC); the groups (variants, "
        "control group) are the ones the run put in its tags and lists"
    ).format(day=day(at), time=f"{at:%H:%M}")


def our_ids(ledger: Ledger, campaign: str, run_id: str) -> set[str]:
    """campaign_id values that mean "this run": its name, its run id, its drafts' platform ids."""
    return {campaign, run_id} | ledger.platform_ids(run_id, "create_campaign")


def latest_run(ledger: Ledger, campaign: str) -> str | None:
    """The campaign's latest run with letters to measure (sent, or a platform's groups)."""
    return ledger.latest_run_with_letters(campaign)


def kpi(
    ws: Workspace,
    campaign: str,
    *,
    run_id: str | None = None,
    window: int = 14,
    tables: Tables | None = None,
    now: datetime | None = None,
) -> KpiReport:
    """The `segmerge kpi` report: read the ledger, pull the source now, measure, compare."""
    from segmerge.segment import order_rules as source_rules
    from segmerge.segment.segmentation import open_source, pull_source

    cfg = ws.campaign(campaign)
    if window < 1:
        raise ConfigError(_("the attribution window is at least 1 day"), field="--window")
    ledger = Ledger.open_existing(ws.ledger_path)
    if ledger is None:
        raise ConfigError(
            _("no run of {campaign} yet").format(campaign=campaign),
            hint=_("segmerge run {campaign}").format(campaign=campaign),
        )
    with ledger:
        run_id = run_id or latest_run(ledger, campaign)
        found = ledger.run(run_id) if run_id else None
        if found is None or found["campaign"] != campaign:
            what = (
                _("no run {run} of {campaign}")
                if run_id
                else _("no run of {campaign} with messages sent yet")
            )
            raise ConfigError(
                what.format(run=run_id, campaign=campaign),
                field="--run",
                hint=_(
                    "see `segmerge history`; kpi measures the messages Segmerge sent, and the "
                    "groups of a platform campaign with a holdout or variants"
                ),
            )
        assert run_id is not None
        people = run_people(ledger, run_id)
        ours = our_ids(ledger, campaign, run_id)
        base_name = getattr(cfg, "baseline", None)
        base_run = latest_run(ledger, base_name) if base_name else None
        base_people = run_people(ledger, base_run) if base_run else None
        base_ours = our_ids(ledger, base_name, base_run) if base_name and base_run else set()
        tracked = tracked_events(ledger, [run_id, base_run])
        machines = machines_note(ledger, run_id)  # tracked hits set aside as scanners'
    counted: Orders | None = None
    if tables is None:
        src = open_source(ws, cfg.source)
        try:
            if src.dialect is not None:  # orders counted where they are, per window
                tables = kpi_tables(src)
                peoples = [people, base_people]
                counted = count_orders(ws, cfg.source, src, peoples, window)
            else:
                tables = pull_source(ws, src)
        finally:
            src.close()
        _rules, tables = source_rules.apply(ws, cfg.source, tables)  # cancelled orders earn nothing
    events, pulled = _prepared(tables)
    orders: Orders = pulled if counted is None else counted
    source_events, events = events, campaign_events(events, tracked, ours)  # its own only
    order = [s.name for s in load_ruleset(ws.path(cfg.rules)).segments]
    until = data_end(pd.concat([source_events, tracked]), orders)  # any campaign's: coverage
    report = build(
        campaign,
        run_id,
        people,
        events,
        orders,
        window,
        ours,
        order,
        settings=cfg,
        now=now,
        currency=ws.config.currency,
        data_until=until,
    )
    if base_name:
        if base_people is None or base_people.empty:
            report.notes.append(
                _("baseline campaign {name}: no send recorded, no comparison").format(
                    name=base_name
                )
            )
        else:
            base_events = campaign_events(source_events, tracked, base_ours)
            add_baseline(
                report,
                base_name,
                base_run or "",
                base_people,
                base_events,
                orders,
                base_ours,
                settings=cfg,
                currency=ws.config.currency,
            )
    if note := platform_note(people):
        report.notes.insert(0, note)
    if machines:
        report.notes.append(machines)
    return report


def _prepared(tables: Tables) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = tables.events[["contact_id", "campaign_id", "event", "at"]].copy()
    orders = tables.orders[["contact_id", "ordered_at", "amount"]].copy()
    for t in (events, orders):
        t["contact_id"] = t["contact_id"].astype("string")
    events["campaign_id"] = events["campaign_id"].astype("string")
    events["event"] = events["event"].astype("string")
    orders["amount"] = orders["amount"].astype(float)
    return events, orders
