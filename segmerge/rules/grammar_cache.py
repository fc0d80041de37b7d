"""The rule grammar's parser tables, kept between starts in the user's cache.

Building the LALR tables from the grammar costs ~70 ms of CPU at every start of every
command that reads a rule set; loading them back costs ~6 ms. lark's own
``cache=True`` pickles into the shared temporary directory, where another account
could leave a file for us to unpickle, and writes in place, so two starts at once can
read half a file. Here the copy lives in the user's cache directory
(``$XDG_CACHE_HOME/segmerge``, else ``~/.cache/segmerge``), is loaded only if that user
owns it and nobody else may write it, carries a digest of its bytes (a truncated or
damaged copy is rebuilt, never trusted), and is written whole-or-nothing (a temporary
file renamed). Its name hashes the grammar, the options and the lark and Python
versions, so a changed grammar or an upgrade never loads stale tables. Any failure
(read-only or missing home, full disk) only costs the rebuild.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
from typing import Any

import lark
from lark import Lark

__all__ = ["cache_dir", "cached_parser"]


def cached_parser(grammar: str, **options: Any) -> Lark:
    """``Lark(grammar, **options)``, loaded from the cache when a previous start saved it."""
    key = hashlib.sha256(
        f"{grammar}{sorted(options.items())}{lark.__version__}{sys.version}".encode()
    ).hexdigest()[:32]
    folder = cache_dir()
    path = os.path.join(folder, f"rules-grammar-{key}.lark") if folder else None
    parser = _load(path) if path else None
    if parser is None:
        parser = Lark(grammar, **options)
        if path:
            _save(parser, path)
    return parser


def cache_dir() -> str | None:
    """Where the tables are kept; None when no absolute folder is known (a relative
    ``XDG_CACHE_HOME`` is invalid by its specification, and a home that cannot be found
    must not become a ``~`` folder in the current directory)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "segmerge") if os.path.isabs(base) else None


def _load(path: str) -> Lark | None:
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            digest, payload = f.readline().strip(), f.read()
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None
        return Lark.load(io.BytesIO(payload))
    except Exception:  # noqa: BLE001 - a copy that cannot be used is rebuilt, whatever broke
        return None


def _save(parser: Lark, path: str) -> None:
    buffer = io.BytesIO()
    parser.save(buffer)
    payload = buffer.getvalue()
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".rules-grammar-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return
