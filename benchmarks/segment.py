"""Benchmark: what a user waits for, `segmerge segment` as a whole process, against DuckDB.

Usage: .venv/bin/python benchmarks/segment.py [--size small|huge] [--contacts N --orders N]
       [--rounds 3] [--format csv|parquet|both] [--dry-run] [--profile] [--keep DIR]

On a generated shop (benchmarks/shopgen.py: contacts and orders as Parquet, read by a
`files` source in a workspace in a temporary folder) it times, from process start to
exit with the output file written:

- ours: ``segmerge segment bench.yaml --format csv --out FILE --columns ...``, the
  console script of this virtualenv;
- the peer: one Python process running DuckDB on the same Parquet files, doing the
  same whole job in SQL written by hand (shopgen.peer_query: orders that count, per contact count,
  sum, last order, the windowed calls, R/F/M quintiles as segmerge/metrics/rfm.py
  defines them, the six-segment rule set, one CSV row per contact).

The two alternate, best of ``--rounds``; the first round's two CSV files are compared
contact by contact (segment and every metric), so the race is honest. Each process's
peak RSS is the larger of the kernel's high-water mark (``wait4``) and the sum over its
process tree sampled every 20 ms; CPU time is user + system from ``wait4``. The targets
judge wall time (what the user waits for); the CPU ratio (each side's least CPU) is
printed too, as the figure other processes on a shared machine disturb least.
``--format parquet`` races the same job writing Parquet (ours ``--format parquet``, the
peer DuckDB's ``COPY ... (FORMAT parquet)``; compared as the CSV files are); ``both``
runs the two races. ``--dry-run`` adds ``segmerge run bench --dry-run`` (one letter rendered per contact to
mail) against DuckDB + a bare Jinja loop. ``--profile`` runs ours once more under
cProfile (CPU time) and prints its phases: diagnostics, never compared with anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shopgen  # noqa: E402

SEGMERGE = str(Path(sys.executable).parent / "segmerge")
ENV = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
#: (ratio ours/peer at most, peak RSS MiB at most) by (contacts, orders)
TARGETS = {(1_000_000, 10_000_000): (1.0, 600), (10_000_000, 100_000_000): (1.5, 4096)}


@dataclass
class Ran:
    wall: float
    cpu: float
    peak_mib: float


def measure(cmd: list[str], cwd: Path, log: Path) -> Ran:
    """Wall time from spawn to exit, CPU and peak RSS of the process and its children."""
    peak = [0.0]
    done = threading.Event()
    with log.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=err, stderr=err)

        def sample() -> None:
            try:
                root = psutil.Process(proc.pid)
                while not done.wait(0.02):
                    tree = [root, *root.children(recursive=True)]
                    total = 0
                    for p in tree:
                        with contextlib.suppress(psutil.Error):  # gone meanwhile
                            total += p.memory_info().rss
                    peak[0] = max(peak[0], total / 2**20)
            except psutil.Error:
                pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} … exited {proc.returncode}:\n{log.read_text()}")
    high_water = usage.ru_maxrss / 1024  # KiB on Linux: the largest single process
    return Ran(wall, usage.ru_utime + usage.ru_stime, max(peak[0], high_water))


def ours_segment(root: Path, out: Path, fmt: str = "csv") -> list[str]:
    return [
        SEGMERGE,
        "segment",
        str(root / "segrules" / "bench.yaml"),
        "-w",
        str(root),
        "--as-of",
        shopgen.AS_OF,
        "--format",
        fmt,
        "--out",
        str(out),
        "--columns",
        ",".join(shopgen.COLUMNS),
    ]


@dataclass
class Race:
    command: str
    ours: list[Ran]
    peer: list[Ran]

    def row(self, target: tuple[float, int] | None) -> str:
        o, p = min(self.ours, key=lambda r: r.wall), min(self.peer, key=lambda r: r.wall)
        peak_o, peak_p = max(r.peak_mib for r in self.ours), max(r.peak_mib for r in self.peer)
        ratio = o.wall / p.wall
        cpu_o, cpu_p = min(r.cpu for r in self.ours), min(r.cpu for r in self.peer)
        cpu = cpu_o / cpu_p
        verdict = "no target at this size"
        if target is not None:
            ok = ratio <= target[0] and peak_o <= target[1]
            verdict = f"<= {target[0]:.1f}x, <= {target[1]} MiB: {'PASS' if ok else 'FAIL'}"
        return (
            f"{self.command:<16} {o.wall:7.2f} s {p.wall:7.2f} s {ratio:6.2f}x "
            f"{cpu_o:7.1f} s {cpu_p:7.1f} s {cpu:6.2f}x {peak_o:7.0f} MiB {peak_p:7.0f} MiB  "
            f"{verdict}"
        )


def race(
    command: str,
    ours: list[str],
    peer: list[str],
    root: Path,
    rounds: int,
    check: tuple[Path, Path] | None,
) -> Race:
    result = Race(command, [], [])
    for i in range(rounds):
        result.ours.append(measure(ours, root, root / "ours.log"))
        result.peer.append(measure(peer, root, root / "peer.log"))
        print(
            f"  {command} round {i + 1}: ours {result.ours[-1].wall:.2f} s, "
            f"peer {result.peer[-1].wall:.2f} s",
            flush=True,
        )
        if i == 0 and check is not None:
            n = shopgen.compare(*check)
            print(f"  same segment and metrics for all {n:,} contacts", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(shopgen.SIZES), default="default")
    ap.add_argument("--contacts", type=float, help="overrides --size, e.g. 1e6")
    ap.add_argument("--orders", type=float, help="overrides --size, e.g. 1e7")
    ap.add_argument("--rounds", type=int, default=3, help="best of N, alternating (default 3)")
    ap.add_argument("--format", choices=("csv", "parquet", "both"), default="csv", dest="fmt")
    ap.add_argument("--dry-run", action="store_true", help="also `run --dry-run` vs DuckDB+Jinja")
    ap.add_argument("--profile", action="store_true", help="ours once more under cProfile")
    ap.add_argument("--keep", type=Path, help="generate the Parquet files here once, reuse them")
    args = ap.parse_args()
    size = shopgen.SIZES[args.size]
    size = shopgen.Size(int(args.contacts or size.contacts), int(args.orders or size.orders))

    with tempfile.TemporaryDirectory(prefix="segmerge-bench-") as tmp:
        root = shopgen.workspace(Path(tmp) / "ws")
        data = _data(args.keep, Path(tmp), size)
        (root / "data").symlink_to(data, target_is_directory=True)
        load = os.getloadavg()
        print(
            f"{size.contacts:,} contacts / {size.orders:,} orders, {os.cpu_count()} cores, "
            f"load average {load[0]:.1f} at start",
            flush=True,
        )
        races = []
        for fmt in ("csv", "parquet") if args.fmt == "both" else (args.fmt,):
            ours_out, peer_out = root / f"ours.{fmt}", root / f"peer.{fmt}"
            peer = [
                sys.executable,
                "-c",
                shopgen.PEER_SEGMENT,
                shopgen.SET_ZONE,
                shopgen.peer_query(data),
                str(peer_out),
                "(FORMAT parquet)" if fmt == "parquet" else "(HEADER)",
            ]
            command = "segment" if fmt == "csv" else f"segment {fmt}"
            ours = ours_segment(root, ours_out, fmt)
            races.append(race(command, ours, peer, root, args.rounds, (ours_out, peer_out)))
        if args.dry_run:
            ours = [
                SEGMERGE,
                "run",
                "bench",
                "--dry-run",
                "-w",
                str(root),
                "--as-of",
                shopgen.AS_OF,
            ]
            peer = [
                sys.executable,
                "-c",
                shopgen.PEER_RUN,
                shopgen.SET_ZONE,
                shopgen.peer_query(data, ", first_name"),
                *shopgen.letter_parts(),
            ]
            races.append(race("run --dry-run", ours, peer, root, args.rounds, None))
        target = TARGETS.get((size.contacts, size.orders))
        print(
            f"\n{'command':<16} {'ours':>9} {'DuckDB':>9} {'ratio':>7} {'our CPU':>9} "
            f"{'its CPU':>9} {'ratio':>7} {'our peak':>11} {'its peak':>11}  "
            "target (on wall time and our peak)"
        )
        for r in races:
            print(r.row(target))
        print(f"load average {os.getloadavg()[0]:.1f} at the end (the machine may be shared)")
        if args.profile:
            profile(ours_segment(root, root / "ours.csv"), root)


#: the console script under cProfile, counting CPU time (wall time on a shared machine
#: mostly measures the other processes): argv[1] the stats file, then the command
PROFILED = """\
import cProfile, runpy, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
prof = cProfile.Profile(time.process_time)
try:
    prof.runcall(runpy.run_path, sys.argv[0], run_name="__main__")
