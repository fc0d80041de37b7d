"""The fork server of `serve`'s runs, forked from `serve` itself before its threads exist.

Why not multiprocessing's own start of it (a fresh interpreter, through exec): that
interpreter imports Python's start-up, the CLI and the engine again, 1.5-2 s of CPU
for each `serve` that fires, while `serve` has imported most of it already. A fork of
`serve`, taken in its main thread before the scheduler's and the endpoint's threads
exist, has all of it and no lock held by another thread. It runs multiprocessing's own
server loop (:func:`multiprocessing.forkserver.main`, the same protocol, so that
``ctx.Process`` starts a run as before): at the first fire it imports what a run still
lacks (:mod:`segmerge.serve.warm`), then forks each run.

What the fork must not keep of `serve`: the workspace's lock (a server, or a run,
outliving `serve` by a moment would refuse the next `serve`), serve's log handlers
(a run adds its own: each line would be written twice), serve's signal handlers (a
signal to the server would run serve's stop in it). It dies with `serve`
(``PR_SET_PDEATHSIG``), and when `serve` closes its end of the "alive" pipe.

Only from a process with one thread: elsewhere (a daemon driven from a test's
threads) multiprocessing starts its server through exec, as it did before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Iterable
from multiprocessing import connection, forkserver, util

from segmerge.serve.procs import die_with_parent

#: what the server imports at the first fire: the rest of a run's engine
PRELOAD = ["segmerge.serve.warm"]
#: what `serve` changed in its environment for a server started through exec (see
#: :func:`segmerge.serve.starts.prepare_server`), for the server to put back
SAVED = "SEGMERGE_SERVER_ENV"


def restore_environment() -> None:
    """The environment as `serve` had it before it prepared its server's start."""
    saved = os.environ.pop(SAVED, None)
    for name, value in (json.loads(saved) if saved else {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def single_threaded() -> bool:
    """Whether this process has one thread (a fork of it copies every lock's state)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def fork_server(close: Iterable[int] = ()) -> bool:
    """Fork the server and hand it to multiprocessing; False if it was not forked.

    ``close``: descriptors of `serve` that must not live on in the server (its lock).
    Not forked (threads here, no socket, no memory to fork): multiprocessing starts
    its own at the first fire, as it did before.
    """
    server = forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is not None or not single_threaded():
        return False
    serve_pid = os.getpid()
    address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
    with socket.socket(socket.AF_UNIX) as listener:
        try:
            listener.bind(address)
            if not util.is_abstract_socket_namespace(address):
                os.chmod(address, 0o600)
            listener.listen()
            alive_r, alive_w = os.pipe()
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(address)
            return False
        for stream in (sys.stdout, sys.stderr):  # else the runs would write it again
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:  # the server: never returns into serve's code
            code = 1
            try:
                os.close(alive_w)
                _leave_serve(close)
                if os.getppid() == serve_pid:  # else serve died before the guard was set
                    _serve(listener.fileno(), alive_r)
                    code = 0
            finally:
                os._exit(code)
    os.close(alive_r)
    if pid < 0:
        os.close(alive_w)
        with contextlib.suppress(OSError):
            os.unlink(address)
        return False
    server._forkserver_address = address  # type: ignore[attr-defined]
    server._forkserver_alive_fd = alive_w  # type: ignore[attr-defined]
    server._forkserver_pid = pid  # type: ignore[attr-defined]
    return True


def _leave_serve(close: Iterable[int]) -> None:
    die_with_parent()
    restore_environment()  # the runs get serve's environment unchanged
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    # Ctrl-C reaches serve's whole group: serve decides what its runs do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in close:
        with contextlib.suppress(OSError):
            os.close(fd)
    for name in ("segmerge", "apscheduler"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def _serve(listener_fd: int, alive_r: int) -> None:
    """Wait for the first fire (a `serve` that never fires imports nothing), then serve."""
    ready, _, _ = select.select([listener_fd, alive_r], [], [])
    if alive_r in ready:  # serve stopped first
        return
    with contextlib.suppress(SystemExit):  # how its loop ends when serve lets go
        forkserver.main(listener_fd, alive_r, PRELOAD)
