"""What serve says of a run it stopped, when the run never answered."""

from __future__ import annotations

import multiprocessing
import signal
import time
from typing import Any

from segmerge.serve.child import STOPPED_EARLY, RunProcess


def _deaf(ready: Any) -> None:
    """A run busy past its batch: the stop signal only sets its flag."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


def _stopped(kill: bool):
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    if kill:
        proc = fork.Process(target=_deaf, args=(ready,))
    else:  # before the run set its handler: SIGTERM's default action ends it
        proc = fork.Process(target=time.sleep, args=(60,))
    proc.start()
    if kill:
        assert ready.wait(30)
    run = RunProcess(proc, "profils", "profils@2026-12-01", 3600, 10, time.monotonic())
    run.terminate("shutdown")
    if kill:  # what tick() does once the grace is over
        run.kill()
    proc.join(30)
    return run.outcome(None)


def test_a_run_the_stop_signal_ended_before_it_began_was_not_killed_after_a_grace() -> None:
    said = _stopped(kill=False)
    assert (said.status, said.error) == ("interrupted", STOPPED_EARLY)


def test_a_run_killed_at_the_end_of_the_grace_says_so() -> None:
    said = _stopped(kill=True)
    assert said.status == "interrupted" and said.error_type == "killed"
    assert "after the stop signal" in said.error
