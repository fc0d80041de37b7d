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

import re
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from segmerge.errors import ConfigError
from segmerge.i18n import _, day, percent
from segmerge.ledger.store import Ledger
from segmerge.ports.schema import Tables
from segmerge.report.tracking_events import campaign_events, machines_note, tracked_events
from segmerge.report.verdicts import (
    Comparison,
    Group,
    Rate,
    sentence,
    settle,
    test_rates,
    test_revenue,
)
from segmerge.rules import load_ruleset
from segmerge.workspace.config import Workspace
from segmerge.workspace.kpi import KpiConfig

__all__ = ["EVENTS", "Comparison", "Group", "KpiReport", "Rate", "build", "kpi"]

EVENTS = {"open": "ouvertures", "click": "clics", "unsubscribe": "désabonnements"}
_DRAFT_ID = re.compile(r"draft(?: e-mail)? (\S+)")


@dataclass
class KpiReport:
    campaign: str
    run_id: str
    window: int
    sent_from: pd.Timestamp | None
    sent_to: pd.Timestamp | None
    data_until: pd.Timestamp | None
    groups: list[Group]
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    events_seen: bool = False
    closes: pd.Timestamp | None = None  # when the attribution window of the last send closes
    window_open: bool = True
    alpha: float = 0.05  # kpi_alpha: the level of every interval shown

    def interval_heading(self) -> str:
        """What the table's brackets are ("rates (95% CI)" / "taux (IC 95 %)"): the level
        follows kpi_alpha, so a reader never takes a 90 % interval for a 95 % one."""
        return _("rates ({level} CI)").format(level=percent(1 - self.alpha, 0))


def _not_enough(why: str) -> str:
    return _("not enough data: {why}").format(why=why)


def _window_hits(people: pd.DataFrame, table: pd.DataFrame, at: str, days: int) -> pd.DataFrame:
    """Rows of ``table`` (by contact) within each person's window after their send time."""
    m = people[["contact_id", "sent_at"]].merge(table, on="contact_id")
    end = m["sent_at"] + pd.Timedelta(days=days)
    return m[(m[at] > m["sent_at"]) & (m[at] <= end)]


def measure(
    people: pd.DataFrame, events: pd.DataFrame, orders: pd.DataFrame, days: int, ours: set[str]
) -> tuple[pd.DataFrame, str | None, bool]:
    """Per person: opened/clicked/unsubscribed/converted flags and revenue in the window.

    Returns the flags, a note on how events were matched, and whether any event fell in a
    window at all.
    """
    out = people[["contact_id"]].copy()
    ev = _window_hits(people, events[events["event"].isin(list(EVENTS))], "at", days)
    note = None
    if len(ev) and ev["campaign_id"].isin(list(ours)).any():
        ev = ev[ev["campaign_id"].isin(list(ours))]
        note = _("events matched to the campaign by their campaign_id")
    elif len(ev):
        note = _(
            "events of every campaign in the window: the destination does not tie opens "
            "and clicks to this campaign"
        )
    for e in EVENTS:
        hit = set(ev.loc[ev["event"] == e, "contact_id"])
        out[e] = people["contact_id"].isin(hit).to_numpy()
    od = _window_hits(people, orders, "ordered_at", days)
    spent = od.groupby("contact_id")["amount"].sum()
    out["conversion"] = people["contact_id"].isin(set(od["contact_id"])).to_numpy()
    out["revenue"] = people["contact_id"].map(spent).fillna(0.0).to_numpy(dtype=float)
    return out, note, bool(len(ev))


def _group(
    seg: str,
    variant: str | None,
    kind: str,
    flags: pd.DataFrame,
    events_defined: bool,
    orders_defined: bool = True,
    alpha: float = 0.05,
) -> Group:
    n = len(flags)
    rates: dict[str, Rate | None] = {}
    for e in [*EVENTS, "conversion"]:
        defined = n > 0 and (orders_defined if e == "conversion" else events_defined)
        rates[e] = Rate(int(flags[e].sum()), n, alpha) if defined else None
    return Group(seg, variant, kind, n, rates, flags["revenue"].to_numpy(dtype=float))


# --- reading a run --------------------------------------------------------------------------


