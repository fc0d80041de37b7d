"""Handing back to the system the memory a step of a run freed."""

from __future__ import annotations

import ctypes
import functools

import pyarrow as pa


def release_memory() -> None:
    """Give the system back what the segmentation freed but the allocators kept.

    Arrow's pool (mimalloc) and glibc's malloc keep the pages of the plan's result, of
    its pandas copy and of the checks for the next allocation: at a million contacts
    about 110 MiB after opening a campaign, which the whole run then carried while
    it renders (and more after choosing the sends). Returning them costs a few
    milliseconds once a step. Elsewhere than glibc there is nothing to trim."""
    pa.default_memory_pool().release_unused()
    if (libc := _glibc()) is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it has malloc_trim (glibc): looked up in the
    symbols already loaded, not with ctypes.util.find_library, which starts an
    ``ldconfig`` process."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None
