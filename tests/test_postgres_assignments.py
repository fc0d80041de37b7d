"""A `postgres` source with ``assignments`` set writes each run's segments into its own
database, on a real PostgreSQL: one row per contact and group, only what moved is
written, a failure half-way leaves the previous assignments as they were, and the run
started again completes them (connectors/postgres_assignments.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import Ran, segmerge
from tests.postgres import PgServer
from tests.workspaces import LETTER, RULES

SCHEMA = """
CREATE TABLE contacts (
    contact_id text PRIMARY KEY, email text, first_name text, subscribed boolean, tags text
);
INSERT INTO contacts VALUES
    ('c1', 'ana@example.org', 'Ana', true, 'client fidèle'),
    ('c2', 'bo@example.org', 'Bo', true, NULL),
    ('c3', 'cy@example.org', 'Cy', true, NULL),
    ('c4', 'di@example.org', 'Di', false, NULL);
CREATE TABLE orders (order_id text, contact_id text, ordered_at timestamptz, amount numeric);
INSERT INTO orders VALUES ('o1', 'c1', '2026-11-20 10:00+01', 40);
GRANT SELECT ON contacts, orders TO segmerge;
GRANT CREATE ON SCHEMA public TO segmerge;
"""
REFUSE_C3 = """
CREATE FUNCTION refuse_c3() RETURNS trigger AS $$
BEGIN
    IF NEW.contact_id = 'c3' THEN RAISE EXCEPTION 'no space left on device (test)'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_c3 BEFORE INSERT ON segmerge_assignments
    FOR EACH ROW EXECUTE FUNCTION refuse_c3();
"""


def shop(server: PgServer, root: Path, db: str, *, assignments: str | None) -> Path:
    """A workspace whose campaign `lettre` segments the database and writes back to it."""
    with server.admin(db) as conn:
        conn.execute(SCHEMA)
    setting = f'assignments = "{assignments}"' if assignments else ""
    root.mkdir()
    (root / "segmerge.toml").write_text(
        f"""timezone = "Europe/Paris"

[sources.warehouse]
connector = "postgres"
dsn = "{server.dsn(db)}"
{setting}

