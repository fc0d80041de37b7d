"""Virtual time for limiters and clients: sleeping moves it, so a 40-minute wait is instant.

Tests of pacing never depend on how fast the machine is: they read what was slept.
"""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
