"""Contacts columns named like the engine's own outputs, on a real PostgreSQL.

A CRM often has a ``segment`` field ("B2B", "B2C") or an ``excluded`` flag (do not
contact). The files source keeps them as the contact's columns, usable in the rules and
the letters; segmenting inside the database must give the same frame and the same
segments as the pandas engine on the same rows pulled out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from segmerge.segment.segmentation import open_source, pull, segment
from segmerge.workspace.config import load
from tests.cli import segmerge
from tests.postgres import PgServer

SCHEMA = """
CREATE TABLE contacts (
    contact_id text PRIMARY KEY, email text, subscribed boolean, segment text,
    excluded boolean
);
INSERT INTO contacts VALUES
    ('c1', 'a@example.org', true, 'B2B', false),
    ('c2', 'b@example.org', true, 'B2C', false),
    ('c3', 'c@example.org', true, 'B2B', true),
    ('c4', 'd@example.org', true, NULL, NULL);
CREATE TABLE orders (order_id text, contact_id text, ordered_at timestamptz, amount numeric);
INSERT INTO orders VALUES ('o1', 'c1', '2026-11-20 10:00+01', 40),
    ('o2', 'c2', '2026-11-21 10:00+01', 15);
GRANT SELECT ON contacts, orders TO segmerge;
"""
RULES = """\
version: 1
name: pros
mode: first
exclude: excluded or not subscribed
segments:
  - name: pros
    when: segment == "B2B" and orders_count >= 1
  - name: particuliers
    when: segment == "B2C"
  - name: autres
    when: true
"""


@pytest.fixture(scope="module")
def crm(postgres_server: PgServer, tmp_path_factory) -> Path:
    db = postgres_server.create_database("crm_columns")
    with postgres_server.admin(db) as conn:
        conn.execute(SCHEMA)
    root = tmp_path_factory.mktemp("pg_columns")
    (root / "segrules").mkdir()
    (root / "segrules" / "pros.yaml").write_text(RULES, encoding="utf-8")
    (root / "segmerge.toml").write_text(
        f"""timezone = "Europe/Paris"

[sources.crm]
connector = "postgres"
dsn = "{postgres_server.dsn(db)}"
""",
        encoding="utf-8",
    )
    return root


def test_a_segment_and_an_excluded_column_are_the_contacts_as_with_files(
    crm, postgres_server, monkeypatch
):
    monkeypatch.setenv("SEGMERGE_CRM_TOKEN", postgres_server.password)
    ws = load(crm)
    got = segment(ws, "segrules/pros.yaml", source_name="crm", as_of="2026-12-01")
    src = open_source(ws, "crm")
    try:
        tables = pull(src)
    finally:
        src.close()
    expected = segment(
        ws, "segrules/pros.yaml", source_name="crm", as_of="2026-12-01", tables=tables
    )

    mine = got.frame.set_index("contact_id")
    theirs = expected.frame.set_index("contact_id").loc[mine.index, mine.columns]
    pd.testing.assert_frame_equal(mine, theirs)
    assert mine["segment"].fillna("-").tolist() == ["B2B", "B2C", "B2B", "-"]  # the CRM's
    primary = got.assignment.primary.set_axis(mine.index)
    assert primary.to_dict() == {"c1": "pros", "c2": "particuliers", "c3": None, "c4": "autres"}
    assert got.assignment.excluded.tolist() == expected.assignment.excluded.tolist()


def test_segment_writes_the_contacts_column_beside_the_assignment(crm, postgres_server):
    out = crm / "out.csv"
    r = segmerge(
        "segment",
        str(crm / "segrules" / "pros.yaml"),
        "--source",
        "crm",
        "--as-of",
        "2026-12-01",
        "--format",
        "csv",
        "--out",
        str(out),
        "-w",
        str(crm),
        env={"SEGMERGE_CRM_TOKEN": postgres_server.password},
    )
    assert r.returncode == 0, r.output
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert rows.set_index("contact_id")["segment"].to_dict() == {
        "c1": "pros",
        "c2": "particuliers",
        "c3": "",
        "c4": "autres",
    }
