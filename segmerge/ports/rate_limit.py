"""Client-side pacing to a platform's documented request rate, corrected by its own counts.

Kept apart from the HTTP client because it is plain arithmetic on a clock:
a connector can pace anything with it (calls, batches), and its evenness is
what lets a fixed-window server limit be reached at ~100 % without a 429.

The documented rate is a guess about the account; the vendor's answers are not.
When a platform says how many calls are left before its window resets
(``observe``), that count is a ceiling the pacing never goes past, and a spent
budget holds every call until the reset instead of earning a 429 per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimit:
    """At most ``requests`` calls per ``per_seconds``, spread evenly, shared by threads.

    A token bucket of ``burst`` calls (default 1) refilled one call every
    ``per_seconds / requests``; it starts full, so a fresh limiter lets ``burst``
    calls go at once (an hourly budget is meant to be spendable in a burst) and
    then paces: an even pace is what keeps a fixed-window server limit from ever
    tripping, while reaching ~100 % of it over time. ``pause(seconds)`` holds
    every thread back, e.g. after a 429; ``observe`` trusts the vendor's count.
    """

    def __init__(
        self,
        requests: float,
        per_seconds: float = 1.0,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests <= 0 or per_seconds <= 0:
            raise ValueError("a rate limit needs positive requests and seconds")
        self.interval = per_seconds / requests
        self.burst = max(1, burst)
        self.clock = clock
        self.sleep = sleep
        # GCRA: the bucket is full whenever the theoretical arrival time is not ahead
        # of the clock; a call may go once it is at most `burst - 1` intervals ahead
        self._tat = float("-inf")
        self._hold = float("-inf")  # nobody goes before this (a 429, a spent budget)
        # the vendor's own count: calls it still allows before `_reset_at`
        self._left: int | None = None
        self._reset_at = float("-inf")
        self._issued = 0  # calls let through so far: a vendor's count is as of one of them
        self._tickets: dict[int, int] = {}  # thread -> the number of its latest call
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's turn; return the seconds waited."""
        with self._lock:
            now = self.clock()
            self._spend_vendor_budget(now)
            slot = max(now, self._tat - self.interval * (self.burst - 1), self._hold)
            self._tat = max(self._tat, slot) + self.interval
            self._issued += 1
            self._tickets[threading.get_ident()] = self._issued
        wait = slot - now
        if wait > 0:
            self.sleep(wait)
            return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        """Nobody goes for ``seconds``; then the pace restarts from an empty bucket."""
        with self._lock:
            until = self.clock() + seconds
            self._hold = max(self._hold, until)
            self._tat = max(self._tat, until + self.interval * (self.burst - 1))

    def observe(self, remaining: int, reset_seconds: float) -> float:
        """Take the vendor's word: ``remaining`` calls are allowed in the next ``reset_seconds``.

        Call it from the thread that made the call the vendor answered (after
        its ``acquire``): calls let through since then are not in the vendor's
        count yet, so they are taken off it, never risked twice. The bucket
        may then hold up to ``min(burst, remaining)`` calls (the documented
        pace still spreads the rest: a platform can have a per-second limit
        under an hourly one), and no more than ``remaining`` go before the
        reset; ``remaining`` 0 holds everyone until it, and the bucket is full
        again then. Returns the seconds until a call may go again because the
        budget is spent (0.0 while some is left), for the caller to say so.
        """
        with self._lock:
            now = self.clock()
            ticket = self._tickets.get(threading.get_ident(), self._issued)
            left = remaining - (self._issued - ticket)
            reset_at = now + max(0.0, reset_seconds)
            if left <= 0:
                self._spent_until(reset_at)
                return max(0.0, self._hold - now)
            if self._left is None or now >= self._reset_at or reset_at > self._reset_at:
                self._left, self._reset_at = left, reset_at  # the freshest count there is
            else:  # an answer overtaken by a later one: it can only lower the count
                self._left = min(self._left, left)
            level = min(self.burst, left)
            self._tat = min(self._tat, now + self.interval * (self.burst - level))
            return 0.0

    def _spend_vendor_budget(self, now: float) -> None:
        """One call off the vendor's count; a spent count holds everyone until the reset."""
        if self._left is None:
            return
        if now >= self._reset_at:  # the vendor's window has turned: a fresh budget
            self._tat = min(self._tat, self._reset_at)
            self._left = None
        elif self._left <= 0:
            self._spent_until(self._reset_at)
        else:
            self._left -= 1

    def _spent_until(self, reset_at: float) -> None:
        self._hold = max(self._hold, reset_at)
        self._tat = min(self._tat, reset_at)  # the vendor's window starts full again
        self._left, self._reset_at = None, float("-inf")
