"""The `postgres` source against a real PostgreSQL: what it reads, and each way it can be
set up wrong, told as one message naming the source, the relation and the column, with
the exit code of its kind (2: the settings; 1: the server out of reach) and never the
password, which every command here is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from segmerge.segment.segmentation import open_source
from segmerge.workspace.config import load
from tests.cli import Ran, segmerge
from tests.postgres import PgServer, free_port
from tests.workspaces import LETTER, RULES

SCHEMA = """
CREATE TABLE contacts (
    contact_id integer PRIMARY KEY, email text, first_name text, subscribed boolean,
    created_at date, tags text, ville text
);
INSERT INTO contacts VALUES
    (1, 'ana@example.org', 'Ana', true, '2026-06-15', 'vip, salon 2025', 'Lyon'),
    (2, 'bo@example.org', 'Bo', false, NULL, NULL, NULL);
CREATE TABLE orders (
    id text, customer integer, ordered_at timestamp, amount numeric(8, 2)
);
INSERT INTO orders VALUES ('A1', 1, '2026-11-30 23:30', 12.50), ('A2', 2, 'infinity', 3);
GRANT SELECT ON contacts, orders TO segmerge;
"""
ORDERS_SELECT = "SELECT id AS order_id, customer AS contact_id, ordered_at, amount FROM orders"


@pytest.fixture(scope="module")
def shop_db(postgres_server: PgServer) -> str:
    db = postgres_server.create_database("small_shop")
    with postgres_server.admin(db) as conn:
        conn.execute(SCHEMA)
    return db


def workspace(root: Path, dsn: str, **relations: str) -> Path:
    """A workspace whose only source is the `warehouse` PostgreSQL (no campaign)."""
    lines = [
        'timezone = "Europe/Paris"',
        "",
        "[sources.warehouse]",
        'connector = "postgres"',
        f'dsn = "{dsn}"',
        *(f'{k} = "{v}"' for k, v in relations.items()),
    ]
    root.mkdir(exist_ok=True)
    (root / "segmerge.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


CAMPAIGN = """
[mail]
from = "La Boutique <bonjour@boutique.example>"
unsubscribe_url = "https://boutique.example/stop?token={token}"
message_id_domain = "boutique.example"

[destinations.outbox]
connector = "outbox"
path = "outbox"

