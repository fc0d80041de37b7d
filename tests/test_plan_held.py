"""The names of a campaign a run finds on its contacts, read a block of rows at a time:
what decides which tags it adds and removes (and what a dry run counts)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from segmerge.run import plan
from segmerge.run.plan import Group, Membership
from segmerge.run.plan_counts import count_memberships

GROUPS = [
    Group("seg:vip", "vip"),
    Group("seg:fonceurs", "fonceurs", "A"),
    Group("seg:fonceurs.B", "fonceurs", "B"),
]


def _membership(matrix: dict[str, list[bool]] | None = None) -> Membership:
    frame = pd.DataFrame(matrix or {})
    none = pd.Series([], dtype=object)
    return Membership(none, none, frame, "seg:", GROUPS)


def _pairs(m: Membership, cells: list) -> list[tuple[int, str]]:
    found = m.held(pd.Series(cells, dtype=object, index=pd.RangeIndex(100, 100 + len(cells))))
    return list(zip(found["row"].tolist(), found["name"].tolist(), strict=True))


@pytest.fixture(params=[2, 65536], ids=["blocks-of-2", "one-block"])
def block(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(plan, "HELD_BLOCK", request.param)
    return request.param


def test_only_the_campaigns_names_once_each_by_row(block: int) -> None:
    cells = [
        ["vip", "seg:vip", "seg:vip"],  # the marketer's own tag is never ours; one pair
        [],
        None,
        np.nan,
        np.array(["seg:fonceurs.B", "seg:other"], dtype=object),  # another campaign's segment
        ("seg:fonceurs.C", "seg:vip.toolongname"),  # a variant no longer tested: ours
        ["seg:reconquete.B", "seg:.B", "seg:", None],  # not one of this campaign's segments
        ["seg:fonceurs", "seg:vip"],
    ]
    assert _pairs(_membership(), cells) == [
        (0, "seg:vip"),
        (4, "seg:fonceurs.B"),
        (5, "seg:fonceurs.C"),
        (7, "seg:fonceurs"),
        (7, "seg:vip"),
    ]


def test_cells_that_are_not_lists_of_text_are_still_read(block: int) -> None:
    cells = [["seg:vip", 3], ["seg:vip"], [], "seg:vip"]
    assert _pairs(_membership(), cells) == [(0, "seg:vip"), (1, "seg:vip"), (3, "seg:vip")]


def test_counts_add_where_missing_and_remove_who_left(block: int) -> None:
    m = _membership(
        {
            "seg:vip": [True, True, False, False],
            "seg:fonceurs": [False, False, True, False],
            "seg:fonceurs.B": [False, False, False, False],
        }
    )
    tags = pd.Series([["seg:vip"], [], ["seg:vip", "seg:fonceurs.B"], ["x"]], dtype=object)
    counted = count_memberships(m, tags, 0, "tag", "untag")
    assert sorted((seg, kind, n) for _at, seg, kind, n in counted) == [
        ("fonceurs.A", "tag", 1),
        ("fonceurs.B", "untag", 1),
        ("vip", "tag", 1),
        ("vip", "untag", 1),
    ]


def test_a_large_base_is_read_without_an_exploded_copy() -> None:
    """Most contacts hold no name: the run's peak must not grow with a row per contact
    (exploding 300,000 lists at once held some 32 MiB of Python objects)."""
    cells = [[] for _ in range(270_000)] + [["seg:vip", "vip"] for _ in range(30_000)]
    column = pd.Series(cells, dtype=object)
    tracemalloc.start()
    try:
        found = _membership().held(column)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found["row"].tolist() == list(range(270_000, 300_000))
    assert peak < 12 * 2**20
