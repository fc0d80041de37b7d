"""The limiter's arithmetic on an injected clock: no test here sleeps.

What a user gets from it: an hourly budget is spendable at once, the pace never
goes past what the vendor says is left, and a spent budget holds every call until
the vendor's reset, after which the budget is whole again.
"""

from __future__ import annotations

import threading

import pytest

from segmerge.ports.rate_limit import RateLimit
from tests.virtual_clock import Clock


def limiter(clock: Clock, requests: float, per: float, burst: int = 1) -> RateLimit:
    return RateLimit(requests, per, burst, clock=clock, sleep=clock.sleep)


def go(rate: RateLimit, clock: Clock, n: int) -> list[float]:
    """The clock time each of n calls went."""
    times = []
    for _ in range(n):
        rate.acquire()
        times.append(clock.now)
    return times


def test_a_fresh_limiter_lets_its_whole_burst_go_at_once_then_paces():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)  # Brevo's "other" endpoints, general tier
    times = go(rate, clock, 97)
    assert times[:95] == [1000.0] * 95  # was: one call every 36 s from the first
    assert times[95] == pytest.approx(1036.0) and times[96] == pytest.approx(1072.0)


def test_burst_one_is_an_even_pace_from_the_first_call():
    clock = Clock()
    times = go(limiter(clock, 10, 1.0), clock, 4)
    assert times == pytest.approx([1000.0, 1000.1, 1000.2, 1000.3])


def test_the_vendor_count_is_a_ceiling_before_its_reset():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    go(rate, clock, 10)
    assert rate.observe(remaining=3, reset_seconds=1200) == 0.0  # another job spent the rest
    times = go(rate, clock, 4)
    assert times[:3] == [1000.0] * 3
    assert times[3] == pytest.approx(2200.0)  # the 4th waits for the reset, not 36 s


def test_remaining_zero_holds_everyone_until_the_reset_then_the_bucket_is_full():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    go(rate, clock, 1)
    assert rate.observe(0, 1380) == pytest.approx(1380)
    times = go(rate, clock, 95)
    assert times == [pytest.approx(2380.0)] * 95  # the whole budget again after the reset


def test_the_vendor_can_give_back_what_the_pace_held_but_never_beyond_the_burst():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    go(rate, clock, 95)  # the local bucket is empty
    rate.observe(5, 1800)  # the vendor still allows 5 in this hour
    assert go(rate, clock, 5) == [1000.0] * 5
    assert go(rate, clock, 1) == [pytest.approx(2800.0)]
    per_second = limiter(clock, 10, 1.0)
    per_second.observe(9, 1.0)  # 9 left of 10 this second: still one call every 0.1 s
    start = clock.now
    assert go(per_second, clock, 3) == pytest.approx([start, start + 0.1, start + 0.2])


def test_calls_sent_since_the_answered_one_are_taken_off_the_count():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    answered: list[float] = []

    def first_call() -> None:  # its answer comes back after 10 other calls went
        rate.acquire()
        sent.set()
        done.wait()
        answered.append(rate.observe(10, 600))

    sent, done = threading.Event(), threading.Event()
    t = threading.Thread(target=first_call)
    t.start()
    assert sent.wait(10)
    go(rate, clock, 10)
    done.set()
    t.join()
    assert answered == [pytest.approx(600)]  # 10 left as of that call, 10 sent since: spent
    assert go(rate, clock, 1) == [pytest.approx(1600.0)]


def test_a_late_answer_cannot_raise_the_count_again():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    go(rate, clock, 1)
    rate.observe(2, 600)
    clock.now += 1
    rate.observe(50, 599)  # an older answer overtaken by the first: same window
    times = go(rate, clock, 3)
    assert times[:2] == [1001.0, 1001.0] and times[2] == pytest.approx(1600.0)


def test_after_the_reset_the_old_count_no_longer_binds():
    clock = Clock()
    rate = limiter(clock, 100, 3600, burst=95)
    rate.observe(1, 60)
    clock.now += 61
    assert go(rate, clock, 95) == [1061.0] * 95


def test_pause_holds_every_call_then_paces():
    clock = Clock()
    rate = limiter(clock, 10, 1.0, burst=5)
    rate.pause(2.0)
    times = go(rate, clock, 3)
    assert times == pytest.approx([1002.0, 1002.1, 1002.2])


def test_threads_share_one_budget():
    clock = Clock()
    lock = threading.Lock()
    rate = RateLimit(100, 3600, 95, clock=clock, sleep=lambda s: None)
    waits: list[float] = []

    def worker() -> None:
        for _ in range(25):
            w = rate.acquire()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits)[:95] == [0.0] * 95 and all(w > 0 for w in sorted(waits)[95:])
