"""One scheduled run of `segmerge serve`, in a child process of its own, with a time limit.

The daemon stays small between runs (pandas and a campaign's frames live and
die with the child; the engine's modules are imported once, by the warm server
each run is forked from, see :mod:`segmerge.serve.starts`), and a run that
dies (out of memory, a crash in a native library) is a logged failure, not a
dead daemon. A stop signal is honoured at the end of a recorded batch: the
pipeline's progress callback is the checkpoint; before the first one, nothing
is in flight and the run stops at once (:class:`StoppedEarly`).

A run that hangs (a source that never answers, a template that loops) is
stopped at its campaign's max run time: SIGTERM to the run (it stops after the
batch in hand, which the ledger records, or at once before its first batch: a
source stuck in a read), then, after the stop grace period,
SIGKILL to its whole process group (see :mod:`segmerge.serve.procs`). The run
is then a failure with the reason; the ledger leaves it resumable, like any
interrupted run. Each run has its own stop flag, set by the signal it gets, so
stopping one run never stops another.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import tzinfo
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segmerge.errors import SegmergeError
from segmerge.ledger import keys
from segmerge.redact import redact
from segmerge.serve.log import configured_logging, duration
from segmerge.serve.procs import detach, signal_group, signal_one, sweep_group
from segmerge.serve.starts import let_go_of_server
from segmerge.workspace import config as wsmod

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

log = logging.getLogger("segmerge.serve")
STOPPED_EARLY = "stopped before its first batch"


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised at a batch boundary when the daemon is asked to stop."""


class StoppedEarly(BaseException):
    """Raised by the stop signal itself in a run that has not reached its first batch.

    Until then nothing is in flight (the pipeline calls its progress callback
    before it hands any batch over), so stopping at once loses nothing: without
    it, a run still pulling or segmenting when `serve` stops (a resumed run with
    nothing left to send never reaches a batch at all) kept going until killed
    at the end of the stop grace period. A BaseException, so that no broad
    ``except Exception`` on the way swallows it; ``finally`` blocks still run.
    """


@dataclass
class RunResult:
    status: str  # done, interrupted, error
    summary: dict[str, Any] = field(default_factory=dict)
    failed: int = 0
    error: str = ""
    error_type: str = ""


