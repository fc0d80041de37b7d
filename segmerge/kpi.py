"""Did it work? Rates per segment and variant after a run, with honest intervals.

For each message a run delivered (ledger ``kind='send'``, ``status='done'``),
the attribution window is ``(send time, send time + window days]``. In it:

- open, click and unsubscribe rates: share of recipients with at least one such
  event, from the source's events pulled now. Events are matched to the run by
  their ``campaign_id`` when some carry this campaign's name, its run id or a
  draft id the platform gave the run; otherwise (SMTP, an outbox: the platform
  cannot know Segmerge's campaign) events of *any* campaign in the window are
  counted, and the report says so;
- conversion rate and revenue per recipient: orders in the window.

The control group (``status='holdout'``: got nothing) gets the same window from
the time it was recorded: its orders measure what would have happened anyway;
opens and clicks are not defined for it. A campaign naming a ``baseline``
(generic, unsegmented) campaign is compared with that campaign's latest run.

Intervals are 95 %: Wilson score for one proportion, Newcombe's hybrid score
method for a difference of proportions, Welch's t for a difference of means
(revenue per recipient). When a difference is not significant, the verdict
says how many more recipients would be needed to see the observed difference
at alpha 0.05 with power 0.8 (normal approximation for two proportions, or
for two means with the pooled standard deviation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ConfigError
from .ledger import Ledger
from .quality import fr, newcombe, sample_size, sample_size_means, welch, wilson
from .rules import load_ruleset
from .schema import Tables
from .workspace import Workspace

EVENTS = {"open": "ouvertures", "click": "clics", "unsubscribe": "désabonnements"}
NOT_ENOUGH = "pas assez de données"
_DRAFT_ID = re.compile(r"draft(?: e-mail)? (\S+)")


# --- results --------------------------------------------------------------------------------


@dataclass
class Rate:
    count: int
    n: int

    @property
    def value(self) -> float:
        return self.count / self.n

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.count, self.n)


@dataclass
class Group:
    """Recipients (or the control group) of one segment and variant."""

    segment: str
    variant: str | None
    kind: str  # "envoi", "témoin" or "référence"
    n: int
    rates: dict[str, Rate | None]  # open, click, unsubscribe, conversion; None: not defined
    revenue: np.ndarray  # revenue in the window, one value per contact

    @property
    def name(self) -> str:
        parts = [self.segment] + ([self.variant] if self.variant else [])
        return " ".join(parts) + ("" if self.kind == "envoi" else f" ({self.kind})")

    @property
    def revenue_per_recipient(self) -> float | None:
        """None when orders after the send cannot be known yet (or nobody is in the group)."""
        return float(self.revenue.mean()) if self.rates.get("conversion") else None


@dataclass
class Comparison:
    first: str
    second: str
    measure: str  # an EVENTS key, "conversion" or "revenue"
    diff: float | None
    ci: tuple[float, float] | None
    verdict: str


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


MEASURES = {"open": "les ouvertures", "click": "les clics", "unsubscribe": "les désabonnements",
            "conversion": "la conversion", "revenue": "le revenu par destinataire"}  # fmt: skip


def _window_hits(people: pd.DataFrame, table: pd.DataFrame, at: str, days: int) -> pd.DataFrame:
    """Rows of ``table`` (by contact) within each person's window after their send time."""
    m = people[["contact_id", "sent_at"]].merge(table, on="contact_id")
    end = m["sent_at"] + pd.Timedelta(days=days)
    return m[(m[at] > m["sent_at"]) & (m[at] <= end)]


def measure(people: pd.DataFrame, events: pd.DataFrame, orders: pd.DataFrame, days: int,
            ours: set[str]) -> tuple[pd.DataFrame, str | None, bool]:  # fmt: skip
    """Per person: opened/clicked/unsubscribed/converted flags and revenue in the window.

    Returns the flags, a note on how events were matched, and whether any event fell in a
    window at all.
    """
    out = people[["contact_id"]].copy()
    ev = _window_hits(people, events[events["event"].isin(list(EVENTS))], "at", days)
    note = None
    if len(ev) and ev["campaign_id"].isin(list(ours)).any():
        ev = ev[ev["campaign_id"].isin(list(ours))]
        note = "événements rattachés à la campagne par leur campaign_id"
    elif len(ev):
        note = ("événements de toutes campagnes confondues dans la fenêtre : la destination ne "
                "rattache pas les ouvertures et les clics à cette campagne")  # fmt: skip
    for e in EVENTS:
        hit = set(ev.loc[ev["event"] == e, "contact_id"])
        out[e] = people["contact_id"].isin(hit).to_numpy()
    od = _window_hits(people, orders, "ordered_at", days)
    spent = od.groupby("contact_id")["amount"].sum()
    out["conversion"] = people["contact_id"].isin(set(od["contact_id"])).to_numpy()
    out["revenue"] = people["contact_id"].map(spent).fillna(0.0).to_numpy(dtype=float)
    return out, note, bool(len(ev))


