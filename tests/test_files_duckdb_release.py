"""The files source's DuckDB connection is closed after a statement that grew the process
(DuckDB keeps its hash tables' memory until the database closes) and kept after a light
one (a new connection costs ~35 ms of CPU), however busy the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import files_duckdb
from connectors.files_tables import FilesSettings

MIB = 2**20


def _sizes(monkeypatch: pytest.MonkeyPatch, *sizes: int | None) -> None:
    left: Iterator[int | None] = iter(sizes)
    monkeypatch.setattr(files_duckdb, "resident_bytes", lambda: next(left))


@pytest.fixture
def con(tmp_path: Path) -> Iterator[files_duckdb.Connection]:
    connection = files_duckdb.Connection(tmp_path, FilesSettings(path="."))
    yield connection
    connection.close()


def test_a_light_statement_keeps_the_connection(con, monkeypatch) -> None:
    _sizes(monkeypatch, 500 * MIB, 530 * MIB, 530 * MIB, 531 * MIB)
    assert con.rows("SELECT 42 AS answer").column(0).to_pylist() == [42]
    first = con.con
    con.rows("SELECT 1 AS one")
    assert first is not None and con.con is first


def test_a_statement_that_grew_the_process_closes_it_its_rows_aside(con, monkeypatch) -> None:
    wide = "SELECT repeat('x', 5000) AS s FROM range(20000)"  # 100 MB of rows
    big = con.rows(wide)
    _sizes(monkeypatch, 500 * MIB, 500 * MIB + big.nbytes + 10 * MIB)
    con.rows(wide)
    assert con.con is not None  # its own rows are no reason to close
    _sizes(monkeypatch, 500 * MIB, 600 * MIB, 100 * MIB, 100 * MIB)
    con.rows("SELECT 1 AS one")
    assert con.con is None
    assert con.rows("SELECT 2 AS two").column(0).to_pylist() == [2]  # a new one opens


def test_where_the_size_cannot_be_read_a_long_statement_closes_it(con, monkeypatch) -> None:
    _sizes(monkeypatch, None, None, None, None)
    monkeypatch.setattr(files_duckdb, "RELEASE_AFTER", 3600.0)
    con.rows("SELECT 1 AS one")
    assert con.con is not None
    monkeypatch.setattr(files_duckdb, "RELEASE_AFTER", 0.0)
    con.rows("SELECT 1 AS one")
    assert con.con is None


def test_the_process_size_is_read_on_linux() -> None:
    size = files_duckdb.resident_bytes()
    assert size is None or size > 10 * MIB
