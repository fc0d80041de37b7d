"""What a run will push back to a platform: tags, list memberships, draft campaigns.

Planning is pure: it compares the segments just computed with what the
platform said it holds (the pulled ``tags``, and ``lists`` when the source
gives them) and returns keyed actions, so that `--dry-run` can show exactly
what would change and the ledger can make every change happen once.

Only names with the campaign's ``tag_prefix`` belong to Segmerge: a tag or a
list the marketer made themselves (``vip``) is never added, removed or
renamed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .connector import Action, Destination
from .errors import TemplateError
from .ledger import PlannedAction

Planned = tuple[PlannedAction, Action]


@dataclass
class Membership:
    """Which contact rows are in which segment, and which owned names they carry now."""

    ids: np.ndarray  # contact_id as str, by row
    emails: list[str | None]
    matrix: pd.DataFrame  # one bool column per segment
    prefix: str
    segments: Sequence[str]

    def name(self, segment: str) -> str:
        return f"{self.prefix}{segment}"

    def owned(self, column: pd.Series) -> set[tuple[int, str]]:
        """(row, name) pairs among this campaign's names, from a list-valued column."""
        names = {self.name(s) for s in self.segments}
        exploded = column.explode()
        hit = exploded.isin(names)
        return set(zip(exploded.index[hit], exploded[hit], strict=True))


def membership(frame: pd.DataFrame, matrix: pd.DataFrame, prefix: str,
               segments: Sequence[str]) -> Membership:  # fmt: skip
    emails = [None if pd.isna(e) else str(e) for e in frame["email"].tolist()]
    ids = frame["contact_id"].astype(str).to_numpy()
    return Membership(ids, emails, matrix.reset_index(drop=True), prefix, segments)


def plan_memberships(
    m: Membership,
    current: pd.Series,
    run_id: str,
    dest: Destination,
    *,
    add: str,
    remove: str,
    field: str,
) -> list[Planned]:
    """Add ``prefix+segment`` where missing; remove it from contacts who left the segment."""
    has = m.owned(current.reset_index(drop=True))
    out: list[Planned] = []
    for seg in m.segments:
        name = m.name(seg)
        for i in np.flatnonzero(m.matrix[seg].to_numpy(dtype=bool)).tolist():
            if (i, name) not in has:
                out.append(_member_action(m, i, seg, name, run_id, dest, add, field))
    for row, name in sorted(has):
        seg = name[len(m.prefix) :]
        if not bool(m.matrix[seg].iat[row]):
            out.append(_member_action(m, int(row), seg, name, run_id, dest, remove, field))
    return out


def _member_action(m: Membership, i: int, seg: str, name: str, run_id: str,
                   dest: Destination, kind: str, field: str) -> Planned:  # fmt: skip
    cid = str(m.ids[i])
    key = f"{run_id}|{cid}|{kind}:{name}"
    payload = {field: name, "segment": seg, "email": m.emails[i]}
    return (PlannedAction(key, cid, kind, dest.name, seg, name),
            Action(key, kind, cid, payload))  # type: ignore[arg-type]  # fmt: skip


def plan_tags(m: Membership, tags: pd.Series, run_id: str, dest: Destination) -> list[Planned]:
    return plan_memberships(m, tags, run_id, dest, add="tag", remove="untag", field="tag")


def plan_lists(m: Membership, lists: pd.Series, run_id: str, dest: Destination) -> list[Planned]:
    return plan_memberships(m, lists, run_id, dest, add="add_to_list",
                            remove="remove_from_list", field="list")  # fmt: skip


@dataclass
class DraftInput:
    """What a draft campaign carries besides its rendered letter."""

    campaign: str
    day: str
    from_addr: str
    reply_to: str | None