[campaigns.lettre]
source = "warehouse"
rules = "segrules/lettre.yaml"
templates = "templates/lettre"
destination = "warehouse"
""",
        encoding="utf-8",
    )
    (root / "segrules").mkdir()
    rules = RULES.format(name="lettre", vip_when="orders_count >= 1")
    (root / "segrules" / "lettre.yaml").write_text(rules, encoding="utf-8")
    (root / "templates" / "lettre").mkdir(parents=True)
    (root / "templates" / "lettre" / "_default.html.j2").write_text(LETTER, encoding="utf-8")
    return root


def run(server: PgServer, root: Path, day: str) -> Ran:
    env = {"SEGMERGE_WAREHOUSE_TOKEN": server.password}
    return segmerge("run", "lettre", "--as-of", day, "-w", str(root), env=env)


def table(server: PgServer, db: str) -> dict[tuple[str, str], tuple]:
    """(contact, tag) -> (campaign, segment, run, day, updated_at)."""
    with server.admin(db) as conn:
        rows = conn.execute(
            "SELECT contact_id, tag, campaign, segment, run_id, as_of::text, updated_at "
            "FROM segmerge_assignments"
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def segments(rows: dict[tuple[str, str], tuple]) -> dict[str, tuple[str, str]]:
    """contact -> (segment, the reference day of the run that put it there)."""
    return {c: (v[1], v[3]) for (c, _tag), v in rows.items()}


@pytest.fixture
def writing_shop(postgres_server: PgServer, tmp_path) -> tuple[Path, str]:
    db = postgres_server.create_database("assign_shop")
    return shop(postgres_server, tmp_path / "ws", db, assignments="segmerge_assignments"), db


def test_a_run_writes_the_assignments_and_the_next_only_what_moved(postgres_server, writing_shop):
    root, db = writing_shop
    r = run(postgres_server, root, "2026-12-01")
    assert r.returncode == 0, r.output
    first = table(postgres_server, db)
    # the table is created; Di does not consent: in no segment, no row
    assert segments(first) == {
        "c1": ("vip", "2026-12-01"),
        "c2": ("autres", "2026-12-01"),
        "c3": ("autres", "2026-12-01"),
    }
    assert first[("c1", "seg:vip")][:3] == ("lettre", "vip", "lettre@2026-12-01")

    with postgres_server.admin(db) as conn:
        conn.execute("INSERT INTO orders VALUES ('o2', 'c2', '2026-12-01 18:00+01', 15)")
    r = run(postgres_server, root, "2026-12-02")
    assert r.returncode == 0, r.output
    second = table(postgres_server, db)
    # Bo moved: his old group's row is gone, the new one says since when; the others
    # were not rewritten (their run, their day and their time are the first run's)
    assert segments(second) == {
        "c1": ("vip", "2026-12-01"),
        "c2": ("vip", "2026-12-02"),
        "c3": ("autres", "2026-12-01"),
    }
    assert second[("c1", "seg:vip")] == first[("c1", "seg:vip")]
    assert ("c2", "seg:autres") not in second

    # the same day again: every change is done, nothing is written
    r = run(postgres_server, root, "2026-12-02")
    assert r.returncode == 0, r.output
    assert table(postgres_server, db) == second


def test_a_failure_half_way_keeps_the_previous_assignments_and_the_rerun_completes(
    postgres_server, writing_shop
):
    root, db = writing_shop
    assert run(postgres_server, root, "2026-12-01").returncode == 0
    before = table(postgres_server, db)
    with postgres_server.admin(db) as conn:
        conn.execute(
            "INSERT INTO orders VALUES ('o2', 'c2', '2026-12-01 18:00+01', 15), "
            "('o3', 'c3', '2026-12-01 19:00+01', 25)"
        )
        conn.execute(REFUSE_C3)
    r = run(postgres_server, root, "2026-12-02")
    # Bo's and Cy's old rows were deleted and Bo's new row written before Cy's failed:
    # all of it is rolled back, the table is exactly the previous run's
    assert r.returncode == 1, r.output
    said = " ".join(r.output.split())
    assert "warehouse.assignments: the assignments were not written to segmerge_assignments" in said
    assert "no space left on device (test)" in said and "Traceback" not in said
    assert table(postgres_server, db) == before

    with postgres_server.admin(db) as conn:
        conn.execute("DROP TRIGGER refuse_c3 ON segmerge_assignments")
    r = run(postgres_server, root, "2026-12-02")
    assert r.returncode == 0, r.output
    assert segments(table(postgres_server, db)) == {
        "c1": ("vip", "2026-12-01"),
        "c2": ("vip", "2026-12-02"),
        "c3": ("vip", "2026-12-02"),
    }


def test_a_source_without_the_setting_is_no_destination(postgres_server, tmp_path):
    db = postgres_server.create_database("no_assign_shop")
    root = shop(postgres_server, tmp_path / "ws", db, assignments=None)
    r = run(postgres_server, root, "2026-12-01")
    assert r.returncode == 2, r.output
    assert "connector 'postgres' cannot be a destination" in r.output
    with postgres_server.admin(db) as conn:
        found = conn.execute("SELECT to_regclass('segmerge_assignments')").fetchone()
    assert found == (None,)  # nothing was written to the database


def test_validate_tells_a_login_that_may_not_create_the_table(postgres_server, tmp_path):
    db = postgres_server.create_database("assign_no_right")
    root = shop(postgres_server, tmp_path / "ws", db, assignments="segmerge_assignments")
    with postgres_server.admin(db) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM segmerge")
    env = {"SEGMERGE_WAREHOUSE_TOKEN": postgres_server.password}
    r = segmerge("validate", "lettre", "-w", str(root), "--as-of", "2026-12-01", env=env)
    assert r.returncode == 2, r.output
    said = " ".join(r.output.split())
    assert (
        "warehouse.assignments: the user segmerge may not write the table "
        "segmerge_assignments (CREATE)" in said
    )
    assert "GRANT CREATE ON SCHEMA public TO segmerge" in said
    assert postgres_server.password not in r.output
