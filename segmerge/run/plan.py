"""What a run will push back to a platform: tags, list memberships, draft campaigns.

Planning is pure: it compares the segments just computed with what the
platform said it holds (the pulled ``tags``, and ``lists`` when the source
gives them) and returns keyed actions, so that `--dry-run` can show exactly
what would change and the ledger can make every change happen once.

A campaign's groups are its segments, except that the holdout is in none and
a segment with A/B variants is one group per variant (``seg:fonceurs``,
``seg:fonceurs.B``), each with its own draft: a platform mails whoever holds a
tag, so the tags are the experiment (see docs/experiments.md).

Only names with the campaign's ``tag_prefix`` belong to Segmerge: a tag or a
list the marketer made themselves (``vip``) is never added, removed or
renamed.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmerge.errors import TemplateError
from segmerge.ledger.keys import draft_key, membership_key, parse_run_id
from segmerge.ledger.store import PlannedAction
from segmerge.ports.connector import Action, Destination
from segmerge.render.variants import choose, group_name

Planned = tuple[PlannedAction, Action]


@dataclass(frozen=True)
class Group:
    """One tag or list of the campaign: a segment, or one A/B variant of it."""

    name: str  # prefix + segment (+ ".B" for a variant other than the first)
    segment: str
    variant: str | None = None


@dataclass
class Membership:
    """Which contact rows belong in which group, and which owned names they carry now.

    A contact of the holdout is in no group; a contact of a tested segment is in
    its variant's group only, so each draft reaches exactly its letter's people.
    """

    #: the frame's contact ids and addresses, by row: made into Python strings a block
    #: of actions at a time (a million of each were some 150 MiB held by a run)
    ids: pd.Series
    emails: pd.Series
    matrix: pd.DataFrame  # one bool column per group name
    prefix: str
    groups: Sequence[Group]

    def contacts(self, rows: np.ndarray) -> tuple[list[str], list[str | None]]:
        """The ids and addresses (None: none) of these rows, as the actions carry them."""
        ids = [str(c) for c in self.ids.iloc[rows].tolist()]
        emails = [None if pd.isna(e) else str(e) for e in self.emails.iloc[rows].tolist()]
        return ids, emails

    def held(self, column: pd.Series) -> pd.DataFrame:
        """(row, name) pairs, once each, of this campaign's names the contacts hold now (a
        list-valued column): its groups' names, and a variant name of one of its segments
        no longer tested.

        Read a block of rows at a time, as Arrow lists: exploding a million lists at once
        held some 60 MiB of rows and names at a run's peak, for the few names that match."""
        names = sorted({g.name for g in self.groups})
        segs = sorted({g.segment for g in self.groups})
        values = column.to_numpy(dtype=object)
        parts = [
            self._held_block(values[start : start + HELD_BLOCK], start, names, segs)
            for start in range(0, len(values), HELD_BLOCK)
        ]
        rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, np.int64)
        found = [n for _, block in parts for n in block]
        pairs = pd.DataFrame({"row": rows.astype(np.int64), "name": pd.Series(found, dtype=str)})
        return pairs.drop_duplicates(ignore_index=True)

    def _held_block(
        self, values: np.ndarray, start: int, names: list[str], segs: list[str]
    ) -> tuple[np.ndarray, list[str]]:
        """:meth:`held`'s rows (from ``start``) and names of one block of the column."""
        try:  # the type inferred: a text cell given a list type would be its letters
            lists = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            lists = None
        if lists is None or lists.type not in _TEXT_LISTS:  # not lists of text: pandas reads it
            return self._held_exploded(values, start, names, segs)
        lists = lists.cast(pa.list_(pa.string()))  # a block of empty lists holds nulls
        flat = pc.list_flatten(lists)
        parent = pc.list_parent_indices(lists)
        stale = pc.extract_regex(pc.utf8_slice_codeunits(flat, len(self.prefix)), _VARIANT_NAME)
        hit = pc.or_(
            pc.is_in(flat, value_set=pa.array(names, pa.string())),
            pc.and_(
                pc.starts_with(flat, self.prefix),
                pc.is_in(stale.field("segment"), value_set=pa.array(segs, pa.string())),
            ),
        )
        hit = pc.fill_null(hit, False)
        rows = pc.filter(parent, hit).to_numpy(zero_copy_only=False).astype(np.int64) + start
        return rows, pc.filter(flat, hit).to_pylist()

    def _held_exploded(
        self, values: np.ndarray, start: int, names: list[str], segs: list[str]
    ) -> tuple[np.ndarray, list[str]]:
        """:meth:`_held_block` for a block whose cells are not all lists of text."""
        column = pd.Series(values, index=pd.RangeIndex(start, start + len(values)))
        exploded = column.explode().dropna()
        text = exploded.astype("string")
        starts = text.str.startswith(self.prefix).fillna(False)
        stale = text.str.slice(len(self.prefix)).str.extract(_VARIANT_NAME, expand=False)
        hit = (exploded.isin(names) | (starts & stale.isin(segs).fillna(False))).to_numpy(bool)
        return exploded.index[hit].to_numpy(np.int64), exploded[hit].astype(str).tolist()

    def segment_of(self, name: str) -> tuple[str, str | None]:
        """(segment, variant) a name this campaign owns stands for."""
        for g in self.groups:
            if g.name == name:
                return g.segment, g.variant
        seg, _, variant = name[len(self.prefix) :].rpartition(".")
        return seg, variant or None


