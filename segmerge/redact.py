"""The one place that hides credentials from everything a person or a file can see.

A secret leaks through many doors: a vendor that echoes the Authorization header
in its 401 body, an exception that quotes a header, a traceback, a log line, a
ledger detail. Guarding each door separately is how one gets forgotten, so every
secret :func:`segmerge.workspace.secrets.lookup` returns (and every credential header an
HTTP client is given) is registered here, with the encodings it travels in
(URL-quoted, base64, Basic auth's ``user:secret``, JSON and repr escapes), and
:func:`redact` replaces them all. Error messages, the CLI's output streams, the
``--traceback`` printer, log records and the ledger's details all pass through it.

Secrets shorter than :data:`MIN_LENGTH` are not registered: hiding every "abc"
would garble messages and protect nothing worth protecting.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import quote, quote_plus

MARK = "***redacted***"
MIN_LENGTH = 4

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
_ordered: tuple[str, ...] = ()


def _forms(secret: str) -> set[str]:
    """The secret as it may appear in text: raw, URL-quoted, base64, JSON and repr escapes."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
    }
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: the raw form is enough
        forms.add(base64.b64encode(secret.encode("utf-8")).decode("ascii"))
    return {f for f in forms if len(f) >= MIN_LENGTH}


def add(*secrets: str | None) -> None:
    """Hide these secrets (and their encodings) from now on, in this process."""
    global _pattern, _ordered
    new: set[str] = set()
    for s in secrets:
        if s and len(s) >= MIN_LENGTH:
            new |= _forms(s)
            if s != s.strip():  # a pasted key with a stray space still hides its core
                new |= _forms(s.strip()) if len(s.strip()) >= MIN_LENGTH else set()
    with _lock:
        if new <= _known:
            return
        _known.update(new)
        # longest first: a secret containing another is hidden whole
        ordered = tuple(sorted(_known, key=len, reverse=True))
        _ordered = ordered
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))
        _cached.cache_clear()


def add_basic(user: str, secret: str) -> None:
    """Hide HTTP Basic auth's ``base64(user:secret)`` as well as the secret itself."""
    add(secret)
    for enc in ("latin-1", "utf-8"):  # requests encodes latin-1; other clients utf-8
        with contextlib.suppress(UnicodeEncodeError):
            add(base64.b64encode(f"{user}:{secret}".encode(enc)).decode("ascii"))


def add_header(name: str, value: str) -> None:
    """A credential header (``Authorization: Bearer …``, ``api-key: …``): hide its value
    and, for ``Bearer``/``Basic``/``Token`` schemes, the token after the scheme."""
    add(value)
    scheme, _, token = value.partition(" ")
    if token and scheme.lower() in ("bearer", "basic", "token", "apikey"):
        add(token)


def clear() -> None:
    """Forget every secret (tests only: a process's secrets are otherwise kept for its life)."""
    global _pattern, _ordered
    with _lock:
        _known.clear()
        _pattern, _ordered = None, ()
        _cached.cache_clear()


def redact(text: str) -> str:
    """``text`` with every known secret replaced by :data:`MARK`."""
    pattern = _pattern
    if pattern is None or not text or not isinstance(text, str):
        return text
    if len(text) > 4096:  # a large output (a CSV): a substring search per form is far faster
        return pattern.sub(MARK, text) if any(f in text for f in _ordered) else text
    return _cached(text, pattern)


@functools.lru_cache(maxsize=4096)
def _cached(text: str, pattern: re.Pattern[str]) -> str:
    """Keyed by the pattern too: a secret added meanwhile is never served from the cache."""
    return pattern.sub(MARK, text)


def redact_value(value: Any) -> Any:
    """Strings redacted inside dicts, lists and tuples (a log record's structured data)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


class RedactFilter(logging.Filter):
    """Redacts a record's message, its exception text and its ``data`` before any handler.

    Installed on handlers (a filter on a logger does not see its children's
    records); the message is formatted here once, so no handler formats it again
    from the raw arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        data = getattr(record, "data", None)
        if data is not None:
            record.data = redact_value(data)
        return True


def install(handlers: Iterable[logging.Handler]) -> None:
    """Put one :class:`RedactFilter` on each handler (idempotent)."""
    for h in handlers:
        if not any(isinstance(f, RedactFilter) for f in h.filters):
            h.addFilter(RedactFilter())


class RedactingStream:
    """A text stream (stdout, stderr) whose writes are redacted; everything else passes.

    The CLI's consoles and ``sys.stdout.write`` both reach the terminal through
    it: rich writes one whole rendered print at a time, so a secret is not cut
    across two writes.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