def _group(seg: str, variant: str | None, kind: str, flags: pd.DataFrame,
           events_defined: bool, orders_defined: bool = True) -> Group:  # fmt: skip
    n = len(flags)
    rates: dict[str, Rate | None] = {}
    for e in [*EVENTS, "conversion"]:
        defined = n > 0 and (orders_defined if e == "conversion" else events_defined)
        rates[e] = Rate(int(flags[e].sum()), n) if defined else None
    return Group(seg, variant, kind, n, rates, flags["revenue"].to_numpy(dtype=float))


def compare_rates(a: Group, b: Group, e: str) -> Comparison:
    """Verdict on a's rate minus b's, in points, in French."""
    ra, rb = a.rates.get(e), b.rates.get(e)
    what = MEASURES[e]
    if ra is None or rb is None:
        empty = a if a.n == 0 else b if b.n == 0 else None
        why = f"le groupe {empty.name} est vide" if empty else "aucun événement dans la fenêtre"
        return Comparison(a.name, b.name, e, None, None, f"{_vs(a, b, e)}{NOT_ENOUGH} : {why}")
    d = ra.value - rb.value
    lo, hi = newcombe(ra.count, ra.n, rb.count, rb.n)
    ci = f"IC 95 % {fr(100 * lo, 1, True)} à {fr(100 * hi, 1, True)} points"
    if lo > 0 or hi < 0:
        win, lose, s = (a, b, 1) if d > 0 else (b, a, -1)
        wlo, whi = sorted((s * lo, s * hi))
        unit = "point" if abs(d) < 0.02 else "points"
        text = (f"{win.name} bat {lose.name} sur {what} : {fr(100 * abs(d), 1, True)} {unit} "
                f"(IC 95 % {fr(100 * wlo, 1, True)} à {fr(100 * whi, 1, True)})")  # fmt: skip
        return Comparison(a.name, b.name, e, d, (lo, hi), text)
    need = sample_size(ra.value, rb.value)
    return Comparison(a.name, b.name, e, d, (lo, hi), _vs(a, b, e) + _not_yet(need, a.n, b.n, ci))


def compare_revenue(a: Group, b: Group) -> Comparison:
    w = welch(a.revenue, b.revenue)
    if a.revenue_per_recipient is None or b.revenue_per_recipient is None:
        return Comparison(a.name, b.name, "revenue", None, None, f"{_vs(a, b, 'revenue')}"
                          f"{NOT_ENOUGH} : aucune commande observable après l'envoi")  # fmt: skip
    if w is None:
        return Comparison(a.name, b.name, "revenue", None, None, f"{_vs(a, b, 'revenue')}"
                          f"{NOT_ENOUGH} : il faut au moins 2 contacts par groupe")  # fmt: skip
    d, lo, hi = w
    ci = f"IC 95 % {fr(lo, 2, True)} à {fr(hi, 2, True)} €"
    if lo > 0 or hi < 0:
        win, lose, s = (a, b, 1) if d > 0 else (b, a, -1)
        wlo, whi = sorted((s * lo, s * hi))
        text = (f"{win.name} bat {lose.name} sur {MEASURES['revenue']} : {fr(abs(d), 2, True)} € "
                f"(IC 95 % {fr(wlo, 2, True)} à {fr(whi, 2, True)} €)")  # fmt: skip
        return Comparison(a.name, b.name, "revenue", d, (lo, hi), text)
    sd = float(np.sqrt((a.revenue.var(ddof=1) + b.revenue.var(ddof=1)) / 2))
    return Comparison(a.name, b.name, "revenue", d, (lo, hi), _vs(a, b, "revenue")
                      + _not_yet(sample_size_means(d, sd), a.n, b.n, ci))  # fmt: skip


def _vs(a: Group, b: Group, e: str) -> str:
    return f"{a.name} contre {b.name}, {MEASURES[e]} : "