def run_once(root: str, campaign: str, as_of: str, stop: Any, batches: Any = None) -> RunResult:
    """One run of the pipeline; `stop` (an Event) is checked after each recorded batch.

    `batches` (an Event, if given) is set at the first checkpoint: from then on a
    batch may be in flight (see :class:`StoppedEarly`)."""

    def checkpoint(phase: str, done: int, total: int) -> None:
        if batches is not None:
            batches.set()
        if stop.is_set():
            raise Interrupted(f"{phase} {done}/{total}")

    try:
        from segmerge.run.pipeline import RunOptions, run

        ws = wsmod.load(root)
        s = run(ws, campaign, RunOptions(as_of=as_of, progress=checkpoint))
        return RunResult("done", json.loads(json.dumps(s.as_dict(), default=str)), s.failed)
    except Interrupted:
        return RunResult("interrupted")
    except StoppedEarly:
        return RunResult("interrupted", error=STOPPED_EARLY)
    except SegmergeError as exc:
        return RunResult("error", error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a bug must not kill the daemon
        # redacted here: the daemon that logs it never looked the run's secrets up
        return RunResult(
            "error",
            error=redact(f"internal error: {type(exc).__name__}: {exc}"),
            error_type="internal",
        )


def _child(
    root: str, campaign: str, as_of: str, conn: Any, log_file: str, tz: tzinfo, serve_pid: int
) -> None:
    """The child's main: its own group, dies with serve; SIGTERM means stop at a batch end,
    or at once before the first batch."""
    let_go_of_server()
    detach(serve_pid)
    stop, batches = threading.Event(), threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        if not batches.is_set():
            raise StoppedEarly

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        with configured_logging(Path(log_file) if log_file else None, tz):
            res = run_once(root, campaign, as_of, stop, batches)
    except StoppedEarly:  # the signal came as the run began or returned
        res = RunResult("interrupted", error=STOPPED_EARLY)
    batches.set()  # answered: a late signal only sets the flag
    conn.send(res)
    conn.close()


class RunProcess:
    """A run's child process as the daemon sees it: why it is being stopped, and since when."""

    def __init__(
        self, proc: Any, campaign: str, run_id: str, limit: float, grace: float, started: float
    ) -> None:
        self.proc = proc
        self.campaign = campaign
        self.run_id = run_id
        self.started = started  # before the process was asked for: its start counts in the limit
        self.deadline = self.started + limit
        self.limit = limit
        self.grace = grace
        self.reason: str | None = None  # "timeout" or "shutdown"
        self.term_at: float | None = None
        self.killed = False
        self._lock = threading.Lock()

    def terminate(self, reason: str) -> None:
        """SIGTERM the run (not its helpers): it stops after the batch in hand."""
        with self._lock:
            if self.term_at is not None:
                return
            self.reason, self.term_at = reason, time.monotonic()
        signal_one(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the run's whole group: the run and every process it started."""
        self.killed = True
        signal_group(self.proc.pid, signal.SIGKILL)

    def tick(self, now: float) -> None:
        """Enforce the max run time, then the grace period after a SIGTERM."""
        if self.term_at is None and now >= self.deadline:
            log.warning(
                "run %s has run for %s, longer than its max run time: stopping it "
                "(SIGTERM, SIGKILL in %s)",
                self.run_id,
                duration(now - self.started),
                duration(self.grace),
            )
            self.terminate("timeout")
        if self.term_at is not None and not self.killed and now >= self.term_at + self.grace:
            self.kill()

    def outcome(self, res: RunResult | None) -> RunResult:
        """What the run came to, given what it answered (None: nothing) and why it was stopped."""
        by = "SIGKILL" if self.killed else "SIGTERM"
        if self.reason == "timeout" and (res is None or res.status == "interrupted"):
            return RunResult(
                "error",
                error=f"stopped by {by} after its max run time of "
                f"{duration(self.limit)} (serve --max-run-time); the ledger keeps "
                "it resumable",
                error_type="timeout",
            )
        if res is not None:
            return res
        if self.reason == "shutdown" and self.proc.exitcode == -signal.SIGTERM:
            # the signal's default action: it came before the run set its handler, so the
            # run had not begun and nothing was in flight (no grace was waited, none killed)
            return RunResult("interrupted", error=STOPPED_EARLY)
        if self.reason == "shutdown":
            return RunResult(
                "interrupted",
                error=f"killed {duration(self.grace)} after the stop signal",
                error_type="killed",
            )
        return RunResult(
            "error",
            error=f"the run's process died (exit code {self.proc.exitcode})",
            error_type="crash",
        )


class RunProcesses:
    """The runs' processes in hand, for the stop protocol: a run that starts as the stop
    comes (``stopping`` set, ``terminate_all`` not yet done) is stopped too."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._runs: set[RunProcess] = set()
        self._lock = threading.Lock()

    def add(self, run: RunProcess) -> None:
        with self._lock:
            self._runs.add(run)
        if self.stopping.is_set():
            run.terminate("shutdown")

    def discard(self, run: RunProcess) -> None:
        with self._lock:
            self._runs.discard(run)

    def terminate_all(self) -> None:
        """Each run gets SIGTERM and stops after its current batch (set ``stopping`` first)."""
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.terminate("shutdown")

    def kill_all(self) -> None:
        """SIGKILL every run's process group now (a second signal, or a grace period over)."""
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.kill()


@dataclass(frozen=True)
class ChildSetup:
    """What every run's child process of one `serve` shares."""

    mp: ForkServerContext | SpawnContext  # see segmerge.serve.starts.run_context
    root: Path
    tz: tzinfo
    log_file: Path | None
    processes: RunProcesses


def run_in_child(
    setup: ChildSetup, campaign: str, as_of: str, max_run_time: float, grace: float
) -> RunResult:
    """Run in a process of its own, within ``max_run_time`` seconds (then SIGTERM, and SIGKILL
    ``grace`` seconds later); never raises."""
    here, there = setup.mp.Pipe(duplex=False)
    log_file = str(setup.log_file) if setup.log_file else ""
    proc = setup.mp.Process(
        target=_child,
        name=f"segmerge run {campaign}",
        args=(str(setup.root), campaign, as_of, there, log_file, setup.tz, os.getpid()),
    )
    started = time.monotonic()
    try:
        proc.start()  # the first run waits for the warm server to import the engine
    except (OSError, EOFError) as exc:  # no process, no memory, no server: a failed run
        here.close()
        there.close()
        return RunResult(
            "error", error=f"cannot start the run's process: {exc}", error_type="crash"
        )
    there.close()
    pid = proc.pid
    assert pid is not None  # started
    run = RunProcess(proc, campaign, keys.run_id(campaign, as_of), max_run_time, grace, started)
    setup.processes.add(run)
    res: RunResult | None = None
    ended = False
    try:
        while res is None and not ended:
            ready = wait([here, proc.sentinel], timeout=0.2)
            if here in ready:
                try:
                    res = here.recv()
                except EOFError:
                    ended = True
            elif proc.sentinel in ready:
                ended = True
            run.tick(time.monotonic())
        if res is None and here.poll():
            res = here.recv()
    except (EOFError, OSError):
        pass
    finally:
        # the answer is in (or never comes): the process ends now, or is made to
        if not wait([proc.sentinel], timeout=run.grace if res is not None else 0):
            run.kill()
            wait([proc.sentinel], timeout=5)
        # spawned: unreaped yet, so the group id cannot have been reused; forked by the
        # server, reaped by it, but a group left with a member keeps its id
        sweep_group(pid)
        proc.join()
        here.close()
        setup.processes.discard(run)
    return run.outcome(res)
