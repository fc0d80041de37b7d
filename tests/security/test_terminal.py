"""Contact data cannot drive the terminal it is printed on.

A contact's first name ``ESC ] 0 ; pwned BEL ESC [ 2 J`` retitles and clears the
terminal of whoever runs `segmerge explain` on it; a CR rewrites the line; a bidi
override makes ``Carole\u202e gnp.exe`` read as something else. Every command that
prints contact data for a person (explain, render, segment, history, suppress
list) shows such characters as visible escapes (``\\x1b``), while CSV and JSON
(file formats) keep the data exactly as it is.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli import Ran
from cli import segmerge as run_cli
from one_campaign import LETTER, lay_out, rules

EVIL_NAME = "\x1b]0;pwned\x07\x1b[2J"
EVIL_ID = "3\x1b[31m"
BIDI = "Carole\u202e gnp.exe"
CR = "Dan\rEVE"
RAW = ("\x1b", "\x07", "\r", "\u202e")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shop whose contacts' names and ids hold escape sequences; one run recorded."""
    root = tmp_path_factory.mktemp("term") / "shop"
    segments = (("named", 'first_name != "Alice"'), ("others", "true"))
    lay_out(root, rules_text=rules(segments=segments), letter=LETTER.replace("Bonjour", "Hello"))
    rows = [
        ("1", "Alice", "alice@example.org"),
        ("2", EVIL_NAME, "bob@example.org"),
        (EVIL_ID, BIDI, "carole@example.org"),
        ("4", CR, "dan@example.org"),
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["contact_id", "first_name", "email", "subscribed"])
    w.writerows([(i, n, e, "true") for i, n, e in rows])
    (root / "data/contacts.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
    run = segmerge(root, "run", "news", "--as-of", "2026-12-01")
    assert run.returncode == 0, run.stdout + run.stderr
    return root


def segmerge(root: Path, *args: str) -> Ran:
    return run_cli(*args, "-w", str(root), cwd=root)


def shown(p: Ran) -> str:
    """The command's output, checked to hold no raw control character."""
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    for ch in RAW:
        assert ch not in out, f"raw {ch!r} printed"
    return out


def test_explain_shows_a_contacts_escape_sequence_as_text(ws: Path) -> None:
    out = shown(segmerge(ws, "explain", "segrules/news.yaml", "2"))
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out and "first_name" in out


def test_render_shows_the_letter_with_escapes_visible(ws: Path) -> None:
    out = shown(segmerge(ws, "render", "news", "--contact", "2"))
    assert "<p>Hello \\x1b]0;pwned\\x07\\x1b[2J</p>" in out
    bidi = shown(segmerge(ws, "render", "news", "--contact", EVIL_ID))
    assert "Carole\\u202e gnp.exe" in bidi


def test_segment_table_is_clean_and_json_csv_stay_exact(ws: Path) -> None:
    shown(segmerge(ws, "segment", "segrules/news.yaml", "--format", "table"))
    as_json = segmerge(ws, "segment", "segrules/news.yaml", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    ids = {r["contact_id"] for r in json.loads(as_json.stdout)}
    assert EVIL_ID in ids  # the data itself, unchanged
    as_csv = segmerge(ws, "segment", "segrules/news.yaml", "--format", "csv")
    assert EVIL_ID in {r["contact_id"] for r in csv.DictReader(io.StringIO(as_csv.stdout))}


def test_history_and_suppress_list_tables_escape_while_json_is_exact(ws: Path) -> None:
    shown(segmerge(ws, "history", "news@2026-12-01"))
    rows = json.loads(segmerge(ws, "history", "news@2026-12-01", "--format", "json").stdout)
    assert EVIL_ID in {r["contact_id"] for r in rows}
    address = "evil\x1b]0;x\x07@example.org"
    assert segmerge(ws, "suppress", "add", address, "--reason", "[/]\rok").returncode == 0
    out = shown(segmerge(ws, "suppress", "list"))
    assert "evil\\x1b]0;x\\x07@example.org" in out and "[/]\\x0dok" in out
