"""Benchmark: segmenting a shop that lives in PostgreSQL, inside the database or pulled out.

Usage: .venv/bin/python benchmarks/segment_postgres.py [--contacts 200000 --orders 2000000]
       [--rounds 1] [--keep DIR]

The benchmark's generated shop (benchmarks/shopgen.py) is loaded into a throw-away
PostgreSQL on this machine (the tests' server: tests/postgres.py, Debian's binaries,
fsync off), then three whole processes are timed, from spawn to exit with the CSV
written, each with its CPU time and the peak RSS of its process tree
(benchmarks/segment.py's ``measure``):

- in the database: ``segmerge segment bench.yaml --source pg --format csv ...``, the
  plan running inside PostgreSQL (segmerge/segment/in_database.py), one row per
  contact coming back;
- pulling the rows: one Python process doing what the engine does for a source without
  a SQL dialect: the `postgres` source's pull (every contact, order and event, COPY into
  Arrow), then the same segmentation in this process, the same CSV;
- the files: ``segmerge segment`` on the shop's own Parquet files (a `files` source
  read by DuckDB), for scale.

The CSV files must give every contact the same segment (checked, printed). The server
runs on the same machine: pulling pays no network here, so its figure is the best a
pull can do; across a network the orders' transfer comes on top. The server's CPU
(the plan's work inside PostgreSQL) is counted apart: the postmaster and its backends,
the reaped ones included. The wall time says what the user waits for, the two CPU
columns what the work costs wherever it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import segment as bench  # noqa: E402
import shopgen  # noqa: E402

from tests.postgres import PgServer, ensure_binaries, start_server  # noqa: E402

TABLES = """
CREATE TABLE raw_contacts (contact_id text, email text, first_name text, subscribed boolean,
    created_at timestamptz, tags text, age integer, city text);
CREATE TABLE orders (order_id text, contact_id text, ordered_at timestamptz,
    amount double precision, status text, category text);
"""
#: the shop's contacts as a CRM holds them: tags a text[] (the export's cells are a|b)
CONTACTS = """
CREATE TABLE contacts AS SELECT contact_id, email, first_name, subscribed, created_at,
    CASE WHEN tags = '' THEN NULL ELSE string_to_array(tags, '|') END AS tags, age, city
    FROM raw_contacts;
DROP TABLE raw_contacts;
ALTER TABLE contacts ADD PRIMARY KEY (contact_id);
CREATE INDEX orders_contact ON orders (contact_id);
GRANT SELECT ON contacts, orders TO segmerge;
ANALYZE contacts;
ANALYZE orders;
"""
#: the engine's work for a source it pulls: pull, segment in this process, write the CSV
PULLING = """
import sys
from pathlib import Path
from segmerge.segment.rows import segment_rows
from segmerge.segment.segmentation import open_source, pull, segment
from segmerge.workspace.config import load
root, out, as_of, columns = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ws = load(root)
src = open_source(ws, "pg")
try:
    tables = pull(src)
finally:
    src.close()