def _not_yet(need: int | None, n1: int, n2: int, ci: str) -> str:
    if need is None:
        return f"aucune différence observée ({ci})"
    more = max(0, need - n1) + max(0, need - n2)
    if more == 0:
        return f"pas de différence significative ({ci})"
    if more > 20 * (n1 + n2):
        return f"pas de différence mesurable à cette échelle : les deux font jeu égal ({ci})"
    more_text = f"il faut environ {fr(more, 0)} destinataires de plus"
    return f"pas encore assez de données : {more_text} ({ci})"


# --- reading a run --------------------------------------------------------------------------


def run_people(ledger: Ledger, run_id: str) -> pd.DataFrame:
    """contact_id, segment, variant, status, sent_at of the run's delivered and held-out."""
    rows = ledger.db.execute(
        "SELECT contact_id, segment, variant, status, updated_at FROM actions "
        "WHERE run_id=? AND kind='send' AND status IN ('done', 'holdout')",
        (run_id,),
    ).fetchall()
    people = pd.DataFrame(
        [dict(r) for r in rows],
        columns=["contact_id", "segment", "variant", "status", "updated_at"],
    )
    people["contact_id"] = people["contact_id"].astype("string")
    people["sent_at"] = pd.to_datetime(people.pop("updated_at"), utc=True, format="ISO8601")
    return people


def our_ids(ledger: Ledger, campaign: str, run_id: str) -> set[str]:
    """campaign_id values that mean "this run": its name, its run id, its drafts' platform ids."""
    ids = {campaign, run_id}
    for r in ledger.db.execute("SELECT detail FROM actions WHERE run_id=? AND kind="
                               "'create_campaign' AND status='done'", (run_id,)):  # fmt: skip
        if m := _DRAFT_ID.search(r[0] or ""):
            ids.add(m.group(1))
    return ids


def latest_run(ledger: Ledger, campaign: str) -> str | None:
    for r in ledger.runs(campaign, limit=100):
        if ledger.db.execute("SELECT 1 FROM actions WHERE run_id=? AND kind='send' AND "
                             "status='done' LIMIT 1", (r["run_id"],)).fetchone():  # fmt: skip
            return str(r["run_id"])
    return None


def kpi(ws: Workspace, campaign: str, *, run_id: str | None = None, window: int = 14,
        tables: Tables | None = None) -> KpiReport:  # fmt: skip
    """The `segmerge kpi` report: read the ledger, pull the source now, measure, compare."""
    from . import source_rules
    from .pipeline import ledger_path
    from .segmentation import open_source, pull_source

    cfg = ws.campaign(campaign)
    if window < 1:
        raise ConfigError("the attribution window is at least 1 day", field="--window")
    ledger = Ledger.open_existing(ledger_path(ws))
    if ledger is None:
        raise ConfigError(f"no run of {campaign} yet", hint=f"segmerge run {campaign}")
    try:
        run_id = run_id or latest_run(ledger, campaign)
        found = ledger.run(run_id) if run_id else None
        if found is None or found["campaign"] != campaign:
            what = (f"no run {run_id} of {campaign}" if run_id
                    else f"no run of {campaign} with messages sent yet")  # fmt: skip
            raise ConfigError(
                what,
                field="--run",
                hint="see `segmerge history`; kpi measures "
                "the messages Segmerge sent (drafts are measured in the platform)",
            )
        assert run_id is not None
        people = run_people(ledger, run_id)
        ours = our_ids(ledger, campaign, run_id)
        base_name = getattr(cfg, "baseline", None)
        base_run = latest_run(ledger, base_name) if base_name else None
        base_people = run_people(ledger, base_run) if base_run else None
        base_ours = our_ids(ledger, base_name, base_run) if base_name and base_run else set()
    finally:
        ledger.close()
    if tables is None:
        src = open_source(ws, cfg.source)
        try:
            tables = pull_source(ws, src)
        finally:
            src.close()
        _, tables = source_rules.apply(ws, cfg.source, tables)  # cancelled orders earn nothing
    events, orders = _prepared(tables)
    order = [s.name for s in load_ruleset(ws.path(cfg.rules)).segments]
    report = build(campaign, run_id, people, events, orders, window, ours, order)
    if base_name:
        if base_people is None or base_people.empty:
            report.notes.append(f"campagne de référence {base_name} : aucun envoi enregistré, "
                                "pas de comparaison")  # fmt: skip
        else:
            add_baseline(report, base_name, base_run or "", base_people, events, orders, base_ours)
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


