"""frozen_heap: what exists when a long step starts is out of the collector's sight, once."""

from __future__ import annotations

import gc

from segmerge.heap import frozen_heap


def test_nested_steps_freeze_once_and_give_the_heap_back_at_the_end():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with frozen_heap():  # a render inside a push: nothing more, nothing less
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen  # the inner exit did not unfreeze
    assert gc.get_freeze_count() == 0


def test_an_error_inside_still_unfreezes():
    try:
        with frozen_heap():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.get_freeze_count() == 0
