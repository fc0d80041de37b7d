"""One run: pull -> metrics -> segment -> render -> push -> record.

Everything that can fail on bad input (config, data, rules, templates) happens
before the ledger is opened, so a mistake leaves the workspace as it was. Then
each action is recorded as intent, marked in flight, pushed, and its outcome
recorded: a run killed anywhere and started again for the same campaign and
day resumes and repeats nothing. The letters go a chunk at a time through that
(:mod:`segmerge.run.sends`): rendered once the ledger is open, a chunk is
recorded before any of it is pushed, and one contact whose letter cannot be
made is recorded as skipped, with why, without stopping the others.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from segmerge.errors import LedgerError
from segmerge.i18n import _, ngettext, number
from segmerge.ledger.backup import check_before_run, kept
from segmerge.ledger.keys import run_id_at
from segmerge.ledger.store import Ledger
from segmerge.mail.consent import addresses_of
from segmerge.ports.connector import Action
from segmerge.ports.locks import destination_lock, teller
from segmerge.render.run_pool import RunPool
from segmerge.run.campaign import OpenCampaign, open_campaign
from segmerge.run.groups import Phase, count_pushes, plan_members, plan_pushes
from segmerge.run.plan import apply_memberships, settle_stale
from segmerge.run.plan_counts import fold
from segmerge.run.pressure import Policy, earliest
from segmerge.run.push import plan_while_preparing, push_in_batches
from segmerge.run.sends import Sends, choose_sends
from segmerge.segment.history import save_segmented
from segmerge.segment.segmentation import save_snapshot
from segmerge.workspace.config import Workspace
from segmerge.workspace.storage import named_storage_errors

Progress = Callable[[str, int, int], None]
#: when a run left actions planned (a 4xx, a transient failure), it is resumed after this
RETRY_LATER = timedelta(minutes=15)
#: tags, list memberships or drafts made, planned and handed to the push at a time
CHUNK = 4000


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
        ws,
        name,
        as_of=opts.as_of,
        full_refresh=opts.full_refresh,
        keep_pull=not opts.dry_run,
        lean=True,
    )
    try:
        with named_storage_errors(ws.ledger_path):  # a full disk, a bad page
            return _run_open(camp, opts)
    finally:
        camp.close()


def _warm_pool(camp: OpenCampaign, total: int) -> RunPool:
    """A dry run's render workers for its ``total`` letters, started once its sends are
    chosen: started earlier, a worker's memory came on top of the tags and the rows the
    contact pressure reads, which this process holds until then, and the whole process
    tree of a million contacts went past its budget (docs/scale.md)."""
    if "send" not in camp.destination.accepts:
        return RunPool(camp.templates, 0)
    return RunPool(camp.templates, total).warm()


def _dry_run(
    camp: OpenCampaign,
    opts: RunOptions,
    summary: RunSummary,
    chosen: tuple[Any, ...],
) -> RunSummary:
    """What a run would do, counted, not planned: every letter still rendered, a chunk at
    a time, and checked."""
    run_id, consent, done_keys, pressure = chosen
    draft_errors: list[str] = []  # told after the letters' errors, as they are found
    planned, summary.changes, summary.drafts = count_pushes(camp, run_id, draft_errors)
    summary.planned.update(planned)
    camp.forget_unread()  # nothing but the letters reads the tags now
    sends = choose_sends(camp, run_id, consent, done_keys, summary, True, pressure)
    with _warm_pool(camp, len(sends)) as pool:  # starting while the addresses go
        plan_members(camp, run_id, consent, summary.not_mailed)
        camp.forget_unread(consented=True)
        sends.pool = pool
        summary.planned["send"] += sends.count(summary.render_errors, opts.progress)
    summary.render_errors.extend(draft_errors)
    return summary


def _run_open(camp: OpenCampaign, opts: RunOptions) -> RunSummary:
    ws, seg = camp.ws, camp.seg
    run_id = run_id_for(camp.name, seg.as_of, ws)
    summary = RunSummary(run_id, camp.name, seg.as_of.isoformat(), dry_run=opts.dry_run)
    summary.pulled = {"contacts": len(seg.tables.contacts)}
    if camp.source.dialect is None:  # segmented in its database: no order or event came
        summary.pulled.update(orders=len(seg.tables.orders), events=len(seg.tables.events))
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
    draft_errors: list[str] = []  # told after the letters' errors, as they are found
    summary.planned = {"send": 0}
    if opts.dry_run:
        return _dry_run(camp, opts, summary, (run_id, consent, done_keys, pressure))
    sends = choose_sends(camp, run_id, consent, done_keys, summary, opts.dry_run, pressure)
    skipped = list(sends.skipped)
    skipped.extend(plan_members(camp, run_id, consent, summary.not_mailed))
    pushes = plan_pushes(camp, run_id, draft_errors, skipped)
    planned, summary.changes = fold([c for phase in pushes for c in phase.counted])
    summary.planned.update(planned)
    drafts = [t for phase in pushes if phase.name == "campaign" for t in phase.actions()]
    summary.drafts = [a.payload["name"] for _, a in drafts]

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
            every = [p for p, _ in drafts] + skipped
            # the platforms get ready for their actions (a first run's new tags: one
            # action per name says them) while the ledger writes the plan, so their
            # pushes start at full speed; the letters, tags and lists are planned a
            # chunk at a time, as they are made (_push_sends, _push)
            plan_while_preparing(
                lambda: ledger.plan(run_id, every),
                [(phase.dest, phase.each_name()) for phase in pushes],
            )
            if summary.resumed:
                stale = ledger.actions(run_id, ["planned"])
                keep = {p.key for p in every} | sends.kept(stale) | _kept(pushes, stale)
                ledger.record(settle_stale([r for r in stale if r["key"] not in keep], seg.frame))
            _push_sends(ledger, sends, summary, opts.progress)
            summary.render_errors.extend(draft_errors)
            for phase in pushes:
                if phase.total:
                    # another run writing to the same place finishes first (see locks)
                    tell = teller(summary.notes, opts.progress)
                    with destination_lock(phase.dest, f"run {run_id} of {ws.root}", tell):
                        _push(ledger, run_id, phase, opts.progress)
            if seg.tables.cursor or seg.tables.cursors:  # kept at the pull; now as pushed
                done = ledger.keys_with_status(run_id, ["done"])
                applied = [a for phase in pushes for _, a in phase.actions() if a.key in done]
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


def _kept(pushes: Sequence[Phase], stale: Sequence[dict[str, Any]]) -> set[str]:
    """Of an interrupted attempt's planned actions, the keys of the tags, lists and
    drafts this attempt plans too (the others are stale)."""
    keys = {str(r["key"]) for r in stale if r.get("kind") != "send"}
    if not keys:
        return set()
    return {p.key for phase in pushes for p, _ in phase.actions() if p.key in keys}


def _push(ledger: Ledger, run_id: str, phase: Phase, progress: Progress | None) -> None:
    """Plan and push a phase's actions a chunk at a time (see :mod:`segmerge.run.push`):
    each chunk is recorded as intent before any of it is pushed, and only what the ledger
    has as planned goes (not what an interrupted attempt already did)."""

    def todo() -> Generator[Action, None, None]:
        made = phase.actions()
        while chunk := list(itertools.islice(made, CHUNK)):
            ledger.plan(run_id, [p for p, _ in chunk])
            planned = ledger.among([p.key for p, _ in chunk], ["planned"])
            yield from (a for _, a in chunk if a.key in planned)
            del chunk  # not held while the next one is made

    with closing(todo()) as stream:
        push_in_batches(ledger, phase.dest, stream, phase.name, progress, phase.total)


def _push_sends(
    ledger: Ledger, sends: Sends, summary: RunSummary, progress: Progress | None
) -> None:
    """Render, plan and push the letters a chunk at a time: each chunk is recorded as
    intent (its letters that could not be made as skipped) before any of it is pushed,
    and only what the ledger has as planned goes (not a letter already done, uncertain
    or failed in an interrupted attempt)."""
    if not len(sends):
        return
    run_id = sends.run_id

    def letters() -> Generator[Action, None, None]:
        with closing(sends.chunks(summary.render_errors, progress)) as chunks:
            for chunk, failed in chunks:
                ledger.plan(run_id, [p for p, _ in chunk] + failed)
                summary.planned["send"] += len(chunk)
                todo = ledger.among([p.key for p, _ in chunk], ["planned"])
                yield from (a for _, a in chunk if a.key in todo)
                del chunk, failed  # not held while the next chunk is rendered

    with closing(letters()) as stream:  # a push stopped early lets the render pool go
        push_in_batches(ledger, sends.camp.destination, stream, "send", progress, len(sends))
