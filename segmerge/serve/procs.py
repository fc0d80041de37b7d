"""The processes of `serve`'s runs: each in a group of its own that never outlives `serve`.

Why a process group per run: a run starts processes of its own (the render
pool's workers, a forkserver, whatever a connector starts), and killing only
the run's process would leave them behind. The run's process leads its group,
so one ``killpg`` takes the run and everything it started, and a signal meant
for one run never reaches another.

Why a guard: when `serve` itself is killed (SIGKILL, the OOM killer), nobody
is left to send that ``killpg``. ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` kills the
run's own process then, but not the processes it started (the flag is not
inherited across fork, and orphans are adopted by init). So the run forks, as
its first act, a tiny guard into its group that waits (``pidfd``, no polling)
for either `serve` or the run to end and then kills the whole group. The
guard ignores SIGTERM/SIGINT so that a graceful stop, which signals the run
alone, leaves it in place. Where Linux lacks pidfds (before 5.3) or prctl
(other systems), the run goes without, and `serve` still kills its groups on
every stop, timeout or signal it survives.

A run's parent is `serve`, or the fork server `serve` started
(:mod:`segmerge.serve.starts`), which ends when `serve` does: either way the
run dies with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal

PR_SET_PDEATHSIG = 1


def detach(serve_pid: int) -> None:
    """In a run's process, first thing: lead a new group, die with `serve`, start the guard."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    # a background group writing to a terminal with `stty tostop` would be stopped
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    die_with_parent()
    if not _under(serve_pid):  # serve died before the line above: do not run orphaned
        os._exit(1)
    _start_guard(serve_pid)


def _under(serve_pid: int) -> bool:
    """Whether this process's parent is `serve`, or a child of `serve` (its fork server)."""
    parent = os.getppid()
    if parent == serve_pid:
        return True
    try:
        with open(f"/proc/{parent}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
        return int(stat.rsplit(")", 1)[1].split()[1]) == serve_pid  # field 4: its parent
    except (OSError, IndexError, ValueError):
        return False


def die_with_parent() -> None:
    """SIGKILL this process when its parent ends (Linux; a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the guard and serve's own kills remain
        return


def _start_guard(serve_pid: int) -> None:
    """Fork the guard: it kills this group when `serve` or this process ends."""
    if os.getpgrp() != os.getpid() or not hasattr(os, "pidfd_open"):
        return  # not our own group: killing it could hit serve's
    try:
        serve_fd = os.pidfd_open(serve_pid)
        run_fd = os.pidfd_open(os.getpid())
    except OSError:
        return
    if not _under(serve_pid):  # the pid was reused: serve is already gone
        os._exit(1)
    if os.fork() == 0:  # the guard: no Python beyond this function runs here
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            select.select([serve_fd, run_fd], [], [])
            os.killpg(0, signal.SIGKILL)
        finally:
            os._exit(0)
    os.close(serve_fd)
    os.close(run_fd)


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to a run's group (or to the process alone while it has none yet)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_one(pid: int, sig: int) -> None:
    """Send `sig` to the run's process only: a graceful stop lets its helpers finish."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def sweep_group(pid: int) -> None:
    """SIGKILL what is left in the group of a run that has ended (call before reaping it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