seg = segment(ws, "segrules/bench.yaml", source_name="pg", as_of=as_of, tables=tables)
segment_rows(seg, columns.split(",")).to_csv(out, index=False)
"""


def load_shop(server: PgServer, data: Path) -> str:
    """The generated Parquet files copied into a fresh database: its name."""
    db = server.create_database("bench_shop")
    with server.admin(db) as conn, conn.cursor() as cur:
        cur.execute(TABLES)
        for table, name in (("raw_contacts", "contacts"), ("orders", "orders")):
            parquet = pq.ParquetFile(data / f"{name}.parquet")
            columns = ", ".join(parquet.schema_arrow.names)
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for batch in parquet.iter_batches(batch_size=500_000):
                    out = io.BytesIO()  # CSV as the server's COPY reads it
                    pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False))
                    copy.write(out.getvalue())
        cur.execute(CONTACTS)
    return db


def server_cpu(server: PgServer) -> float:
    """CPU seconds the server has used so far: the postmaster, its live processes and
    the backends it has reaped (a command's connection ends with its process)."""
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def same_segments(a: Path, b: Path) -> int:
    """How many contacts; raises when one contact's segment differs between the files."""
    x = pd.read_csv(a, dtype=str, keep_default_na=False).sort_values(["contact_id", "segment"])
    y = pd.read_csv(b, dtype=str, keep_default_na=False).sort_values(["contact_id", "segment"])
    left = x[["contact_id", "segment"]].reset_index(drop=True)
    right = y[["contact_id", "segment"]].reset_index(drop=True)
    if not left.equals(right):
        raise SystemExit(f"{a.name} and {b.name} differ")
    return int(left["contact_id"].nunique())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=200_000)
    ap.add_argument("--orders", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="generate the Parquet files once, here")
    args = ap.parse_args()
    size = shopgen.Size(args.contacts, args.orders)
    bin_dir = ensure_binaries()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (tests/postgres_setup.sh installs them)")
    with tempfile.TemporaryDirectory(prefix="segmerge-bench-pg-") as tmp:
        root = shopgen.workspace(Path(tmp) / "ws")
        data = bench._data(args.keep, Path(tmp), size)
        if not (root / "data").exists():  # the files source reads root/data
            (root / "data").symlink_to(data, target_is_directory=True)
        server = start_server(bin_dir)
        try:
            t0 = time.perf_counter()
            db = load_shop(server, data)
            print(f"loaded into PostgreSQL in {time.perf_counter() - t0:.1f} s", flush=True)
            with (root / "segmerge.toml").open("a", encoding="utf-8") as fh:
                fh.write(f'\n[sources.pg]\nconnector = "postgres"\ndsn = "{server.dsn(db)}"\n')
            bench.ENV["SEGMERGE_PG_TOKEN"] = server.password
            runner = root / "pulling.py"
            runner.write_text(PULLING, encoding="utf-8")
            outs = {k: root / f"{k}.csv" for k in ("database", "pulling", "files")}
            columns = ",".join(shopgen.COLUMNS)
            commands = {
                "database": [
                    *bench.ours_segment(root, outs["database"]),
                    "--source",
                    "pg",
                ],
                "pulling": [
                    sys.executable,
                    str(runner),
                    str(root),
                    str(outs["pulling"]),
                    shopgen.AS_OF,
                    columns,
                ],
                "files": [*bench.ours_segment(root, outs["files"]), "--source", "shop"],
            }
            results: dict[str, list[bench.Ran]] = {k: [] for k in commands}
            in_server: dict[str, list[float]] = {k: [] for k in commands}
            for i in range(args.rounds):
                for name, cmd in commands.items():
                    before = server_cpu(server)
                    ran = bench.measure(cmd, root, root / f"{name}.log")
                    in_server[name].append(server_cpu(server) - before)
                    if not outs[name].exists():
                        log = (root / f"{name}.log").read_text(errors="replace")
                        raise SystemExit(f"{name} wrote nothing:\n{log[-2000:]}")
                    results[name].append(ran)
                    print(f"  round {i + 1} {name}: {ran.wall:.2f} s", flush=True)
            n = same_segments(outs["database"], outs["pulling"])
            same_segments(outs["database"], outs["files"])
            print(f"the same segment for all {n:,} contacts in the three CSV files")
            print(f"\n{size.contacts:,} contacts, {size.orders:,} orders (best wall of each)")
            print(f"{'':10} {'wall':>9} {'CPU':>9} {'server CPU':>11} {'peak RSS':>10}")
            for name, runs in results.items():
                best = min(runs, key=lambda r: r.wall)
                peak = max(r.peak_mib for r in runs)
                server_s = min(in_server[name])
                print(
                    f"{name:10} {best.wall:7.2f} s {best.cpu:7.2f} s {server_s:9.2f} s "
                    f"{peak:6.0f} MiB"
                )
            print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        finally:
            server.stop()
            shutil.rmtree(server.base, ignore_errors=True)


if __name__ == "__main__":
    main()
