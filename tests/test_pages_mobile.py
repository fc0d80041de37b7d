"""The report and kpi pages on a 375 px phone, in a real headless Chromium.

What a marketer opening a page on a phone needs: nothing wider than the screen
(no sideways scrolling of the page: a wide table scrolls in its own box), and charts
whose labels do not run into each other or into the bars. Bounding boxes are
measured in the page (the charts are inline SVG; matplotlib names each text
``text_N`` and Segmerge names each bar ``bar_...``). The session's one Chromium and
page (tests/browser.py); skipped when Chromium or Playwright is missing. The preview
on a phone (the letter at a phone's width or a desktop client's, from a toggle) is
tested in tests/test_preview_browser.py, on that module's preview: a preview's cold
start computes three campaigns. The preview's language is checked here, without a
browser.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_preview_server import AS_OF, get, make_workspace

from segmerge import i18n
from segmerge.i18n import read_catalogs
from segmerge.preview import app as preview_app
from segmerge.preview.app import PreviewServer
from segmerge.report.html import kpi_page, quality_page
from segmerge.report.kpi import build
from segmerge.report.quality import analyse
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1200, "height": 850}
T0 = pd.Timestamp("2026-11-20 09:00", tz="UTC")

# the page's widest element, and every box that sticks out of the screen (to say what does)
OVERFLOW = """() => ({width: document.documentElement.scrollWidth,
  out: [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect(); return r.width && r.right > document.documentElement.clientWidth + 0.5
      && !e.closest('.scroll, .frame-box, details:not([open])');
  }).slice(0, 5).map(e => e.tagName + '.' + e.className)})"""

# in each chart: pairs of labels that intersect, labels over bars, and an axes' labels over
# another axes' plotting area (its first patch, the background) (px, 0.5 px slack)
CLASHES = """() => {
  const box = e => e.getBoundingClientRect();
  const meet = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
                      && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const out = [];
  document.querySelectorAll('figure svg').forEach((svg, k) => {
    const labels = [...svg.querySelectorAll('g[id^="text_"]')].filter(e => box(e).width > 0);
    const bars = [...svg.querySelectorAll('[id^="bar_"]')].filter(e => box(e).width > 0);
    labels.forEach((a, i) => {
      labels.slice(i + 1).forEach(b => { if (meet(box(a), box(b))) out.push([k, a.id, b.id]); });
      bars.forEach(b => { if (meet(box(a), box(b))) out.push([k, a.id, b.id]); });
    });
    const axes = [...svg.querySelectorAll('g[id^="axes_"]')];
    axes.forEach(ax => {
      const area = ax.querySelector(':scope > g[id^="patch_"]');
      if (!area) return;
      axes.filter(o => o !== ax).forEach(o => o.querySelectorAll('g[id^="text_"]').forEach(t => {
        if (meet(box(t), box(area))) out.push([k, t.id, ax.id]);
      }));
    });
  });
  return out;
}"""

# the smallest text of each chart as the screen shows it (CSS px): matplotlib draws a text
# as glyph paths under ``scale(size / 100)``, so 100 times the screen's scale is its size
TEXT_PX = """() => [...document.querySelectorAll('figure svg')].map(svg => Math.min(
  ...[...svg.querySelectorAll('g[id^="text_"] g[transform*="scale"]')].map(g => {
    const m = g.getScreenCTM(); return 100 * Math.hypot(m.c, m.d);
  })))"""

# figures and tables never sit on one another
STACKED = """() => {
  const els = [...document.querySelectorAll('figure, .scroll')];
  const boxes = els.map(e => e.getBoundingClientRect());
  const out = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b, j) => {
    if (a.left < b.right && b.left < a.right && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
      out.push([els[i].tagName, els[i + j + 1].tagName]);
  }));
  return out;
}"""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("mobile") / "ws")


@pytest.fixture()
def french():
    before = i18n.lang()
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale(before)


def fits(page, what: str) -> None:
    seen = page.evaluate(OVERFLOW)
    assert seen["width"] <= PHONE["width"], (what, seen)


def kpi_report():
    """A sent campaign with variants, a holdout and a long segment name (seeded, no clock)."""
    rng = np.random.default_rng(7)
    plan = [
        ("fonceurs", "A", "done", 400),
        ("fonceurs", "B", "done", 400),
        ("fonceurs", None, "holdout", 80),
        ("prudents de longue date", None, "done", 300),
    ]
    people = pd.DataFrame(
        [{"segment": s, "variant": v, "status": st} for s, v, st, n in plan for _ in range(n)]
    )
    people["contact_id"] = pd.Series([f"c{i:05d}" for i in range(len(people))], dtype="string")
    people["sent_at"] = T0
    sent = (people["status"] == "done").to_numpy()
    opened = sent & (rng.random(len(people)) < 0.4)
    clicked = opened & (rng.random(len(people)) < 0.3)
    bought = rng.random(len(people)) < 0.08
    ids = people["contact_id"]
    events = pd.concat(
        [
            pd.DataFrame(
                {"contact_id": ids[opened], "event": "open", "at": T0 + pd.Timedelta(hours=2)}
            ),
            pd.DataFrame(
                {"contact_id": ids[clicked], "event": "click", "at": T0 + pd.Timedelta(hours=3)}
            ),
        ]
    )
    events["campaign_id"] = "x"
    orders = pd.DataFrame(
        {
            "contact_id": ids[bought],
            "ordered_at": T0 + pd.Timedelta(days=2),
            "amount": rng.integers(20, 90, int(bought.sum())).astype(float),
        }
    )
    # the source's data runs past the attribution window: the verdicts can be given
    orders.loc[len(orders)] = ["c00000", T0 + pd.Timedelta(days=20), 10.0]
    for t in (events, orders):
        t["contact_id"] = t["contact_id"].astype("string")
    now = T0 + pd.Timedelta(days=30)
    return build(
        "profils",
        "profils@2026-11-20",
        people,
        events.reset_index(drop=True),
        orders,
        14,
        set(),
        now=now.to_pydatetime(),
    )


def test_report_and_kpi_pages_fit_a_phone_and_their_charts_do_not_collide(page, root, french):
    # mode all, long labels: every chart of the report (sizes, overlaps, profiles)
    (root / "segrules" / "tous.yaml").write_text(
        "version: 1\nmode: all\nsegments:\n"
        "  - name: gros\n    label: Les gros acheteurs de longue date\n    when: revenue > 500\n"
        "  - name: fideles\n    label: Fidèles\n    when: orders_count > 3\n"
        "  - name: tous\n    label: Toute la base\n    when: true\n",
        encoding="utf-8",
    )
    ws = wsmod.load(root)
    seg = segment(ws, root / "segrules" / "tous.yaml", as_of=AS_OF, source_name="demo")
    pages = {"report": quality_page(analyse(seg, 50), None, ws.tz), "kpi": kpi_page(kpi_report())}
    assert "Résultats par segment et variante" in pages["kpi"]
    assert "Profil des segments" in pages["report"]
    page.set_viewport_size(PHONE)
    for name, html in pages.items():
        page.set_content(html)
        fits(page, name)
        assert page.locator("figure svg").count() == (1 if name == "kpi" else 3), name
        for svg in page.locator("figure svg").all():
            box = svg.bounding_box()
            assert box is not None and box["width"] <= PHONE["width"] and box["height"] > 50
        assert page.evaluate(CLASHES) == [], name
        assert page.evaluate(STACKED) == [], name
        sizes = page.evaluate(TEXT_PX)
        assert len(sizes) == page.locator("figure svg").count(), name
        assert min(sizes) >= 11, (name, sizes)  # was about 6 px before the text grew


def test_report_and_kpi_pages_speak_english_for_another_workspace(page):
    """No French on an English page: the same report, fixed texts from the catalog's msgids."""
    before = i18n.lang()
    i18n.use_locale("en_GB")
    try:
        html = kpi_page(kpi_report())
    finally:
        i18n.use_locale(before)
    page.set_viewport_size(PHONE)
    page.set_content(html)
    assert page.locator("html").get_attribute("lang") == "en"
    heads = page.locator("h2").all_inner_texts()
    assert "Results by segment and variant — rates (95% CI)" in heads and "Verdicts" in heads
    text = page.locator("body").inner_text()
    for french in ("Résultats", "fenêtre", "désabonnement", "revenu /", "données"):
        assert french not in text, french
    fits(page, "kpi in English")


