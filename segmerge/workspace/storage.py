"""What a lost, corrupt or full store means to the user, as errors with the file's name.

Two kinds of trouble, with different exit codes. A workspace whose precious
state (signing key, ledger) is missing or damaged before anything started is a
:class:`StateError` (exit 2): nothing ran, and the fix is `segmerge doctor`. A
disk that fills up or a database page that turns out corrupt *during* a run is
a :class:`StorageError` (exit 1): the run stopped, the ledger says what was
done, and the message names the file instead of an "internal error".
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segmerge.errors import SegmergeError
from segmerge.i18n import _

#: OS errors that mean "the disk cannot take this write", not "a bug"
DISK_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EIO) if e
)
RESTORE_HINT = (
    "`segmerge doctor` says what is wrong; `segmerge doctor --restore` puts back the newest "
    "good backup"
)


class StateError(SegmergeError):
    """The signing key or the ledger is missing, unreadable or not the workspace's own."""

    exit_code = 2


class StorageError(SegmergeError):
    """A run stopped because a file could not be written (full disk) or read (corrupt page)."""

    exit_code = 1


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def is_corrupt(exc: BaseException) -> bool:
    """SQLite's words for a file that is not (or no longer) a sound database."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "corrupt" in text
    )


def is_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("is full" in text or "disk i/o" in text)


def storage_error(exc: BaseException, file: str | Path | None) -> StorageError | None:
    """The user-facing error for ``exc`` if it is a full disk or a corrupt database, else None."""
    if isinstance(exc, OSError) and is_disk_error(exc):
        where = exc.filename or file
        reason = exc.strerror or os.strerror(exc.errno or 0)
        return StorageError(
            _("cannot write: {reason}").format(reason=reason),
            file=where,
            hint=_(
                "free some space (or fix the disk), then run the same command again: "
                "what was done is recorded, what was not is redone"
            ),
        )
    if is_full(exc):
        return StorageError(
            _("the database cannot grow: {exc}").format(exc=exc),
            file=file,
            hint=_(
                "free some space, then run the same command again: nothing that was "
                "not done is recorded as done"
            ),
        )
    if is_corrupt(exc):
        return StorageError(
            _("the database is damaged: {exc}").format(exc=exc), file=file, hint=_(RESTORE_HINT)
        )
    return None


@contextmanager
def named_storage_errors(file: str | Path) -> Iterator[None]:
    """Turn a full disk or a corrupt database met inside into a :class:`StorageError`
    (``file`` is named when the error does not say which file it was)."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as exc:
        problem = storage_error(exc, getattr(exc, "filename", None) or file)
        if problem is None:
            raise
        raise problem from None
