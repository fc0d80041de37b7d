"""The experiment's groups in a run's plan: who is held out, who is in which variant's
group, whether Segmerge sends the letters or a platform does.

When Segmerge sends (smtp, outbox) the holdout simply gets no message and each
message carries its variant. When a platform sends (files, Brevo, Mailchimp,
HubSpot), the groups *are* tags and lists: a held-out contact gets none, a
contact of variant B gets ``seg:fonceurs.B`` instead of ``seg:fonceurs``, and
each variant gets its own draft aimed at its own list (:mod:`segmerge.run.plan`).
Either way the ledger says, per contact, who was held out and who was put in
which group, so that `kpi` and `report` read the experiment from one place:
``kind='send'`` rows for our sends, ``kind='member'`` rows (status ``done`` or
``holdout``) for a platform's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segmerge.ledger.keys import member_key, parse_run_id
from segmerge.ledger.store import PlannedAction
from segmerge.mail.consent import check, one_per_address
from segmerge.ports.connector import Action, Destination
from segmerge.render.drafts import draft_templates, render_draft
from segmerge.render.variants import group_name
from segmerge.run.campaign import OpenCampaign
from segmerge.run.plan import (
    DraftInput,
    Membership,
    membership,
    memberships,
    plan_campaigns,
)
from segmerge.run.plan_counts import Counted, count_memberships, fold, label

Planned = tuple[PlannedAction, Action]
HOLDOUT_NOTE = "holdout (control group)"


def hold_out(
    camp: OpenCampaign,
    todo: np.ndarray,
    keys: Mapping[int, str],
    ids: Sequence[str],
    not_mailed: dict[str, int],
    skipped: list[PlannedAction],
) -> np.ndarray:
    """The campaign's control group gets nothing, and is recorded as such for `kpi`:
    ``todo`` (frame rows) less the held-out ones, in the same order."""
    if not camp.config.holdout or not len(todo):
        return todo
    out = camp.groups()[0][todo]
    primary, emails = camp.seg.assignment.primary, camp.seg.frame["email"]
    for i in todo[out].tolist():
        skipped.append(
            PlannedAction(
                keys[i],
                ids[i],
                "send",
                camp.destination.name,
                str(primary.iat[i]),
                str(emails.iat[i]),
                "holdout",
                "control group: gets nothing",
            )
        )
    not_mailed[HOLDOUT_NOTE] = int(out.sum())
    return todo[~out]


def plan_members(
    camp: OpenCampaign,
    run_id: str,
    suppressed: tuple[set[str], set[str]],
    not_mailed: dict[str, int],
) -> list[PlannedAction]:
    """For a platform that sends the letters: one ledger row per contact it will mail
    (``member``, ``done``, with its group and variant) or that the holdout keeps out
    (``member``, ``holdout``).

    The same contacts a send would reach: in a segment, consenting, one per mailbox
    (the smallest contact id, whatever the file order). A platform mails whoever has
    the tag, so this is the record of the groups, not of deliveries.
    """
    dest = camp.destination
    if "send" in dest.accepts or not (camp.config.holdout or any(camp.variants().values())):
        return []
    seg = camp.seg
    frame, primary = seg.frame, seg.assignment.primary
    consent = check(frame, seg.tables.events, *suppressed)
    ids = frame["contact_id"]  # Python strings only for the rows mailed, below
    mailable = primary.notna().to_numpy() & consent.reason.isna().to_numpy()
    mailable, _shared = one_per_address(mailable, consent.address, ids)
    held, variant = camp.groups()
    rows = np.flatnonzero(mailable)
    cids = [str(c) for c in ids.iloc[rows].tolist()]
    address = [str(a) for a in consent.address.iloc[rows].tolist()]
    prefix, variants = camp.config.tag_prefix, camp.variants()
    out: list[PlannedAction] = []
    for i, cid, to in zip(rows.tolist(), cids, address, strict=True):
        s, v = str(primary.iat[i]), variant.iat[i]
        key = member_key(run_id, cid)
        if held[i]:
            status, detail, group = "holdout", "control group: no tag, no list", None
        else:
            name = group_name(f"{prefix}{s}", variants.get(s) or [], v)
            status, detail, group = "done", f"in {name}: the platform mails it", v
        out.append(
            PlannedAction(key, cid, "member", dest.name, s, to, status, detail, variant=group)
        )
    if held.any():
        not_mailed[HOLDOUT_NOTE] = sum(1 for p in out if p.status == "holdout")
    return out


@dataclass
class Phase:
    """One kind of push of a run (``tag``, ``list`` or ``campaign``): where it goes, its
    actions made afresh each time they are asked for (a million tags are not held: they
    are planned and pushed a chunk at a time), and their counts for the run's summary,
    made on whole columns as a dry run makes them."""

    name: str
    dest: Destination
    make: Callable[[bool], Iterator[Planned]]  # each_once: the first of each name only
    counted: Counted

    def actions(self) -> Iterator[Planned]:
        return self.make(False)

    def each_name(self) -> list[Action]:
        """An action per name it adds or removes: what a destination prepares for."""
        return [a for _, a in self.make(True)]

    @property
    def total(self) -> int:
        return sum(n for *_, n in self.counted)


def plan_pushes(
    camp: OpenCampaign, run_id: str, errors: list[str], skipped: list[PlannedAction]
) -> list[Phase]:
    """Tags, list memberships and draft campaigns for the platforms that take them: one
    group per segment, or per variant of a tested segment; the holdout in none. The
    drafts are made here (their errors and skips told once); tags and lists when taken."""
    seg = camp.seg
    m = _membership(camp)
    out: list[Phase] = []
    tag_dest = camp.tag_destination
    if tag_dest is not None:
        out.append(_member_phase(m, seg.frame["tags"], run_id, tag_dest, 0))
        if "add_to_list" in tag_dest.accepts:
            # a platform that reports list memberships gives `lists`; else the tags mirror them
            lists = seg.frame["lists"] if "lists" in seg.frame else seg.frame["tags"]
            out.append(_member_phase(m, lists, run_id, tag_dest, 1))
    dest = camp.destination
    if "create_campaign" in dest.accepts:
        items = _plan_drafts(camp, dest, m, run_id, errors, skipped)
        counted: Counted = [
            ((2, 0, k), label(str(p.segment), p.variant), p.kind, 1)
            for k, (p, _a) in enumerate(items)
        ]
        out.append(Phase("campaign", dest, lambda _once: iter(items), counted))
    return out


def _member_phase(
    m: Membership, current: pd.Series, run_id: str, dest: Destination, phase: int
) -> Phase:
    add, remove, field = ("tag", "untag", "tag") if phase == 0 else _LIST_KINDS

    def make(each_once: bool) -> Iterator[Planned]:
        return memberships(
            m, current, run_id, dest, add=add, remove=remove, field=field, each_once=each_once
        )

    counted = count_memberships(m, current, phase, add, remove)
    return Phase("tag" if phase == 0 else "list", dest, make, counted)


_LIST_KINDS = ("add_to_list", "remove_from_list", "list")


def count_pushes(
    camp: OpenCampaign, run_id: str, errors: list[str]
) -> tuple[dict[str, int], dict[str, dict[str, int]], list[str]]:
    """What :func:`plan_pushes` plans, for a dry run: how many actions of each kind, the
    changes by segment and the drafts' names, counted on whole columns (plan_counts)."""
    seg, m = camp.seg, _membership(camp, counting=True)
    counted: Counted = []
    tag_dest = camp.tag_destination
    if tag_dest is not None:
        counted += count_memberships(m, seg.frame["tags"], 0, "tag", "untag")
        if "add_to_list" in tag_dest.accepts:
            lists = seg.frame["lists"] if "lists" in seg.frame else seg.frame["tags"]
            counted += count_memberships(m, lists, 1, "add_to_list", "remove_from_list")
    drafts: list[str] = []
    if "create_campaign" in camp.destination.accepts:
        items = _plan_drafts(camp, camp.destination, m, run_id, errors, [])
        for k, (plan, action) in enumerate(items):
            counted.append(((2, 0, k), label(str(plan.segment), plan.variant), plan.kind, 1))
            drafts.append(action.payload["name"])
    planned, changes = fold(counted)
    return planned, changes, drafts


