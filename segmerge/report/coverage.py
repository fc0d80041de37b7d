"""Who the segmentation leaves out, and segments hidden inside others.

Two things a size table does not show. First, how many *subscribers* get no
letter at all: a rule set whose segments cover 60 % of the people who asked
for mail is leaving money on the table, and the "(none)" row mixes them with
contacts who could never be mailed. Second, a segment nested inside another:
judged on the conditions themselves, before `mode: first` hands each contact
to one segment (after it, segments never overlap and nesting is invisible).
In `mode: all` the nested segment's contacts are also in the bigger one (two
tags, two letters' worth of attention); in `mode: first` a segment nested in
one placed *before* it receives nobody, whatever its letter says.

Everything is column-wise on the frame the run uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import numpy as np
import pandas as pd

from segmerge.i18n import _, number, percent
from segmerge.rules.ruleset import _static_truth
from segmerge.segment.segmentation import Segmented

#: a share of subscribers without a letter above this is worth a warning
LARGE_SHARE = 0.2


@dataclass(frozen=True)
class Uncovered:
    """Subscribers (subscribed, with an address) who are in no segment."""

    subscribers: int
    without_letter: int

    @property
    def share(self) -> float:
        return self.without_letter / self.subscribers if self.subscribers else 0.0


@dataclass(frozen=True)
class Nested:
    """Every contact whose conditions put it in ``inner`` also meets ``outer``'s."""

    inner: str
    outer: str
    size: int  # contacts meeting inner's condition (not excluded)
    shadowed: bool  # mode first, outer placed before inner: inner receives nobody


def subscribers(frame: pd.DataFrame) -> np.ndarray:
    """Contacts who may be mailed at all: subscribed (when the source says) with an address."""
    ok = np.ones(len(frame), dtype=bool)
    if "subscribed" in frame.columns:
        ok &= frame["subscribed"].fillna(False).to_numpy(dtype=bool)
    if "email" in frame.columns:
        ok &= frame["email"].notna().to_numpy(dtype=bool)
    return ok


def uncovered(seg: Segmented) -> Uncovered:
    subs = subscribers(seg.frame)
    none = seg.assignment.primary.isna().to_numpy(dtype=bool)
    return Uncovered(int(subs.sum()), int((subs & none).sum()))


def raw_members(seg: Segmented, tz: tzinfo | None = None) -> dict[str, np.ndarray]:
    """Each segment's condition on its own (after the exclusion, before `mode: first`)."""
    rs, frame = seg.ruleset, seg.frame
    if rs.mode != "first":  # mode all: the matrix is the conditions themselves
        return {c: seg.assignment.matrix[c].to_numpy(dtype=bool) for c in seg.assignment.matrix}
    zone = tz or seg.as_of.tzinfo
    assert zone is not None
    ev = rs.evaluator(frame, seg.as_of, zone, rs.kinds_for(frame))
    kept = ~seg.assignment.excluded.to_numpy(dtype=bool)
    return {
        s.name: np.asarray(ev.truth(s.expr).fillna(False).to_numpy(dtype=bool)) & kept
        for s in rs.segments
    }


def nested(seg: Segmented, tz: tzinfo | None = None) -> list[Nested]:
    """Pairs where one segment's contacts all meet another's condition.

    A catch-all (``when: true``) contains every segment by design and is left
    out, as are empty conditions; two segments with the same members are one
    pair (the later inside the earlier).
    """
    rs = seg.ruleset
    order = {s.name: i for i, s in enumerate(rs.segments)}
    catch_all = {s.name for s in rs.segments if _static_truth(s.expr) is True}
    members = {k: v for k, v in raw_members(seg, tz).items() if v.any() and k not in catch_all}
    sizes = {k: int(v.sum()) for k, v in members.items()}
    out: list[Nested] = []
    for inner, a in members.items():
        for outer, b in members.items():
            if inner == outer or (a & ~b).any():
                continue
            if sizes[inner] == sizes[outer] and order[inner] < order[outer]:
                continue  # the same people: said once, the later one inside the earlier
            shadowed = rs.mode == "first" and order[outer] < order[inner]
            if rs.mode == "first" and not shadowed:
                continue  # an earlier, narrower segment taking its share first: by design
            out.append(Nested(inner, outer, sizes[inner], shadowed))
    return out


def coverage_warnings(seg: Segmented, tz: tzinfo | None = None) -> list[str]:
    """What to tell the marketer about subscribers left out and nested segments."""
    out: list[str] = []
    u = uncovered(seg)
    if u.subscribers and u.share > LARGE_SHARE:
        out.append(
            _(
                "{share} of subscribers ({n} of {total}) get no letter: they are in no "
                "segment; add a segment for them or check the conditions"
            ).format(
                share=percent(u.share), n=number(u.without_letter), total=number(u.subscribers)
            )
        )
    labels = {s.name: s.label for s in seg.ruleset.segments}
    for n in nested(seg, tz):
        text = (
            _(
                "segment “{inner}” is inside “{outer}”, placed before it: all {n} of its "
                "contacts are taken by “{outer}” first, so “{inner}” receives nobody "
                "(mode: first); move it up or narrow “{outer}”"
            )
            if n.shadowed
            else _(
                "segment “{inner}” is inside “{outer}”: all {n} of its contacts are in "
                "“{outer}” too (mode: all), so they get both segments"
            )
        )
        out.append(text.format(inner=labels[n.inner], outer=labels[n.outer], n=number(n.size)))
    return out
