"""What a dry run says it would push back to a platform, counted on whole columns.

A dry run only reports how many tags and list memberships each segment would gain
and lose (:func:`segmerge.run.plan.changes_by_segment` of the planned actions).
Building those actions, a key, a payload and a ledger row per contact, to count
them cost a base of a million contacts some 300 MiB: here the same figures come
from the membership matrix and the names the contacts hold, in the order the
actions would have come (by group, then removals by row), so the summary reads
the same as a run's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmerge.run.plan import Membership

#: (where the first such action would have been, segment label, kind, how many)
Counted = list[tuple[tuple[int | str, ...], str, str, int]]


def held(m: Membership, column: pd.Series) -> pd.DataFrame:
    """(row, name) pairs, once each, of the names this campaign owns that the contacts
    hold now (:meth:`Membership.held`)."""
    return m.held(column)


def count_memberships(
    m: Membership, current: pd.Series, phase: int, add: str, remove: str
) -> Counted:
    """Each group's additions (where its members do not hold its name yet) and removals
    (a held name whose contact left the group), as :func:`~segmerge.run.plan.memberships`
    plans them."""
    has = held(m, current)
    out: Counted = []
    for j, g in enumerate(m.groups):
        members = m.matrix[g.name].to_numpy(dtype=bool)
        rows = has.loc[has["name"] == g.name, "row"].to_numpy(dtype=np.int64)
        n = int(members.sum()) - int(members[rows].sum())
        if n:
            out.append(((phase, 0, j), label(g.segment, g.variant), add, n))
    for name, rows in has.groupby("name", sort=False)["row"]:
        at = rows.to_numpy(dtype=np.int64)
        if name in m.matrix:
            at = at[~m.matrix[name].to_numpy(dtype=bool)[at]]
        if len(at):
            seg, variant = m.segment_of(str(name))
            first = (phase, 1, int(at.min()), str(name))  # removals go by (row, name)
            out.append((first, label(seg, variant), remove, len(at)))
    return out


def fold(counted: Counted) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Kind counts and per-segment changes, keyed in the order of the first action of each."""
    planned: dict[str, int] = {}
    changes: dict[str, dict[str, int]] = {}
    for _at, seg, kind, n in sorted(counted, key=lambda c: c[0]):
        planned[kind] = planned.get(kind, 0) + n
        changes.setdefault(seg, {})
        changes[seg][kind] = changes[seg].get(kind, 0) + n
    return planned, changes


def label(segment: str, variant: str | None) -> str:
    """A segment's name in the changes, with its variant (``fonceurs.B``)."""
    return segment + (f".{variant}" if variant else "")
