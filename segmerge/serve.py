"""`segmerge serve`: run every schedule of a workspace, unattended, until told to stop.

Design choices, and why:

- APScheduler 3.x BackgroundScheduler, MemoryJobStore (schedules are re-read
  from segmerge.toml and `.segmerge/schedules.sqlite` at start, see
  :mod:`segmerge.schedule`), one job per campaign (several schedules of one
  campaign are one trigger), ``coalesce=True`` (a backlog of fires runs once),
  ``max_instances=1`` and a misfire grace time (default 3600 s).
- One worker thread: runs of a workspace share its ledger and often a source
  that is written back (tags in the same CSV files); running them one after
  another is what keeps them from overwriting each other, and a weekly mailing
  does not need parallelism.
- Each run reloads the workspace, so an edited rule set, template or setting
  takes effect at the next fire without a restart (a new schedule needs one).
- A failed run is one clear log line; the fire counts as handled and the next
  fire tries again. The daemon itself never dies of a run.
- SIGTERM / SIGINT: no new run starts; the run in hand stops after the batch
  in flight is recorded (the pipeline's progress callback is the checkpoint),
  which leaves a run that the next start resumes. A second signal exits at
  once: the ledger still makes that safe (in-flight sends become uncertain).
- One `serve` per workspace: ``fcntl.flock`` on `.segmerge/serve.lock`. The
  kernel drops the lock when the process dies, however it dies, so a crash
  never leaves a stale lock; the pid written in the file is only for the
  message.
- A fire missed while the daemon was down is run on start if it is still
  within the grace time (what a persistent job store would do), and the run
  of an interrupted fire is resumed the same way.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from .errors import ConfigError, SegmergeError
from .schedule import (
    AnyOf,
    CronSchedule,
    Schedule,
    ScheduleStore,
    by_campaign,
    load_schedules,
    missed_fire,
    next_fires,
    previous_fire,
)
from .serve_log import configured_logging, summary_line
from .serve_run import run_in_child, run_once
from .workspace import Workspace

LOCK_FILE = "serve.lock"
RERUN_RETRY = timedelta(minutes=15)  # a rerun that failed is tried again this much later
log = logging.getLogger("segmerge.serve")


class AlreadyServing(SegmergeError):
    """Another `segmerge serve` holds this workspace."""

    exit_code = 1


@dataclass
class ServeOptions:
    misfire_grace_time: int = 3600
    log_file: Path | None = None
    run_on_start: bool = False
    unsubscribe_port: int | None = None
    unsubscribe_host: str = "127.0.0.1"
    #: run the pipeline in the daemon's own process (tests); default: one child per run
    in_process: bool = False
    #: called with the daemon once it is ready (tests, benchmarks)
    on_ready: Callable[[Daemon], None] | None = None


# the lock --------------------------------------------------------------------


@contextmanager
def serve_lock(ws: Workspace) -> Iterator[None]:
    """Hold `.segmerge/serve.lock` for the life of the daemon, or refuse naming the holder."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = ws.state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyServing(
                f"another `segmerge serve` (pid {holder}) is already running on this workspace",
                file=path,
                hint="stop it first (kill -TERM " + holder + "), or serve another workspace",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock; the file stays, harmlessly


# the daemon ----------------------------------------------------------------------


