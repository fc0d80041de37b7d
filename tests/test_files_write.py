"""Tags written back into Parquet, CSV and Excel contacts where some contacts have none.

A real run on a Parquet shop crashed in the tag push (`Expected bytes, got a
'NAType'`): every contact left without a tag became pandas' NA, which Arrow does
not take in a list of Python values. Most contacts of a shop have no tag, an
e-mail may be missing: the write must go through and change only the tags cells
of the contacts tagged, and a write that fails must leave the file as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_files_connector import connector, pull, put, tag  # pytest's own module


def _parquet(root, table: pa.Table):
    path = root / "data" / "contacts.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


SHOP = {
    "contact_id": ["1", "2", "3", "4"],
    "email": ["a@x.fr", None, "c@x.fr", "d@x.fr"],  # 2 has no e-mail
    "tags": ["vip", "", None, "newsletter"],  # 2 and 3 have none
}


def test_parquet_string_tags_with_empty_cells_take_new_tags(tmp_path):
    path = _parquet(tmp_path, pa.table(SHOP))
    out = connector(tmp_path).push(
        [tag("2", "seg:zens"), tag("4", "newsletter", "untag"), tag("1", "seg:zens")]
    )
    assert [o.status for o in out] == ["done", "done", "done"]
    got = pq.read_table(path)
    # the cells of contacts not tagged stay as they were ("" and null alike)
    assert got.column("tags").to_pylist() == ["vip|seg:zens", "seg:zens", None, None]
    assert got.drop_columns(["tags"]).equals(pa.table(SHOP).drop_columns(["tags"]))
    assert list(pull(tmp_path).contacts["tags"]) == [["vip", "seg:zens"], ["seg:zens"], [], []]


def test_parquet_tags_column_without_any_tag(tmp_path):
    """A column every contact left empty is stored with Arrow's null type."""
    path = _parquet(tmp_path, pa.table({"contact_id": ["1", "2"], "tags": pa.nulls(2)}))
    out = connector(tmp_path).push([tag("2", "seg:zens")])
    assert out[0].status == "done"
    assert pq.read_table(path).column("tags").to_pylist() == [None, "seg:zens"]


def test_parquet_large_string_tags_keep_their_type(tmp_path):
    table = pa.table({"contact_id": ["1", "2"], "tags": pa.array(["", "a"], pa.large_string())})
    path = _parquet(tmp_path, table)
    connector(tmp_path).push([tag("1", "b")])
    got = pq.read_table(path).column("tags")
    assert got.type == pa.large_string() and got.to_pylist() == ["b", "a"]


def test_parquet_list_tags_with_null_cells(tmp_path):
    tags = pa.array([["vip"], None, []], pa.list_(pa.string()))
    path = _parquet(tmp_path, pa.table({"contact_id": ["1", "2", "3"], "tags": tags}))
    connector(tmp_path).push([tag("2", "seg:x"), tag("1", "vip", "untag")])
    assert pq.read_table(path).column("tags").to_pylist() == [[], ["seg:x"], []]


def test_parquet_without_tags_column_gets_one(tmp_path):
    path = _parquet(tmp_path, pa.table({"contact_id": ["1", "2"], "email": ["a@x.fr", None]}))
    connector(tmp_path).push([tag("1", "seg:x")])
    got = pq.read_table(path)
    assert got.column_names == ["contact_id", "email", "tags"]
    assert got.column("tags").to_pylist() == ["seg:x", None]


def test_a_parquet_write_that_fails_leaves_the_file_whole(tmp_path, monkeypatch):
    path = _parquet(tmp_path, pa.table(SHOP))
    before = path.read_bytes()

    def half_then_fail(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half")  # a temporary file, half written
        raise OSError("the writer failed")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    out = connector(tmp_path).push([tag("2", "seg:zens")])
    assert out[0].status == "retry"  # the batch is tried again by a later run
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["contacts.parquet"]


def test_csv_rows_without_email_or_tags_take_tags(tmp_path):
    path = put(tmp_path, "contacts.csv", "contact_id,email,tags\n1,a@x.fr,vip\n2,,\n3,c@x.fr,\n")
    out = connector(tmp_path).push([tag("2", "seg:zens"), tag("1", "vip", "untag")])
    assert [o.status for o in out] == ["done", "done"]
    assert path.read_text() == "contact_id,email,tags\n1,a@x.fr,\n2,,seg:zens\n3,c@x.fr,\n"


def test_excel_rows_without_email_or_tags_take_tags(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["contact_id", "email", "tags"], ["1", "a@x.fr", "vip"], ["2", None, None]):
        ws.append(row)
    ws.append(["3", "c@x.fr", ""])
    path = tmp_path / "data" / "contacts.xlsx"
    path.parent.mkdir()
    wb.save(path)
    out = connector(tmp_path).push([tag("2", "seg:zens"), tag("1", "vip", "untag")])
    assert [o.status for o in out] == ["done", "done"]
    ws = openpyxl.load_workbook(path).active
    assert [[c.value for c in r] for r in ws.iter_rows(min_row=2)] == [
        ["1", "a@x.fr", None],
        ["2", None, "seg:zens"],
        ["3", "c@x.fr", None],
    ]


def test_a_run_whose_tag_write_fails_keeps_the_tags_planned_and_the_file_whole(
    tmp_path, monkeypatch
):
    """A real run on a small Parquet shop: the failed write changes nothing; the next
    run resumes and writes the same tags once."""
    from test_run_columns import shopgen  # pytest's own module

    from connectors import files_write_parquet
    from tests.cli import segmerge

    shopgen.workspace(tmp_path)
    shopgen.generate(tmp_path / "data", shopgen.Size(40, 200))
    path = tmp_path / "data" / "contacts.parquet"
    before = path.read_bytes()
    real = files_write_parquet.atomic_write

    def fails_half_way(target, write, stat):
        def half(tmp):
            tmp.write_bytes(b"PAR1")
            raise OSError("the writer failed")

        real(target, half, stat)

    monkeypatch.setattr(files_write_parquet, "atomic_write", fails_half_way)
    run = ("run", "bench", "--as-of", shopgen.AS_OF, "-w", str(tmp_path))
    first = segmerge(*run)
    assert first.returncode == 0, first.stderr
    planned = re.search(r"│ tag planned\s+│\s+(\d+) │", first.stdout)
    assert planned and int(planned[1]) > 5, first.stdout
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["contacts.parquet", "orders.parquet"]

    monkeypatch.undo()
    again = segmerge(*run)
    assert f"│ tag done                 │ {planned[1]:>2} │" in again.stdout, again.stdout
    tags = pq.read_table(path).column("tags").to_pylist()
    assert sum("seg:" in (t or "") for t in tags) == int(planned[1])
    assert (
        pq.read_table(path)
        .drop_columns(["tags"])
        .equals(pq.read_table(pa.BufferReader(before)).drop_columns(["tags"]))
    )
