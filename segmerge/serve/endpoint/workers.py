"""Threads for the endpoint's disk work, as daemons, behind the Executor interface."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any


class DaemonPool(Executor):
    """Threads for the disk work of valid POSTs, as daemons: a recording stuck on a locked
    ledger never holds up the exit of `serve` (SQLite rolls an unfinished write back, and
    the person, who got no answer, tries again and is recorded then)."""

    def __init__(self, workers: int) -> None:
        self.jobs: SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = SimpleQueue()
        self.threads = [
            threading.Thread(target=self._work, name="unsubscribe-record", daemon=True)
            for _ in range(workers)
        ]
        for t in self.threads:
            t.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.jobs.put((future, lambda: fn(*args, **kwargs)))
        return future

    def close(self, timeout: float) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            future, fn = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
