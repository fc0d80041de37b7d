"""A send throttle for the smtp destination: messages per second and per hour.

Relays and providers publish both kinds of limit ("10 per second, 2,000 per
hour") and answer the excess with 421/451, or silently start to defer or
junk mail. The throttle never drops anything: it makes the sender *wait*.

- per second: messages are spaced evenly, ``1 / rate`` seconds apart, with
  no catch-up burst after an idle spell (a server sees a steady trickle,
  never ``rate`` messages in the same millisecond);
- per hour: a sliding window of the send times of the last hour; when it is
  full, the sender sleeps until its oldest entry is an hour old.

One throttle is shared by every connector instance of the same relay and
login in a process (``shared``), so a long-lived ``segmerge serve`` that runs
several campaigns through one relay honours the limit for all of them together.
The clock and the sleep are injectable so that tests need not wait an hour.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

_SHARED: dict[tuple[object, ...], Throttle] = {}
_SHARED_LOCK = threading.Lock()


class Throttle:
    def __init__(
        self,
        per_second: float | None = None,
        per_hour: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour or 0
        self.clock = clock
        self.sleep = sleep
        self._next = float("-inf")  # earliest time of the next send (per-second spacing)
        self._hour: deque[float] = deque()  # send times within the last hour
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds slept, for reports and tests

    @property
    def active(self) -> bool:
        return bool(self.interval or self.per_hour)

    def wait(self) -> float:
        """Block until one more message may go, count it as sent; return the seconds slept."""
        if not self.active:
            return 0.0
        slept = 0.0
        with self._lock:
            while True:
                now = self.clock()
                delay = max(0.0, self._next - now) if self.interval else 0.0
                if self.per_hour:
                    while self._hour and self._hour[0] <= now - 3600.0:
                        self._hour.popleft()
                    if len(self._hour) >= self.per_hour:
                        delay = max(delay, self._hour[0] + 3600.0 - now)
                if delay <= 0:
                    break
                self.sleep(delay)
                slept += delay
            if self.interval:
                self._next = max(self._next, now) + self.interval
            if self.per_hour:
                self._hour.append(now)
            self.waited += slept
        return slept


def shared(key: tuple[object, ...], per_second: float | None, per_hour: int | None) -> Throttle:
    """The process-wide throttle of one relay and login (same limits => same throttle)."""
    full = (*key, per_second, per_hour)
    with _SHARED_LOCK:
        throttle = _SHARED.get(full)
        if throttle is None:
            throttle = _SHARED[full] = Throttle(per_second, per_hour)
        return throttle
