"""One scheduled run of `segmerge serve`, in a child process of its own.

The daemon stays small between runs (pandas and a campaign's frames live and
die with the child), and a run that dies (out of memory, a crash in a native
library) is a logged failure, not a dead daemon. A stop signal is honoured at
the end of a recorded batch: the pipeline's progress callback is the
checkpoint.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import workspace as wsmod
from .errors import SegmergeError
from .serve_log import configured_logging

if TYPE_CHECKING:
    from .serve import Daemon


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised at a batch boundary when the daemon is asked to stop."""


@dataclass
class RunResult:
    status: str  # done, interrupted, error
    summary: dict[str, Any] = field(default_factory=dict)
    failed: int = 0
    error: str = ""
    error_type: str = ""


def run_once(root: str, campaign: str, as_of: str, stop: Any) -> RunResult:
    """One run of the pipeline; `stop` (an Event) is checked after each recorded batch."""

    def checkpoint(phase: str, done: int, total: int) -> None:
        if stop.is_set():
            raise Interrupted(f"{phase} {done}/{total}")

    try:
        from .pipeline import RunOptions, run

        ws = wsmod.load(root)
        s = run(ws, campaign, RunOptions(as_of=as_of, progress=checkpoint))
        return RunResult("done", json.loads(json.dumps(s.as_dict(), default=str)), s.failed)
    except Interrupted:
        return RunResult("interrupted")
    except SegmergeError as exc:
        return RunResult("error", error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a bug must not kill the daemon
        return RunResult("error", error=f"internal error: {type(exc).__name__}: {exc}",
                         error_type="internal")  # fmt: skip


def _child(
    root: str, campaign: str, as_of: str, stop: Any, conn: Any, log_file: str, tz: tzinfo
) -> None:
    """The child's main: a signal (systemd signals the whole group) means stop at a batch end."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with configured_logging(Path(log_file) if log_file else None, tz):
        conn.send(run_once(root, campaign, as_of, stop))
    conn.close()


def run_in_child(daemon: Daemon, campaign: str, as_of: str) -> RunResult:
    """Run in a fresh process: the daemon stays small between runs, and a run that dies
    (out of memory, a crash in a native library) is a logged failure, not a dead daemon."""
    ctx = daemon.mp
    here, there = ctx.Pipe(duplex=False)
    log_file = str(daemon.opts.log_file) if daemon.opts.log_file else ""
    proc = ctx.Process(target=_child, name=f"segmerge run {campaign}",
                       args=(str(daemon.ws.root), campaign, as_of, daemon.child_stop, there,
                             log_file, daemon.ws.tz))  # fmt: skip
    proc.start()
    there.close()
    try:
        while proc.is_alive() and not here.poll(0.2):
            pass
        if here.poll():
            res: RunResult = here.recv()
            return res
    except EOFError:
        pass
    finally:
        proc.join()
        here.close()
    return RunResult("error", error=f"the run's process died (exit code {proc.exitcode})",
                     error_type="crash")  # fmt: skip
