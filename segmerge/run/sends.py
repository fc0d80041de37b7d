"""The run's letters, a chunk at a time.

Who gets a letter is decided for the whole base at once, on whole columns: in a
segment, consenting, one per mailbox, not already sent by this run, not in the
holdout, not held back by contact pressure. Rendering, building the messages,
recording them in the ledger and pushing them then go :data:`CHUNK` letters at a
time, in the frame's order: a run holds one chunk of letters, never the whole
base's (a million letters and their messages held at once were 7 GiB).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email.message import Message
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from segmerge.errors import TemplateError
from segmerge.ledger.health import signing_key
from segmerge.ledger.keys import SEP, send_key
from segmerge.ledger.store import PlannedAction
from segmerge.mail.consent import check, one_per_address
from segmerge.mail.message import MessageError
from segmerge.mail.tracking_links import Tracker, run_tracker
from segmerge.ports.connector import Action
from segmerge.render.batches import FrameBatch
from segmerge.render.rendered import RenderContext, Rendered
from segmerge.render.run_pool import RunPool, Ticket
from segmerge.run.campaign import OpenCampaign, release_memory
from segmerge.run.groups import hold_out
from segmerge.run.letter_check import Headers, LetterCheck
from segmerge.run.pressure import HeldBack, Policy, earliest, hold_back
from segmerge.run.row_ids import row_ids, take

#: letters rendered, built, recorded and pushed at a time: some 13 KiB each while held
#: (the contact's row, the letter, its message), so about 50 MiB
CHUNK = 4000

#: of an even share of a chunk, what this process renders itself in a dry run, when the
#: workers have the rest, until the pool learns the share that keeps both sides busy:
#: checking a letter takes a fifth of the time of rendering it (100,000 contacts: ~20
#: against ~105 µs a letter); building and pushing one takes longer, so a send renders none
OWN_DRY = 0.7

Planned = tuple[PlannedAction, Action]
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


class SendKeys(dict[int, str]):
    """A row's send key, made when asked and not kept: only the held-out and the
    held-back letters ask before their chunk, and a million keys are 100 MiB."""

    def __init__(self, run_id: str, ids: Sequence[str]) -> None:
        super().__init__()
        self.run_id, self.ids = run_id, ids

    def __missing__(self, row: int) -> str:
        return send_key(self.run_id, self.ids[row])


@dataclass
class Sends:
    """The letters of one run: the rows to render, in order, and how to make a chunk."""

    camp: OpenCampaign
    run_id: str
    rows: np.ndarray  # frame positions whose letter is rendered, in the frame's order
    candidates: np.ndarray  # rows whose send this run plans (held out or back included)
    ids: Sequence[str] = field(default_factory=list)  # by frame row (see run.row_ids)
    #: each row's address (missing where not mailed), kept as Arrow strings: made into
    #: Python strings a chunk at a time (the whole base's were some 100 MiB at 1 M)
    to_addr: pd.Series = field(default_factory=lambda: pd.Series([], dtype=object))
    key: bytes | None = None
    skipped: list[PlannedAction] = field(default_factory=list)  # held out, held back
    dry_run: bool = False  # messages checked, not built
    columns: list[int] | None = None  # the frame's columns the letters read, once known
    tracker: Tracker | None = None  # our own clicks and opens, once the letters are made
    headers: Headers | None = None  # what every message carries, once the letters are made
    pool: RunPool | None = None  # render workers started already (a dry run's, see warm)

    def __len__(self) -> int:
        return len(self.rows)

    def kept(self, rows: Iterable[dict[str, Any]]) -> set[str]:
        """Of the ledger's ``rows`` (an interrupted attempt's planned actions), the keys of
        the sends this run still plans: the others are stale."""
        sends = {str(r["contact_id"]) for r in rows if r.get("kind") == "send"}
        if not sends or not len(self.candidates):
            return set()
        return {send_key(self.run_id, c) for c in take(self.ids, self.candidates) if c in sends}

    def chunks(
        self, errors: list[str], progress: Progress | None
    ) -> Generator[tuple[list[Planned], list[PlannedAction]], None, None]:
        """Each chunk's sends and the letters that could not be made (skipped, with their
        error, which ``errors`` also gets). The workers render the next chunk while this
        process builds the messages of the current one: a pipeline one chunk deep."""
        return self._walk(self._build, errors, progress)

    def count(self, errors: list[str], progress: Progress | None) -> int:
        """A dry run's letters that a send would send, each checked as a send checks it
        (what fails goes to ``errors``), without the plans and actions a count throws
        away (~7 µs a letter in the process that checks them all)."""
        with closing(self._walk(self._check, errors, progress)) as chunks:
            return sum(chunks)

    def _walk(
        self,
        each: Callable[[_Chunk, RunPool, Any, list[str]], T],
        errors: list[str],
        progress: Progress | None,
    ) -> Generator[T, None, None]:
        total, size = len(self.rows), CHUNK
        if progress:
            progress("render", 0, total)
        base = self.camp.render_context("-", self.key)
        tracker = self.tracker = run_tracker(self.camp.ws, self.key)  # our own clicks and opens
        self.headers = self.camp.headers()
        pool = self.pool or RunPool(self.camp.templates, total)
        with pool:  # every core, workers kept
            ahead: _Chunk | None = None
            for start in range(0, total + size, size):
                part = self.rows[start : start + size]
                # this chunk goes to the workers before the previous one is built here
                submitted = self._submit(part, pool, base) if len(part) else None
                if ahead is not None:
                    yield each(ahead, pool, tracker, errors)
                    if progress:
                        progress("render", min(start, total), total)
                ahead = submitted
                if ahead is None:
                    break

    def _submit(self, part: np.ndarray, pool: RunPool, base: RenderContext) -> _Chunk:
        """A chunk's links and letters chosen, handed to the render workers with the
        contacts' rows, which they make into records themselves."""
        camp = self.camp
        rows = part.tolist()
        whole = camp.seg.frame
        frame = whole.iloc[part, self._read_columns()]
        segs = camp.seg.assignment.primary_at(part).astype(str).tolist()
        ids = take(self.ids, part)
        urls = camp.unsubscribe_urls(ids, self.key)
        letters, variants = camp.letters_of(rows, segs)
        tos = self.to_addr.iloc[part].tolist()
        first, last = _names(whole, part)
        if self.dry_run:  # the letters are checked where they are rendered
            assert self.headers is not None
            check = LetterCheck(
                self.headers, self.run_id, self.tracker, ids, tos, first, last, urls, segs, variants
            )
            batch = FrameBatch(letters, frame, urls, check)
            ticket = pool.submit(batch, base, own=OWN_DRY, balance=True)
            return _Chunk(rows, [], segs, urls, variants, tos, ticket)
        ticket = pool.submit(FrameBatch(letters, frame, urls), base)
        names = [{"first_name": f, "last_name": g} for f, g in zip(first, last, strict=True)]
        return _Chunk(rows, names, segs, urls, variants, tos, ticket)

    def _read_columns(self) -> list[int]:
        """Positions of the frame's columns the letters can read (all when the templates
        use ``contact`` whole): the workers make records of these only."""
        if self.columns is None:
            frame = self.camp.seg.frame
            fields = self.camp.templates.contact_fields()
            self.columns = [i for i, c in enumerate(frame.columns) if fields is None or c in fields]
        return self.columns

    def _build(
        self, c: _Chunk, pool: RunPool, tracker: Any, errors: list[str]
    ) -> tuple[list[Planned], list[PlannedAction]]:
        """A rendered chunk's messages, each checked as a send checks it."""
        camp, ids = self.camp, self.ids
        letters = pool.result(c.ticket)
        dest = camp.destination.name
        sends: list[Planned] = []
        skipped: list[PlannedAction] = []
        for i, contact, seg_name, url, r, variant, to in zip(
            c.rows, c.names, c.segs, c.urls, letters, c.variants, c.tos, strict=True
        ):
            k = send_key(self.run_id, ids[i])
            try:
                if isinstance(r, TemplateError):
                    raise r
                if tracker is not None:
                    r = tracker.apply(r, self.run_id, ids[i], url)
                msg = self._message(r, str(to), contact, k, url, seg_name, variant)
            except (TemplateError, MessageError) as exc:
                errors.append(f"{ids[i]}: {exc}")
                skipped.append(
                    PlannedAction(k, ids[i], "send", dest, seg_name, to, "skipped", str(exc))
                )
                continue
            payload = {
                "run_id": self.run_id,
                "segment": seg_name,
                "to": str(to),
                "campaign": camp.name,
                "variant": variant,
            }
            plan = PlannedAction(k, ids[i], "send", dest, seg_name, str(to), variant=variant)
            sends.append((plan, Action(k, "send", ids[i], payload, msg)))
        return sends, skipped

    def _check(self, c: _Chunk, pool: RunPool, tracker: Any, errors: list[str]) -> int:
        """How many of a rendered chunk's letters a send would send: :meth:`_build`'s
        checks, in its order, made by :class:`LetterCheck` where each was rendered."""
        verdicts = pool.result(c.ticket)
        refused = [v for v in verdicts if v is not None]
        errors.extend(refused)
        return len(verdicts) - len(refused)

    def _message(
        self,
        r: Rendered,
        to: str,
        contact: dict[str, Any],
        key: str,
        url: str,
        segment: str,
        variant: str | None,
    ) -> Message | None:
        """The letter's message; a dry run checks it as a send would and keeps none."""
        make = self.camp.check_message if self.dry_run else self.camp.message
        return make(
            r,
            to=to,
            contact=contact,
            key=key,
            unsubscribe_url=url,
            segment=segment,
            variant=variant,
        )


