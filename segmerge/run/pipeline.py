"""One run: pull -> metrics -> segment -> render -> push -> record.

Everything that can fail on bad input (config, data, rules, templates) happens
before the ledger is opened, so a mistake leaves the workspace as it was. Then
each action is recorded as intent, marked in flight, pushed, and its outcome
recorded: a run killed anywhere and started again for the same campaign and
day resumes and repeats nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pandas as pd

from segmerge.errors import LedgerError, TemplateError
from segmerge.i18n import _, ngettext, number
from segmerge.ledger.backup import check_before_run, kept
from segmerge.ledger.keys import run_id_at, send_key
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.mail.consent import addresses_of, check, one_per_address
from segmerge.mail.message import MessageError
from segmerge.mail.tokens import signing_key
from segmerge.mail.tracking_links import run_tracker
from segmerge.ports.connector import Action, Destination
from segmerge.ports.locks import destination_lock, teller
from segmerge.run.campaign import OpenCampaign, open_campaign
from segmerge.run.groups import hold_out, plan_members, plan_pushes
from segmerge.run.plan import apply_memberships, changes_by_segment, settle_stale
from segmerge.run.pressure import HeldBack, Policy, earliest, hold_back
from segmerge.run.push import plan_while_preparing, push_in_batches
from segmerge.segment.history import save_segmented
from segmerge.segment.segmentation import save_snapshot
from segmerge.workspace.config import Workspace
from segmerge.workspace.storage import named_storage_errors

Progress = Callable[[str, int, int], None]
#: when a run left actions planned (a 4xx, a transient failure), it is resumed after this
RETRY_LATER = timedelta(minutes=15)


@dataclass
class RunOptions:
    as_of: str | None = None
    dry_run: bool = False
    resend_uncertain: bool = False
    retry_failed: bool = False
    progress: Progress | None = None
    full_refresh: bool = False
    now: datetime | None = None  # the sending time contact pressure is judged at (tests)


@dataclass
class RunSummary:
    run_id: str
    campaign: str
    as_of: str
    resumed: bool = False
    dry_run: bool = False
    pulled: dict[str, int] = field(default_factory=dict)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    not_mailed: dict[str, int] = field(default_factory=dict)
    render_errors: list[str] = field(default_factory=list)
    deferred: dict[str, int] = field(default_factory=dict)  # "quiet_hours"/"frequency_cap" -> n
    pressure_policy: str = ""  # the contact pressure policy that deferred them, as shown
    deferred_until: str | None = None  # ISO UTC: when to run this again
    planned: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    drafts: list[str] = field(default_factory=list)
    outcome: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(s.get("failed", 0) + s.get("uncertain", 0) for s in self.outcome.values())

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def run_id_for(campaign: str, as_of: pd.Timestamp, ws: Workspace) -> str:
    """A run is a campaign and its reference day: the same day again resumes it."""
    return run_id_at(campaign, as_of, ws.tz)


@contextmanager
def campaign_lock(ws: Workspace, campaign: str) -> Iterator[None]:
    """One run of a campaign at a time; the kernel drops the lock if the process dies."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = ws.state_dir / f"run-{campaign}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LedgerError(
                _("campaign {campaign} is already running in another process").format(
                    campaign=campaign
                ),
                file=path,
            ) from None
        yield
    finally:
        os.close(fd)


def run(ws: Workspace, name: str, options: RunOptions | None = None) -> RunSummary:
    opts = options or RunOptions()
    check_before_run(ws)  # a lost or damaged key or ledger: stop before anything is pulled
    camp = open_campaign(
        ws, name, as_of=opts.as_of, full_refresh=opts.full_refresh, keep_pull=not opts.dry_run
    )
    try:
        with named_storage_errors(ws.ledger_path):  # a full disk, a bad page
            return _run_open(camp, opts)
    finally:
        camp.close()


