"""Run a command and print the CPU of every process it started, orphans included.

Why: ``/usr/bin/time`` and pytest's own accounting (tests/cpu_ledger.py) count a
process and the children it waited for. A process whose parent exits first (the
renderers of Chromium's zygote, PostgreSQL's postmaster that ``pg_ctl`` leaves
behind, a daemon's double fork) is adopted by init, and its CPU is counted by
nobody. Here this process declares itself the subreaper of what it starts
(Linux's ``PR_SET_CHILD_SUBREAPER``), so every orphan is adopted and waited for
here, at once, as init would: the total is the whole job's CPU.

    python scripts/all_cpu.py -- bash .ci/run
    python scripts/all_cpu.py -- .venv/bin/python -m pytest -q

Linux only. The command's exit status is this script's.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
LINGER = 30.0  # seconds an orphan may take to end after the command did


def _reap_for(seconds: float) -> list[int]:
    """Wait for the remaining orphans; the pids still running after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return []
        if pid == 0:
            time.sleep(0.1)
    return _children()


def _children() -> list[int]:
    mine = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[1] == mine:
                found.append(int(entry))
    return found


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("all_cpu: this system cannot adopt orphans (Linux only)", file=sys.stderr)
        return 2
    started = time.monotonic()
    command = subprocess.Popen(argv)
    status = None
    while status is None:  # reap the command and, as they end, the orphans it leaves
        pid, raw = os.wait()
        if pid == command.pid:
            status = os.waitstatus_to_exitcode(raw)
    left = _reap_for(LINGER)
    if left:
        print(f"all_cpu: still running, not counted: {left}", file=sys.stderr)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"all_cpu: user {used.ru_utime:.1f} s + system {used.ru_stime:.1f} s = "
        f"{used.ru_utime + used.ru_stime:.1f} s of CPU, {time.monotonic() - started:.0f} s wall, "
        f"peak RSS of one process {used.ru_maxrss / 1024:.0f} MiB",
        file=sys.stderr,
    )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
