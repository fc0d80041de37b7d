"""The CLI end to end on a fresh `segmerge init` workspace, as a user runs it.

Each test runs the command through its entry point in this process (tests/cli.py),
so exit codes, stdout, stderr and files on disk are what a user sees.
"""

from __future__ import annotations

import email
import email.policy
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from cli import segmerge as sm

AS_OF = "2026-12-01"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("init") / "ws"
    sm("init", str(root), check=True)
    return root


@pytest.fixture
def ws(pristine, tmp_path) -> Path:
    import shutil

    target = tmp_path / "ws"
    shutil.copytree(pristine, target)
    return target


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def outbox_messages(root: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
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


def test_validate_passes_on_the_demo(ws):
    proc = sm("validate", "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    for name in ("profils", "rfm", "fidelite"):
        assert f"✓ {name}" in proc.stdout


def test_segment_csv_has_one_row_per_contact_in_mode_first(ws):
    proc = sm(
        "segment",
        str(ws / "segrules/profils-vpc.yaml"),
        "-w",
        str(ws),
        "--as-of",
        AS_OF,
        "--format",
        "csv",
        "--columns",
        "orders_count,avg_basket",
    )
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(pd.io.common.StringIO(proc.stdout), dtype=str, keep_default_na=False)
    assert list(rows.columns) == ["contact_id", "segment", "orders_count", "avg_basket"]
    assert rows["contact_id"].is_unique
    sizes = rows["segment"].value_counts()
    for seg in ("fonceurs", "decouvreurs", "prudents", "zens"):
        assert sizes.get(seg, 0) > 0, sizes
    fonceurs = rows[rows["segment"] == "fonceurs"]
    assert (fonceurs["avg_basket"].astype(float) > 80).all()


def test_dry_run_writes_nothing(ws):
    before = snapshot(ws)
    proc = sm("run", "profils", "-w", str(ws), "--as-of", AS_OF, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would do: send" in proc.stdout
    assert snapshot(ws) == before


def test_run_then_rerun_sends_each_letter_once_and_respects_consent(ws):
    proc = sm("run", "profils", "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    messages = outbox_messages(ws)
    assert len(messages) > 1000
    recipients = [str(m["To"].addresses[0].addr_spec) for m in messages]
    assert len(set(recipients)) == len(recipients)
    for m in messages[:50]:
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "https://" in m["List-Unsubscribe"]
    contacts = segmented_contacts(ws)
    never = set(contacts.loc[~contacts["subscribed"], "email"].dropna())
    assert never and not never & set(recipients)

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


def test_tags_are_written_back_with_the_campaign_prefix_only(ws):
    before = segmented_contacts(ws)
    own = {
        i: [t for t in tags if not t.startswith("seg:")]
        for i, tags in zip(before["contact_id"], before["tags"], strict=True)
    }
    assert sm("run", "profils", "-w", str(ws), "--as-of", AS_OF).returncode == 0
    after = segmented_contacts(ws)
    rows = pd.read_csv(
        pd.io.common.StringIO(
            sm(
                "segment",
                str(ws / "segrules/profils-vpc.yaml"),
                "-w",
                str(ws),
                "--as-of",
                AS_OF,
                "--format",
                "csv",
            ).stdout
        ),
        dtype=str,
        keep_default_na=False,
    )
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


def test_explain_and_render_one_contact(ws):
    rows = pd.read_csv(
        pd.io.common.StringIO(
            sm(
                "segment",
                str(ws / "segrules/profils-vpc.yaml"),
                "-w",
                str(ws),
                "--as-of",
                AS_OF,
                "--format",
                "csv",
            ).stdout
        ),
        dtype=str,
        keep_default_na=False,
    )
    cid = rows.loc[rows["segment"] == "fonceurs", "contact_id"].iloc[0]
    proc = sm(
        "explain", str(ws / "segrules/profils-vpc.yaml"), cid, "-w", str(ws), "--as-of", AS_OF
    )
    assert proc.returncode == 0, proc.stderr
    assert "✓ fonceurs" in proc.stdout and "orders(days=90) >= 3" in proc.stdout
    proc = sm("render", "profils", "--contact", cid, "-w", str(ws), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    assert "Subject:" in proc.stdout and "<html" in proc.stdout.lower()
    assert "List-Unsubscribe-Post:" in proc.stdout
    text = sm("render", "profils", "--contact", cid, "--text", "-w", str(ws), "--as-of", AS_OF)
    assert text.returncode == 0 and "<html" not in text.stdout.lower()


def test_suppressed_address_is_never_mailed(ws):
    contacts = segmented_contacts(ws)
    target = contacts.loc[contacts["subscribed"] & contacts["email"].notna(), "email"].iloc[0]
    (ws / "bounces.csv").write_text(f"email;raison\n{target.upper()};bounce\n", encoding="utf-8")
    assert sm("suppress", "import", str(ws / "bounces.csv"), "-w", str(ws)).returncode == 0
    assert sm("run", "profils", "-w", str(ws), "--as-of", AS_OF).returncode == 0
    recipients = {str(m["To"].addresses[0].addr_spec) for m in outbox_messages(ws)}
    assert recipients and target not in recipients
    with sqlite3.connect(ws / ".segmerge/ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 1
