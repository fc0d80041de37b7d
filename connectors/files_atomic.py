"""Replacing a shop's file whole or not at all, and never over someone else's edit.

The new content is written next to the file, fsynced, given the file's mode, and
renamed over it (`os.replace`, atomic); the folder is fsynced so the rename itself
survives a power cut. Just before the rename the file's size and time are compared
with what was read: someone who edited it meanwhile (a person in a spreadsheet)
keeps their edit, and the batch is tried again later. Two segmerge processes never
get there at once: they take turns under :func:`segmerge.ports.locks.file_lock`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


class FileChanged(OSError):
    """The file changed on disk while the batch was being prepared; try again later."""


def atomic_write(path: Path, write: Callable[[Path], None], before: os.stat_result) -> None:
    """Write next to ``path``, fsync, check nobody changed it meanwhile, rename over it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        shutil.copymode(path, tmp)
        now = os.stat(path)
        if (now.st_mtime_ns, now.st_size) != (before.st_mtime_ns, before.st_size):
            raise FileChanged(f"{path.name} changed on disk meanwhile")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
