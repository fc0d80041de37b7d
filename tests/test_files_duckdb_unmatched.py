"""Orders of nobody on Parquet read by DuckDB: counted by the plan's own grouping of the
orders, with the same warning, the same refusal and the same fallback to the pandas
pull as when a statement of their own counted them before the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmerge.errors import DataError
from segmerge.segment.segmentation import open_source, segment
from segmerge.workspace import config as wsmod
from tests.cli import segmerge as cli
from tests.order_shop import AS_OF, rules, shop

IDS = [str(i) for i in range(1, 11)]


def parquet_shop(tmp_path: Path, owners: list[str], engine: str | None = None) -> Path:
    """Ten contacts; one order per owner, all "Livré" but the first, "Annulé" (left out
    of the metrics, still an order of its contact); as Parquet files."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    orders = [
        (f"o{n}", cid, 10.0, "Annulé" if n == 1 else "Livré")
        for n, cid in enumerate(owners, start=1)
    ]
    root = shop(tmp_path, IDS, orders)
    for name in ("contacts", "orders"):
        csv = root / "data" / f"{name}.csv"
        pq.write_table(pv.read_csv(csv), root / "data" / f"{name}.parquet")
        csv.unlink()
    config = root / "segmerge.toml"
    text = config.read_text(encoding="utf-8").replace('engine = "duckdb"\n', "")
    if engine is not None:
        text = text.replace('connector = "files"\n', f'connector = "files"\nengine = "{engine}"\n')
    config.write_text(text, encoding="utf-8")
    return root


def test_the_plan_counts_the_orders_of_nobody_as_their_own_statement(tmp_path: Path) -> None:
    """1 of 200 orders names nobody, the cancelled one names a contact: the plan's count
    (every order of each contact it met, cancelled or later ones too) is the statement's."""
    owners = [IDS[n % 10] for n in range(199)] + ["999"]
    ws = wsmod.load(parquet_shop(tmp_path, owners))
    done = segment(ws, "segrules/lettre.yaml", as_of=AS_OF)
    assert any("1 of 200 orders" in w for w in done.tables.warnings), done.tables.warnings
    source = open_source(ws, "shop")
    try:
        assert source.dialect == "duckdb"
        assert source.order_counts(in_plan=True)[1] is None  # type: ignore[index]
        assert source.order_counts()[:2] == (200, 1)  # type: ignore[index]
    finally:
        source.close()


def test_too_many_orders_of_nobody_fall_back_to_the_pull(tmp_path: Path) -> None:
    """3 of 100 name nobody: found once the plan ran, the source is pulled, whose error
    names the file and the examples, as before DuckDB read it."""
    owners = [IDS[n % 10] for n in range(97)] + ["77", "78", "79"]
    ws = wsmod.load(parquet_shop(tmp_path, owners))
    with pytest.raises(DataError, match=r"3 of 100 orders \(3%\)") as said:
        segment(ws, "segrules/lettre.yaml", as_of=AS_OF)
    assert "order 'o98' (contact '77')" in str(said.value)
    ran = cli("validate", "-w", str(ws.root))
    assert ran.returncode == 2 and "3 of 100 orders" in ran.stderr, ran.stderr


def test_engine_duckdb_refuses_too_many_orders_of_nobody(tmp_path: Path) -> None:
    owners = [IDS[n % 10] for n in range(97)] + ["77", "78", "79"]
    root = parquet_shop(tmp_path, owners, engine="duckdb")
    ran = cli("segment", rules(root), "-w", str(root), "--as-of", AS_OF, "--format", "csv")
    assert ran.returncode == 2, ran.stderr
    assert 'engine = "duckdb": more than 1 % of the orders name no contact' in ran.stderr
