"""A dry run counts the tags and list memberships it would push on whole columns, without
making an action per contact: its figures, and the order it tells them in, are the ones
the run's actual plan gives (`memberships` then `changes_by_segment`), whatever
the contacts hold now (our names, stale variant names, foreign tags, twice the same)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from segmerge.run.plan import changes_by_segment, membership, memberships
from segmerge.run.plan_counts import count_memberships, fold

SEGMENTS = ["vip", "fid", "new"]
VARIANTS = {"fid": ["A", "B"]}
#: what a contact may hold: our groups, a variant no longer tested, someone else's names
NAMES = ["seg:vip", "seg:fid", "seg:fid.B", "seg:new", "seg:new.C", "seg:old", "vip", "x:fid"]


@st.composite
def bases(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 30))
    tags = [draw(st.lists(st.sampled_from(NAMES), max_size=4)) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "email": [f"c{i}@exemple.fr" for i in range(n)],
            "tags": pd.Series(tags, dtype=object),
        }
    )
    member = st.lists(st.booleans(), min_size=n, max_size=n)
    matrix = pd.DataFrame({s: draw(member) for s in SEGMENTS}, dtype=bool)
    held = np.array(draw(member), dtype=bool)
    pick = np.array(draw(st.lists(st.floats(0, 0.999), min_size=n, max_size=n)))
    return frame, matrix, held, pick


@settings(max_examples=40, deadline=None)
@given(bases(), st.booleans())
def test_counted_changes_are_the_planned_ones_in_the_same_order(base, holdout) -> None:
    frame, matrix, held, pick = base
    m = membership(
        frame,
        matrix,
        "seg:",
        SEGMENTS,
        held=held if holdout else None,
        pick=pick,
        variants=VARIANTS,
    )
    dest = SimpleNamespace(name="shop")
    plan = list(
        memberships(m, frame["tags"], "c@2026-12-01", dest, add="tag", remove="untag", field="tag")
    )
    planned: dict[str, int] = {}
    for p, _ in plan:
        planned[p.kind] = planned.get(p.kind, 0) + 1
    counted_planned, counted_changes = fold(count_memberships(m, frame["tags"], 0, "tag", "untag"))
    want = changes_by_segment(plan)
    assert list(counted_planned.items()) == list(planned.items())
    assert [(k, list(v.items())) for k, v in counted_changes.items()] == [
        (k, list(v.items())) for k, v in want.items()
    ]