def _membership(camp: OpenCampaign, *, counting: bool = False) -> Membership:
    """Which contact rows belong in which of the campaign's groups (see plan.membership).
    ``counting``: without the rows' ids and addresses, which only actions carry (at a
    million contacts, two columns of Python strings: some 150 MiB)."""
    seg = camp.seg
    return membership(
        seg.frame.iloc[:0] if counting else seg.frame,
        seg.assignment.matrix,
        camp.config.tag_prefix,
        [s.name for s in seg.ruleset.segments],
        held=camp.groups()[0] if camp.config.holdout else None,
        # drawn only for a tested segment: the mailboxes are hashed for nothing else
        pick=camp.variant_pick() if any(camp.variants().values()) else None,
        variants=camp.variants(),
    )


def _plan_drafts(
    camp: OpenCampaign,
    dest: Destination,
    m: Any,
    run_id: str,
    errors: list[str],
    skipped: list[PlannedAction],
) -> list[Planned]:
    merge_tag = dest.merge_tag
    drafts = draft_templates(camp.templates)
    ctx = camp.render_context("-", None)
    columns = list(camp.seg.frame.columns)

    def render(segment: str, variant: str | None) -> Any:
        return render_draft(drafts, segment, columns, merge_tag, ctx, dest.name, variant)

    day = parse_run_id(run_id).day
    info = DraftInput(camp.name, day, camp.sender, camp.config.reply_to)
    return plan_campaigns(m, run_id, dest, info, render, errors, skipped)
