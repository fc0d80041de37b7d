"""The `segmerge serve` process: one per workspace, its log, and the signals that stop it.

The first SIGTERM / SIGINT asks every run in hand to stop after its current
batch (killed after the stop grace period); a second one kills them at once
and exits: the ledger makes both safe, and the next start resumes them. The
scheduling itself is :class:`segmerge.serve.daemon.Daemon`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from segmerge.serve.daemon import Daemon
from segmerge.serve.lock import serve_lock
from segmerge.serve.log import configured_logging, duration
from segmerge.serve.options import ServeOptions
from segmerge.workspace.config import Workspace

__all__ = ["ServeOptions", "serve"]
log = logging.getLogger("segmerge.serve")


def serve(ws: Workspace, opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a graceful stop)."""
    with serve_lock(ws) as lock, configured_logging(opts.log_file, ws.tz):
        daemon = Daemon(ws, opts)
        asked = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if asked.is_set():
                log.warning(
                    "second signal: killing the runs in hand and exiting now (the "
                    "next start resumes them; a message in flight is marked uncertain)"
                )
                daemon.processes.kill_all()
                os._exit(1)
            asked.set()
            log.info(
                "%s received: no new run; the runs in hand stop after their current batch "
                "(killed if still there in %s)",
                signal.Signals(signum).name,
                duration(opts.stop_grace),
            )
            daemon.request_stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            daemon.start(close=(lock,))
            while not asked.wait(0.5):
                pass
        finally:
            daemon.stop()
            for s, h in previous.items():
                signal.signal(s, h)
    return 0
