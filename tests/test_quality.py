"""Segment quality and movements: hand-checked statistics and the demo workspace."""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import pytest
from scipy.stats import f_oneway

from segmerge import i18n
from segmerge.i18n import NNBSP
from segmerge.report.movements import movements, save_segmented, snapshot_path
from segmerge.report.quality import _top, analyse, fr, homogeneity, indistinct_pairs, pct
from segmerge.segment.rows import segment_rows
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> wsmod.Workspace:
    root = tmp_path_factory.mktemp("quality") / "ws"
    with as_file(files("segmerge") / "scaffold") as src:
        shutil.copytree(src, root, symlinks=False)
    return wsmod.load(root)


@pytest.fixture(scope="module")
def profils(demo: wsmod.Workspace):
    """The demo segmented by profils-vpc; its pulled tables serve the other rule sets
    (pulling the demo again for each gave the same tables at twice the cost)."""
    return segment(demo, "segrules/profils-vpc.yaml", as_of=AS_OF)


def test_eta_squared_and_pseudo_f_by_hand():
    x = np.array([1.0, 2, 3, 10, 11, 12, np.nan])
    g = np.array(["a", "a", "a", "b", "b", "b", "b"], dtype=object)
    h = homogeneity({"m": x}, g)
    # SST = 2 (5.5² + 4.5² + 3.5²) = 125.5, SSB = 3 (4.5²) · 2 = 121.5, SSW = 4
    assert h.eta2["m"] == pytest.approx(121.5 / 125.5)
    assert h.pseudo_f["m"] == pytest.approx((121.5 / 1) / (4 / 4))
    assert h.pseudo_f["m"] == pytest.approx(f_oneway([1, 2, 3], [10, 11, 12]).statistic)
    assert h.score == h.eta2["m"]
    # one group only, or a constant metric: no number rather than a misleading one
    one = homogeneity({"m": x, "c": np.ones(7)}, np.array(["a"] * 7, dtype=object))
    assert one.eta2 == {"m": None, "c": None} and one.score is None


def test_indistinct_pairs_by_ks():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 200), rng.normal(0, 1, 200), rng.normal(3, 1, 200)])
    members = {k: np.zeros(600, dtype=bool) for k in "abc"}
    for i, k in enumerate("abc"):
        members[k][200 * i : 200 * (i + 1)] = True
    assert indistinct_pairs({"m": x}, members) == [("a", "b")]


def test_numbers_follow_the_language(french):
    assert fr(1234.56) == "1\u202f234,6" and fr(0.0042 * 100, 1, True) == "+0,4"
    assert fr(None) == "—" and fr(float("nan")) == "—" and pct(0.125) == "12,5\u202f%"
    i18n.use_locale("en_US")  # an English report reads numbers the English way
    assert (fr(1234.56), fr(-0.4, 1, True), pct(0.125), pct(0.1)) == (
        "1,234.6",
        "-0.4",
        "12.5%",
        "10%",
    )


@pytest.fixture
def french():
    """The report's sentences in French, as a fr_FR workspace's command shows them."""
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


def test_demo_profiles_match_the_segment_command(profils):
    seg = profils
    q = analyse(seg)
    rows = segment_rows(seg, [])
    counts = rows[rows["segment"] != ""]["segment"].value_counts()
    assert {s.name: s.size for s in q.segments} == counts.to_dict()
    assert q.total == len(seg.frame) == rows["contact_id"].nunique()
    assert sum(s.size for s in q.segments) + q.excluded + q.unassigned == q.total  # mode first
    assert sum(s.share for s in q.segments) == pytest.approx(
        1 - (q.excluded + q.unassigned) / q.total
    )
    fonceurs = next(s for s in q.segments if s.name == "fonceurs")
    mask = seg.assignment.matrix["fonceurs"].to_numpy()
    assert fonceurs.stats["avg_basket"].mean == pytest.approx(seg.frame["avg_basket"][mask].mean())
    assert fonceurs.stats["avg_basket"].median == pytest.approx(
        seg.frame["avg_basket"][mask].median()
    )
    # the rule metrics are what the conditions read, labelled as written
    assert set(q.rule_metrics) == {
        "orders(days=90, offset=0)",
        "avg_basket",
        "distinct(column=category, days=365)",
        "orders_count",
    }
    assert q.metrics["orders(days=90, offset=0)"] == "orders(days=90)"
    assert 0 < q.homogeneity.score <= 1 and q.warnings == []
    cats = next(m for m in fonceurs.mixes if m.title == "ordered categories")
    assert len(cats.rows) == 3 and all(0 < a <= 1 for _, a, _ in cats.rows)
    assert {m.title for m in fonceurs.mixes} == {"ordered categories", "age", "region"}
    ages = next(m for m in fonceurs.mixes if m.title == "age")
    assert all("ans" not in band for band, _, _ in ages.rows)  # no French in English


def test_the_mixes_follow_the_language(profils, french):
    seg = profils
    mixes = analyse(seg).segments[0].mixes
    assert {m.title for m in mixes} >= {"âge", "région"}
    ages = next(m for m in mixes if m.title == "âge")
    assert ages.rows and all(
        band.endswith("ans") or band == "65 ans et plus" for band, _, _ in ages.rows
    )


