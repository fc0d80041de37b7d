"""Locks between processes: one writer at a time per destination and per file.

A campaign's own lock (`run-<campaign>.lock`) does not stop two *different*
campaigns from tagging the same contacts file, or the same platform list, at
the same moment; with a read-modify-write destination the later write would
drop the earlier one's tags. So a push holds a lock named after what it
writes to (the resolved path of a file; a platform's connector, name and
settings), and the files connector also locks the file itself around each
rewrite, which covers two workspaces sharing one export. The kernel releases
an ``flock`` when its process dies, so a crash never leaves a stale lock. The
holder writes who it is into the lock file, so a waiting run can say whom it
waits for.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segmerge.ports.connector import Destination

Notify = Callable[[str], None]


def teller(notes: list[str], progress: Callable[[str, int, int], None] | None) -> Notify:
    """How a run says it waits: a note in its summary, and a line in its progress display
    (the phase is the message), so the user sees whom it waits for while it waits."""

    def tell(message: str) -> None:
        notes.append(message)
        if progress is not None:
            progress(message, 0, 0)

    return tell


def lock_dir() -> Path:
    """Where destination locks live: shared by every workspace of this user on this machine
    (`$SEGMERGE_LOCK_DIR` moves it, e.g. onto a disk several machines share)."""
    chosen = os.environ.get("SEGMERGE_LOCK_DIR")
    folder = Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"segmerge-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not chosen and (folder.is_symlink() or folder.stat().st_uid != os.getuid()):
        # someone else made it first (a shared /tmp): keep locks in our own home instead
        folder = Path.home() / ".cache" / "segmerge" / "locks"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextmanager
def hold(path: Path, who: str, notify: Notify | None = None) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if need be), waiting for its holder if any.

    The lock file is removed on release, so none is left beside a shop's data; a waiter
    that got the lock of a file removed meanwhile sees it is no longer ``path`` and
    tries again, so two processes never both hold it.
    """
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if notify is not None and not told:
                notify(f"waiting for {holder(fd) or 'another segmerge'} to finish writing")
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed that file as it released it
    try:
        stamp = {
            "who": who,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with suppress(OSError):  # who holds it is a courtesy: a full disk must not stop us
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(stamp).encode(), 0)
        yield
    finally:
        with suppress(OSError):
            os.unlink(path)  # still ours: nobody else can hold it now
        os.close(fd)  # releases the lock


def holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (best effort: it may be mid-write)."""
    try:
        data: Any = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{data['who']} (pid {data['pid']} on {data['host']}, since {data['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextmanager
def destination_lock(dest: Destination, who: str, notify: Notify | None = None) -> Iterator[None]:
    """Held while a run pushes to ``dest``; a second run pushing there waits its turn."""
    digest = hashlib.sha256(dest.lock_identity().encode()).hexdigest()[:24]
    with hold(lock_dir() / f"dest-{digest}.lock", who, notify):
        yield


@contextmanager
def file_lock(path: Path, who: str = "segmerge", notify: Notify | None = None) -> Iterator[None]:
    """Around one read-modify-write of ``path``: a lock file beside it (``path`` itself is
    replaced by each rewrite, so a lock on it would be on the old file)."""
    with hold(path.with_name(f".{path.name}.segmerge-lock"), who, notify):
        yield
