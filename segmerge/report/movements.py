"""Who entered and who left each segment since the previous report or run, and why.

Customers change; segments should follow them, and a marketer wants to see the
flow ("37 fonceurs became zens") before trusting a new letter. Each `report`
and each run keeps the assignment of the day (:mod:`segmerge.segment.history`:
one row per contact and segment, with the values of every column and metric the
conditions read, as text). The movements of day D are computed against the
latest *earlier* day kept, so running the report twice on the same day shows the
same movements.

"Why" is the list of the condition values that changed for a contact who
moved, among the columns read by the exclusion and the segments it left or
entered (and, in ``mode: first``, the segments before them, since an earlier
segment starting to match also moves a contact). When nothing it reads
changed, the rule text did: that is said too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segmerge.segment.history import (
    columns_read,
    current,
    load,
    read_columns,
    rules_digest,
    save_segmented,
    snapshot_path,
)
from segmerge.segment.segmentation import Segmented
from segmerge.workspace.config import Workspace

__all__ = ["Movements", "Mover", "SegmentFlow", "movements", "save_segmented", "snapshot_path"]

EXAMPLES = 5  # movers shown per segment
GONE = "(hors base)"  # a contact who is not in the base on one of the two days


@dataclass
class Mover:
    contact_id: str
    before: str  # old segments, "+"-joined ("" for none, GONE for a new contact)
    after: str
    why: list[str]


@dataclass
class SegmentFlow:
    name: str
    entered: int
    left: int
    stayed: int
    reasons: list[tuple[str, int]]  # column label -> movers (entered or left) it changed for
    examples: list[Mover] = field(default_factory=list)


@dataclass
class Movements:
    previous_day: str
    day: str
    rules_changed: bool
    flows: list[SegmentFlow]
    transitions: pd.DataFrame  # old primary segment x new primary segment, contacts
    new_contacts: int
    gone_contacts: int


def _primary(pairs: pd.DataFrame, order: list[str]) -> pd.Series:
    rank = {s: i for i, s in enumerate(order)}
    p = pairs.assign(r=pairs["segment"].map(lambda s: rank.get(s, len(order))))
    return (
        p.sort_values(["contact_id", "r"])
        .drop_duplicates("contact_id")
        .set_index("contact_id")["segment"]
    )


def movements(ws: Workspace, seg: Segmented) -> Movements | None:
    """Movements since the latest kept day before this one (None: nothing to compare with)."""
    rs, frame = seg.ruleset, seg.frame
    day = seg.as_of.tz_convert(ws.tz).strftime("%Y-%m-%d")
    old_all = load(snapshot_path(ws, rs.name))
    if old_all is None:
        return None
    old_all = old_all[(old_all["source"] == seg.source_name) & (old_all["day"] < day)]
    if old_all.empty:
        return None
    prev_day = str(old_all["day"].max())
    old = old_all[old_all["day"] == prev_day]
    new = current(rs, frame, seg.assignment, day, seg.source_name)
    order = [s.name for s in rs.segments]
    labels = read_columns(rs, frame)
    old_p, new_p = _primary(old, order), _primary(new, order)
    ids = old_p.index.union(new_p.index)
    before = old_p.reindex(ids).fillna(GONE)
    after = new_p.reindex(ids).fillna(GONE)
    transitions = pd.crosstab(before.rename("avant"), after.rename("après"))
    old_sets = old.groupby("contact_id")["segment"].agg(lambda s: "+".join(sorted(s)))
    new_sets = new.groupby("contact_id")["segment"].agg(lambda s: "+".join(sorted(s)))
    old_v = old.drop_duplicates("contact_id").set_index("contact_id")
    new_v = new.drop_duplicates("contact_id").set_index("contact_id")
    both = old_v.index.intersection(new_v.index)
    changed: dict[str, pd.Series] = {}
    for c in labels:
        col = f"v:{c}"
        if col in old_v.columns:
            a, b = old_v.loc[both, col], new_v.loc[both, col]
            changed[c] = ~((a == b).fillna(False) | (a.isna() & b.isna()))
    rules_changed = bool((old["rules"] != rules_digest(rs)).any())
    cond_cols = {s.name: list(columns_read(s.expr, frame)) for s in rs.segments}
    excl = list(columns_read(rs.exclude, frame)) if rs.exclude is not None else []
    flows: list[SegmentFlow] = []
    old_members = old.groupby("segment")["contact_id"].agg(set)
    new_members = new.groupby("segment")["contact_id"].agg(set)
    for i, s in enumerate(rs.segments):
        was, now = old_members.get(s.name, set()), new_members.get(s.name, set())
        entered, left = sorted(now - was), sorted(was - now)
        relevant = (
            excl
            + [c for t in rs.segments[: i + 1] if rs.mode == "first" for c in cond_cols[t.name]]
            + cond_cols[s.name]
        )
        relevant = [c for c in dict.fromkeys(relevant) if c in changed]
        movers = pd.Index(entered + left).intersection(both)
        reasons = [(labels[c], int(changed[c].loc[movers].sum())) for c in relevant]
        reasons = sorted([r for r in reasons if r[1]], key=lambda r: -r[1])
        examples = [
            _mover(cid, old_sets, new_sets, old_v, new_v, relevant, labels, changed, rules_changed)
            for cid in (entered + left)[:EXAMPLES]
        ]
        flows.append(
            SegmentFlow(s.name, len(entered), len(left), len(was & now), reasons, examples)
        )
    return Movements(
        prev_day,
        day,
        rules_changed,
        flows,
        transitions,
        int((before == GONE).sum()),
        int((after == GONE).sum()),
    )


def _mover(
    cid: str,
    old_sets: pd.Series,
    new_sets: pd.Series,
    old_v: pd.DataFrame,
    new_v: pd.DataFrame,
    relevant: list[str],
    labels: dict[str, str],
    changed: dict[str, pd.Series],
    rules_changed: bool,
) -> Mover:
    """One mover's story (a handful per segment: the counts above are column-wise)."""
    before = str(old_sets.get(cid, GONE))
    after = str(new_sets.get(cid, GONE))
    if GONE in (before, after):
        why = ["nouveau contact" if before == GONE else "n'est plus dans la base"]
        return Mover(cid, before, after, why)
    why = []
    for c in relevant:
        if bool(changed[c].get(cid, False)):
            a, b = old_v.at[cid, f"v:{c}"], new_v.at[cid, f"v:{c}"]
            why.append(f"{labels[c]} : {_show(a)} → {_show(b)}")
    if not why:
        why = ["les règles ont changé" if rules_changed else "aucune valeur lue n'a changé"]
    return Mover(cid, before, after, why)


def _show(v: object) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "vide"
    return str(v).replace(".", ",") if str(v).replace(".", "", 1).lstrip("-").isdigit() else str(v)