#: ``<segment>.<variant>`` after the prefix: the segment of a variant group's name
_VARIANT_NAME = r"^(?P<segment>[^.]+)\.[A-Za-z0-9]{1,8}$"
#: rows of a list column whose names are read at a time
HELD_BLOCK = 65536
_TEXT_LISTS = (pa.list_(pa.string()), pa.list_(pa.null()))
#: actions made at a time: their contacts' ids and addresses become Python strings together
BLOCK = 4096


def membership(
    frame: pd.DataFrame,
    matrix: pd.DataFrame,
    prefix: str,
    segments: Sequence[str],
    held: np.ndarray | None = None,
    pick: np.ndarray | None = None,
    variants: Mapping[str, Sequence[str]] | None = None,
) -> Membership:
    """Groups from the segments: ``held`` rows (the holdout) in none, and each tested
    segment split by the variant ``pick`` draws (the draw :func:`variants.assign` makes)."""
    matrix = matrix.reset_index(drop=True)
    keep = ~held if held is not None else np.ones(len(matrix), dtype=bool)
    columns: dict[str, np.ndarray] = {}
    groups: list[Group] = []
    for seg in segments:
        base = f"{prefix}{seg}"
        rows = matrix[seg].to_numpy(dtype=bool) & keep
        names = list((variants or {}).get(seg) or [])
        if not names or pick is None:
            groups.append(Group(base, seg))
            columns[base] = rows
            continue
        choice = choose(pick, len(names))
        for j, v in enumerate(names):
            g = Group(group_name(base, names, v), seg, v)
            groups.append(g)
            columns[g.name] = rows & (choice == j)
    frame_of = pd.DataFrame(columns, index=matrix.index) if columns else matrix.iloc[:, :0]
    return Membership(frame["contact_id"], frame["email"], frame_of, prefix, groups)


def memberships(
    m: Membership,
    current: pd.Series,
    run_id: str,
    dest: Destination,
    *,
    add: str,
    remove: str,
    field: str,
    each_once: bool = False,
) -> Iterator[Planned]:
    """Add each group's name where missing; remove it from contacts who left the group
    (left the segment, or are held out). In this order: each group's additions by row, then
    the removals by row and name, made a block at a time as they are taken: a run
    pushes a million of them without holding them (some 300 MiB).
    ``each_once``: only the first action of each group's additions and of each name's
    removals (what a destination prepares for: the names, not the contacts)."""
    has = m.held(current)
    for g in m.groups:
        rows = np.flatnonzero(m.matrix[g.name].to_numpy(dtype=bool))
        holding = has.loc[has["name"] == g.name, "row"].to_numpy(dtype=np.int64)
        rows = rows[~np.isin(rows, holding)]
        names = itertools.repeat(g.name)
        yield from _actions(m, rows[:1] if each_once else rows, names, run_id, dest, add, field)
    stays = np.zeros(len(has), dtype=bool)
    at = has["row"].to_numpy(dtype=np.int64)
    for name, idx in has.groupby("name", sort=False).indices.items():
        if name in m.matrix:
            stays[idx] = m.matrix[name].to_numpy(dtype=bool)[at[idx]]
    gone = has[~stays].sort_values(["row", "name"], kind="stable")
    if each_once:
        gone = gone.drop_duplicates("name")
    rows, names = gone["row"].to_numpy(dtype=np.int64), gone["name"].tolist()
    yield from _actions(m, rows, iter(names), run_id, dest, remove, field)


