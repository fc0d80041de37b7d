"""The files source on DuckDB: the same per-contact answers as its pandas pull, fewer columns read.

A Parquet workspace is segmented twice through the real command, once as the user
gets it (``engine`` unset: DuckDB when it reads the files exactly as pandas) and once
with ``engine = "pandas"``; the CSV files must be the same bytes. The data: the demo
shop's files (the repository's workspace, pulled once and written as typed Parquet;
the runs, which fill every letter, take a quarter of its contacts), the CDNOW purchases and a generated shop (benchmarks/shopgen.py), contacts shuffled so
that their order is the file's, not the ids'.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from connectors.files import FilesConnector
from segmerge.rules import load_ruleset
from segmerge.segment.in_database import segment_in_database
from segmerge.segment.segmentation import as_of_instant, open_source
from segmerge.workspace.config import load
from tests.cli import segmerge

REPO = Path(__file__).resolve().parents[1]
PARIS = ZoneInfo("Europe/Paris")
RULE_SETS = sorted(p.name for p in (REPO / "segrules").glob("*.yaml"))

CONFIG = """\
timezone = "Europe/Paris"
locale = "fr_FR"
currency = "EUR"

[sources.shop]
connector = "files"
path = "data"
contacts = "contacts.parquet"
orders = "orders.parquet"
{extra}
"""


def workspace(
    root: Path, contacts: pd.DataFrame | pa.Table, orders: pd.DataFrame | pa.Table, extra: str = ""
) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, table in (("contacts", contacts), ("orders", orders)):
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(table, root / "data" / f"{name}.parquet")
    shutil.copytree(REPO / "segrules", root / "segrules", dirs_exist_ok=True)
    (root / "segmerge.toml").write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return root


def dialect(root: Path) -> str | None:
    """Which engine the files source chooses for this workspace (None: pandas)."""
    source = open_source(load(root), "shop")
    try:
        return source.dialect
    finally:
        source.close()


def set_engine(root: Path, engine: str | None) -> None:
    config = root / "segmerge.toml"
    text = re.sub(r'\nengine = "\w+"', "", config.read_text(encoding="utf-8"))
    if engine is not None:
        text = text.replace('connector = "files"\n', f'connector = "files"\nengine = "{engine}"\n')
    config.write_text(text, encoding="utf-8")


def segment_both(root: Path, rules: str, *args: str) -> tuple[bytes, bytes]:
    """The CSV of `segment` as the user gets it (asserted to be DuckDB's) and pandas'.

    Which engine segmented is seen on the run itself (a spy on the in-database path),
    not by opening the source a second time to ask: that asking ran the DuckDB checks
    again, a third of the DuckDB side's CPU."""
    from segmerge.segment import in_database

    out: dict[str | None, bytes] = {}
    in_db: dict[str | None, list[str | None]] = {}
    called: list[str | None] = []
    real = in_database.segment_in_database

    def spy(ws: Any, name: str, source: Any, *rest: Any, **kw: Any) -> Any:
        called.append(source.dialect)
        return real(ws, name, source, *rest, **kw)

    for engine in (None, "pandas"):
        set_engine(root, engine)
        called.clear()
        target = root / f"out-{engine}.csv"
        command = ["segment", f"segrules/{rules}", "--as-of", "2026-07-01", "--format", "csv"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(in_database, "segment_in_database", spy)
            ran = segmerge(*command, "--out", str(target), *args, cwd=root)
        assert ran.returncode == 0, ran.stderr
        out[engine], in_db[engine] = target.read_bytes(), called[:]
    set_engine(root, None)
    assert in_db == {None: ["duckdb"], "pandas": []}
    return out[None], out["pandas"]


def shuffled(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


# --- the demo shop, the CDNOW purchases, a generated shop -------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's contacts and orders as the pandas pull types them, written as Parquet."""
    ws = load(REPO)
    source = open_source(ws, "demo")
    assert isinstance(source, FilesConnector)
    tables = source.pull()
    contacts = tables.contacts.drop(columns=["updated_at"])
    orders = tables.orders
    root = workspace(tmp_path_factory.mktemp("demo"), shuffled(contacts), orders)
    shutil.copytree(REPO / "templates", root / "templates")
    config = (REPO / "segmerge.toml").read_text(encoding="utf-8")
    mail = config[config.index("[mail]") : config.index("[sources.")]
    campaigns = config[config.index("[destinations.outbox]") :]
    with (root / "segmerge.toml").open("a", encoding="utf-8") as f:
        f.write("\n" + mail + campaigns.replace('source = "demo"', 'source = "shop"'))
    return root


@pytest.fixture(scope="module")
def demo_quarter(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quarter of the demo's contacts, with their orders, and every contact whose
    address another one shares (the letters a run leaves out): a run fills each letter
    it would send, the same work whichever engine segmented, so the whole demo would
    cost four times as much and prove nothing more."""
    root = tmp_path_factory.mktemp("quarter")
    shutil.copytree(demo, root, dirs_exist_ok=True)
    contacts = pq.read_table(demo / "data" / "contacts.parquet")
    orders = pq.read_table(demo / "data" / "orders.parquet")
    address = pc.utf8_lower(pc.utf8_trim_whitespace(contacts.column("email")))
    shared = address.to_pandas().duplicated(keep=False).to_numpy()
    kept = contacts.filter(pa.array(shared | (np.arange(contacts.num_rows) % 4 == 0)))
    pq.write_table(kept, root / "data" / "contacts.parquet")
    theirs = pc.is_in(orders.column("contact_id"), value_set=kept.column("contact_id"))
    pq.write_table(orders.filter(theirs), root / "data" / "orders.parquet")
    return root


@pytest.mark.parametrize("rules", RULE_SETS)
def test_demo_segments_identically(demo: Path, rules: str) -> None:
    ours, pandas = segment_both(demo, rules, "--columns", "orders_count,revenue,last_order_at")
    assert ours == pandas
    assert ours.count(b"\n") > 100


def test_demo_report_is_the_same(demo_quarter: Path) -> None:
    said = {}
    for engine in (None, "pandas"):
        set_engine(demo_quarter, engine)
        ran = segmerge("report", "segrules/rfm.yaml", "--as-of", "2026-07-01", cwd=demo_quarter)
        assert ran.returncode == 0, ran.stderr
        said[engine] = ran.stdout
    set_engine(demo_quarter, None)
    assert said[None] == said["pandas"]


@pytest.mark.parametrize("campaign", ["profils", "rfm"])
def test_demo_dry_run_is_the_same(demo_quarter: Path, campaign: str) -> None:
    """Every letter, tag and refusal the same; only the counts of orders and events
    pulled differ: segmenting in the database pulls none, and the summary says none
    rather than a misleading 0."""
    said = {}
    for engine in (None, "pandas"):
        set_engine(demo_quarter, engine)
        ran = segmerge("run", campaign, "--dry-run", "--as-of", "2026-07-01", cwd=demo_quarter)
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.replace("─", "").replace(" ", "").splitlines()
        pulled = ("│pulledorders", "│pulledevents")
        said[engine] = [x for x in lines if not x.startswith(pulled)]
        if engine is None:
            assert not any(x.startswith(pulled) for x in lines), ran.stdout
    set_engine(demo_quarter, None)
    assert said[None] == said["pandas"]
    assert any(x.startswith("│woulddo:send│") for x in said[None])
    assert any(x.startswith("│notmailed:addresssharedwithanothercontact│") for x in said[None])


def test_cdnow_segments_identically(tmp_path: Path) -> None:
    from tests.shop_exports import cdnow, orders_of

    orders = orders_of(cdnow(limit=600))
    customers = sorted(orders["customer"].unique())
    contacts = pd.DataFrame(
        {
            "N° client": [f"{c:05d}" for c in customers],
            "email": [f"Client{c}@Example.fr" for c in customers],
            "subscribed": [c % 7 != 0 for c in customers],
            "tags": [["blocked"] if c % 11 == 0 else [] for c in customers],
            "age": [18 + c % 60 for c in customers],
            "ville": ["Lyon" if c % 3 else "Paris" for c in customers],
        }
    )
    days = pd.to_datetime(orders["date"], format="%Y%m%d")
    raw = pd.DataFrame(
        {
            "order_id": orders["order"].astype(str),
            "N° client": [f"{c:05d}" for c in orders["customer"]],
            "ordered_at": days + pd.Timedelta(hours=12),  # wall time in the workspace's zone
            "amount": orders["total"],
            "category": ["cd" if n % 3 else "dvd" for n in orders["order"]],
            "status": ["Annulé" if c else "Livré" for c in orders["cancelled"]],
        }
    )
    extra = 'columns = { "N° client" = "contact_id" }'
    root = workspace(tmp_path, shuffled(contacts), raw, extra)
    for rules in RULE_SETS:
        ours, pandas = segment_both(root, rules, "--columns", "orders_count,revenue,r_score")
        assert ours == pandas, rules


def test_generated_shop_segments_identically(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import shopgen

    data = tmp_path / "gen"
    contacts_path, orders_path = shopgen.generate(data, shopgen.Size(1_500, 15_000))
    contacts = shuffled(pq.read_table(contacts_path).to_pandas())
    root = workspace(
        tmp_path / "ws",
        pa.Table.from_pandas(contacts, preserve_index=False),
        pq.read_table(orders_path),
    )
    (root / "segrules" / "bench.yaml").write_text(shopgen.RULES, encoding="utf-8")
    ours, pandas = segment_both(root, "bench.yaml", "--columns", ",".join(shopgen.COLUMNS))
    assert ours == pandas


# --- what DuckDB reads ----------------------------------------------------------------------


class Recording:
    """A DuckDB connection that keeps DuckDB's plan of every statement that reads rows."""

    def __init__(self, con: Any, plans: list[str], read: list[str] | None = None) -> None:
        self.con, self.plans, self.read = con, plans, read if read is not None else []

    def _explain(self, sql: str) -> None:
        if "LIMIT 0" not in sql and "parquet_metadata" not in sql:  # no row read
            rows = self.con.sql(f"EXPLAIN {sql}").fetchall()
            self.plans.append("\n".join(str(r[1]) for r in rows))
            self.read.append(sql)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            self._explain(sql)
        return self.con.execute(sql, *args)

    def sql(self, sql: str) -> Any:
        self._explain(sql)
        return self.con.sql(sql)

    def cursor(self) -> Recording:  # the contacts' checks run on a second connection
        return Recording(self.con.cursor(), self.plans, self.read)

    def close(self) -> None:
        self.con.close()


def test_unused_columns_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks and the plan read the orders' instants, amounts, statuses; never the
    order numbers (their Parquet statistics prove none is empty). The orders are read
    twice in all: by the checks, which count them per status too; by the plan, which
    counts the orders naming no contact in its own grouping of the orders."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import shopgen

    from connectors import files_duckdb

    data = tmp_path / "gen"
    shopgen.generate(data, shopgen.Size(300, 3_000))
    orders = pq.read_table(data / "orders.parquet")
    known = pc.starts_with(orders.column("contact_id"), "C")  # the examples of orders of
    root = workspace(  # nobody name their numbers: here there are none
        tmp_path / "ws", pq.read_table(data / "contacts.parquet"), orders.filter(known)
    )
    plans: list[str] = []
    read: list[str] = []  # each statement that reads rows
    real = files_duckdb.connect
    monkeypatch.setattr(files_duckdb, "connect", lambda *a: Recording(real(*a), plans, read))
    ws = load(root)
    source = open_source(ws, "shop")
    try:
        assert source.dialect == "duckdb"
        ruleset = load_ruleset(root / "segrules" / "rfm.yaml")
        segment_in_database(ws, "shop", source, ruleset, as_of_instant(ws, "2026-07-01"))
    finally:
        source.close()
    scans = [box for plan in plans for box in plan.split("Read Parquet")[1:]]
    assert any("ordered_at" in scan for scan in scans)
    assert any("amount" in scan for scan in scans)
    assert not any("order_id" in scan for scan in scans)  # 3,000 numbers no rule reads
    orders_file = str(root / "data" / "orders.parquet")
    assert sum(orders_file in sql for sql in read) == 2


def test_the_checks_count_the_orders_as_the_engine_would(tmp_path: Path) -> None:
    """The counts the order rules need (orders, orders of nobody, per status, a missing
    status included) come from the checks' scan, equal to the engine's own statement."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import shopgen

    from segmerge.segment.in_database import _Database

    data = tmp_path / "gen"
    shopgen.generate(data, shopgen.Size(300, 3_000))
    orders = pq.read_table(data / "orders.parquet")
    status = pc.if_else(pc.equal(orders.column("status"), "on-hold"), None, orders["status"])
    orders = orders.set_column(orders.schema.get_field_index("status"), "status", status)
    root = workspace(tmp_path / "ws", pq.read_table(data / "contacts.parquet"), orders)
    source = open_source(load(root), "shop")
    try:
        assert source.dialect == "duckdb"
        given = source.order_counts()
        source.order_counts = lambda in_plan=False: None  # type: ignore[method-assign]
        counted = _Database(source).order_counts()
    finally:
        source.close()
    assert given is not None and given[1] > 0 and given[2] is not None
    assert any(word is None and n > 0 for word, n in given[2])  # the "on-hold" made empty
    assert given[:2] == counted[:2]
    assert sorted(given[2], key=str) == sorted(counted[2] or [], key=str)


def test_duckdb_resources_come_from_the_source_settings(tmp_path: Path) -> None:
    contacts = pd.DataFrame({"contact_id": ["C1"], "email": ["c1@x.org"], "subscribed": [True]})
    orders = pd.DataFrame(
        {
            "order_id": ["O1"],
            "contact_id": ["C1"],
            "ordered_at": [pd.Timestamp("2026-05-01", tz="UTC")],
            "amount": [1.0],
        }
    )
    extra = 'memory_limit = "300MiB"\nthreads = 1\ntemp_directory = "spill"'
    root = workspace(tmp_path, contacts, orders, extra)
    source = open_source(load(root), "shop")
    try:
        assert source.dialect == "duckdb"
        asked = "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
        limit, threads, spill = source.execute(asked).to_pylist()[0].values()
    finally:
        source.close()
    assert limit.replace(" ", "") in ("300.0MiB", "314.5MB") and threads == 1
    assert Path(spill) == root / "spill"


DISTINCT_RULES = """\
version: 1
name: categories
mode: first
segments:
  - name: many
    when: distinct(category, days=400) >= 3
  - name: some
    when: distinct(category) >= 2
"""


@pytest.mark.parametrize("kinds", [8, 70])
def test_distinct_counts_as_pandas_with_few_or_many_values(tmp_path: Path, kinds: int) -> None:
    """8 categories are counted as bits of one integer, 70 (more than 62) by
    COUNT(DISTINCT): both give each contact the pandas engine's count."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import shopgen

    data = tmp_path / "gen"
    shopgen.generate(data, shopgen.Size(300, 3_000))
    orders = pq.read_table(data / "orders.parquet")
    words = pa.array([f"cat {i:02d}" for i in range(kinds)])
    picked = np.random.default_rng(kinds).integers(0, kinds, orders.num_rows)
    orders = orders.set_column(
        orders.schema.get_field_index("category"), "category", words.take(picked)
    )
    known = pc.starts_with(orders.column("contact_id"), "C")
    root = workspace(
        tmp_path / "ws", pq.read_table(data / "contacts.parquet"), orders.filter(known)
    )
    (root / "segrules" / "categories.yaml").write_text(DISTINCT_RULES, encoding="utf-8")
    ours, pandas = segment_both(root, "categories.yaml")
    assert ours == pandas
    assert ours.count(b",many\n") > 10 and ours.count(b",some\n") > 10