def plan_campaigns(
    m: Membership,
    run_id: str,
    dest: Destination,
    info: DraftInput,
    render: Callable[[str], object],
    errors: list[str],
    skipped: list[PlannedAction],
) -> list[Planned]:
    """One draft per non-empty segment, carrying its letter with the platform's merge tags.

    A letter that cannot be a draft (it needs a value only Segmerge knows) is
    recorded as skipped with the reason, and reported; the other drafts go on.
    """
    out: list[Planned] = []
    for seg in m.segments:
        if not m.matrix[seg].any():
            continue
        name = f"{info.campaign} {info.day} · {seg}"
        key = f"{run_id}|-|create_campaign:{seg}"
        try:
            r = render(seg)
        except TemplateError as exc:
            errors.append(f"draft {seg}: {exc}")
            skipped.append(PlannedAction(key, None, "create_campaign", dest.name, seg, name,
                                         "skipped", str(exc)))  # fmt: skip
            continue
        sender = getattr(r, "from_addr", None) or info.from_addr
        from_name, from_email = _split_address(sender)
        payload = {
            "name": name,
            "segment": seg,
            "list": m.name(seg),
            "tag": m.name(seg),
            "subject": getattr(r, "subject", ""),
            "preheader": getattr(r, "preheader", ""),
            "html": getattr(r, "html", ""),
            "text": getattr(r, "text", ""),
            "from_email": from_email,
            "from_name": from_name,
            "reply_to": getattr(r, "reply_to", None) or info.reply_to or from_email,
            "members": int(m.matrix[seg].sum()),
        }
        out.append((PlannedAction(key, None, "create_campaign", dest.name, seg, name),
                    Action(key, "create_campaign", None, payload)))  # fmt: skip
    return out


def _split_address(value: str) -> tuple[str, str]:
    from email.utils import parseaddr

    name, addr = parseaddr(value)
    return name, addr


def changes_by_segment(items: Sequence[Planned]) -> dict[str, dict[str, int]]:
    """For `--dry-run`: per segment, how many of each kind of change."""
    out: dict[str, dict[str, int]] = {}
    for plan, _ in items:
        if plan.status != "planned":
            continue
        seg = plan.segment or "-"
        out.setdefault(seg, {})
        out[seg][plan.kind] = out[seg].get(plan.kind, 0) + 1
    return out


def apply_memberships(contacts: pd.DataFrame, done: Sequence[Action]) -> pd.DataFrame:
    """The contacts as the platform now holds them, after the tag and list changes made.

    The snapshot must record what Segmerge itself changed: a platform's
    modified-since filter does not always report a tag change, and the next
    run must not think a tag it added is missing.
    """
    changes: dict[str, list[Action]] = {}
    for a in done:
        if a.kind in ("tag", "untag", "add_to_list", "remove_from_list") and a.contact_id:
            changes.setdefault(a.contact_id, []).append(a)
    if not changes:
        return contacts
    out = contacts.copy()
    ids = out["contact_id"].astype(str)
    rows = np.flatnonzero(ids.isin(list(changes)).to_numpy()).tolist()
    has_lists = "lists" in out
    for col in ("tags", "lists") if has_lists else ("tags",):
        values = out[col].tolist()
        for r in rows:
            current = list(values[r]) if isinstance(values[r], list | tuple | np.ndarray) else []
            for a in changes[ids.iat[r]]:
                target = "lists" if a.kind.endswith("list") and has_lists else "tags"
                if target != col:
                    continue
                name = a.payload.get("tag") or a.payload.get("list")
                if a.kind in ("tag", "add_to_list") and name not in current:
                    current.append(name)
                elif a.kind in ("untag", "remove_from_list") and name in current:
                    current.remove(name)
            values[r] = current
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


def settle_stale(rows: Sequence[dict], frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Outcomes for actions an interrupted attempt planned and this one no longer needs.

    A membership change whose effect the platform now shows (the tag is there,
    or gone) was done by the attempt that was killed: it is recorded done. Any
    other (the contact moved, unsubscribed) is skipped, with why.
    """
    held: set[tuple[str, str]] = set()
    ids = frame["contact_id"].astype(str).tolist()
    for col in ("tags", "lists"):
        if col in frame:
            for cid, names in zip(ids, frame[col].tolist(), strict=True):
                if isinstance(names, list | tuple | np.ndarray):
                    held.update((cid, str(n)) for n in names)
    out: list[tuple[str, str, str]] = []
    for r in rows:
        present = (str(r.get("contact_id")), str(r.get("target"))) in held
        kind = r.get("kind")
        if (kind in ("tag", "add_to_list") and present) or (
            kind in ("untag", "remove_from_list") and not present
        ):
            out.append((r["key"], "done", "found in place when the interrupted run resumed"))
        else:
            out.append((r["key"], "skipped", "not needed any more when the run resumed "
                        "(the contact changed meanwhile)"))  # fmt: skip
    return out
