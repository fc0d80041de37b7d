"""The Mailchimp connection gate: never more in flight than allowed, first come first served."""

from __future__ import annotations

import threading
import time

from connectors.mailchimp_gate import Gate


def until(condition, deadline: float = 30.0) -> None:
    """Poll ``condition`` until it holds, failing after a generous deadline."""
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "the gate never got there"
        time.sleep(0.001)


def test_waiters_get_a_freed_connection_in_order_of_arrival_and_never_exceed_the_cap():
    gate = Gate(2, start=2)
    order: list[int] = []
    peak = 0
    lock = threading.Lock()
    holders = [threading.Event() for _ in range(2)]

    def hold(i: int) -> None:
        with gate:
            holders[i].wait(5)

    def wait_turn(i: int) -> None:
        nonlocal peak
        with gate:
            with lock:
                order.append(i)
                peak = max(peak, gate.active)
            time.sleep(0.01)

    first = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for t in first:
        t.start()
    until(lambda: gate.active == 2)
    waiters = []
    for i in range(6):  # queued one after another while both connections are held
        t = threading.Thread(target=wait_turn, args=(i,))
        t.start()
        waiters.append(t)
        until(lambda n=i + 1: len(gate._queue) == n)
    for h in holders:
        h.set()
    for t in first + waiters:
        t.join(5)
    assert order == [0, 1, 2, 3, 4, 5]
    assert peak <= 2 and gate.active == 0 and not gate._queue


def test_a_refusal_lowers_the_cap_ends_the_slow_start_and_successes_win_it_back():
    now = [100.0]
    gate = Gate(10, start=4, ramp_gap=0.05, probe_after=3, clock=lambda: now[0])
    with gate:
        assert gate.limit == 4
    now[0] += 0.12
    with gate:
        assert gate.limit == 6  # one more every 50 ms since the first call
        gate.throttled()  # refused with one call in flight: two steps below what it had
    assert gate.limit == 1
    now[0] += 10
    with gate:
        assert gate.limit == 1  # no more time-based opening after a refusal
    for _ in range(3):
        gate.succeeded()
    assert gate.limit == 2  # one more connection per `probe_after` successes
