"""Benchmark: resident memory of an idle `segmerge serve` (target < 100 MB), CPU per fire.

Usage: .venv/bin/python benchmarks/serve_rss.py [--settle 3] [--fires 4] [--root DIR]

``--root`` runs another checkout's Segmerge (an older commit, for a before/after).

Scaffolds a demo workspace in a temporary folder and measures, with psutil,
the resident set size (RSS) and unique set size (USS) of the daemon:

1. idle right after start (schedules loaded, nothing run yet): what a
   server pays between two Monday mornings when no run has happened since
   the start;
2. idle after one run of the demo campaign (2,250 contacts): pandas and the
   engine are loaded by then and stay loaded; the processes `serve` keeps
   besides (the warm server runs are forked from) are measured too.

Then the CPU (user + system, of `serve` and every process it waited for) of a
`serve` that runs the demo once, and of one that also fires it ``--fires``
more times (every 2 s; the same day's run again, so each fire loads the
workspace, pulls and segments the contacts and finds every letter sent): the
difference, per fire, is what a fire costs beyond the first.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def cli_of(root: Path) -> str:
    return (
        f"import sys; sys.path.insert(0, {str(root)!r}); import bot; "
        "from segmerge.cli.schedule import register; "
        "register(bot.app) if not any(c.name == 'serve' for c in bot.app.registered_commands) "
        "else None; bot.main()"
    )


CLI = cli_of(ROOT)
ENV = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def wait_for(err: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, err.read_text(encoding="utf-8")):
            return
        if proc.poll() is not None:
            sys.exit(f"serve exited:\n{err.read_text(encoding='utf-8')}")
        time.sleep(0.05)
    sys.exit(f"timeout waiting for {pattern!r}:\n{err.read_text(encoding='utf-8')}")


def measure(
    root: Path, args: list[str], ready: str, settle: float
) -> tuple[float, float, list[tuple[float, float]]]:
    """RSS and USS of serve, and of each process it keeps (not the runs, ended by then)."""
    err = root.parent / "serve.err"
    with err.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "-w", str(root), *args],
            stdout=subprocess.DEVNULL,
            stderr=fh,
            env=ENV,
        )
        try:
            wait_for(err, ready, proc, 120)
            time.sleep(settle)
            me = psutil.Process(proc.pid)
            info = me.memory_full_info()
            kept = [k.memory_full_info() for k in me.children(recursive=True)]
            return (
                info.rss / 2**20,
                info.uss / 2**20,
                [(k.rss / 2**20, k.uss / 2**20) for k in kept],
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def fires_cpu(root: Path, fires: int) -> float:
    """CPU of a serve that runs the demo once at start, then ``fires`` more times."""
    err = root.parent / "fires.err"
    before = children_cpu()
    with err.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "-w", str(root), "--run-on-start"],
            stdout=subprocess.DEVNULL,
            stderr=fh,
            env=ENV,
        )
        try:
            done = r"run profils@\S+ (done|partial)"
            wait_for(err, "(?s)" + ".*".join([done] * (fires + 1)), proc, 600)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return children_cpu() - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settle", type=float, default=3.0, help="seconds idle before measuring")
    ap.add_argument("--fires", type=int, default=4, help="fires after the first, for the CPU")
    ap.add_argument("--root", type=Path, default=ROOT, help="the Segmerge checkout to run")
    a = ap.parse_args()
    global CLI
    CLI = cli_of(a.root.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shop"
        subprocess.run(
            [sys.executable, "-c", CLI, "init", str(root)], check=True, capture_output=True, env=ENV
        )
        pristine = Path(tmp) / "pristine"
        shutil.copytree(root, pristine)
        rss, uss, _ = measure(root, [], r"serving ", a.settle)
        print(
            f"idle serve after start: RSS {rss:.1f} MB, USS {uss:.1f} MB (target < 100 MB)",
            flush=True,
        )
        rss2, uss2, kept = measure(
            root, ["--run-on-start"], r"run profils@\S+ (done|partial|failed)", a.settle
        )
        if "ERROR run profils" in (root.parent / "serve.err").read_text(encoding="utf-8"):
            print(
                "(the run failed: see `segmerge run profils`; figure below is after a failed run)"
            )
        print(
            f"idle serve after one demo run (2,250 contacts): RSS {rss2:.1f} MB, USS {uss2:.1f} MB"
        )
        for krss, kuss in kept:
            print(f"  and a process it keeps: RSS {krss:.1f} MB, USS {kuss:.1f} MB")
        once = fires_cpu(copy(pristine, Path(tmp) / "once"), 0)
        more = Path(tmp) / "more"
        copy(pristine, more)
        subprocess.run(
            [sys.executable, "-c", CLI, "schedule", "add", "profils", "*/2 * * * * *"]
            + ["-w", str(more)],
            check=True,
            capture_output=True,
            env=ENV,
        )
        total = fires_cpu(more, a.fires)
        print(f"CPU of serve with one demo run: {once:.2f} s")
        print(
            f"CPU of serve with {a.fires} more fires: {total:.2f} s, "
            f"{(total - once) / a.fires:.2f} s per fire after the first"
        )


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


if __name__ == "__main__":
    main()
