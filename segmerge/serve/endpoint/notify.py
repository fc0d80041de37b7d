"""One worker thread that tells the source platforms about unsubscribes, from the queue.

Why a thread and not a process per request: each process was a fresh
interpreter loading the engine (~130 MB), started for every POST, replays
included, so a burst of requests was a burst of processes. The thread is one
for the whole server; it wakes when an unsubscribe is queued (or when a retry
is due), takes the due rows in batches, opens each source's connector once
per batch, and closes it after. The person's suppression never waits on it:
the suppression list is written before the answer, the platform is only told.

A source that fails (network, 5xx, cannot be opened) is tried again later
with a doubling delay; a source whose connector has no ``unsubscribe`` method,
or that is no longer configured, is "not told" at once. What each source said
ends up in the audit row (:mod:`segmerge.mail.unsubscribe_queue`).
"""

from __future__ import annotations

import logging
import threading
import time

from segmerge.errors import SegmergeError
from segmerge.mail import unsubscribe_queue as queue
from segmerge.redact import redact
from segmerge.workspace.config import Workspace

log = logging.getLogger("segmerge.unsubscribe")
BATCH = 50  # rows per batch: connectors are opened once per batch
IDLE_WAIT = 300.0  # seconds between two looks at the queue when nothing wakes the worker


def _redact(text: str) -> str:
    """A platform's error can quote a credential."""
    return str(redact(text))


def tell_source(ws: Workspace, name: str, jobs: list[queue.Job]) -> dict[int, tuple[str, str]]:
    """Per job (audit id): (``yes``/``no``/``retry``, what to keep in the audit). Never raises."""
    from segmerge.segment.segmentation import open_source

    try:
        conn = open_source(ws, name)
    except SegmergeError as exc:  # not configured any more, or a setting is wrong: permanent
        return {j.audit_id: ("no", f"{name}: not told ({_redact(exc.message)})") for j in jobs}
    except Exception as exc:
        what = f"{name}: cannot open ({type(exc).__name__}: {_redact(str(exc))})"
        return {j.audit_id: ("retry", what) for j in jobs}
    out: dict[int, tuple[str, str]] = {}
    try:
        if not conn.tells_unsubscribes():
            return {
                j.audit_id: ("no", f"{name}: not told (its connector cannot unsubscribe)")
                for j in jobs
            }
        for j in jobs:
            try:
                # a contact with no address on record may still be known by id to the platform
                targets: list[str | None] = [*j.addresses] or [None]
                for address in targets:
                    conn.unsubscribe(j.contact_id, address)
                out[j.audit_id] = ("yes", f"{name}: done")
            except Exception as exc:  # the suppression list already protects the contact
                text = f"{name}: failed ({type(exc).__name__}: {_redact(str(exc))})"
                out[j.audit_id] = ("retry", text)
    finally:
        try:
            conn.close()
        except Exception as exc:
            log.warning("closing source %s after unsubscribes: %s", name, type(exc).__name__)
    return out


class Notifier:
    """The queue's single consumer, in a daemon thread; ``poke()`` after queueing a row."""

    def __init__(self, ws: Workspace, *, retry_base: float = queue.RETRY_BASE) -> None:
        self.ws = ws
        self.retry_base = retry_base
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="unsubscribe-notify", daemon=True)

    def start(self) -> None:
        self.thread.start()  # the first pass picks up what a previous `serve` left pending

    def poke(self) -> None:
        self.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the call in hand; what is left stays queued for the next start."""
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                wait = self.drain()
            except Exception as exc:  # a locked or damaged audit file: try again later
                log.error("unsubscribe queue: %s: %s", type(exc).__name__, exc)
                wait = 60.0
            self.wake.wait(wait)
            self.wake.clear()

    def drain(self) -> float:
        """Tell what is due, batch after batch; the seconds until the next retry is due."""
        if not (self.ws.state_dir / queue.AUDIT_FILE).exists():
            return IDLE_WAIT  # no unsubscribe yet: nothing to create a file for
        while not self.stopping.is_set():
            with queue.connect(self.ws.state_dir) as db:
                jobs = queue.due(db, time.time(), BATCH)
            if not jobs:
                break
            self._batch(jobs)
        with queue.connect(self.ws.state_dir) as db:
            nxt = queue.next_due(db)
        return IDLE_WAIT if nxt is None else min(IDLE_WAIT, max(0.05, nxt - time.time()))

    def _batch(self, jobs: list[queue.Job]) -> None:
        ws = self._workspace()
        answers: dict[int, dict[str, tuple[str, str]]] = {j.audit_id: {} for j in jobs}
        for name in sorted({s for j in jobs for s in j.sources}):
            if self.stopping.is_set():
                return  # nothing settled: the whole batch is tried again at the next start
            mine = [j for j in jobs if name in j.sources]
            for audit_id, answer in tell_source(ws, name, mine).items():
                answers[audit_id][name] = answer
        with queue.connect(self.ws.state_dir) as db:
            for j in jobs:
                text = queue.settle(
                    db, j, answers[j.audit_id], time.time(), retry_base=self.retry_base
                )
                data = {
                    "event": "unsubscribe",
                    "contact_id": j.contact_id,
                    "addresses": len(j.addresses),
                    "source": text,
                }
                log.info(
                    "unsubscribed contact %s (%d address(es)); source: %s",
                    j.contact_id,
                    len(j.addresses),
                    text,
                    extra={"data": data},
                )

    def _workspace(self) -> Workspace:
        """The workspace as configured now (a source added or fixed since the start counts)."""
        from segmerge.workspace import config as wsmod

        try:
            return wsmod.load(self.ws.root)
        except Exception:
            return self.ws
