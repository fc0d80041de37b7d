"""Bad Parquet files on the DuckDB path: told exactly as the pandas pull tells them.

DuckDB's checks find the anomaly and leave the source a pandas pull, so the user
reads the same file, line and field, with the same exit code; ``engine = "duckdb"``
refuses such files, and files it cannot read as pandas does, naming why.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_files_duckdb import set_engine, workspace

from segmerge.errors import ConfigError
from segmerge.segment.segmentation import open_source
from segmerge.workspace.config import load
from tests.cli import segmerge


def shop(
    root: Path, contacts: pd.DataFrame | None = None, orders: pd.DataFrame | None = None
) -> Path:
    contacts = (
        contacts
        if contacts is not None
        else pd.DataFrame(
            {
                "contact_id": ["C1", "C2", "C3"],
                "email": ["a@example.org", "b@example.org", None],
                "subscribed": [True, False, True],
            }
        )
    )
    at = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    orders = (
        orders
        if orders is not None
        else pd.DataFrame(
            {
                "order_id": ["O1", "O2", "O3", "O4"],
                "contact_id": ["C1", "C1", "C2", "C3"],
                "ordered_at": [at, at, at + pd.Timedelta(days=3), at],
                "amount": [10.0, 20.5, 30.0, 5.0],
            }
        )
    )
    return workspace(root, contacts, orders)


def segment(root: Path, engine: str | None) -> tuple[int, str]:
    set_engine(root, engine)
    ran = segmerge("segment", "segrules/rfm.yaml", "--as-of", "2026-07-01", cwd=root)
    return ran.returncode, ran.stderr


def told_as_by_pandas(root: Path) -> str:
    """The message on the path the user gets, asserted to be pandas' own."""
    ours = segment(root, None)
    pandas = segment(root, "pandas")
    assert ours == pandas
    assert ours[0] == 2 and "Traceback" not in ours[1]
    return ours[1]


def test_a_clean_shop_is_segmented_on_duckdb(tmp_path: Path) -> None:
    root = shop(tmp_path)
    assert segment(root, "duckdb")[0] == 0


def test_a_duplicate_contact_id(tmp_path: Path) -> None:
    contacts = pd.DataFrame(
        {"contact_id": ["C1", "C2", "C1"], "email": ["a@x.org", "b@x.org", "c@x.org"]}
    )
    root = shop(tmp_path, contacts=contacts)
    said = told_as_by_pandas(root)
    assert "contacts.parquet" in said and "C1" in said
    code, refused = segment(root, "duckdb")
    assert code == 2 and "duplicate" in refused and "engine" in refused


def test_an_order_without_a_date(tmp_path: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3"],
            "contact_id": ["C1", "C2", "C3"],
            "ordered_at": [
                pd.Timestamp("2026-05-01", tz="UTC"),
                pd.NaT,
                pd.Timestamp("2026-05-02", tz="UTC"),
            ],
            "amount": [10.0, 20.0, 30.0],
        }
    )
    root = shop(tmp_path, orders=orders)
    said = told_as_by_pandas(root)
    assert "orders.parquet" in said and "ordered_at" in said
    code, refused = segment(root, "duckdb")
    assert code == 2 and "empty date" in refused


def test_an_orders_file_without_amounts(tmp_path: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["O1"],
            "contact_id": ["C1"],
            "ordered_at": [pd.Timestamp("2026-05-01", tz="UTC")],
        }
    )
    root = shop(tmp_path, orders=orders)
    said = told_as_by_pandas(root)
    assert "orders.parquet" in said and "amount" in said


def test_an_id_with_spaces_around_it_reads_as_pandas_strips_it(tmp_path: Path) -> None:
    contacts = pd.DataFrame({"contact_id": [" C1", "C2", "C3 "], "subscribed": [True] * 3})
    root = shop(tmp_path, contacts=contacts)
    set_engine(root, None)
    ours = segmerge(
        "segment", "segrules/rfm.yaml", "--as-of", "2026-07-01", "--format", "csv", cwd=root
    )
    set_engine(root, "pandas")
    pandas = segmerge(
        "segment", "segrules/rfm.yaml", "--as-of", "2026-07-01", "--format", "csv", cwd=root
    )
    assert ours.returncode == pandas.returncode == 0
    assert ours.stdout == pandas.stdout and "C1," in ours.stdout
    code, refused = segment(root, "duckdb")
    assert code == 2 and "spaces" in refused


@pytest.mark.parametrize("engine", [None, "pandas"])
def test_csv_files_stay_pandas_and_duckdb_is_refused(tmp_path: Path, engine: str | None) -> None:
    root = shop(tmp_path)
    data = root / "data"
    pd.read_parquet(data / "orders.parquet").to_csv(data / "orders.csv", index=False)
    (data / "orders.parquet").unlink()
    config = root / "segmerge.toml"
    config.write_text(config.read_text().replace("orders.parquet", "orders.csv"))
    assert segment(root, engine)[0] == 0
    code, refused = segment(root, "duckdb")
    assert code == 2 and "orders.csv is not a Parquet file" in refused


