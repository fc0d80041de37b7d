"""Keeping Python's garbage collector off the objects a long step started with.

A run holds large, long-lived heaps (data frames' object columns, 100,000
actions, a snapshot's tables). While a pull, a push or a render creates
objects by the million, the collector's full passes would scan all of that
again and again: each pass stalls every thread (a tenth of a second with
every connection idle), and a forked render worker touching every object
copies the pages it touches. ``frozen_heap`` moves what exists now out of the
collector's sight for the step, and gives it back after; nested uses freeze
once.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_lock = threading.Lock()


@contextmanager
def frozen_heap() -> Iterator[None]:
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
