"""`segmerge serve`: run every schedule of a workspace, unattended, until told to stop.

Design choices, and why:

- APScheduler 3.x BackgroundScheduler, MemoryJobStore (schedules are re-read
  from segmerge.toml and `.segmerge/schedules.sqlite` at start, see
  :mod:`segmerge.serve.cron`), one job per campaign (several schedules of one
  campaign are one trigger), ``coalesce=True`` (a backlog of fires runs once)
  and a misfire grace time (default 3600 s).
- Campaigns run side by side, each in a child process of its own with a max
  run time (:mod:`segmerge.serve.child`), forked from a warm server that has
  the engine imported (:mod:`segmerge.serve.starts`): one campaign whose source never
  answers must not delay another's fire. Writes that could collide (the
  ledger, a source written back) are serialised where they happen: SQLite's
  locking for the ledger, a lock per destination in the pipeline.
- Runs of one campaign never overlap: a fire (or a rerun, tried again a
  minute later) that comes while its campaign still runs is not started, and
  our log line says so (``max_instances=2`` lets that second call reach us).
- Each run reloads the workspace: an edited rule set, template or setting
  takes effect at the next fire without a restart (a new schedule needs one).
- A failed run is one clear log line; the fire counts as handled and the next
  fire tries again. The daemon itself never dies of a run.
- SIGTERM / SIGINT: no new run starts; each run in hand gets SIGTERM and stops
  after the batch in flight is recorded (the pipeline's progress callback is
  the checkpoint), or at once if it has not reached its first batch, which
  leaves a run that the next start resumes. A run still
  there after the stop grace period (default 10 s) is killed with its whole
  process group; the ledger makes that safe (in-flight sends become uncertain).
  A second signal kills them at once. No process outlives `serve`, even when
  `serve` itself is killed (:mod:`segmerge.serve.procs`).
- One `serve` per workspace: :mod:`segmerge.serve.lock`.
- A fire missed while the daemon was down is run on start if it is still
  within the grace time (what a persistent job store would do), and the run
  of an interrupted fire is resumed the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.ledger import keys
from segmerge.serve.child import ChildSetup, RunProcesses, run_in_child, run_once
from segmerge.serve.cron import (
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
from segmerge.serve.lock import LOCK_FILE, AlreadyServing, serve_lock
from segmerge.serve.log import local_time, one_line, skip_line, summary_line
from segmerge.serve.options import ServeOptions
from segmerge.serve.starts import prepare_server, run_context, stop_server
from segmerge.workspace.config import Workspace

if TYPE_CHECKING:
    from segmerge.serve.endpoint.server import UnsubscribeServer

__all__ = ["LOCK_FILE", "AlreadyServing", "Daemon", "ServeOptions", "serve_lock"]
RERUN_RETRY = timedelta(minutes=15)  # a rerun that failed is tried again this much later
BUSY_RETRY = timedelta(minutes=1)  # a rerun that found its campaign running
HANDLED, INTERRUPTED, SKIPPED = "handled", "interrupted", "skipped"
log = logging.getLogger("segmerge.serve")


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
        # a run and a "still running" call per campaign, and reruns; made only when needed
        workers = 2 * len(ws.config.campaigns) + 4
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 2,  # the second only says "still running" (see _execute)
                "misfire_grace_time": opts.misfire_grace_time,
            },
            timezone=ws.tz,
        )
        self.unsubscribe: Any = None
        self.processes = RunProcesses(self.stopping)
        self.child = ChildSetup(run_context(), ws.root, ws.tz, opts.log_file, self.processes)
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self.running: dict[str, tuple[str, float]] = {}  # campaign -> (run id, monotonic start)
        self.interrupted = 0

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
                        local_time(missed, self.ws.tz),
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
                log.info(
                    "%s: deferred messages, run again at %s",
                    keys.run_id(campaign, as_of),
                    local_time(max(at, now), self.ws.tz),
                )
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
        if self._execute(campaign, as_of, fire, "fire") == HANDLED:
            with self._store() as store:
                store.cover(campaign, fire)

    def _rerun(self, campaign: str, as_of: str) -> None:
        """A run started again when contact pressure allows the messages it held back."""
        with self._store() as store:
            store.drop_rerun(campaign, as_of)
        status = self._execute(campaign, as_of, datetime.now(UTC), "rerun")
        if status == SKIPPED:
            self._arm_rerun(campaign, as_of, datetime.now(UTC) + BUSY_RETRY)
        elif status == INTERRUPTED:
            with self._store() as store:  # the next start does it
                store.set_rerun(campaign, as_of, datetime.now(UTC))

    def _arm_rerun(self, campaign: str, as_of: str, at: datetime) -> None:
        from apscheduler.triggers.date import DateTrigger

        with self._store() as store:
            store.set_rerun(campaign, as_of, at)
        self.scheduler.add_job(
            self._rerun,
            trigger=DateTrigger(run_date=at),
            args=[campaign, as_of],
            id=keys.rerun_job(campaign, as_of),
            name=keys.rerun_job(campaign, as_of),
            replace_existing=True,
            misfire_grace_time=None,  # held-back messages go however late the daemon is
        )

    def _execute(self, campaign: str, as_of: str, fire: datetime, why: str) -> str:
        """Run, log one line, never raise: HANDLED, INTERRUPTED (a shutdown) or SKIPPED."""
        run_id = keys.run_id(campaign, as_of)
        what = "fire of " + local_time(fire, self.ws.tz) if why == "fire" else "deferred messages"
        data: dict[str, Any] = {
            "event": "run",
            "campaign": campaign,
            "run_id": run_id,
            "trigger": why,
            "scheduled_for": fire.isoformat(),
        }
        with self._lock:
            if self.stopping.is_set():
                return INTERRUPTED
            busy = self.running.get(campaign)
            if busy is None:
                self.running[campaign] = (run_id, time.monotonic())
        if busy is not None:  # runs of one campaign never overlap
            limit = self.opts.max_run_time_of(campaign)
            log.warning(*skip_line(run_id, what, busy, limit, data), extra={"data": data})
            return SKIPPED
        try:
            return self._run(campaign, as_of, why, what, data)
        finally:  # after the run's last log line: stop() then logs the final one
            with self._lock:
                self.runs += 1
                del self.running[campaign]
                self._idle.notify_all()

    def _run(self, campaign: str, as_of: str, why: str, what: str, data: dict[str, Any]) -> str:
        run_id = data["run_id"]
        log.info(
            "run %s started (%s)", run_id, what, extra={"data": {**data, "event": "run_start"}}
        )
        started = time.monotonic()
        if self.opts.in_process:
            res = run_once(str(self.ws.root), campaign, as_of, self.stopping)
        else:
            limit, grace = self.opts.max_run_time_of(campaign), self.opts.stop_grace
            res = run_in_child(self.child, campaign, as_of, limit, grace)
        data["duration_s"] = seconds = round(time.monotonic() - started, 3)
        if res.status == "interrupted":
            data["status"] = "interrupted"
            how = res.error or "stopped after its current batch"
            log.warning(
                "run %s %s (shutdown); the next start resumes it", run_id, how, extra={"data": data}
            )
            with self._lock:
                self.interrupted += 1
            return INTERRUPTED
        if res.status == "error":
            if why == "rerun":
                retry = datetime.now(UTC) + RERUN_RETRY
                self._arm_rerun(campaign, as_of, retry)
                nxt = local_time(retry, self.ws.tz)
            else:
                nxt = f"the next fire ({self._next(campaign)})"
            data |= {"status": "error", "error": res.error, "error_type": res.error_type}
            log.error(
                "run %s failed: %s — will retry at %s",
                run_id,
                one_line(res.error),
                nxt,
                extra={"data": data},
            )
            return HANDLED
        summary = res.summary
        data |= {"status": "partial" if res.failed else "done", "summary": summary}
        level = logging.WARNING if res.failed else logging.INFO
        log.log(level, summary_line(summary, res.failed, seconds), extra={"data": data})
        until = summary.get("deferred_until")
        if until:
            at = datetime.fromisoformat(str(until))
            self._arm_rerun(campaign, as_of, at)
            log.info(
                "run %s will be started again at %s for its deferred messages",
                run_id,
                local_time(at, self.ws.tz),
            )
        return HANDLED

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
        return local_time(fires[0], self.ws.tz) if fires else "none"

    # life cycle ------------------------------------------------------------------

    def start(self, close: tuple[int, ...] = ()) -> None:
        """``close``: what the runs' server must not hold of serve's (its lock)."""
        prepare_server(self.child.mp, close)  # before the scheduler's and the endpoint's threads
        schedules = self.plan()
        if self.opts.unsubscribe_port is not None:
            host, port = self.opts.unsubscribe_host, self.opts.unsubscribe_port
            self.unsubscribe = _listen(self.ws, host, port)
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
                local_time(when, self.ws.tz) if when else "none",
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
        """No new run; each run in hand gets SIGTERM and stops after its current batch."""
        with self._lock:
            self.stopping.set()
        self.processes.terminate_all()

    def stop(self) -> None:
        self.request_stop()
        if self.scheduler.running:  # in process, a run can only be asked: wait for its checkpoint
            self.scheduler.shutdown(wait=self.opts.in_process)
        # each run's thread kills its run after the grace period; this only bounds the wait
        for extra in (5.0, 5.0):
            deadline = time.monotonic() + self.opts.stop_grace + extra
            with self._lock:
                while self.running and time.monotonic() < deadline:
                    self._idle.wait(0.1)
                left = len(self.running)
            if not left:
                break
            self.processes.kill_all()
        stop_server(self.child.mp)
        if self.unsubscribe is not None:
            self.unsubscribe.stop()
        log.info(
            "stopped after %d run(s)%s",
            self.runs,
            f"; {self.interrupted} interrupted, resumed at the next start"
            if self.interrupted
            else "",
            extra={"data": {"event": "stop", "runs": self.runs, "interrupted": self.interrupted}},
        )


def _listen(ws: Workspace, host: str, port: int) -> UnsubscribeServer:
    """The endpoint of `serve --unsubscribe-port`, started; a port it cannot have is told."""
    from segmerge.serve.endpoint.server import UnsubscribeServer  # only with the endpoint

    try:
        server = UnsubscribeServer(ws, host, port)
    except OSError as exc:
        raise ConfigError(
            _("cannot listen on {host}:{port}: {value}").format(
                host=host, port=port, value=exc.strerror or exc
            ),
            field="--unsubscribe-port",
        ) from None
    server.start()
    return server
