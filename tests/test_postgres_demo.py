"""The demo shop in PostgreSQL segments exactly as the demo's files do.

The demo's three exports (examples/demo) are read once by the `files` source and
loaded into a real PostgreSQL in the shapes a shop's database has: contacts in a
table under other column names, exposed by a view; orders in a table with local
times (no time zone) and numeric amounts; events given as a SELECT. The `postgres`
source over them must give the same segment sizes, the same segment per contact and
the same RFM scores as the files, through `segmerge segment` and `segmerge validate`
as a user runs them.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from segmerge.segment.segmentation import open_source, pull
from segmerge.workspace.config import load
from tests.cli import segmerge
from tests.postgres import PgServer

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-12-01"
TZ = "Europe/Paris"
RULES = ("profils-vpc", "rfm", "fidelite")

PEOPLE = """
CREATE TABLE crm_people (
    id text PRIMARY KEY, mail text, prenom text, nom text, optin boolean NOT NULL,
    signup date, labels text[], civilite text, age integer, sexe text, ville text,
    code_postal text, region text, motivation text, comportement text, profil text
);
CREATE VIEW contacts AS SELECT id AS contact_id, mail AS email, prenom AS first_name,
    nom AS last_name, optin AS subscribed, signup AS created_at, labels AS tags, civilite,
    age, sexe, ville, code_postal, region, motivation, comportement, profil
    FROM crm_people;
CREATE TABLE orders (
    order_id text PRIMARY KEY, contact_id text NOT NULL, ordered_at timestamp NOT NULL,
    amount numeric(10, 2) NOT NULL, category text, rating smallint
);
CREATE TABLE email_events (
    contact_id text, campaign_id text, event text, at timestamptz
);
GRANT SELECT ON contacts, orders, email_events TO segmerge;
"""
EVENTS_SELECT = "SELECT contact_id, campaign_id, event, at FROM email_events"


def _local_day(col: pd.Series) -> list:
    return [None if pd.isna(t) else t.date() for t in col.dt.tz_convert(TZ)]


def load_demo(server: PgServer) -> str:
    """The demo's tables as the files source reads them, copied into a fresh database."""
    tables = pull(open_source(load(REPO), "demo"))
    db = server.create_database("demo_shop")
    c, o, e = tables.contacts, tables.orders, tables.events
    people = zip(
        c["contact_id"],
        c["email"],
        c["first_name"],
        c["last_name"],
        c["subscribed"],
        _local_day(c["created_at"]),
        c["tags"],
        *(c[k] for k in ("civilite", "age", "sexe", "ville", "code_postal", "region")),
        *(c[k] for k in ("motivation", "comportement", "profil")),
        strict=True,
    )
    orders = pd.DataFrame(
        {
            "order_id": o["order_id"],
            "contact_id": o["contact_id"],
            "ordered_at": o["ordered_at"].dt.tz_convert(TZ).dt.tz_localize(None),
            "amount": o["amount"],
            "category": o["category"],
            "rating": o["rating"].astype("Int64"),
        }
    )
    events = e[["contact_id", "campaign_id", "event", "at"]]
    with server.admin(db) as conn, conn.cursor() as cur:
        cur.execute(PEOPLE)
        with cur.copy("COPY crm_people FROM STDIN") as copy:
            for row in people:
                copy.write_row([None if _missing(v) else v for v in row])
        # the 32,000 orders and events as CSV made a column at a time (a missing value,
        # unquoted and empty, is NULL; the demo has no empty text)
        for table, frame in (("orders", orders), ("email_events", events)):
            with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(frame.to_csv(index=False, header=False, na_rep=""))
    return db


def _missing(v: object) -> bool:
    return not isinstance(v, list) and bool(pd.isna(v))


@pytest.fixture(scope="module")
def demo_workspace(postgres_server: PgServer, tmp_path_factory) -> Path:
    """The repository's workspace (rule sets, letters, campaigns) with a `warehouse`
    source on the demo's database; the campaigns read it, the `demo` files stay too."""
    db = load_demo(postgres_server)
    root = tmp_path_factory.mktemp("pg_demo")
    for folder in ("segrules", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    config = (REPO / "segmerge.toml").read_text(encoding="utf-8")
    config = config.replace('path = "examples/demo"', f'path = "{REPO / "examples" / "demo"}"')
    config = config.replace('source = "demo"', 'source = "warehouse"')
    config += f"""
[sources.warehouse]
connector = "postgres"
dsn = "{postgres_server.dsn(db)}"
contacts = "contacts"
orders = "public.orders"
events = "{EVENTS_SELECT}"
"""
    (root / "segmerge.toml").write_text(config, encoding="utf-8")
    return root


def token(server: PgServer) -> dict[str, str]:
    return {"SEGMERGE_WAREHOUSE_TOKEN": server.password}


def segment_rows(root: Path, rules: str, source: str, env: dict[str, str]) -> list[dict]:
    out = root / f"{rules}-{source}.csv"
    r = segmerge(
        "segment",
        f"segrules/{rules}.yaml",
        "--source",
        source,
        "--as-of",
        AS_OF,
        "--format",
        "csv",
        "--out",
        str(out),
        "--columns",
        "rfm,revenue,orders_count,days_since_last_order,tags,created_at,age",
        "-w",
        str(root),
        env=env,
        check=True,
    )
    assert "Traceback" not in r.output
    return sorted(csv.DictReader(io.StringIO(out.read_text("utf-8"))), key=lambda d: str(d))


@pytest.mark.parametrize("rules", RULES)
def test_postgres_gives_the_demos_segments_contact_by_contact(
    demo_workspace, postgres_server, rules
):
    env = token(postgres_server)
    files = segment_rows(demo_workspace, rules, "demo", env)
    warehouse = segment_rows(demo_workspace, rules, "warehouse", env)
    assert len(files) > 2000  # every subscribed contact of the demo has a row
    assert warehouse == files
    sizes = pd.Series([row["segment"] for row in files]).value_counts()
    assert len(sizes) >= 4  # the rule set's segments all have members, so all are compared


def test_validate_and_segment_run_on_a_postgres_workspace(demo_workspace, postgres_server):
    env = token(postgres_server)
    r = segmerge("validate", "profils", "-w", str(demo_workspace), "--as-of", AS_OF, env=env)
    assert r.returncode == 0, r.output
    out = " ".join(r.output.split())
    assert "warehouse: PostgreSQL 1" in out and "contacts, orders, events readable" in out
    assert "warehouse: credential from environment (SEGMERGE_WAREHOUSE_TOKEN)" in out
    validated = r.output
    r = segmerge(
        "segment", "segrules/profils-vpc.yaml", "--as-of", AS_OF, cwd=demo_workspace, env=env
    )
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("source warehouse, the source of campaign profils")
    files = segmerge(
        "segment",
        "segrules/profils-vpc.yaml",
        "--source",
        "demo",
        "--as-of",
        AS_OF,
        cwd=demo_workspace,
        env=env,
    )
    # the same table of segment sizes (the user named the source: no line naming it)
    assert "fonceurs" in files.stdout
    assert r.stdout.splitlines()[1:] == files.stdout.splitlines()
    everything = [validated, r.output, files.output]
    everything += [p.read_bytes().decode("utf-8", "replace") for p in _files(demo_workspace)]
    assert not [text for text in everything if postgres_server.password in text]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]