def test_preview_speaks_english_for_an_english_workspace(tmp_path):
    """The same pages for `locale = "en_US"`: English fixed texts, English typography."""
    before = i18n.lang()
    root = make_workspace(tmp_path / "ws")
    cfg = root / "segmerge.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('locale = "fr_FR"', 'locale = "en_US"'),
        encoding="utf-8",
    )
    with PreviewServer(root, port=0, as_of=AS_OF, interval=60) as srv:
        code, _, body = get(srv.url + "c/nope")
        assert code == 404 and '<html lang="en">' in body
        assert "No campaign “nope”." in body and "Back to the campaigns" in body
        assert "as of December 1, 2026" in body and "Aperçu" not in body
        code, _, body = get(srv.url + "c/profils/zens?contact=99999")
        assert code == 404 and "No contact “99999” in the source of profils." in body
        assert "Find a contact (customer number, e-mail or name)" in body
        assert re.search(r"[\d,]+ contacts get this letter · the first 20", body)
        assert "Campagne" not in body and "Tous les segments" not in body
    assert i18n.lang() == before  # the test process keeps its own language


def test_every_sentence_of_the_page_templates_has_its_french():
    """tests/test_language.py reads the Python code; the templates' `_()` / `ngettext()` are
    checked here: a French entry for each, with the same {fields}."""
    found = read_catalogs("fr")
    literal = r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\''
    seen = 0
    for tpl in sorted((Path(preview_app.__file__).parent / "assets").glob("*.j2")):
        text = tpl.read_text(encoding="utf-8")
        calls = [
            (m.group(1) or m.group(2), None)
            for m in re.finditer(rf"\b_\(\s*(?:{literal})\s*\)", text)
        ]
        calls += [
            (m.group(1), m.group(2))
            for m in re.finditer(r'ngettext\(\s*"([^"]*)",\s*"([^"]*)"', text)
        ]
        for single, plural in calls:
            seen += 1
            entry = found.get(single)
            assert entry is not None and entry.string, (tpl.name, single)
            strings = entry.string if plural else (entry.string,)
            fields = sorted(re.findall(r"{\w+}", single))
            for french in strings:
                assert sorted(re.findall(r"{\w+}", french)) == fields, (tpl.name, french)
    assert seen > 50  # the templates were read