except SystemExit as stop:
    if stop.code:
        raise
finally:
    prof.dump_stats(out)
"""

#: phase -> the (file suffix, function) whose cumulative time it is; "other" is what no
#: phase covers (imports, start-up). A files source DuckDB reads goes through "decide"
#: and "in database" (the plan, the counts, the rows typed back); one pandas reads
#: through "pull", "checks", "metrics" and "rules" ("typing": the pull less the reading).
PHASES = {
    "decide": [("connectors/files_duckdb.py", "decide")],
    "in database": [("segment/in_database.py", "segment_in_database")],
    "DuckDB queries": [("connectors/files.py", "execute")],
    "read": [("connectors/files_read.py", "read_parquet")],
    "pull": [("connectors/files.py", "pull")],
    "checks": [("segment/order_rules.py", "apply")],
    "metrics": [("metrics/compute.py", "compute_metrics")],
    "rules": [("rules/ruleset.py", "assign")],
    "rows": [("segment/rows.py", "segment_rows")],
    "write": [("segment/output.py", "write_rows")],
}
#: phases inside another one, shown indented and not counted twice
NESTED = {"DuckDB queries": "in database"}


def profile(cmd: list[str], root: Path) -> None:
    """Ours once more under cProfile; its phases by cumulative time (diagnostics only)."""
    import pstats

    out = root / "segment.prof"
    ran = measure([sys.executable, "-c", PROFILED, str(out), *cmd], root, root / "prof.log")
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    seconds = {
        phase: sum(
            v[3]
            for (f, _, fn), v in stats.items()
            if any(f.endswith(suffix) and fn == name for suffix, name in where)
        )
        for phase, where in PHASES.items()
    }
    seconds["typing"] = seconds.pop("pull") - seconds["read"]
    seconds["other"] = total - sum(v for k, v in seconds.items() if k not in NESTED)
    print(
        f"\nprofile of ours (cProfile on CPU time, {ran.cpu:.1f} s CPU, {total:.1f} s profiled; "
        "cProfile slows Python calls, so these are shares, not timings):"
    )
    for phase, value in seconds.items():
        if value or phase == "other":
            name = f"  {phase}" if phase in NESTED else phase
            print(f"  {name:<14} {value:7.2f} s  {value / total:5.1%}")
    imports = sum(v[3] for (f, _, fn), v in stats.items() if fn == "_find_and_load")
    print(f"  (imports, wherever they happen: {imports:.2f} s, {imports / total:.1%})")


def _data(keep: Path | None, tmp: Path, size: shopgen.Size) -> Path:
    """The Parquet files: generated in ``tmp``, or once in ``keep`` for every later run."""
    folder = (keep / f"{size.contacts}-{size.orders}") if keep else tmp / "data"
    done = folder / "complete"
    if not done.exists():
        t0 = time.perf_counter()
        shopgen.generate(folder, size)
        done.write_text("")
        print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return folder.resolve()


if __name__ == "__main__":
    main()
