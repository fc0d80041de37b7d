"""`segment --format csv|json|parquet` written by Arrow (segmerge.segment.output).

Scripts read the CSV a user exports, so it must keep the bytes pandas wrote before:
each column kind is checked against ``DataFrame.to_csv`` on awkward values, across
batch boundaries, and the command's file on the demo shop against pandas' text of the
same rows. JSON keeps pandas' layout; Parquet reads back as the same rows.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli import segmerge as sm

from segmerge.segment import output
from tests.demo_fixtures import first_contacts

AS_OF = "2026-12-01"


def _awkward() -> pd.DataFrame:
    n = 7
    instants = pd.Series(
        pd.to_datetime(
            [
                "2025-05-07 22:00:00",
                "2025-05-07 22:00:00.5",
                None,
                "1999-12-31 23:59:59",
                "2026-03-29 01:00:00",
                "2025-01-01",
                "2030-06-15 12:34:56.25",
            ],
            utc=True,
            format="ISO8601",
        )
    )
    return pd.DataFrame(
        {
            "contact_id": pd.Series(
                ["001", "a,b", 'q"x', "l\nm", "r\rs", " lead", None], dtype="string"
            ),
            "segment": ["vip", "", "vip", "", "autres", "", "vip"],
            "count": pd.Series([4, None, 0, -3, 10**12, 7, 1], dtype="Int64"),
            "plain": np.arange(n, dtype=np.int64) * 1000,
            "ratio": [4.0, np.nan, 1e16, 1e-05, -0.0, 63.47571428571428, np.inf],
            "more": [0.1, 2.5e-07, 123456789012345.6, 1234567.0, -1.5e300, 0.0001, 100.0],
            "flag": [True, False, True, False, True, True, False],
            "maybe": pd.Series([True, None, False, True, None, False, True], dtype="boolean"),
            "at": instants,
            "whole": instants.dt.floor("D"),
            "tags": pd.Series([["vip", "x"], [], None, ["a"], [], ["b,c"], []], dtype=object),
            "city": pd.Series(
                ["Lyon", None, "Saint-Étienne", "", "Nice", "a, b", "x"], dtype=object
            ),
        }
    )


def _csv(rows: pd.DataFrame, batch: int) -> bytes:
    return b"".join(bytes(c) for c in output.csv_chunks(rows, batch=batch))


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_the_csv_has_the_bytes_pandas_wrote(batch: int) -> None:
    rows = _awkward()
    assert _csv(rows, batch) == rows.to_csv(index=False).encode("utf-8")


def test_floats_are_written_as_python_writes_them() -> None:
    rng = np.random.default_rng(7)
    values = rng.standard_normal(20_000) * 10.0 ** rng.integers(-30, 30, 20_000)
    values[::97] = np.round(values[::97])  # integral values: 4.0, not 4
    values[::89] = np.round(values[::89], 2)  # amounts
    rows = pd.DataFrame({"contact_id": "c", "segment": "s", "x": values})
    got = _csv(rows, 4096).decode().splitlines()[1:]
    assert [line.split(",")[2] for line in got] == [repr(float(v)) for v in values]


def test_an_empty_segmentation_writes_the_header_only() -> None:
    rows = _awkward().iloc[:0]
    assert _csv(rows, 10) == rows.to_csv(index=False).encode("utf-8")
    whole = rows.to_json(orient="records", force_ascii=False, date_format="iso", indent=1)
    assert "".join(output.json_chunks(rows)) == whole


def test_json_batches_join_into_what_pandas_writes_whole() -> None:
    rows = _awkward().drop(columns=["tags"])
    whole = rows.to_json(orient="records", force_ascii=False, date_format="iso", indent=1)
    assert "".join(output.json_chunks(rows, batch=2)) == whole


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo with its first 500 contacts, their orders and events: every kind of value
    a column holds is there, and each command segments a quarter of the shop."""
    root = tmp_path_factory.mktemp("out") / "ws"
    sm("init", str(root), check=True)
    return first_contacts(root, 500)