@pytest.mark.parametrize(
    "column, values",
    [("contact_id", ["C1", " C1", "C2", "C3"]), ("status", ["paid", "paid ", "paid", None])],
)
def test_order_text_with_spaces_reads_as_pandas_strips_it(
    tmp_path: Path, column: str, values: list
) -> None:
    """An order's customer id or status with a space around it: pandas strips it (the order
    is C1's, the status 'paid'); DuckDB leaves the files to pandas."""
    at = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3", "O4"],
            "contact_id": ["C1", "C1", "C2", "C3"],
            "ordered_at": [at] * 4,
            "amount": [10.0, 20.5, 30.0, 5.0],
            "status": ["paid"] * 4,
        }
    )
    orders[column] = values
    root = shop(tmp_path, orders=orders)
    out = {}
    for engine in (None, "pandas"):
        set_engine(root, engine)
        ran = segmerge(
            "segment",
            "segrules/rfm.yaml",
            "--as-of",
            "2026-07-01",
            "--format",
            "csv",
            "--columns",
            "orders_count",
            cwd=root,
        )
        assert ran.returncode == 0, ran.stderr
        out[engine] = ran.stdout
    assert out[None] == out["pandas"]
    c1 = next(line for line in out[None].splitlines() if line.startswith("C1,"))
    assert c1.split(",")[-1] == "2"  # both of C1's orders count
    code, refused = segment(root, "duckdb")
    assert code == 2 and "spaces" in refused and column in refused


#: values at the edges of the cheap tests before the checks' regular expressions
EDGES = [
    *("a", " a", "a ", "\ta", "a\n", "\x00a", "a\x7f", "\x85a", "a\x85", "\x9fa"),
    *("\u00a0a", "a\u00a0", "\u2007a", "a\u202f", "\u3000a", "\ufeffa", "a\ufeff", "é", "aé"),
    *("é ", " é", "", "!", "~", "a~ ", "\u00a0", None),
    *("-12", "007", "-0", "12", "12/03/2024", "1 234,5 €", "1\u202f234", "x1", ".5", "/1"),
]


def test_the_cheap_checks_find_what_the_regular_expressions_find() -> None:
    """Spaces around a value, a non-ASCII character, a value that looks like a number
    or a date: the cheap tests that spare most values the regular expressions (1.3 s
    of CPU on a million contacts) never hide a value the expressions would find."""
    import duckdb

    from connectors import files_duckdb_columns as fc

    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in EDGES])
    (strip,) = fc._text('"v"').values()
    probes = [fc._ATTR_INT, fc._ATTR_DECIMAL, fc._DATE_LIKE, fc._LEADING_ZERO]
    cheap = [f"count_if({strip})", f"count_if({fc._non_ascii('v')})"]
    cheap += [fc._looks_numeric('"v"', p) for p in probes]
    exact = [f"count_if(regexp_matches(v, {fc.STRIP}))"]
    exact += [r"count_if(regexp_matches(v, '[^\x{00}-\x{7f}]'))"]
    exact += [f"count_if(regexp_matches(v, {p}))" for p in probes]
    for value in EDGES:
        row = "FROM t WHERE v IS NOT DISTINCT FROM ?"
        got = con.execute(f"SELECT {', '.join(cheap[:2])} {row}", [value]).fetchone()
        want = con.execute(f"SELECT {', '.join(exact[:2])} {row}", [value]).fetchone()
        assert [n or 0 for n in got] == [n or 0 for n in want], repr(value)  # NULL: none
        got = con.execute(f"SELECT {', '.join(cheap[2:])} {row}", [value]).fetchone()
        want = con.execute(f"SELECT {', '.join(exact[2:])} {row}", [value]).fetchone()
        assert [n or 0 for n in got] == [n or 0 for n in want], repr(value)
    assert con.execute(f"SELECT count_if({strip}) FROM t").fetchone() == (20,)


def test_the_contacts_fault_is_told_first_though_the_orders_have_one_too(tmp_path: Path) -> None:
    """The contacts' checks run beside the orders' (files_duckdb.decide): when both
    files are at fault, ``engine = "duckdb"`` still names the contacts' fault."""
    contacts = pd.DataFrame(
        {
            "contact_id": ["C1", "C2", "C1"],
            "email": ["a@x.org", "b@x.org", "c@x.org"],
            "subscribed": [True, True, False],
        }
    )
    at = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2"],
            "contact_id": ["C1", "C9"],  # half the orders name nobody
            "ordered_at": [at, at],
            "amount": [10.0, 20.5],
        }
    )
    root = shop(tmp_path, contacts, orders)
    set_engine(root, "duckdb")
    source = open_source(load(root), "shop")
    try:
        with pytest.raises(ConfigError, match="duplicate ids") as refused:
            _ = source.dialect
    finally:
        source.close()
    assert "1 %" not in str(refused.value)