def build(campaign: str, run_id: str, people: pd.DataFrame, events: pd.DataFrame,
          orders: pd.DataFrame, window: int, ours: set[str],
          order: list[str] | None = None) -> KpiReport:  # fmt: skip
    """Groups and comparisons from the run's people and the pulled tables (pure)."""
    sent = people[people["status"] == "done"]
    held = people[people["status"] == "holdout"]
    stamps = pd.concat([events["at"], orders["ordered_at"]]).dropna()
    until = stamps.max() if len(stamps) else None
    report = KpiReport(campaign, run_id, window, sent["sent_at"].min() if len(sent) else None,
                       sent["sent_at"].max() if len(sent) else None, until, [], [])  # fmt: skip
    if sent.empty:
        report.notes.append(f"{NOT_ENOUGH} : aucun message envoyé par {run_id}")
        return report
    flags, note, seen = measure(people, events, orders, window, ours)
    report.events_seen = seen
    if note:
        report.notes.append(note)
    if not seen:
        upto = f" (les données vont jusqu'au {until:%d/%m/%Y})" if until is not None else ""
        report.notes.append(f"{NOT_ENOUGH} : aucune ouverture, aucun clic ni désabonnement dans "
                            f"les {window} jours suivant l'envoi{upto}")  # fmt: skip
    closes = report.sent_to + pd.Timedelta(days=window) if report.sent_to is not None else None
    if until is not None and closes is not None and until < closes:
        report.notes.append(f"fenêtre d'attribution pas encore close : données jusqu'au "
                            f"{until:%d/%m/%Y %H:%M} UTC")  # fmt: skip
    flags.index = people.index
    found = set(people["segment"].astype(str))
    seg_order = [s for s in order or [] if s in found] + sorted(found - set(order or []))
    after = until is not None and report.sent_from is not None and until > report.sent_from
    if not after:
        report.notes.append(f"{NOT_ENOUGH} : les données de la source s'arrêtent avant l'envoi, "
                            "aucune commande ne peut encore être attribuée")  # fmt: skip

    def group(s: str, v: str | None, kind: str, idx: pd.Index, events_ok: bool) -> Group:
        return _group(s, v, kind, flags.loc[idx], events_ok, after)

    all_sent = group("ensemble", None, "envoi", sent.index, seen)
    for s in seg_order:
        mine = sent[sent["segment"].astype(str) == s]
        variants = sorted({str(v) for v in mine["variant"].dropna()})
        whole = group(s, None, "envoi", mine.index, seen)
        groups = [
            group(s, v, "envoi", mine.index[mine["variant"] == v], seen) for v in variants
        ] or [whole]
        if len(variants) > 1:
            report.groups.append(whole)
        report.groups.extend(groups)
        for g in groups[1:]:
            for e in ("open", "click", "conversion"):
                report.comparisons.append(compare_rates(g, groups[0], e))
            report.comparisons.append(compare_revenue(g, groups[0]))
        control = held[held["segment"].astype(str) == s]
        if len(held):
            c = group(s, None, "témoin", control.index, False)
            report.groups.append(c)
            report.comparisons.append(compare_rates(whole, c, "conversion"))
            report.comparisons.append(compare_revenue(whole, c))
    report.groups.append(all_sent)
    if len(held):
        c = group("ensemble", None, "témoin", held.index, False)
        report.groups.append(c)
        report.comparisons.append(compare_rates(all_sent, c, "conversion"))
        report.comparisons.append(compare_revenue(all_sent, c))
    return report


def add_baseline(report: KpiReport, name: str, run_id: str, people: pd.DataFrame,
                 events: pd.DataFrame, orders: pd.DataFrame, ours: set[str]) -> None:  # fmt: skip
    """Compare the segmented campaign, overall and per segment, with a generic one's run."""
    sent = people[people["status"] == "done"]
    flags, _note, seen = measure(sent, events, orders, report.window, ours)
    until = report.data_until
    after = until is not None and len(sent) > 0 and until > sent["sent_at"].min()
    base = _group(name, None, "référence", flags, seen and report.events_seen, after)
    report.notes.append(f"référence : {name}, envoi {run_id}")
    report.groups.append(base)
    for g in report.groups:
        if g.kind == "envoi" and g.variant is None:
            for e in ("open", "click", "conversion"):
                report.comparisons.append(compare_rates(g, base, e))
            report.comparisons.append(compare_revenue(g, base))
