"""Benchmark: resident memory of an idle `segmerge serve` (target < 100 MB).

Usage: .venv/bin/python benchmarks/serve_rss.py [--settle 3]

Scaffolds a demo workspace in a temporary folder and measures, with psutil,
the resident set size (RSS) and unique set size (USS) of the daemon:

1. idle right after start (schedules loaded, nothing run yet): what a
   server pays between two Monday mornings when no run has happened since
   the start;
2. idle after one run of the demo campaign (2,250 contacts): pandas and the
   engine are loaded by then and stay loaded.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bot; "
    "from segmerge.cli.schedule import register; "
    "register(bot.app) if not any(c.name == 'serve' for c in bot.app.registered_commands) "
    "else None; bot.main()"
)
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


def measure(root: Path, args: list[str], ready: str, settle: float) -> tuple[float, float]:
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
            info = psutil.Process(proc.pid).memory_full_info()
            return info.rss / 2**20, info.uss / 2**20
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settle", type=float, default=3.0, help="seconds idle before measuring")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shop"
        subprocess.run(
            [sys.executable, "-c", CLI, "init", str(root)], check=True, capture_output=True, env=ENV
        )
        rss, uss = measure(root, [], r"serving ", a.settle)
        print(
            f"idle serve after start: RSS {rss:.1f} MB, USS {uss:.1f} MB (target < 100 MB)",
            flush=True,
        )
        rss2, uss2 = measure(
            root, ["--run-on-start"], r"run profils@\S+ (done|partial|failed)", a.settle
        )
        if "ERROR run profils" in (root.parent / "serve.err").read_text(encoding="utf-8"):
            print(
                "(the run failed: see `segmerge run profils`; figure below is after a failed run)"
            )
        print(
            f"idle serve after one demo run (2,250 contacts): RSS {rss2:.1f} MB, USS {uss2:.1f} MB"
        )


if __name__ == "__main__":
    main()