def rules(demo: wsmod.Workspace, name: str, text: str) -> str:
    path = demo.root / "segrules" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return f"segrules/{name}.yaml"


def test_empty_segment_catch_all_and_count_warnings(demo, profils, french):
    path = rules(
        demo,
        "vide",
        "version: 1\nname: vide\nsegments:\n"
        "  - name: geants\n    when: orders_count > 100000\n"
        "  - name: petits\n    when: orders_count between 1 and 1\n"
        "  - name: tous\n    label: Tout le monde\n    when: true\n",
    )
    seg = segment(demo, path, source_name="demo", as_of=AS_OF, tables=profils.tables)
    q = analyse(seg, min_size=50)
    empty = q.segments[0]
    assert empty.size == 0 and empty.spread is None
    assert all(st.mean is None and st.count == 0 for st in empty.stats.values())
    text = " | ".join(q.warnings)
    assert f"«{NNBSP}geants{NNBSP}» est vide{NNBSP}: pas assez de données" in text
    assert f"fourre-tout «{NNBSP}Tout le monde{NNBSP}»" in text and "de la base" in text
    tous = q.segments[2]
    assert tous.catch_all and tous.share > 0.5
    petits = q.segments[1]
    if petits.size < 50:
        assert f"ne compte que {petits.size} contacts" in text
    one = analyse(
        segment(
            demo,
            rules(demo, "un", "version: 1\nsegments:\n  - name: tous\n    when: true\n"),
            source_name="demo",
            as_of=AS_OF,
            tables=profils.tables,
        )
    )
    assert one.warnings[0].startswith(f"1 segment{NNBSP}: une bonne segmentation en compte")


def test_overlap_matrix_in_mode_all(demo, profils):
    path = rules(
        demo,
        "tout",
        "version: 1\nname: tout\nmode: all\nsegments:\n"
        "  - name: gros\n    when: revenue > 500\n"
        "  - name: frequents\n    when: orders_count >= 8\n"
        "  - name: recents\n    when: days_since_last_order < 30\n",
    )
    seg = segment(demo, path, source_name="demo", as_of=AS_OF, tables=profils.tables)
    q = analyse(seg)
    f = seg.frame
    gros = (f["revenue"] > 500).to_numpy()
    freq = (f["orders_count"] >= 8).to_numpy()
    rec = f["days_since_last_order"].fillna(10**6).lt(30).to_numpy()
    assert q.overlap is not None
    assert q.overlap.loc["gros", "frequents"] == (gros & freq).sum()
    assert q.overlap.loc["recents", "gros"] == (rec & gros).sum()
    assert q.overlap.loc["gros", "gros"] == gros.sum() == q.segments[0].size


def test_movements_since_the_previous_day(demo, profils):
    path = "segrules/profils-vpc.yaml"
    before = segment(demo, path, as_of="2026-10-01", tables=profils.tables)
    after = segment(demo, path, as_of=AS_OF, tables=before.tables)
    snapshot_path(demo, "profils-vpc").unlink(missing_ok=True)
    assert movements(demo, after) is None
    save_segmented(demo, before)
    m = movements(demo, after)
    assert m is not None and m.previous_day == "2026-10-01" and not m.rules_changed
    ids = before.frame["contact_id"].astype(str).to_numpy()
    for flow in m.flows:
        was = set(ids[before.assignment.matrix[flow.name].to_numpy()])
        now = set(ids[after.assignment.matrix[flow.name].to_numpy()])
        assert (flow.entered, flow.left, flow.stayed) == (
            len(now - was),
            len(was - now),
            len(was & now),
        )
    fonceurs = next(f for f in m.flows if f.name == "fonceurs")
    assert fonceurs.entered > 0 and fonceurs.examples
    ex = fonceurs.examples[0]
    assert ex.after == "fonceurs" and ex.before != "fonceurs"
    assert any(w.startswith(("orders(days=90) :", "avg_basket :")) and "→" in w for w in ex.why)
    # the report of the same day again (which saves that day) shows the same movements
    save_segmented(demo, after)
    again = movements(demo, after)
    assert again is not None and again.previous_day == "2026-10-01"
    assert [(f.entered, f.left) for f in again.flows] == [(f.entered, f.left) for f in m.flows]
    kept = pd.read_parquet(snapshot_path(demo, "profils-vpc"))
    assert set(kept["day"]) == {"2026-10-01", AS_OF}


def test_tied_categories_are_listed_by_name_whatever_order_the_orders_came_in():
    """A database answers a GROUP BY in no particular order: the report must not follow it."""
    rows = ["shoes", "bags", "hats", "bags", "shoes", "hats", "socks"]
    first = _top(pd.Series(rows))
    again = _top(pd.Series(list(reversed(rows))))
    assert list(first.index) == list(again.index) == ["bags", "hats", "shoes"]
    assert first.tolist() == pytest.approx([2 / 7] * 3)