def run_people(ledger: Ledger, run_id: str) -> pd.DataFrame:
    """contact_id, segment, variant, status, kind, sent_at of the run's recipients and held-out.

    Our sends are ``kind='send'`` rows, stamped when delivered. A platform campaign with
    an experiment has ``kind='member'`` rows instead (:mod:`segmerge.run.groups`): the
    marketer sent the drafts from the platform, at a moment the ledger cannot know, so
    their send time is the run's start (the page says so).
    """
    rows = ledger.db.execute(
        "SELECT a.contact_id, a.segment, a.variant, a.status, a.kind, CASE a.kind WHEN "
        "'member' THEN r.started_at ELSE a.updated_at END AS updated_at FROM actions a "
        "JOIN runs r ON r.run_id = a.run_id WHERE a.run_id=? AND a.kind IN ('send', "
        "'member') AND a.status IN ('done', 'holdout')",
        (run_id,),
    ).fetchall()
    people = pd.DataFrame(
        [dict(r) for r in rows],
        columns=["contact_id", "segment", "variant", "status", "kind", "updated_at"],
    )
    people["contact_id"] = people["contact_id"].astype("string")
    people["sent_at"] = pd.to_datetime(people.pop("updated_at"), utc=True, format="ISO8601")
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
    ids = {campaign, run_id}
    for r in ledger.db.execute(
        "SELECT detail FROM actions WHERE run_id=? AND kind='create_campaign' AND status='done'",
        (run_id,),
    ):
        if m := _DRAFT_ID.search(r[0] or ""):
            ids.add(m.group(1))
    return ids


def latest_run(ledger: Ledger, campaign: str) -> str | None:
    for r in ledger.runs(campaign, limit=100):
        if ledger.db.execute(
            "SELECT 1 FROM actions WHERE run_id=? AND kind IN ('send', "
            "'member') AND status='done' LIMIT 1",
            (r["run_id"],),
        ).fetchone():
            return str(r["run_id"])
    return None


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
    from segmerge.run.pipeline import ledger_path
    from segmerge.segment import order_rules as source_rules
    from segmerge.segment.segmentation import open_source, pull_source

    cfg = ws.campaign(campaign)
    if window < 1:
        raise ConfigError(_("the attribution window is at least 1 day"), field="--window")
    ledger = Ledger.open_existing(ledger_path(ws))
    if ledger is None:
        raise ConfigError(
            _("no run of {campaign} yet").format(campaign=campaign), hint=f"segmerge run {campaign}"
        )
    try:
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
    finally:
        ledger.close()
    if tables is None:
        src = open_source(ws, cfg.source)
        try:
            tables = pull_source(ws, src)
        finally:
            src.close()
        _rules, tables = source_rules.apply(ws, cfg.source, tables)  # cancelled orders earn nothing
    events, orders = _prepared(tables)
    source_events, events = events, campaign_events(events, tracked, ours)  # its own only
    order = [s.name for s in load_ruleset(ws.path(cfg.rules)).segments]
    until = _latest(pd.concat([source_events, tracked]), orders)  # any campaign's: coverage
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


def _latest(events: pd.DataFrame, orders: pd.DataFrame) -> pd.Timestamp | None:
    """How far the data go: the latest event (of any campaign) or order."""
    stamps = pd.concat([events["at"], orders["ordered_at"]]).dropna()
    return stamps.max() if len(stamps) else None