[campaigns.lettre]
source = "warehouse"
rules = "segrules/lettre.yaml"
templates = "templates/lettre"
destination = "outbox"
"""


def validate(root: Path, password: str) -> Ran:
    return segmerge("validate", "-w", str(root), env={"SEGMERGE_WAREHOUSE_TOKEN": password})


def one_line(r: Ran) -> str:
    return " ".join(r.output.split())


def assert_no_secret(root: Path, r: Ran, secret: str) -> None:
    """Neither the command's streams nor any file it left (.segmerge/, logs) holds it
    (segmerge.toml does when the user wrote it there: the case refused)."""
    assert "Traceback" not in r.output
    assert secret not in r.output
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "segmerge.toml"]
    assert [p for p in files if secret.encode() in p.read_bytes()] == []


def test_pull_reads_the_canonical_columns_from_a_table_and_a_select(
    tmp_path, postgres_server, shop_db, monkeypatch
):
    root = workspace(tmp_path, postgres_server.dsn(shop_db), orders=ORDERS_SELECT)
    r = validate(root, postgres_server.password)
    assert r.returncode == 0, r.output
    out = one_line(r)
    assert "source warehouse (no campaign uses it): 2 contacts, 2 orders" in out
    checked = r"warehouse: PostgreSQL \d+\.\d+ at 127\.0\.0\.1:\d+/small_shop as segmerge; "
    assert re.search(checked + "contacts, orders readable", out), out
    assert_no_secret(root, r, postgres_server.password)

    monkeypatch.setenv("SEGMERGE_WAREHOUSE_TOKEN", postgres_server.password)
    src = open_source(load(root), "warehouse")
    try:
        tables = src.pull()
        relations = src.relations()
        counted = src.execute(
            f"SELECT contact_id, count(*) AS n, sum(amount) AS total "
            f"FROM {relations['orders']} AS o GROUP BY contact_id ORDER BY contact_id"
        )
    finally:
        src.close()
    c = tables.contacts.set_index("contact_id")
    # an integer id is text, a date is local midnight (Paris, summer time that day)
    assert str(c.loc["1", "created_at"]) == "2026-06-14 22:00:00+00:00"
    assert c.loc["1", "tags"] == ["vip", "salon 2025"] and c.loc["2", "tags"] == []
    assert c.loc["1", "ville"] == "Lyon" and bool(c.loc["2", "subscribed"]) is False
    o = tables.orders.set_index("order_id")
    assert str(o.loc["A1", "ordered_at"]) == "2026-11-30 22:30:00+00:00"
    assert o.loc["A1", "amount"] == 12.5
    assert o["ordered_at"].isna().sum() == 1  # 'infinity' is no date: left empty
    assert tables.origins["orders"].startswith("PostgreSQL SELECT id AS order_id")
    # the engine's plan reads the same canonical relations where the data lives
    assert counted.column_names == ["contact_id", "n", "total"]
    assert counted.column("contact_id").to_pylist() == ["1", "2"]
    assert counted.column("total").to_pylist() == [12.5, 3.0]
    assert counted.schema.field("n").type == pa.int64()


def test_a_relation_without_a_canonical_column_names_it(tmp_path, postgres_server, shop_db):
    root = workspace(tmp_path, postgres_server.dsn(shop_db), orders="orders")
    r = validate(root, postgres_server.password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "segmerge.toml: warehouse.orders: the relation orders has no column" in out
    assert "contact_id, order_id (its columns: id, customer, ordered_at, amount)" in out
    assert "SELECT id AS contact_id" in out  # the fix
    assert_no_secret(root, r, postgres_server.password)


@pytest.mark.parametrize(
    ("relation", "said"),
    [
        (
            "SELECT 'x' AS contact_id, 'o' AS order_id, now()::text AS ordered_at, 1 AS amount",
            "column ordered_at is text, which cannot be a date",
        ),
        (
            "SELECT 'x' AS contact_id, 'o' AS order_id, now() AS ordered_at, '9,50' AS amount",
            "column amount is text, which cannot be an amount",
        ),
    ],
)
def test_a_column_that_cannot_be_a_date_or_an_amount(
    tmp_path, postgres_server, shop_db, relation, said
):
    root = workspace(tmp_path, postgres_server.dsn(shop_db), orders=relation)
    r = validate(root, postgres_server.password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "segmerge.toml: warehouse.orders: the relation SELECT 'x' AS contact_id" in out
    assert said in out
    assert_no_secret(root, r, postgres_server.password)


def test_an_unreachable_server_is_exit_1(tmp_path, postgres_server):
    closed = free_port()  # nothing listens there
    root = workspace(tmp_path, f"postgresql://segmerge@127.0.0.1:{closed}/shop")
    r = validate(root, postgres_server.password)
    assert r.returncode == 1, r.output
    assert f"warehouse: cannot connect to PostgreSQL at 127.0.0.1:{closed}/shop" in one_line(r)
    assert "Connection refused" in r.output
    assert_no_secret(root, r, postgres_server.password)


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        ("host=127.0.0.1 port", 'is not a PostgreSQL DSN: missing "=" after "port"'),
        ("postgresql://segmerge@127.0.0.1:fivefour/shop", "its port 'fivefour' is not a number"),
        ("postgresql://segmerge:{password}@127.0.0.1/shop", "the DSN holds a password"),
        ("host=127.0.0.1 password={password}", "the DSN holds a password"),
    ],
)
def test_a_malformed_dsn_or_one_holding_a_password_is_exit_2(tmp_path, postgres_server, dsn, said):
    password = postgres_server.password
    root = workspace(tmp_path, dsn.format(password=password))
    r = validate(root, password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "segmerge.toml:5: warehouse.dsn" in out and said in out
    assert_no_secret(root, r, password)


def test_a_wrong_password_is_refused_without_being_printed(tmp_path, postgres_server, shop_db):
    wrong = "not-the-" + postgres_server.password
    root = workspace(tmp_path, postgres_server.dsn(shop_db))
    r = validate(root, wrong)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "warehouse: PostgreSQL at 127.0.0.1:" in out
    assert "refused the login with the password from environment (SEGMERGE_WAREHOUSE_TOKEN)" in out
    assert 'password authentication failed for user "segmerge"' in out
    assert "segmerge auth set warehouse" in out
    assert_no_secret(root, r, wrong)


def test_a_missing_permission_names_the_relation_and_the_grant(tmp_path, postgres_server, shop_db):
    postgres_server.create_login("reader", postgres_server.password)
    root = workspace(tmp_path, postgres_server.dsn(shop_db, user="reader"), orders=ORDERS_SELECT)
    r = validate(root, postgres_server.password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "warehouse.contacts: the relation contacts: the user reader may not read it" in out
    assert "permission denied for table contacts" in out
    assert "GRANT SELECT ON contacts TO reader" in out
    assert_no_secret(root, r, postgres_server.password)


def test_a_relation_that_is_not_there(tmp_path, postgres_server, shop_db):
    root = workspace(tmp_path, postgres_server.dsn(shop_db), contacts="crm.people")
    r = validate(root, postgres_server.password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "warehouse.contacts: the relation crm.people: no table or view of that name" in out
    assert_no_secret(root, r, postgres_server.password)


def test_a_run_on_postgres_leaves_the_password_in_no_output_and_no_file(
    tmp_path, postgres_server, shop_db
):
    root = workspace(tmp_path, postgres_server.dsn(shop_db), orders=ORDERS_SELECT)
    with (root / "segmerge.toml").open("a", encoding="utf-8") as fh:
        fh.write(CAMPAIGN)
    (root / "segrules").mkdir()
    rules = RULES.format(name="lettre", vip_when="orders_count >= 1")
    (root / "segrules" / "lettre.yaml").write_text(rules, encoding="utf-8")
    (root / "templates" / "lettre").mkdir(parents=True)
    (root / "templates" / "lettre" / "_default.html.j2").write_text(LETTER, encoding="utf-8")
    env = {"SEGMERGE_WAREHOUSE_TOKEN": postgres_server.password}
    r = segmerge("run", "lettre", "--as-of", "2026-12-01", "-w", str(root), env=env)
    assert r.returncode == 0, r.output
    sent = list((root / "outbox").rglob("*.eml"))
    assert len(sent) == 1, r.output  # Ana, the one subscribed contact, in segment vip
    assert "ana@example.org" in sent[0].read_text(encoding="utf-8")
    assert any((root / ".segmerge").rglob("*"))  # the ledger and the run's files
    assert_no_secret(root, r, postgres_server.password)


def test_a_database_that_is_not_there_points_at_the_dsn(tmp_path, postgres_server):
    root = workspace(tmp_path, postgres_server.dsn("no_such_shop"))
    r = validate(root, postgres_server.password)
    assert r.returncode == 2, r.output
    out = one_line(r)
    assert "segmerge.toml: warehouse.dsn: PostgreSQL at 127.0.0.1:" in out
    assert 'database "no_such_shop" does not exist' in out
    assert_no_secret(root, r, postgres_server.password)


def test_execute_gives_each_server_type_as_its_arrow_type(
    tmp_path, postgres_server, shop_db, monkeypatch
):
    """What the engine's plan gets back from `execute`: values as the server holds them."""
    monkeypatch.setenv("SEGMERGE_WAREHOUSE_TOKEN", postgres_server.password)
    src = open_source(load(workspace(tmp_path, postgres_server.dsn(shop_db))), "warehouse")
    try:
        t = src.execute(
            """SELECT * FROM (VALUES
                (1, E'a "b",\\nc', true, 2.5::numeric, date '2026-12-01',
                 timestamptz '2026-12-01 10:00+01', timestamp '2026-12-01 10:00',
                 ARRAY['x', 'y z'], '{"k": 1}'::jsonb),
                (NULL, '', NULL, NULL, NULL, NULL, NULL, ARRAY[]::text[], NULL)
            ) AS v(i, s, b, n, d, tz, ts, tags, j);"""
        )
        lone_nulls = src.execute("SELECT NULL::text AS x FROM generate_series(1, 3)")
        nothing = src.execute("SELECT 1 AS one WHERE false")
    finally:
        src.close()
    assert [str(f.type) for f in t.schema] == [
        "int64",
        "string",
        "bool",
        "double",
        "date32[day]",
        "timestamp[us, tz=UTC]",
        "timestamp[us]",
        "list<item: string>",
        "string",
    ]
    rows = t.to_pylist()
    assert rows[0]["s"] == 'a "b",\nc' and rows[1]["s"] == ""  # an empty text is not NULL
    assert rows[0]["tz"].isoformat() == "2026-12-01T09:00:00+00:00"
    assert rows[0]["ts"].isoformat() == "2026-12-01T10:00:00"
    assert rows[0]["tags"] == ["x", "y z"] and rows[0]["j"] == '{"k": 1}'
    assert rows[1] == {k: (None if k != "s" else "") for k in t.column_names}
    assert lone_nulls.num_rows == 3 and lone_nulls.column("x").null_count == 3
    assert nothing.num_rows == 0 and nothing.column_names == ["one"]
