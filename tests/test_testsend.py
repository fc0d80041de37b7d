"""`segmerge test-send`: each letter once to the seed address, marked, recorded, never counted."""

from __future__ import annotations

import email
import sqlite3
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from cli import segmerge as sm


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("t") / "ws"
    assert sm("init", str(root)).returncode == 0
    return root


def test_one_marked_message_per_segment_to_the_seed(ws):
    out = sm(
        "test-send", "profils", "--to", "moi@example.org", "--as-of", "2026-12-01", "-w", str(ws)
    )
    assert out.returncode == 0, out.stderr
    files = list((ws / "outbox" / "profils").glob("profils@test-*/*.eml"))
    msgs = [email.message_from_bytes(p.read_bytes()) for p in files]
    assert sorted(m["X-Segmerge-Segment"] for m in msgs) == [
        "decouvreurs",
        "fonceurs",
        "prudents",
        "zens",
    ]
    assert all(m["To"] == "moi@example.org" for m in msgs)
    assert all(str(make_header(decode_header(m["Subject"]))).startswith("[TEST] ") for m in msgs)
    assert all(m["X-Segmerge-Test"].startswith("letter ") for m in msgs)
    with sqlite3.connect(ws / ".segmerge" / "ledger.sqlite") as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM actions GROUP BY kind"))
    assert kinds == {"test": 4}  # recorded, and not as sends: never counted


def test_a_suppressed_seed_is_refused(ws):
    assert sm("suppress", "add", "moi@example.org", "-w", str(ws)).returncode == 0
    out = sm(
        "test-send", "profils", "--to", "MOI@example.org", "--as-of", "2026-12-01", "-w", str(ws)
    )
    assert out.returncode == 2 and "suppression list" in out.stderr


def test_a_destination_that_does_not_send_is_refused(ws):
    out = sm(
        "test-send",
        "profils",
        "--to",
        "autre@example.org",
        "--destination",
        "demo",
        "--as-of",
        "2026-12-01",
        "-w",
        str(ws),
    )
    assert out.returncode == 2 and "does not send" in out.stderr