class Daemon:
    """The scheduler, its jobs and the stop protocol; `serve()` drives it."""

    def __init__(self, ws: Workspace, opts: ServeOptions) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.ws = ws
        self.opts = opts
        self.stopping = threading.Event()
        self.triggers: dict[str, AnyOf | CronSchedule] = {}
        self.immediate: set[str] = set()
        self.runs = 0
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": opts.misfire_grace_time,
            },
            timezone=ws.tz,
        )
        self.unsubscribe: Any = None
        # spawn: the daemon has threads, and a forked child would inherit their locks
        self.mp = multiprocessing.get_context("spawn")
        self.child_stop = self.mp.Event() if not opts.in_process else None

    # jobs --------------------------------------------------------------------

    def plan(self) -> list[Schedule]:
        store = ScheduleStore(self.ws)
        try:
            schedules = load_schedules(self.ws, store)
            now = datetime.now(UTC)
            for campaign, items in by_campaign(schedules).items():
                known = [s for s in items if s.known]
                if not known:
                    log.warning(
                        "schedule for unknown campaign %s ignored (`segmerge schedule "
                        "remove %s` drops it)",
                        campaign,
                        campaign,
                    )
                    continue
                trig: AnyOf | CronSchedule = (
                    known[0].trigger if len(known) == 1 else AnyOf([s.trigger for s in known])
                )
                self.triggers[campaign] = trig
                kw: dict[str, Any] = {}
                missed = missed_fire(
                    trig, store.covered_until(campaign), now, self.opts.misfire_grace_time
                )
                store.cover(campaign, now, only_if_absent=True)
                if self.opts.run_on_start:
                    self.immediate.add(campaign)
                    kw["next_run_time"] = now
                elif missed is not None:
                    log.info(
                        "%s: the fire of %s was missed or interrupted; running it now",
                        campaign,
                        _local(missed, self.ws),
                    )
                    kw["next_run_time"] = missed
                self.scheduler.add_job(
                    self._job, trigger=trig, args=[campaign], id=campaign, name=campaign, **kw
                )
            reruns = store.reruns()
        finally:
            store.close()
        for campaign, as_of, at in reruns:
            if campaign in self.ws.config.campaigns:
                self._arm_rerun(campaign, as_of, at)
                log.info("%s@%s: deferred messages, run again at %s", campaign, as_of,
                         _local(max(at, now), self.ws))  # fmt: skip
        return schedules

    def _job(self, campaign: str) -> None:
        """One scheduled fire: the run of the fire's day (the same day again resumes it)."""
        now = datetime.now(UTC)
        if campaign in self.immediate:
            self.immediate.discard(campaign)
            fire = now
        else:
            fire = previous_fire(self.triggers[campaign], now) or now
        as_of = fire.astimezone(self.ws.tz).date().isoformat()
        if self._execute(campaign, as_of, fire, "fire"):
            with self._store() as store:
                store.cover(campaign, fire)

    def _rerun(self, campaign: str, as_of: str) -> None:
        """A run started again when contact pressure allows the messages it held back."""
        with self._store() as store:
            store.drop_rerun(campaign, as_of)
        if not self._execute(campaign, as_of, datetime.now(UTC), "rerun"):
            with self._store() as store:  # interrupted: the next start does it
                store.set_rerun(campaign, as_of, datetime.now(UTC))

    def _arm_rerun(self, campaign: str, as_of: str, at: datetime) -> None:
        from apscheduler.triggers.date import DateTrigger

        with self._store() as store:
            store.set_rerun(campaign, as_of, at)
        self.scheduler.add_job(
            self._rerun,
            trigger=DateTrigger(run_date=at),
            args=[campaign, as_of],
            id=f"{campaign}@{as_of} rerun",
            name=f"{campaign}@{as_of} rerun",
            replace_existing=True,
            misfire_grace_time=None,  # held-back messages go however late the daemon is
        )

    def _execute(self, campaign: str, as_of: str, fire: datetime, why: str) -> bool:
        """Run, log one line, never raise; False only when a shutdown interrupted it."""
        if self.stopping.is_set():
            return False
        run_id = f"{campaign}@{as_of}"
        what = "fire of " + _local(fire, self.ws) if why == "fire" else "deferred messages"
        log.info("run %s started (%s)", run_id, what)
        started = time.monotonic()
        data: dict[str, Any] = {"event": "run", "campaign": campaign, "run_id": run_id,
                                "trigger": why, "scheduled_for": fire.isoformat()}  # fmt: skip
        try:
            if self.opts.in_process:
                res = run_once(str(self.ws.root), campaign, as_of, self.stopping)
            else:
                res = run_in_child(self, campaign, as_of)
        finally:
            self.runs += 1
        data["duration_s"] = seconds = round(time.monotonic() - started, 3)
        if res.status == "interrupted":
            data["status"] = "interrupted"
            log.warning("run %s stopped after its current batch (shutdown); the next start "
                        "resumes it", run_id, extra={"data": data})  # fmt: skip
            return False
        if res.status == "error":
            if why == "rerun":
                retry = datetime.now(UTC) + RERUN_RETRY
                self._arm_rerun(campaign, as_of, retry)
                nxt = _local(retry, self.ws)
            else:
                nxt = f"the next fire ({self._next(campaign)})"
            data |= {"status": "error", "error": res.error, "error_type": res.error_type}
            log.error("run %s failed: %s — will retry at %s", run_id, _one_line(res.error), nxt,
                      extra={"data": data})  # fmt: skip
            return True
        summary = res.summary
        data |= {"status": "partial" if res.failed else "done", "summary": summary}
        level = logging.WARNING if res.failed else logging.INFO
        log.log(level, summary_line(summary, res.failed, seconds), extra={"data": data})
        until = summary.get("deferred_until")
        if until:
            at = datetime.fromisoformat(str(until))
            self._arm_rerun(campaign, as_of, at)
            log.info("run %s will be started again at %s for its deferred messages", run_id,
                     _local(at, self.ws))  # fmt: skip
        return True

    @contextmanager
    def _store(self) -> Iterator[ScheduleStore]:
        store = ScheduleStore(self.ws)
        try:
            yield store
        finally:
            store.close()

    def _next(self, campaign: str) -> str:
        trig = self.triggers.get(campaign)
        fires = next_fires(trig, 1) if trig is not None else []
        return _local(fires[0], self.ws) if fires else "none"

    # life cycle ------------------------------------------------------------------

    def start(self) -> None:
        schedules = self.plan()
        if self.opts.unsubscribe_port is not None:
            from .unsubscribe_server import UnsubscribeServer

            host, port = self.opts.unsubscribe_host, self.opts.unsubscribe_port
            try:
                self.unsubscribe = UnsubscribeServer(self.ws, host, port)
            except OSError as exc:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                  field="--unsubscribe-port") from None  # fmt: skip
            self.unsubscribe.start()
            log.info(
                "one-click unsubscribe endpoint on http://%s:%d/unsubscribe",
                self.unsubscribe.host,
                self.unsubscribe.port,
            )
        self.scheduler.start()
        for campaign in self.triggers:
            job = self.scheduler.get_job(campaign)
            when = job.next_run_time if job is not None else None
            crons = ", ".join(s.cron for s in schedules if s.campaign == campaign)
            log.info(
                "%s: %s (%s), next run %s",
                campaign,
                crons,
                self.ws.config.timezone,
                _local(when, self.ws) if when else "none",
            )
        if not self.triggers:
            log.warning(
                "no schedule in this workspace: add `schedule =` to a campaign in "
                "segmerge.toml or use `segmerge schedule add`"
            )
        log.info(
            "serving %s (pid %d); SIGTERM or Ctrl-C stops",
            self.ws.root,
            os.getpid(),
            extra={"data": {"event": "start", "pid": os.getpid()}},
        )

    def request_stop(self) -> None:
        self.stopping.set()
        if self.child_stop is not None:
            self.child_stop.set()

    def stop(self) -> None:
        self.request_stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # waits for the run in hand to reach a checkpoint
        if self.unsubscribe is not None:
            self.unsubscribe.stop()
        log.info("stopped", extra={"data": {"event": "stop", "runs": self.runs}})


def _local(t: datetime, ws: Workspace) -> str:
    return t.astimezone(ws.tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def serve(ws: Workspace, opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a graceful stop)."""
    with serve_lock(ws), configured_logging(opts.log_file, ws.tz):
        daemon = Daemon(ws, opts)
        asked = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if asked.is_set():
                log.warning(
                    "second signal: exiting now (the next start resumes; a message "
                    "in flight is marked uncertain)"
                )
                os._exit(1)
            asked.set()
            daemon.request_stop()
            log.info(
                "%s received: no new run; the run in hand stops after its current batch",
                signal.Signals(signum).name,
            )

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            daemon.start()
            if opts.on_ready is not None:
                opts.on_ready(daemon)
            while not asked.wait(0.5):
                pass
        finally:
            daemon.stop()
            for s, h in previous.items():
                signal.signal(s, h)
    return 0
