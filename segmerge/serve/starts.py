"""How `serve` starts a run's process: a fork of a warm, single-threaded server.

Why not a fresh interpreter per fire ("spawn", what `serve` did before): each
fire imported pandas, pyarrow, DuckDB, Jinja and the engine again, seconds of
CPU before the run did anything. Why not a fork of the daemon at each fire: it
has threads then (the scheduler's, the endpoint's), and a forked child would
inherit the locks they held. So the runs come from multiprocessing's
"forkserver": one server process, forked from `serve` as it starts, before its
threads exist (:mod:`segmerge.serve.zygote`: the CLI and most of the engine
already imported), imports what a run still lacks at the first fire
(:mod:`segmerge.serve.warm`, which keeps it single-threaded), and each run is a
fork of it. A run still has a process of its own: a crash, a leak, a hang or the
max run time's kill touch only that run.

On Linux only; elsewhere runs are spawned as before (macOS has a fork server
too, but neither the ``/proc`` check nor the guard of
:mod:`segmerge.serve.procs` that make a run die with `serve`).

The server imports nothing before the first fire (a `serve` that never fires
pays for a fork only), is started again by multiprocessing if it dies (then
through exec, with the engine imported afresh), and is stopped and reaped when
`serve` stops. The handles on multiprocessing's own server object are private
(Python has no public call to stop it, nor to close a child's copy of its pipe):
they are read with defaults, so that a Python without them only loses the
clean-up, never a run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable
from multiprocessing import forkserver
from typing import TYPE_CHECKING

from segmerge.serve.zygote import SAVED, fork_server

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

#: the server imports the main script first (else each run would), then the engine
PRELOAD = ["__main__", "segmerge.serve.warm"]


def run_context() -> ForkServerContext | SpawnContext:
    """The fork server on Linux, preloaded with the engine; spawn elsewhere."""
    if sys.platform == "linux" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def prepare_server(ctx: ForkServerContext | SpawnContext, close: Iterable[int] = ()) -> None:
    """In `serve`'s main thread, before any other exists: the runs' server, forked from serve.

    It is a fork of `serve` (:mod:`segmerge.serve.zygote`), which has the CLI and most of
    the engine imported already. Where it cannot be (a process with threads), it is
    multiprocessing's, started at the first fire through exec, and then what follows
    matters: Python 3.11 starts it with ``python -c``, which puts the folder `serve`
    was started in first on its import path, and imports the preload before it would
    apply serve's own import path (it never does; later Pythons do). A ``segmerge/``
    or a ``pandas.py`` in that folder, or another Segmerge first on serve's path, would
    be what every run runs. So the server starts with serve's import path as
    PYTHONPATH and PYTHONSAFEPATH set, and :mod:`segmerge.serve.warm` puts both back:
    the runs, and the processes they start, get serve's environment unchanged. Set
    here because the environment cannot be changed safely once threads run.
    """
    if ctx.get_start_method() != "forkserver" or SAVED in os.environ:
        return
    os.environ[SAVED] = json.dumps({n: os.environ.get(n) for n in ("PYTHONPATH", "PYTHONSAFEPATH")})
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    os.environ["PYTHONSAFEPATH"] = "1"
    fork_server(close)


def let_go_of_server() -> None:
    """In a run's process, first: close the server's "alive" pipe the fork gave it.

    The server ends when every holder of that pipe has closed it. Held by `serve`
    alone, a `serve` that is killed takes the server with it, and each run then
    dies with its parent (``PR_SET_PDEATHSIG``), as a spawned run does.
    """
    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None:  # spawned, not forked: nothing inherited
        return
    server._forkserver_alive_fd = None  # type: ignore[attr-defined]
    with contextlib.suppress(OSError):
        os.close(fd)


def stop_server(ctx: ForkServerContext | SpawnContext) -> None:
    """When `serve` stops, its runs over: the server ends and `serve` reaps it.

    Else it would end on its own a moment later, adopted by init: reaped here, no
    process outlives `serve`, and its CPU (and its runs') is counted as `serve`'s.
    SIGKILL, because it holds nothing but imported modules, and tearing those down
    took over a second of a stop on a loaded machine.
    """
    if ctx.get_start_method() != "forkserver":
        return
    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    stop = getattr(server, "_stop", None)
    if pid is None or stop is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ChildProcessError):
        stop()  # closes serve's end of its pipe and reaps it