def test_segment_writes_the_demo_as_pandas_did_and_parquet_reads_back(demo, tmp_path) -> None:
    from segmerge.segment.rows import segment_rows
    from segmerge.segment.segmentation import segment
    from segmerge.workspace.config import load

    rules = demo / "segrules" / "rfm.yaml"
    columns = "first_name,subscribed,created_at,orders_count,avg_basket,last_order_at,r_score,rfm"
    base = ["segment", str(rules), "-w", str(demo), "--as-of", AS_OF, "--columns", columns]
    csv_file, parquet_file = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    told = sm(*base, "--format", "csv", "--out", str(csv_file), check=True).stdout
    sm(*base, "--format", "parquet", "--out", str(parquet_file), check=True)
    printed = sm(*base, "--format", "json", check=True).stdout

    ws = load(demo)
    rows = segment_rows(segment(ws, rules, as_of=AS_OF), columns.split(","))
    assert csv_file.read_bytes() == rows.to_csv(index=False).encode("utf-8")
    (none,) = [line for line in told.splitlines() if "(none)" in line]
    cells = [cell.strip() for cell in none.split("│")]  # the sizes' row of no segment
    assert cells[3] == f"{(rows['segment'] == '').sum():,}" != "0"
    assert printed == rows.to_json(orient="records", force_ascii=False, date_format="iso", indent=1)
    table = pq.read_table(parquet_file)
    assert table.column_names == ["contact_id", "segment", *columns.split(",")]
    assert str(table.schema.field("r_score").type) == "int64"  # a score stays an integer
    back = table.to_pandas()
    pd.testing.assert_frame_equal(
        back.astype(object).where(back.notna(), None),
        rows.astype(object).where(rows.notna(), None),
        check_dtype=False,
    )
    shutil.rmtree(tmp_path)


def test_an_unknown_format_is_refused_with_the_four_it_knows(demo) -> None:
    proc = sm("segment", str(demo / "segrules" / "rfm.yaml"), "-w", str(demo), "--format", "xml")
    assert proc.returncode == 2
    assert "parquet" in proc.stderr and "Traceback" not in proc.stderr


def test_rows_on_stdout_are_csv_only(demo) -> None:
    rules = str(demo / "segrules" / "profils-vpc.yaml")
    proc = sm("segment", rules, "-w", str(demo), "--as-of", AS_OF, "--format", "csv", check=True)
    rows = pd.read_csv(io.StringIO(proc.stdout), dtype=str, keep_default_na=False)
    assert list(rows.columns) == ["contact_id", "segment"] and rows["contact_id"].is_unique


def test_every_metric_of_the_cdnow_shop_is_written_as_pandas_wrote_it(tmp_path) -> None:
    """Real amounts, trends, ratings and instants (CDNOW's purchases), all scalar metrics
    and the calls of the catalog: the CSV keeps pandas' bytes, JSON its text."""
    from zoneinfo import ZoneInfo

    from test_relational import CALLS

    from segmerge.metrics.catalog import SCALAR_METRICS
    from segmerge.metrics.compute import compute_metrics, reference_instant
    from segmerge.ports.schema import Tables, conform
    from segmerge.rules import Assignment
    from segmerge.segment.rows import segment_rows
    from segmerge.segment.segmentation import Segmented
    from tests.shop_exports import cdnow, orders_of, recent

    paris = ZoneInfo("Europe/Paris")
    orders = orders_of(recent(cdnow()))
    ids = [f"{c:05d}" for c in orders["customer"]]
    contacts = pd.DataFrame({"contact_id": sorted(set(ids))})
    raw = pd.DataFrame(
        {
            "contact_id": ids,
            "order_id": orders["order"].astype(str),
            "ordered_at": pd.to_datetime(orders["date"], format="%Y%m%d").dt.tz_localize(paris),
            "amount": orders["total"],
            "category": ["cd" if n % 3 else "dvd" for n in orders["order"]],
            "rating": [float(n % 5 + 1) if n % 4 else None for n in orders["order"]],
        }
    )
    tables = conform(Tables(contacts, raw), source="cdnow")
    as_of = reference_instant("2026-07-01", paris)
    metrics = compute_metrics(tables, as_of, paris, set(CALLS))
    frame = pd.concat([tables.contacts, metrics], axis=1)
    n = len(frame)
    member = pd.DataFrame({"a": np.arange(n) % 3 == 0, "b": np.arange(n) % 5 == 0})
    excluded = pd.Series(False, index=frame.index)
    seg = Segmented(None, tables, frame, Assignment(member, excluded, {}), as_of, "cdnow")  # type: ignore[arg-type]
    rows = segment_rows(seg, [*SCALAR_METRICS, *(c.key for c in CALLS)])
    assert len(rows) > n  # mode all: some contacts in both segments
    assert _csv(rows, 4096) == rows.to_csv(index=False).encode("utf-8")
    whole = rows.to_json(orient="records", force_ascii=False, date_format="iso", indent=1)
    assert "".join(output.json_chunks(rows, batch=4096)) == whole
