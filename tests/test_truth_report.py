"""`segmerge report` tells the whole truth: each contact counted once, subscribers left
without a letter and segments hidden inside others are said."""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

import pytest

from segmerge.i18n import use_locale
from segmerge.ports.schema import Tables
from segmerge.report.coverage import nested, uncovered
from segmerge.report.quality import analyse
from segmerge.segment.segmentation import Segmented, open_source, pull_source, segment
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> wsmod.Workspace:
    root = tmp_path_factory.mktemp("truth-report") / "ws"
    with as_file(files("segmerge") / "scaffold") as src:
        shutil.copytree(src, root, symlinks=False)
    return wsmod.load(root)


@pytest.fixture(scope="module")
def tables(demo: wsmod.Workspace) -> Tables:
    """The demo's source pulled once: each test segments it with its own rules."""
    source = open_source(demo, "demo")
    try:
        return pull_source(demo, source)
    finally:
        source.close()


def segmented(ws: wsmod.Workspace, rules: str | Path, tables: Tables) -> Segmented:
    return segment(ws, rules, as_of=AS_OF, tables=tables)


def rules(ws: wsmod.Workspace, name: str, mode: str, segments: str) -> Path:
    path = ws.root / "segrules" / f"{name}.yaml"
    path.write_text(
        f"version: 1\nname: {name}\nmode: {mode}\n"
        f"exclude: not subscribed or email is null\nsegments:\n{segments}"
    )
    return path


def test_excluded_contacts_are_counted_once(demo, tables):
    seg = segmented(demo, "segrules/profils-vpc.yaml", tables)
    q = analyse(seg, tz=demo.tz)
    assert q.excluded == int(seg.assignment.excluded.sum()) > 0
    # sizes, excluded and "in no segment" add up to the base, each contact once
    assert sum(s.size for s in q.segments) + q.excluded + q.unassigned == q.total
    assert q.unassigned == 0  # zens catches every contact not excluded


def test_a_large_share_of_subscribers_without_a_letter_is_warned(demo, tables):
    path = rules(
        demo, "gros", "first", "  - name: gros\n    label: Gros\n    when: revenue > 2000\n"
    )
    seg = segmented(demo, path, tables)
    u = uncovered(seg)
    subscribed = seg.frame["subscribed"].fillna(False).astype(bool) & seg.frame["email"].notna()
    assert u.subscribers == int(subscribed.sum())
    assert u.without_letter == int((subscribed & seg.assignment.primary.isna()).sum())
    assert u.share > 0.5
    use_locale("fr_FR")
    try:
        q = analyse(seg, tz=demo.tz)
    finally:
        use_locale("en")  # the process's language, as the suite runs it
    said = [w for w in q.warnings if "abonnés" in w]
    assert len(said) == 1 and f"{u.without_letter:,}".replace(",", "\u202f") in said[0]
    assert "\u202f%" in said[0], said  # French typography


def test_a_covering_rule_set_is_not_warned(demo, tables):
    use_locale("en")
    q = analyse(segmented(demo, "segrules/profils-vpc.yaml", tables), tz=demo.tz)
    assert not [w for w in q.warnings if "subscribers" in w or "inside" in w], q.warnings


def test_a_segment_shadowed_by_an_earlier_one_is_warned(demo, tables):
    use_locale("en")
    path = rules(
        demo,
        "ombre",
        "first",
        "  - name: clients\n    label: Clients\n    when: orders_count >= 1\n"
        "  - name: fideles\n    label: Fidèles\n    when: orders_count >= 5\n"
        "  - name: autres\n    label: Autres\n    when: true\n",
    )
    seg = segmented(demo, path, tables)
    found = nested(seg, demo.tz)
    assert [(n.inner, n.outer, n.shadowed) for n in found] == [("fideles", "clients", True)]
    assert found[0].size == int(((seg.frame["orders_count"] >= 5) & ~seg.assignment.excluded).sum())
    assert seg.assignment.sizes()["fideles"] == 0  # what the warning explains
    warned = [w for w in analyse(seg, tz=demo.tz).warnings if "inside" in w]
    assert len(warned) == 1 and "receives nobody" in warned[0] and "Fidèles" in warned[0]


def test_a_nested_segment_in_mode_all_is_warned_not_a_partial_overlap(demo, tables):
    use_locale("en")
    path = rules(
        demo,
        "imbrique",
        "all",
        "  - name: gros\n    label: Gros\n    when: revenue > 500\n"
        "  - name: tres_gros\n    label: Très gros\n    when: revenue > 1000\n"
        "  - name: recents\n    label: Récents\n    when: days_since_last_order < 60\n"
        "  - name: tous\n    label: Tous\n    when: true\n",
    )
    seg = segmented(demo, path, tables)
    pairs = {(n.inner, n.outer) for n in nested(seg, demo.tz)}
    # inside: tres_gros in gros; recents only overlaps them; the catch-all is left out
    assert pairs == {("tres_gros", "gros")}
    warned = [w for w in analyse(seg, tz=demo.tz).warnings if "inside" in w]
    assert len(warned) == 1 and "get both segments" in warned[0]
