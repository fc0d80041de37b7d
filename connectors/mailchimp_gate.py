"""Mailchimp's connection cap on the client side: at most 10 requests in flight.

Mailchimp limits *simultaneous connections* (10 per user, the 11th answered
429 without Retry-After), not requests per second, so the fast and polite
client keeps exactly as many requests in flight as it may, and hands a
freed connection to the next request at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Gate:
    """At most ``limit`` requests in flight, found without hammering a shared key.

    Slow start: the cap begins at ``start`` (4) and opens one more connection every
    ``ramp_gap`` seconds up to the ceiling (10): an unshared key is at full speed
    within a third of a second, and a key another app already uses is probed a
    connection at a time rather than hit by a burst of ten (it may see the few
    probes sent before the first refusal came back refused too). The first 429
    ends the slow start and lowers the cap below what was refused; afterwards the
    cap grows by one only every ``probe_after`` successes, to win back connections
    the other app freed, so a settled client meets at most one 429 at a time.

    Waiters are served first come, first served, and a freed connection wakes
    only the first of them: the calls of the batch handed over first go first, so
    it ends while the next batch takes over its connections (woken at random, two
    batches would end together and leave every connection idle while both are
    recorded), and ten waiters are not all woken to find one place.
    """

    def __init__(
        self,
        ceiling: int,
        start: int = 4,
        probe_after: int = 200,
        ramp_gap: float = 0.05,
        clock: Callable[[], float] = time.monotonic,  # tests move their own
    ) -> None:
        self.clock = clock
        self.ceiling = ceiling
        self.start = min(start, ceiling)
        self.limit = self.start
        self.active = 0
        self.probe_after = probe_after
        self.ramp_gap = ramp_gap
        self._slow_start = True
        self._began: float | None = None
        self._streak = 0
        self._lock = threading.Lock()
        self._queue: deque[threading.Event] = deque()  # waiters, in order of arrival
        self._busy = 0.0  # integral of `active` over time: connections in use x seconds
        self._since = clock()

    def _tick(self) -> None:
        now = self.clock()
        self._busy += self.active * (now - self._since)
        self._since = now

    def busy_seconds(self) -> float:
        """Connections in use integrated over time (÷ elapsed = mean concurrency)."""
        with self._lock:
            self._tick()
            return self._busy

    def _ramp(self, now: float) -> None:
        if self._slow_start and self.limit < self.ceiling:
            if self._began is None:
                self._began = now
            steps = int((now - self._began) / self.ramp_gap)
            self.limit = max(self.limit, min(self.ceiling, self.start + steps))

    def _admit(self) -> None:
        self._tick()
        self.active += 1

    def _wake_first(self) -> None:
        if self._queue and self.active < self.limit:
            self._queue[0].set()

    def __enter__(self) -> Gate:
        with self._lock:
            self._ramp(self.clock())
            if not self._queue and self.active < self.limit:
                self._admit()
                return self
            me = threading.Event()
            self._queue.append(me)
        try:
            while True:
                ramping = self._slow_start and self.limit < self.ceiling
                me.wait(self.ramp_gap if ramping else None)
                with self._lock:
                    self._ramp(self.clock())
                    if self._queue[0] is me and self.active < self.limit:
                        self._queue.popleft()
                        self._admit()
                        self._wake_first()  # the next in line may fit too
                        return self
                    me.clear()
        except BaseException:
            with self._lock:
                if me in self._queue:
                    self._queue.remove(me)
                self._wake_first()
            raise

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._tick()
            self.active -= 1
            self._wake_first()

    def throttled(self) -> None:
        """A 429: back below the cap that was refused (two steps during the slow start,
        whose last raise may have been let in before the refusal of the one before came
        back)."""
        with self._lock:
            drop = 2 if self._slow_start else 1
            self.limit = max(1, min(self.limit, self.active + 1) - drop)
            self._slow_start = False
            self._streak = 0

    def succeeded(self) -> None:
        with self._lock:
            self._streak += 1
            if (
                not self._slow_start
                and self.limit < self.ceiling
                and (self._streak >= self.probe_after)
            ):
                self.limit += 1
                self._streak = 0
                self._wake_first()