def _run_open(camp: OpenCampaign, opts: RunOptions) -> RunSummary:
    ws, seg = camp.ws, camp.seg
    run_id = run_id_for(camp.name, seg.as_of, ws)
    summary = RunSummary(run_id, camp.name, seg.as_of.isoformat(), dry_run=opts.dry_run)
    summary.pulled = {
        "contacts": len(seg.tables.contacts),
        "orders": len(seg.tables.orders),
        "events": len(seg.tables.events),
    }
    summary.skipped_rows = dict(seg.tables.skipped)
    summary.notes.extend(seg.tables.notes)
    summary.segments = {k: int(v) for k, v in seg.assignment.sizes().items()}
    summary.excluded = int(seg.assignment.excluded.sum())

    policy = Policy(ws.config.pressure, ws.tz)
    now = opts.now or datetime.now(UTC)
    suppressed, suppressed_ids, done_keys, history = _known(ws, run_id, now)
    sent = pd.DataFrame(history, columns=["address", "at"])
    sent["at"] = pd.to_datetime(sent["at"], utc=True)

    pressure = (policy, now, sent)
    consent = (suppressed, suppressed_ids)
    sends, skipped = _plan_sends(camp, run_id, consent, done_keys, summary, opts, pressure)
    skipped.extend(plan_members(camp, run_id, consent, summary.not_mailed))
    pushes = plan_pushes(camp, run_id, summary.render_errors, skipped)
    summary.planned = {"send": len(sends)}
    for _phase, items in pushes:
        for plan, _unused in items:
            summary.planned[plan.kind] = summary.planned.get(plan.kind, 0) + 1
    summary.changes = changes_by_segment([t for _, items in pushes for t in items])
    summary.drafts = [
        a.payload["name"] for kind, items in pushes if kind == "campaign" for _, a in items
    ]
    if opts.dry_run:
        return summary

    with campaign_lock(ws, camp.name), kept(ws, summary.notes):
        ledger = Ledger(ws.ledger_path)
        try:
            summary.resumed = ledger.begin_run(run_id, camp.name, seg.as_of.isoformat())
            # the address a contact unsubscribed by id has today is closed to every record
            ledger.suppress(
                (a, f"unsubscribed (one-click) as contact {c}")
                for a, c in addresses_of(seg.frame, suppressed_ids)
            )
            idem = {camp.destination.name: camp.destination.idempotent}
            if camp.tag_destination is not None:
                idem[camp.tag_destination.name] = camp.tag_destination.idempotent
            uncertain = ledger.recover(run_id, idem)
            if uncertain:
                summary.notes.append(
                    f"{uncertain} message(s) were in flight when a run was interrupted: "
                    "marked uncertain, not resent (see `segmerge history --uncertain`)"
                )
            requeue = [
                s
                for s, on in (("uncertain", opts.resend_uncertain), ("failed", opts.retry_failed))
                if on
            ]
            if requeue:
                ledger.requeue(run_id, requeue)
            every = [p for p, _ in sends] + [p for _, items in pushes for p, _ in items]
            # the platforms get ready for their actions (a first run's new tags) while
            # the ledger writes the plan, so their pushes start at full speed
            plan_while_preparing(
                lambda: ledger.plan(run_id, every + skipped),
                [(_destination_of(camp, phase), [a for _, a in items]) for phase, items in pushes],
            )
            if summary.resumed:
                keep = {p.key for p in every + skipped}
                stale = [r for r in ledger.actions(run_id, ["planned"]) if r["key"] not in keep]
                ledger.record(settle_stale(stale, seg.frame))
            _push(ledger, run_id, camp.destination, sends, "send", opts.progress)
            for phase, items in pushes:
                if items:
                    # another run writing to the same place finishes first (see locks)
                    dest, tell = _destination_of(camp, phase), teller(summary.notes, opts.progress)
                    with destination_lock(dest, f"run {run_id} of {ws.root}", tell):
                        _push(ledger, run_id, dest, items, phase, opts.progress)
            if seg.tables.cursor or seg.tables.cursors:  # kept at the pull; now as pushed
                done = ledger.keys_with_status(run_id, ["done"])
                applied = [a for _, items in pushes for _, a in items if a.key in done]
                seg.tables.contacts = apply_memberships(seg.tables.contacts, applied)
                save_snapshot(ws, camp.config.source, seg.tables)
            summary.outcome = ledger.counts(run_id)
            _save_assignment(camp, summary)
            status = "done" if summary.failed == 0 else "partial"
            left = sum(k.get("planned", 0) for k in summary.outcome.values())
            if left:  # a 4xx or a transient failure: this run must be started again later
                status = "partial"
                again = (datetime.now(UTC) + RETRY_LATER).isoformat()
                summary.deferred_until = earliest(summary.deferred_until, again)
                summary.notes.append(
                    ngettext(  # ngettext only: `_` is a throwaway name here
                        "{n} action still to do after a temporary refusal; `segmerge serve` starts "
                        "this run again in {minutes} min",
                        "{n} actions still to do after a temporary refusal; `segmerge serve` "
                        "starts this run again in {minutes} min",
                        left,
                    ).format(n=number(left), minutes=RETRY_LATER.seconds // 60)
                )
            ledger.end_run(run_id, status, summary.as_dict())
        finally:
            ledger.close()
    return summary


def _known(
    ws: Workspace, run_id: str, now: datetime
) -> tuple[set[str], set[str], set[str], list[tuple[str, str]]]:
    """What the ledger says before anything is written: the suppressed addresses and
    contact ids, the run's letters already sent and, for a frequency cap only (no
    ledger scan without one), every send of the cap's window by other runs."""
    ledger = Ledger.open_existing(ws.ledger_path)
    if ledger is None:
        return set(), set(), set(), []
    with ledger:
        history = []
        if ws.config.pressure.max_messages:
            since = now - timedelta(days=ws.config.pressure.per_days)
            history = ledger.sent_since(since.isoformat(), other_than=run_id)
        return (
            ledger.suppressed_addresses(),
            ledger.suppressed_contact_ids(),
            ledger.keys_with_status(run_id, ["done"]),
            history,
        )


def _save_assignment(camp: OpenCampaign, summary: RunSummary) -> None:
    """Who is in which segment today, for `report`'s movements since the previous run."""
    try:
        save_segmented(camp.ws, camp.seg)
    except OSError as exc:
        summary.notes.append(f"segment snapshot not saved: {exc}")


def _plan_sends(
    camp: OpenCampaign,
    run_id: str,
    suppressed: tuple[set[str], set[str]],
    done_keys: set[str],
    summary: RunSummary,
    opts: RunOptions,
    pressure: tuple[Policy, datetime, pd.DataFrame],
) -> tuple[list[tuple[PlannedAction, Action]], list[PlannedAction]]:
    """Render the letter of every mailable contact's first segment, not yet sent in this run."""
    if "send" not in camp.destination.accepts:
        return [], []
    ws, seg = camp.ws, camp.seg
    frame = seg.frame
    primary = seg.assignment.primary
    in_segment = primary.notna().to_numpy()
    consent = check(frame, seg.tables.events, *suppressed)
    reasons = consent.reason
    blocked = in_segment & reasons.notna().to_numpy()
    summary.not_mailed = {str(k): int(v) for k, v in reasons[blocked].value_counts().items()}
    mailable = in_segment & reasons.isna().to_numpy()
    # letters go to the normalised address: the one consent and de-duplication checked
    to_addr: list[str | None] = consent.address.astype(object).where(mailable, None).tolist()
    ids: list[str] = [str(x) for x in frame["contact_id"].tolist()]
    mailable, shared = one_per_address(mailable, consent.address, ids)
    if shared:
        summary.not_mailed["address shared with another contact"] = shared
    chosen = frame.index[mailable]
    key = signing_key(ws.state_dir, create=not opts.dry_run)
    keys = {i: send_key(run_id, ids[i]) for i in chosen}
    todo = [i for i in chosen if keys[i] not in done_keys]
    skipped: list[PlannedAction] = []
    todo = hold_out(camp, todo, keys, ids, summary.not_mailed, skipped)
    held = hold_back(todo, keys, ids, pressure, frame, primary, ws.tz, camp.destination.name)
    _record_held(summary, held, ws.tz)
    todo = held.kept
    skipped.extend(held.deferred)
    records: list[dict[str, Any]] = frame.iloc[todo].to_dict("records") if todo else []
    sends: list[tuple[PlannedAction, Action]] = []
    base = camp.render_context("-", key)
    tracker = run_tracker(ws, key)  # our own clicks and opens (tracking_links)
    urls = [camp.render_context(ids[i], key).unsubscribe_url for i in todo]
    segs = [str(primary.iat[i]) for i in todo]
    picked = [camp.letter_of(i, seg) for i, seg in zip(todo, segs, strict=True)]
    if opts.progress:
        opts.progress("render", 0, len(todo))
    # every core renders (a pool for large batches); messages are then built here, in order
    items = list(zip([p[0] for p in picked], records, urls, strict=True))
    letters = camp.templates.render_many(items, base)
    for n, (i, contact, seg_name, url, r, (_unused, variant)) in enumerate(
        zip(todo, records, segs, urls, letters, picked, strict=True)
    ):
        k = keys[i]
        try:
            if isinstance(r, TemplateError):
                raise r
            if tracker is not None:
                r = tracker.apply(r, run_id, ids[i], url)
            msg = camp.message(
                r,
                to=str(to_addr[i]),
                contact=contact,
                key=k,
                unsubscribe_url=url,
                segment=seg_name,
                variant=variant,
            )
        except (TemplateError, MessageError) as exc:
            summary.render_errors.append(f"{ids[i]}: {exc}")
            skipped.append(
                PlannedAction(
                    k,
                    ids[i],
                    "send",
                    camp.destination.name,
                    seg_name,
                    to_addr[i],
                    "skipped",
                    str(exc),
                )
            )
            continue
        payload = {
            "run_id": run_id,
            "segment": seg_name,
            "to": str(to_addr[i]),
            "campaign": camp.name,
            "variant": variant,
        }
        plan = PlannedAction(
            k, ids[i], "send", camp.destination.name, seg_name, str(to_addr[i]), variant=variant
        )
        sends.append((plan, Action(k, "send", ids[i], payload, msg)))
        if opts.progress and n % 200 == 0:
            opts.progress("render", n, len(todo))
    if opts.progress:
        opts.progress("render", len(todo), len(todo))
    return sends, skipped


def _record_held(summary: RunSummary, held: HeldBack, tz: tzinfo) -> None:
    """What contact pressure decided, in the run's summary: counts under a fixed reason
    key, the policy apart (in the command's language), and when to run again."""
    if held.reason is None or held.until is None:
        return
    summary.deferred[held.reason] = summary.deferred.get(held.reason, 0) + len(held.deferred)
    summary.pressure_policy = held.policy
    summary.deferred_until = earliest(summary.deferred_until, held.until)
    if note := held.note(tz):
        summary.notes.append(note)


def _destination_of(camp: OpenCampaign, phase: str) -> Destination:
    """Where a push phase goes: drafts to the campaign's destination, tags and lists to
    the platform they were pulled from (there are none when it takes no tags)."""
    dest = camp.destination if phase == "campaign" else camp.tag_destination
    assert dest is not None, f"no destination for {phase}"
    return dest


def _push(
    ledger: Ledger,
    run_id: str,
    dest: Destination,
    items: Sequence[tuple[PlannedAction, Action]],
    phase: str,
    progress: Progress | None,
) -> None:
    """Push what the ledger still has as planned (see :mod:`segmerge.run.push`)."""
    planned = ledger.keys_with_status(run_id, ["planned"])
    push_in_batches(ledger, dest, [a for _, a in items if a.key in planned], phase, progress)