def build(
    campaign: str,
    run_id: str,
    people: pd.DataFrame,
    events: pd.DataFrame,
    orders: pd.DataFrame,
    window: int,
    ours: set[str],
    order: list[str] | None = None,
    *,
    settings: KpiConfig | None = None,
    now: datetime | None = None,
    currency: str = "EUR",
    data_until: pd.Timestamp | None = None,
) -> KpiReport:
    """Groups, comparisons and verdicts from the run's people and the pulled tables (pure
    but for ``now``, the moment the window is judged open or closed: the clock by default)."""
    cfg = settings or KpiConfig()
    sent = people[people["status"] == "done"]
    held = people[people["status"] == "holdout"]
    until = data_until if data_until is not None else _latest(events, orders)
    report = KpiReport(
        campaign,
        run_id,
        window,
        sent["sent_at"].min() if len(sent) else None,
        sent["sent_at"].max() if len(sent) else None,
        until,
        [],
        [],
        alpha=cfg.kpi_alpha,
    )
    if sent.empty:
        report.notes.append(_not_enough(_("no message sent by {run}").format(run=run_id)))
        return report
    flags, note, seen = measure(people, events, orders, window, ours)
    report.events_seen = seen
    if note:
        report.notes.append(note)
    if not seen:
        upto = _(" (the data go up to {day})").format(day=day(until)) if until is not None else ""
        nothing = _("no open, click or unsubscribe in the {days} days after the send{upto}")
        report.notes.append(_not_enough(nothing.format(days=window, upto=upto)))
    _window_state(report, pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC"))
    flags.index = people.index
    found = set(people["segment"].astype(str))
    seg_order = [s for s in order or [] if s in found] + sorted(found - set(order or []))
    after = until is not None and report.sent_from is not None and until > report.sent_from
    if not after:
        report.notes.append(
            _not_enough(_("the source's data stop before the send: no order can be attributed yet"))
        )

    def group(s: str, v: str | None, kind: str, idx: pd.Index, events_ok: bool) -> Group:
        return _group(s, v, kind, flags.loc[idx], events_ok, after, cfg.kpi_alpha)

    def versus(a: Group, b: Group, measures: tuple[str, ...]) -> None:
        for e in measures:
            report.comparisons.append(test_rates(a, b, e, cfg))
        report.comparisons.append(test_revenue(a, b, cfg))

    all_sent = group(_("everyone"), None, "send", sent.index, seen)
    for s in seg_order:
        mine = sent[sent["segment"].astype(str) == s]
        variants = sorted({str(v) for v in mine["variant"].dropna()})
        whole = group(s, None, "send", mine.index, seen)
        groups = [
            group(s, v, "send", mine.index[mine["variant"] == v], seen) for v in variants
        ] or [whole]
        if len(variants) > 1:
            report.groups.append(whole)
        report.groups.extend(groups)
        for g in groups[1:]:
            versus(g, groups[0], ("open", "click", "conversion"))
        control = held[held["segment"].astype(str) == s]
        if len(held):
            c = group(s, None, "control", control.index, False)
            report.groups.append(c)
            versus(whole, c, ("conversion",))
    report.groups.append(all_sent)
    if len(held):
        c = group(_("everyone"), None, "control", held.index, False)
        report.groups.append(c)
        versus(all_sent, c, ("conversion",))
    report.notes.extend(
        settle(report.comparisons, cfg, report.closes, report.window_open, currency)
    )
    return report


def _window_state(report: KpiReport, now: pd.Timestamp) -> None:
    """Open until the last send's window has passed and the source's data reach its end."""
    assert report.sent_to is not None
    report.closes = report.sent_to + pd.Timedelta(days=report.window)
    until = report.data_until
    report.window_open = until is None or min(now, until) < report.closes
    if not report.window_open:
        return
    when = f"{day(report.closes)} {report.closes:%H:%M}"
    if now >= report.closes:
        stale = _(
            "the source's data stop on {until}, before the attribution window closed on "
            "{day} UTC: no verdict until they cover it"
        )
        report.notes.append(stale.format(until=day(until) if until is not None else "—", day=when))
    else:
        report.notes.append(
            _(
                "the attribution window is still open: it closes on {day} UTC, "
                "no verdict before then"
            ).format(day=when)
        )


def add_baseline(
    report: KpiReport,
    name: str,
    run_id: str,
    people: pd.DataFrame,
    events: pd.DataFrame,
    orders: pd.DataFrame,
    ours: set[str],
    *,
    settings: KpiConfig | None = None,
    currency: str = "EUR",
) -> None:
    """Describe the segmented campaign, overall and per segment, next to a generic one's run:
    another population or period, so no test and no winner."""
    cfg = settings or KpiConfig()
    sent = people[people["status"] == "done"]
    flags, _note, seen = measure(sent, events, orders, report.window, ours)
    until = report.data_until
    after = until is not None and len(sent) > 0 and until > sent["sent_at"].min()
    base = _group(name, None, "baseline", flags, seen and report.events_seen, after, cfg.kpi_alpha)
    report.notes.append(
        _(
            "baseline: {name}, run {run}; its comparisons are descriptive (another "
            "population or period), never a verdict"
        ).format(name=name, run=run_id)
    )
    report.groups.append(base)
    for g in report.groups:
        if g.kind == "send" and g.variant is None:
            found = [
                test_rates(g, base, e, cfg, descriptive=True)
                for e in ("open", "click", "conversion")
            ]
            found.append(test_revenue(g, base, cfg, descriptive=True))
            for c in found:
                c.verdict = sentence(c, cfg, report.closes, currency)
            report.comparisons.extend(found)