def _names(frame: pd.DataFrame, part: np.ndarray) -> tuple[list[Any], list[Any]]:
    """What a message takes of each contact of a chunk (rows ``part``): its To's first
    and last names, a missing one None (pandas' NA, unpickled in a render worker, would
    import pandas there: a second and some 80 MiB)."""
    n = len(part)
    first, last = (
        frame[c].iloc[part].to_numpy(dtype=object, na_value=None).tolist()
        if c in frame.columns
        else [None] * n
        for c in ("first_name", "last_name")
    )
    return first, last


@dataclass
class _Chunk:
    """A chunk handed to the render workers, and what its messages need besides."""

    rows: list[int]
    names: list[dict[str, Any]]  # what a message takes of the contact: its names
    segs: list[str]
    urls: list[str]
    variants: list[str | None]
    tos: list[Any]  # the letters' addresses
    ticket: Ticket


def choose_sends(
    camp: OpenCampaign,
    run_id: str,
    suppressed: tuple[set[str], set[str]],
    done_keys: set[str],
    summary: Any,
    dry_run: bool,
    pressure: tuple[Policy, datetime, pd.DataFrame],
) -> Sends:
    """Who gets a letter today; the held-out and the held-back are in ``skipped``, and
    ``summary`` (a RunSummary) gets who is not mailed and why."""
    none = np.zeros(0, dtype=np.int64)
    if "send" not in camp.destination.accepts:
        return Sends(camp, run_id, none, none)
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
    to_addr = consent.address.where(mailable)
    ids = row_ids(frame["contact_id"])  # Python strings a block at a time, when asked
    mailable, shared = one_per_address(mailable, consent.address, frame["contact_id"])
    if shared:
        summary.not_mailed["address shared with another contact"] = shared
    chosen = np.flatnonzero(mailable)
    sent = _sent_contacts(run_id, done_keys)
    if sent:  # a resumed run: its letters already sent are not rendered again
        done = np.fromiter((c in sent for c in take(ids, chosen)), dtype=bool, count=len(chosen))
        chosen = chosen[~done]
    key = signing_key(ws.state_dir, create=not dry_run)
    keys = SendKeys(run_id, ids)
    skipped: list[PlannedAction] = []
    todo = hold_out(camp, chosen, keys, ids, summary.not_mailed, skipped)
    held = hold_back(todo, keys, ids, pressure, frame, primary, ws.tz, camp.destination.name)
    record_held(summary, held, ws.tz)
    skipped.extend(held.deferred)
    rows = np.asarray(held.kept, dtype=np.int64)
    del consent, held, todo
    release_memory()  # what consent and pressure built for the whole base, returned
    return Sends(camp, run_id, rows, chosen, ids, to_addr, key, skipped, dry_run)


def _sent_contacts(run_id: str, done_keys: set[str]) -> set[str]:
    """The contacts whose letter of this run is done: exactly the ``c`` whose
    ``send_key(run_id, c)`` is among the run's done keys."""
    head, tail = f"{run_id}{SEP}", f"{SEP}send"
    assert send_key(run_id, "c") == f"{head}c{tail}", "send keys changed form"
    return {
        k[len(head) : len(k) - len(tail)]
        for k in done_keys
        if k.startswith(head) and k.endswith(tail) and len(k) >= len(head) + len(tail)
    }


def record_held(summary: Any, held: HeldBack, tz: tzinfo) -> None:
    """What contact pressure decided, in the run's summary: counts under a fixed reason
    key, the policy apart (in the command's language), and when to run again."""
    if held.reason is None or held.until is None:
        return
    summary.deferred[held.reason] = summary.deferred.get(held.reason, 0) + len(held.deferred)
    summary.pressure_policy = held.policy
    summary.deferred_until = earliest(summary.deferred_until, held.until)
    if note := held.note(tz):
        summary.notes.append(note)
