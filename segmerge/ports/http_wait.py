"""How an HTTP client waits out a vendor's spent budget: patiently, and out loud.

A platform with an hourly budget (Brevo: 100 calls an hour on most endpoints)
can make a run wait for half an hour. That is the right thing to do, but a run
that goes silent for half an hour looks hung, and a wait longer than anyone
would sit through is better stopped at once with the time it would resume:
the next run picks up where this one stopped (pulled streams and pushed
actions are kept). :class:`BudgetWatch` holds both decisions for one client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from segmerge.errors import ConnectorError
from segmerge.i18n import _

#: a wait shorter than this is ordinary pacing, not worth a line
TELL_AFTER = 5.0
#: how long a run waits for a vendor's budget to come back unless told otherwise
MAX_WAIT = 3600.0

log = logging.getLogger("segmerge.ports.http")


def warn(message: str) -> None:
    """The default way a wait is told: the ``segmerge`` logger, which `segmerge run` shows
    on stderr (above its progress bars) and `segmerge serve` writes to its log."""
    log.warning(message)


class BudgetWatch:
    """Remembers until when a vendor said no call may go, tells it once, and refuses a wait
    longer than ``max_wait``."""

    def __init__(
        self,
        source: str,
        *,
        notify: Callable[[str], None] | None = None,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.notify = notify or warn
        self.max_wait = max_wait
        self.clock = clock
        self.wall = wall
        self._resume_at = float("-inf")  # on `clock`
        self._told_until = float("-inf")
        self._lock = threading.Lock()

    def spent(self, seconds: float) -> None:
        """The vendor's answer says its budget is spent for ``seconds``."""
        with self._lock:
            self._resume_at = max(self._resume_at, self.clock() + seconds)

    def before_call(self, endpoint: str) -> None:
        """Before a call: say so if it must wait long; stop if it would wait too long."""
        with self._lock:
            left = self._resume_at - self.clock()
        if left > self.max_wait:
            raise self.too_long(endpoint, left)
        self.tell(endpoint, left)

    def tell(self, endpoint: str, seconds: float) -> None:
        """Say once (per resume time) that calls stop for ``seconds``, and until when."""
        if seconds <= TELL_AFTER:
            return
        with self._lock:
            resume = self.clock() + seconds
            if resume <= self._told_until + TELL_AFTER:  # another thread, the same reset
                return
            self._told_until = resume
        self.notify(
            f"{self.source}: the platform's request budget is spent ({endpoint}); "
            f"resuming at {self._at(seconds)} (in {duration(seconds)})"
        )

    def too_long(self, endpoint: str, seconds: float, reason: str = "") -> ConnectorError:
        err = ConnectorError(
            _(
                "{source}: {endpoint}: the platform's request budget is spent until "
                "{until} (in {wait}); a run waits at most {most} for one "
                "call{reason}"
            ).format(
                source=self.source,
                endpoint=endpoint,
                until=self._at(seconds),
                wait=duration(seconds),
                most=duration(self.max_wait),
                reason=_(": {reason}").format(reason=reason) if reason else "",
            ),
            field=self.source,
            hint=_(
                "run again after {until}: the next run resumes where this one "
                "stopped (what was pulled and pushed is kept)"
            ).format(until=self._at(seconds)),
        )
        err.status = 429
        return err

    def _at(self, seconds: float) -> str:
        when = datetime.fromtimestamp(self.wall() + seconds, UTC)
        if seconds >= 20 * 3600:
            return when.strftime("%Y-%m-%d %H:%M:%S UTC")
        return when.strftime("%H:%M:%S UTC")


def duration(seconds: float) -> str:
    """23 min, 2 h 05 min, 40 s: how long, as a person says it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
