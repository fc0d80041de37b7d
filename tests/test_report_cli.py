"""`segmerge report` and `segmerge kpi` end to end on a fresh demo workspace.

The report tests read the demo with half its customers (tests/demo_fixtures.py
``demo_half``: the same segments and quirks, half the rows to read); the kpi test cuts
the whole demo to the fonceurs it measures."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from importlib.resources import as_file, files
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from cli import segmerge as sm

from segmerge.report import kpi as kpi_module
from segmerge.report.kpi import KpiReport, kpi
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import config as wsmod
from tests.demo_fixtures import copy_of, one_core

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "ws"
    with as_file(files("segmerge") / "scaffold") as src:
        shutil.copytree(src, root, symlinks=False)
    return root


@pytest.fixture
def ws(pristine, tmp_path) -> Path:
    shutil.copytree(pristine, tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture
def half(demo_half: Path, tmp_path: Path) -> Path:
    """A copy of the demo with half its customers, for one test to change."""
    return copy_of(demo_half, tmp_path / "half")


def self_contained(html: str) -> None:
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html), "external asset"
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_report_on_the_demo_matches_segment_and_writes_a_self_contained_page(half, tmp_path):
    ws = half
    page = tmp_path / "rapport.html"
    rules = str(ws / "segrules/profils-vpc.yaml")
    proc = sm("report", rules, "-w", str(ws), "--as-of", AS_OF, "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    seg = sm("segment", rules, "-w", str(ws), "--as-of", AS_OF, "--format", "csv", check=True)

    counts = pd.read_csv(StringIO(seg.stdout), dtype=str, keep_default_na=False)["segment"]
    sizes = counts[counts != ""].value_counts()
    total = counts.size
    for name, n in sizes.items():
        share = f"{100 * n / total:.1f}".removesuffix(".0")  # the suite runs in English
        assert re.search(rf"{name}\s.*\s{n}\s.*\s{share}%", proc.stdout), (name, proc.stdout)
    assert "Homogeneity" in proc.stdout and "Movements: no earlier report" in proc.stdout
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    assert "Les fonceurs" in html and "Segment profiles" in html
    # a second report a month later shows who moved, against the first
    again = sm("report", rules, "-w", str(ws), "--as-of", "2027-01-01")
    assert again.returncode == 0 and "Movements since December 1, 2026" in again.stdout


def test_report_escapes_labels_and_draws_the_overlap_heatmap(half, tmp_path):
    ws = half
    (ws / "segrules" / "hostile.yaml").write_text(
        "version: 1\nmode: all\nsegments:\n"
        "  - name: gros\n    label: \"<script>alert('x')</script> & co\"\n"
        "    when: revenue > 500\n"
        "  - name: vides\n    when: orders_count > 100000\n"
        "  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    page = tmp_path / "h.html"
    proc = sm(
        "report",
        str(ws / "segrules/hostile.yaml"),
        "-w",
        str(ws),
        "--as-of",
        AS_OF,
        "--html",
        str(page),
        "--source",
        "demo",
    )
    assert proc.returncode == 0, proc.stderr
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
    assert "Segment overlaps" in html and "Overlaps" in proc.stdout
    assert "segment “vides” is empty: not enough data" in proc.stdout
    assert not re.search(r"\bnan\b", proc.stdout, re.I)


def test_report_bad_input_is_one_line_exit_2(half):
    ws = half
    proc = sm("report", str(ws / "segrules/nope.yaml"), "-w", str(ws))
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = sm("kpi", "inconnue", "-w", str(ws))
    assert proc.returncode == 2 and "no campaign" in proc.stderr
    proc = sm("kpi", "profils", "-w", str(ws))
    assert proc.returncode == 2 and "no run of profils" in proc.stderr


def test_cli_does_not_import_matplotlib():
    code = (
        "import sys, bot; "
        "import segmerge.report.kpi, segmerge.report.quality, segmerge.report.movements; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def sends(root: Path, campaign: str = "profils") -> pd.DataFrame:
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        rows = db.execute(
            "SELECT contact_id, segment, status, updated_at FROM actions "
            "WHERE kind='send' AND run_id=? ORDER BY contact_id",
            (f"{campaign}@{AS_OF}",),
        ).fetchall()
    out = pd.DataFrame(rows, columns=["contact_id", "segment", "status", "at"])
    out["at"] = pd.to_datetime(out["at"], utc=True, format="ISO8601")
    return out


def fonceurs_and_a_few_zens(ws: Path) -> None:
    """The demo without its découvreurs and prudents and with 40 of its zens (absolute
    rules: the others stay in their segments), their orders and events gone with them: the
    kpi test's two runs fill a quarter of the letters, and its groups keep their contacts
    (fonceurs and their control whole; zens and rfm's base as big as the test needs)."""
    rules = "segrules/profils-vpc.yaml"
    seg = sm("segment", rules, "-w", str(ws), "--as-of", AS_OF, "--format", "csv", check=True)
    rows = pd.read_csv(StringIO(seg.stdout), dtype=str, keep_default_na=False)
    zens = rows.loc[rows["segment"] == "zens", "contact_id"]
    gone = set(rows.loc[rows["segment"].isin(["decouvreurs", "prudents"]), "contact_id"])
    gone |= set(zens.iloc[40:])
    assert len(gone) > 1500
    for name, sep, field in (
        ("contacts.csv", ";", 0),
        ("orders.csv", ";", 1),
        ("events.csv", ",", 0),
    ):
        path = ws / "examples" / "demo" / name
        head, *lines = path.read_bytes().split(b"\n")
        ids = [(x.decode("latin-1").split(sep) + [""] * 2)[field] for x in lines]
        path.write_bytes(
            b"\n".join([head, *(x for x, i in zip(lines, ids, strict=True) if i not in gone)])
        )


def test_kpi_after_a_demo_run_with_a_holdout(ws, tmp_path, monkeypatch):
    fonceurs_and_a_few_zens(ws)
    cfg = ws / "segmerge.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            'tag_prefix = "seg:"', 'tag_prefix = "seg:"\nholdout = 0.2\nbaseline = "rfm"'
        ),
        encoding="utf-8",
    )
    with one_core():  # no render worker to start (tests/demo_fixtures.py)
        run(wsmod.load(ws), "profils", RunOptions(as_of=AS_OF))
        run(wsmod.load(ws), "rfm", RunOptions(as_of=AS_OF))  # the comparison campaign
    # right after the run: the demo data ends before the send, so nothing can be measured yet
    early = sm("kpi", "profils", "-w", str(ws))
    assert early.returncode == 0, early.stderr
    assert "not enough data: no open, click or unsubscribe" in early.stdout
    s = sends(ws)
    done = s[(s["segment"] == "fonceurs") & (s["status"] == "done")]
    held = s[(s["segment"] == "fonceurs") & (s["status"] == "holdout")]
    assert len(held) > 20 and len(done) > 200
    day = pd.Timedelta(days=1)
    openers, clickers, buyers = done.iloc[:60], done.iloc[:15], done.iloc[10:40]
    events = [
        (r.contact_id, "profils", "open", r.at + pd.Timedelta(hours=2))
        for r in openers.itertuples()
    ]
    events += [
        (r.contact_id, "profils", "click", r.at + pd.Timedelta(hours=3))
        for r in clickers.itertuples()
    ]
    events += [
        (r.contact_id, "profils", "open", r.at + 20 * day)  # after the window
        for r in done.iloc[100:110].itertuples()
    ]
    events += [(r.contact_id, "profils", "open", r.at + day) for r in held.itertuples()]
    with open(ws / "examples/demo/events.csv", "a", encoding="utf-8") as f:
        for cid, camp, ev, at in events:
            f.write(f"{cid},{camp},{ev},{at.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
    held_buyers = held.iloc[:6]
    lines = []
    for n, (r, amount) in enumerate(
        [(r, 50.0) for r in buyers.itertuples()] + [(r, 30.0) for r in held_buyers.itertuples()]
    ):
        local = (r.at + day).tz_convert("Europe/Paris").strftime("%d/%m/%Y %H:%M")
        lines.append(f"{900001 + n};{r.contact_id};{local};{str(amount).replace('.', ',')};jeux;")
    with open(ws / "examples/demo/orders.csv", "a", encoding="cp1252") as f:
        f.write("\n".join(lines) + "\n")

    # the page's command, its report kept for the figures below (computed once, not twice)
    made: list[KpiReport] = []
    monkeypatch.setattr(kpi_module, "kpi", lambda *a, **k: made.append(kpi(*a, **k)) or made[-1])
    page = tmp_path / "kpi.html"
    proc = sm("kpi", "profils", "-w", str(ws), "--window", "14", "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    (r,) = made
    assert r.window == 14
    g = {x.name: x for x in r.groups}
    fon, control = g["fonceurs"], g["fonceurs (control)"]
    assert fon.n == len(done) and control.n == len(held)
    assert fon.rates["open"].count == 60 and fon.rates["click"].count == 15
    assert fon.rates["open"].value == pytest.approx(60 / len(done))
    assert fon.rates["conversion"].count == 30
    assert fon.revenue_per_recipient == pytest.approx(30 * 50.0 / len(done))
    assert control.rates["open"] is None and control.rates["conversion"].count == 6
    assert control.revenue_per_recipient == pytest.approx(6 * 30.0 / len(held))
    assert g["zens"].rates["open"].count == 0 and g["zens"].rates["conversion"].count == 0
    assert any("campaign_id" in n for n in r.notes)  # its own events, by campaign id
    verdicts = [
        c for c in r.comparisons if c.first == "fonceurs" and c.second.endswith("(control)")
    ]
    assert {c.measure for c in verdicts} == {"conversion", "revenue"}
    # against the generic campaign's run: its own recipients, events and orders in its window
    base = sends(ws, "rfm")
    base = set(base.loc[base["status"] == "done", "contact_id"])
    ref = g["rfm (baseline)"]
    assert ref.n == len(base)
    assert ref.rates["open"] is None  # no event of rfm's own: profils' opens are not its
    bought = set(buyers["contact_id"]) | set(held_buyers["contact_id"])
    assert ref.rates["conversion"].count == len(base & bought)
    assert any(
        c.first == "fonceurs" and c.second == "rfm (baseline)" and c.measure == "click"
        for c in r.comparisons
    )

    pct_open = f"{100 * 60 / len(done):.1f}".removesuffix(".0")  # the suite runs in English
    assert re.search(rf"fonceurs\s.*{len(done)}\s.*{pct_open}%", proc.stdout), proc.stdout
    assert "fonceurs (control)" in proc.stdout
    self_contained(page.read_text(encoding="utf-8"))
    # a window of 0 days is refused, an unknown run is named
    bad = sm("kpi", "profils", "-w", str(ws), "--window", "0")
    assert bad.returncode == 2 and "--window" in bad.stderr
    bad = sm("kpi", "profils", "-w", str(ws), "--run", "profils@1999-01-01")
    assert bad.returncode == 2 and "profils@1999-01-01" in bad.stderr