def _actions(
    m: Membership,
    rows: np.ndarray,
    names: Iterator[str],
    run_id: str,
    dest: Destination,
    kind: str,
    field: str,
) -> Iterator[Planned]:
    """The action of each row (with the name of each, in turn), a block at a time."""
    run = parse_run_id(run_id)  # a destination keeping the assignment records the run
    segment_of = functools.cache(m.segment_of)
    for start in range(0, len(rows), BLOCK):
        ids, emails = m.contacts(rows[start : start + BLOCK])
        for cid, email, name in zip(ids, emails, names):  # noqa: B905 - names may be endless
            seg, variant = segment_of(name)
            key = membership_key(run_id, cid, kind, name)
            payload = {field: name, "segment": seg, "email": email, "variant": variant}
            payload |= {"run_id": run_id, "campaign": run.campaign, "as_of": run.day}
            yield (
                PlannedAction(key, cid, kind, dest.name, seg, name, variant=variant),
                Action(key, kind, cid, payload),  # type: ignore[arg-type]
            )


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
    render: Callable[[str, str | None], object],
    errors: list[str],
    skipped: list[PlannedAction],
) -> list[Planned]:
    """One draft per non-empty group, carrying its letter with the platform's merge tags:
    a tested segment gets one draft per variant, each aimed at its variant's list.

    A letter that cannot be a draft (it needs a value only Segmerge knows) is
    recorded as skipped with the reason, and reported; the other drafts go on.
    """
    out: list[Planned] = []
    for g in m.groups:
        members = int(m.matrix[g.name].sum())
        if not members:
            continue
        seg, v = g.segment, g.variant
        name = f"{info.campaign} {info.day} · {seg}" + (f" · {v}" if v else "")
        key = draft_key(run_id, seg, v)
        try:
            r = render(seg, v)
        except TemplateError as exc:
            errors.append(f"draft {seg}{'.' + v if v else ''}: {exc}")
            skipped.append(
                PlannedAction(
                    key,
                    None,
                    "create_campaign",
                    dest.name,
                    seg,
                    name,
                    "skipped",
                    str(exc),
                    variant=v,
                )
            )
            continue
        sender = getattr(r, "from_addr", None) or info.from_addr
        from_name, from_email = _split_address(sender)
        payload = {
            "name": name,
            "segment": seg,
            "variant": v,
            "list": g.name,
            "tag": g.name,
            "subject": getattr(r, "subject", ""),
            "preheader": getattr(r, "preheader", ""),
            "html": getattr(r, "html", ""),
            "text": getattr(r, "text", ""),
            "from_email": from_email,
            "from_name": from_name,
            "reply_to": getattr(r, "reply_to", None) or info.reply_to or from_email,
            "members": members,
        }
        out.append(
            (
                PlannedAction(key, None, "create_campaign", dest.name, seg, name, variant=v),
                Action(key, "create_campaign", None, payload),
            )
        )
    return out


def _split_address(value: str) -> tuple[str, str]:
    from email.utils import parseaddr

    name, addr = parseaddr(value)
    return name, addr


def changes_by_segment(items: Sequence[Planned]) -> dict[str, dict[str, int]]:
    """For `--dry-run`: per segment (per variant group of a tested one, ``fonceurs.B``),
    how many of each kind of change."""
    out: dict[str, dict[str, int]] = {}
    for plan, _ in items:
        if plan.status != "planned":
            continue
        seg = (plan.segment or "-") + (f".{plan.variant}" if plan.variant else "")
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
            out.append(
                (
                    r["key"],
                    "skipped",
                    "not needed any more when the run resumed (the contact changed meanwhile)",
                )
            )
    return out
