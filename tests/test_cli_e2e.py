"""The CLI end to end on a fresh `segmerge init` workspace, as a user runs it.

Each test runs the command through its entry point in this process (tests/cli.py),
so exit codes, stdout, stderr and files on disk are what a user sees. The demo, with
half its customers (tests/demo_fixtures.py ``demo_half``: its quirks kept, and over a
thousand letters), is made once for the session and its campaign run once: the
commands that only read run on one copy of it. The tests whose point does not depend
on the shop's size (validate, the dry run, the error paths) run on a tenth of it with
its quirks (:func:`cut`), those that change a workspace each on their own copy.
"""

from __future__ import annotations

import email
import email.policy
import sqlite3
from collections.abc import Iterator
from email.parser import BytesParser
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from cli import Ran
from cli import segmerge as sm

from tests.demo_fixtures import AS_OF, DemoRun, copy_of, one_core


@pytest.fixture(scope="module", autouse=True)
def _one_core() -> Iterator[None]:
    with one_core():
        yield


@pytest.fixture(scope="module")
def demo(demo_half: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo for the commands that only read it."""
    return copy_of(demo_half, tmp_path_factory.mktemp("read") / "ws")


#: the two customers with an order of an impossible date (tests/demo_fixtures.py ``KEPT``)
ODD = {b"01310", b"01963"}


def cut(root: Path, contacts: int) -> Path:
    """The demo workspace at ``root`` keeps its first ``contacts`` customers and the two
    whose orders have an impossible date (:data:`ODD`), with their orders and events;
    blank lines, encodings, separators and line ends stay."""
    data = root / "examples" / "demo"
    ids: set[bytes] = set()
    for name, sep, col in (
        ("contacts.csv", b";", 0),
        ("orders.csv", b";", 1),
        ("events.csv", b",", 0),
    ):
        raw = (data / name).read_bytes()
        eol = b"\r\n" if b"\r\n" in raw else b"\n"
        head, *lines = raw.split(eol)
        if not ids:
            ids = {ln.split(sep)[0] for ln in lines if ln.strip()}
            ids = set(sorted(ids)[:contacts]) | ODD
        kept = [ln for ln in lines if not ln.strip() or ln.split(sep)[col].strip() in ids]
        (data / name).write_bytes(eol.join([head, *kept]))
    return root


@pytest.fixture(scope="module")
def small(demo_half: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cut to a tenth of the half (:func:`cut`), for the tests whose point does
    not depend on the shop's size: its quirks stay (the unreadable orders, blank lines,
    unsubscribed and address-less customers, every segment of profils)."""
    return cut(copy_of(demo_half, tmp_path_factory.mktemp("small") / "ws"), 110)


@pytest.fixture
def ws(small: Path, tmp_path: Path) -> Path:
    """A copy of the small demo for one test to change."""
    return copy_of(small, tmp_path / "ws")


@pytest.fixture(scope="module")
def segmented(demo: Path) -> Ran:
    """`segment --format csv` of the demo's profils rule set, two metrics shown."""
    return sm(
        "segment",
        str(demo / "segrules/profils-vpc.yaml"),
        "-w",
        str(demo),
        "--as-of",
        AS_OF,
        "--format",
        "csv",
        "--columns",
        "orders_count,avg_basket",
    )


def segments(ran: Ran) -> pd.DataFrame:
    return pd.read_csv(StringIO(ran.stdout), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def mailed(demo_ran: DemoRun) -> list[email.message.EmailMessage]:
    """The headers of the letters the shared run wrote to the outbox."""
    assert demo_ran.ran.returncode == 0, demo_ran.ran.stdout + demo_ran.ran.stderr
    return outbox_messages(demo_ran.root)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def outbox_messages(root: Path) -> list[email.message.EmailMessage]:
    parser = BytesParser(policy=email.policy.default)
    return [
        parser.parsebytes(p.read_bytes(), headersonly=True)  # type: ignore[misc]
        for p in sorted((root / "outbox").rglob("*.eml"))
    ]


def test_init_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("x")
    proc = sm("init", str(tmp_path))
    assert proc.returncode == 2 and "not empty" in proc.stderr


def test_an_error_naming_a_long_path_keeps_it_on_one_line(tmp_path):
    """A path broken across lines can be neither pasted nor grepped (CI paths are long)."""
    deep = tmp_path / ("un-dossier-au-nom-assez-long-" * 8) / "espace-de-travail"
    deep.mkdir(parents=True)
    (deep / "x").write_text("x")
    proc = sm("init", str(deep), env={"COLUMNS": None})
    assert proc.returncode == 2
    assert any(str(deep) in line for line in proc.stderr.splitlines()), proc.stderr


def test_validate_passes_on_the_demo_and_reads_its_source_once(small, monkeypatch):
    from segmerge.run import campaign

    pulls = []
    pull = campaign.pull_source
    monkeypatch.setattr(
        campaign, "pull_source", lambda *a, **k: pulls.append(a[1]) or pull(*a, **k)
    )
    proc = sm("validate", "-w", str(small), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    for name in ("profils", "rfm", "fidelite"):
        assert f"✓ {name}" in proc.stdout
    assert len(pulls) == 1  # three campaigns on one source: one pull
    assert proc.stdout.count("skipped 2 unreadable rows") == 3  # the source's notes, each time


def test_segment_csv_has_one_row_per_contact_in_mode_first(segmented):
    assert segmented.returncode == 0, segmented.stderr
    rows = segments(segmented)
    assert list(rows.columns) == ["contact_id", "segment", "orders_count", "avg_basket"]
    assert rows["contact_id"].is_unique
    sizes = rows["segment"].value_counts()
    for seg in ("fonceurs", "decouvreurs", "prudents", "zens"):
        assert sizes.get(seg, 0) > 0, sizes
    fonceurs = rows[rows["segment"] == "fonceurs"]
    assert (fonceurs["avg_basket"].astype(float) > 80).all()


def test_dry_run_writes_nothing(small):
    before = snapshot(small)
    proc = sm("run", "profils", "-w", str(small), "--as-of", AS_OF, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would do: send" in proc.stdout
    assert snapshot(small) == before


def test_run_then_rerun_sends_each_letter_once_and_respects_consent(demo_ran, mailed, tmp_path):
    messages = mailed
    assert len(messages) > 1000
    recipients = [str(m["To"].addresses[0].addr_spec) for m in messages]
    assert len(set(recipients)) == len(recipients)
    for m in messages[:50]:
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "https://" in m["List-Unsubscribe"]
    contacts = demo_ran.before
    never = set(contacts.loc[~contacts["subscribed"], "email"].dropna())
    assert never and not never & set(recipients)

    ws = copy_of(demo_ran.root, tmp_path / "ws")
    first = snapshot(ws / "outbox")
    again = sm("run", "profils", "-w", str(ws), "--as-of", AS_OF)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout
    assert snapshot(ws / "outbox") == first  # nothing rewritten, nothing added
    hist = sm("history", "-w", str(ws), "--format", "csv")
    assert f"profils@{AS_OF}" in hist.stdout and "done" in hist.stdout


def segmented_contacts(ws: Path) -> pd.DataFrame:
    """The demo contacts as the engine reads them (so the test does not re-parse French CSV)."""
    from segmerge.segment.segmentation import open_source, pull
    from segmerge.workspace import config as workspace

    w = workspace.load(ws)
    return pull(open_source(w, "demo")).contacts


def test_tags_are_written_back_with_the_campaign_prefix_only(demo_ran, segmented):
    before = demo_ran.before
    own = {
        i: [t for t in tags if not t.startswith("seg:")]
        for i, tags in zip(before["contact_id"], before["tags"], strict=True)
    }
    assert demo_ran.ran.returncode == 0, demo_ran.ran.stdout + demo_ran.ran.stderr
    after = segmented_contacts(demo_ran.root)
    rows = segments(segmented)
    expected = dict(zip(rows["contact_id"], rows["segment"], strict=True))
    for cid, tags in zip(after["contact_id"], after["tags"], strict=True):
        seg_tags = [t for t in tags if t.startswith("seg:")]
        assert seg_tags == ([f"seg:{expected[cid]}"] if expected[cid] else [])
        assert [t for t in tags if not t.startswith("seg:")] == own[cid]


def test_typo_in_rule_is_exit_2_with_location_and_leaves_workspace_intact(ws):
    rules = ws / "segrules/profils-vpc.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("avg_basket > 80", "avg_baskett > 80"),
        encoding="utf-8",
    )
    before = snapshot(ws)
    proc = sm("run", "profils", "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "profils-vpc.yaml:" in proc.stderr and "avg_baskett" in proc.stderr
    assert "avg_basket" in proc.stderr.replace("avg_baskett", "")  # the suggestion
    assert snapshot(ws) == before and not (ws / ".segmerge").exists()


def test_undefined_template_variable_fails_validation(ws):
    tpl = ws / "templates/profils-vpc/fonceurs.html.j2"
    text = tpl.read_text(encoding="utf-8")
    lines = text.splitlines()
    lines.insert(len(lines) - 1, "{{ contact.frist_name }}")
    tpl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = sm("validate", "profils", "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 2, proc.stdout
    assert "fonceurs.html.j2" in proc.stderr and "frist_name" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_csv_value_names_file_line_and_column(ws):
    toml = ws / "segmerge.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('on_bad_rows = "skip"\n', ""), encoding="utf-8"
    )
    proc = sm("segment", str(ws / "segrules/profils-vpc.yaml"), "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 2
    assert "orders.csv" in proc.stderr and "Date" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_traceback_flag_shows_one(ws):
    proc = sm("--traceback", "run", "nope", "-w", str(ws))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_explain_and_render_one_contact(small, segmented):
    rows = segments(segmented)
    # the rules are each contact's own: the first fonceur of the half is one of the tenth's
    cid = rows.loc[rows["segment"] == "fonceurs", "contact_id"].iloc[0]
    demo = small
    proc = sm(
        "explain", str(demo / "segrules/profils-vpc.yaml"), cid, "-w", str(demo), "--as-of", AS_OF
    )
    assert proc.returncode == 0, proc.stderr
    assert "✓ fonceurs" in proc.stdout and "orders(days=90) >= 3" in proc.stdout
    proc = sm("render", "profils", "--contact", cid, "-w", str(demo), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    assert "Subject:" in proc.stdout and "<html" in proc.stdout.lower()
    assert "List-Unsubscribe-Post:" in proc.stdout
    text = sm("render", "profils", "--contact", cid, "--text", "-w", str(demo), "--as-of", AS_OF)
    assert text.returncode == 0 and "<html" not in text.stdout.lower()


def test_suppressed_address_is_never_mailed(demo_ran, mailed):
    """The shared run's workspace had one subscribed contact's address imported as a
    bounce (in upper case) before the run (tests/demo_fixtures.py)."""
    assert demo_ran.ran.returncode == 0, demo_ran.ran.stdout + demo_ran.ran.stderr
    recipients = {str(m["To"].addresses[0].addr_spec) for m in mailed}
    assert recipients and demo_ran.suppressed not in recipients
    with sqlite3.connect(demo_ran.root / ".segmerge/ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 1
