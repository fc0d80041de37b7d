"""One `segmerge serve` per workspace: an ``flock`` on `.segmerge/serve.lock`.

The kernel drops the lock when the process dies, however it dies, so a crash
never leaves a stale lock; the pid written in the file is only for the
message naming the holder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from segmerge.errors import SegmergeError
from segmerge.i18n import _
from segmerge.workspace.config import Workspace

LOCK_FILE = "serve.lock"


class AlreadyServing(SegmergeError):
    """Another `segmerge serve` holds this workspace."""

    exit_code = 1


@contextmanager
def serve_lock(ws: Workspace) -> Iterator[int]:
    """Hold `.segmerge/serve.lock` for the life of the daemon, or refuse naming the holder.

    Yields the lock's descriptor: a process forked from the daemon closes it, so that
    only `serve` holds the workspace (see :mod:`segmerge.serve.zygote`).
    """
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = ws.state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyServing(
                _(
                    "another `segmerge serve` (pid {holder}) is already running on this workspace"
                ).format(holder=holder),
                file=path,
                hint=_("stop it first (kill -TERM {holder}), or serve another workspace").format(
                    holder=holder
                ),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # closing drops the lock; the file stays, harmlessly
