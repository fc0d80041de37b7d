"""Client-side pacing to a platform's documented request rate.

Kept apart from the HTTP client because it is plain arithmetic on a clock:
a connector can pace anything with it (calls, batches), and its evenness is
what lets a fixed-window server limit be reached at ~100 % without a 429.
"""

from __future__ import annotations

import threading
import time


class RateLimit:
    """At most ``requests`` calls per ``per_seconds``, spread evenly, shared by threads.

    Calls are spaced ``per_seconds / requests`` apart (a token bucket with a
    burst of ``burst``, default 1): an even pace is what keeps a fixed-window
    server limit from ever tripping, while reaching ~100% of it over time.
    ``pause(seconds)`` holds every thread back, e.g. after a 429.
    """

    def __init__(self, requests: float, per_seconds: float = 1.0, burst: int = 1) -> None:
        if requests <= 0 or per_seconds <= 0:
            raise ValueError("a rate limit needs positive requests and seconds")
        self.interval = per_seconds / requests
        self.burst = max(1, burst)
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's turn; return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            earliest = now - self.interval * (self.burst - 1)
            slot = max(self._next, earliest)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
            return wait
        return 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)
