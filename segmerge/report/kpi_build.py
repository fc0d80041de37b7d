"""Groups, comparisons and verdicts of `segmerge kpi`, from a run's people and the tables.

Pure (but for the clock that says whether a window is still open): the numbers
can be checked by hand from a few rows (tests/test_kpi.py, test_verdicts.py),
with no ledger and no source; :mod:`segmerge.report.kpi` reads those and calls
:func:`build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias

import numpy as np
import pandas as pd

from segmerge.i18n import _, day, percent
from segmerge.report.verdicts import (
    Comparison,
    Group,
    Rate,
    sentence,
    settle,
    test_rates,
    test_revenue,
)
from segmerge.workspace.kpi import KpiConfig

EVENTS = {"open": "ouvertures", "click": "clics", "unsubscribe": "désabonnements"}


class OrderHits(Protocol):
    """Orders counted where they live (segmerge.report.kpi_orders.DatabaseOrders)."""

    until: pd.Timestamp | None

    def hits(self, people: pd.DataFrame, days: int) -> tuple[np.ndarray, np.ndarray]: ...


#: the orders `kpi` measures: their rows, or each recipient's window counted elsewhere
Orders: TypeAlias = pd.DataFrame | OrderHits


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
    people: pd.DataFrame, events: pd.DataFrame, orders: Orders, days: int, ours: set[str]
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
    if isinstance(orders, pd.DataFrame):
        od = _window_hits(people, orders, "ordered_at", days)
        spent = od.groupby("contact_id")["amount"].sum()
        out["conversion"] = people["contact_id"].isin(set(od["contact_id"])).to_numpy()
        out["revenue"] = people["contact_id"].map(spent).fillna(0.0).to_numpy(dtype=float)
    else:  # counted by the source's database (segmerge.report.kpi_orders)
        out["conversion"], out["revenue"] = orders.hits(people, days)
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


def build(
    campaign: str,
    run_id: str,
    people: pd.DataFrame,
    events: pd.DataFrame,
    orders: Orders,
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
    until = data_until if data_until is not None else data_end(events, orders)
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
    orders: Orders,
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


def data_end(events: pd.DataFrame, orders: Orders) -> pd.Timestamp | None:
    """How far the data go: the latest event (of any campaign) or order."""
    if not isinstance(orders, pd.DataFrame):
        last = pd.Series([orders.until], dtype=events["at"].dtype)
        orders = pd.DataFrame({"ordered_at": last})
    stamps = pd.concat([events["at"], orders["ordered_at"]]).dropna()
    return stamps.max() if len(stamps) else None
