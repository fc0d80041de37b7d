"""The RFC 8058 one-click unsubscribe endpoint that `segmerge serve --unsubscribe-port` opens.

- ``POST /unsubscribe?token=T`` with the body ``List-Unsubscribe=One-Click``
  (what a mail client sends for ``List-Unsubscribe-Post``, and what our own
  page's button sends) suppresses the contact by id and by every address
  known for them before answering (:mod:`segmerge.unsubscribe_record`), then
  queues the call that tells the source platform
  (:mod:`segmerge.unsubscribe_queue`, drained by one worker thread,
  :mod:`segmerge.unsubscribe_notify`). A replay answers 200 and records
  nothing more.
- ``GET /unsubscribe?token=T`` only shows a page with a button: mail scanners
  and link previewers fetch every link of a message, so a GET must never
  unsubscribe anyone by itself.
- The token is the one every message carries (an HMAC of the contact id with
  the workspace's key); a token this workspace did not sign gets 403 and
  nothing is recorded. A `test-send` letter's token gets a page saying it was
  a test: a test can never unsubscribe a customer.

It faces the network, so it is one asyncio loop in a thread rather than a
thread per connection: an idle or slow connection costs a socket and a few
bytes, not a thread, and a slowloris client (one byte a second) is cut off
when its whole request has not arrived within ``read_timeout`` seconds
(408). Requests are capped (headers 8 KiB: 431; body 4 KiB: 413), open
connections too: beyond ``max_connections`` a connection gets an immediate
503 with ``Retry-After``, never a hang. The listen backlog is sized for
bursts. Only GET, POST and HEAD are served (405 otherwise). Only a valid POST
touches the disk, in a small thread pool, so a flood of forged requests costs
an HMAC each.

It listens on 127.0.0.1 by default: put it behind the site's reverse proxy
(HTTPS), which maps the public unsubscribe URL of `[mail] unsubscribe_url`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from email.utils import formatdate
from http import HTTPStatus
from queue import SimpleQueue
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import unsubscribe_pages as pages
from .unsubscribe_notify import Notifier
from .unsubscribe_queue import AUDIT_FILE, RETRY_BASE
from .unsubscribe_record import Recorded, Recorder
from .workspace import Workspace

__all__ = ["AUDIT_FILE", "MAX_BODY", "UnsubscribeServer"]

log = logging.getLogger("segmerge.unsubscribe")
READ_TIMEOUT = 5.0  # seconds for a whole request (line, headers, body) to arrive
MAX_HEADER = 8192  # bytes of request line and headers
MAX_BODY = 4096
MAX_CONNECTIONS = 512  # open at once; beyond: 503 at once
BACKLOG = 1024  # connections the kernel queues before they are accepted (request_queue_size)
MAX_RECORDING = 64  # valid POSTs waiting for the disk; beyond: 503
RETRY_AFTER = "5"
STOP_WAIT = 5.0  # seconds `stop()` waits for a recording or a platform call in hand
LINGER = 1.0  # seconds a connection answered before its request was read may still send
METHODS = ("GET", "POST", "HEAD")
ONE_CLICK = b"List-Unsubscribe=One-Click"  # RFC 8058 §3.1; also found in multipart bodies


_COMMON = (
    "Server: segmerge\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
    "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"
)
_dates: tuple[int, str] = (0, "")


def _date() -> str:
    """The Date header, formatted once a second rather than once a request."""
    global _dates
    now = int(time.time())
    if _dates[0] != now:
        _dates = (now, formatdate(now, usegmt=True))
    return _dates[1]


class UnsubscribeServer:
    """The endpoint on ``host:port`` (``port=0`` picks a free port); ``start()``, ``stop()``."""

    def __init__(
        self,
        ws: Workspace,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        retry_base: float = RETRY_BASE,
    ) -> None:
        self.ws = ws
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.recorder = Recorder(ws)
        self.notifier = Notifier(ws, retry_base=retry_base)
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        self.sock = socket.socket(family, kind, proto)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(address)
            self.sock.listen(BACKLOG)
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = self.sock.getsockname()[:2]
        self.conns: set[_Connection] = set()
        self.recording = 0  # valid POSTs in the pool (only the loop thread changes it)
        self.loop = asyncio.new_event_loop()
        self.pool = _DaemonPool(2)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="unsubscribe", daemon=True)

    def start(self) -> None:
        self.notifier.start()
        self.thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        """Stop listening; recordings in hand finish, platform calls left stay queued."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.sock.close()
        self.pool.close(STOP_WAIT)
        self.notifier.stop(STOP_WAIT)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _Connection(self), sock=self.sock, backlog=BACKLOG)
        )
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            for conn in list(self.conns):
                if conn.transport is not None:
                    conn.transport.abort()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()


class _DaemonPool(Executor):
    """Threads for the disk work of valid POSTs, as daemons: a recording stuck on a locked
    ledger never holds up the exit of `serve` (SQLite rolls an unfinished write back, and
    the person, who got no answer, tries again and is recorded then)."""

    def __init__(self, workers: int) -> None:
        self.jobs: SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self.jobs = SimpleQueue()
        self.threads = [threading.Thread(target=self._work, name="unsubscribe-record",
                                         daemon=True) for _ in range(workers)]  # fmt: skip
        for t in self.threads:
            t.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.jobs.put((future, lambda: fn(*args, **kwargs), ()))
        return future

    def close(self, timeout: float) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)


class _Connection(asyncio.Protocol):
    """One request per connection (``Connection: close``), read under a deadline and caps."""

    def __init__(self, app: UnsubscribeServer) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # bytes of the whole request, once the headers are read
        self.body_at = 0
        self.method = ""
        self.target = ""
        self.answered = False
        self.timer: asyncio.TimerHandle | None = None

    # connection life -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        app = self.app
        app.conns.add(self)
        if len(app.conns) > 2 * app.max_connections:
            transport.abort()  # far beyond the cap: not even a 503 to write
        elif len(app.conns) > app.max_connections:
            self._refuse(503, pages.BUSY)
        else:
            self.timer = app.loop.call_later(app.read_timeout, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.conns.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    def _timed_out(self) -> None:
        if not self.answered:
            log.debug("request not complete after %.1f s: closed", self.app.read_timeout)
            self._refuse(408, pages.TIMEOUT)

    # reading ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return  # lingering after an early answer: discarded
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or end + 4 > MAX_HEADER:
                if len(self.buf) > MAX_HEADER:
                    self._refuse(431, pages.TOO_LARGE)
                return
            if not self._parse_head(bytes(self.buf[:end])):
                return
            self.body_at = end + 4
            if self.need < 0:
                return
        if len(self.buf) >= self.need:
            if self.timer is not None:
                self.timer.cancel()
            self._dispatch(bytes(self.buf[self.body_at : self.need]))

    def _parse_head(self, head: bytes) -> bool:
        """Request line and headers; False after an error answer."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
            self._refuse(400, pages.BAD_REQUEST)
            return False
        self.method, self.target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():  # obs-fold, "Name :" ...
                self._refuse(400, pages.BAD_REQUEST)
                return False
            name, value = name.lower(), value.strip()
            if name in headers and name in ("content-length", "transfer-encoding"):
                self._refuse(400, pages.BAD_REQUEST)  # two lengths: a smuggling attempt
                return False
            headers[name] = value
        if self.method not in METHODS:
            self._refuse(405, pages.METHOD, ("Allow", ", ".join(METHODS)))
            return False
        if "transfer-encoding" in headers:  # chunked bodies are not for one-click forms
            self._refuse(411, pages.BAD_REQUEST)
            return False
        length = headers.get("content-length", "0")
        if not length.isdigit() or len(length) > 9:
            self._refuse(400, pages.BAD_REQUEST)
            return False
        if int(length) > MAX_BODY:
            self._refuse(413, pages.TOO_LARGE)
            return False
        self.need = len(head) + 4 + int(length)
        return True

    # answering ----------------------------------------------------------------------

    def _dispatch(self, body: bytes) -> None:
        url = urlsplit(self.target)
        if url.path.rstrip("/") != "/unsubscribe":
            return self._answer(404, pages.NOT_FOUND)
        token = (parse_qs(url.query).get("token") or [""])[0]
        if not token:
            return self._answer(400, pages.INCOMPLETE)
        if self.method == "POST" and ONE_CLICK not in body:
            return self._answer(400, pages.NOT_ONE_CLICK)
        kind, value = self.app.recorder.check(token)
        if kind == "forged":
            return self._answer(
                403, pages.FORGED_POST if self.method == "POST" else pages.FORGED_GET
            )
        if kind == "test":
            if self.method == "POST":
                log.info("a test-send letter's unsubscribe link was used: nothing recorded")
            return self._answer(200, pages.TEST)
        if self.method != "POST":
            return self._answer(200, pages.confirm(self.target))
        app = self.app
        if app.recording >= MAX_RECORDING:
            return self._answer(503, pages.BUSY, ("Retry-After", RETRY_AFTER))
        app.recording += 1
        assert value is not None
        future = app.loop.run_in_executor(app.pool, app.recorder.record, value)
        future.add_done_callback(self._recorded)

    def _recorded(self, future: Future[Recorded] | asyncio.Future[Recorded]) -> None:
        self.app.recording -= 1
        exc = future.exception()
        if exc is not None:
            log.error("an unsubscribe could not be recorded: %s: %s", type(exc).__name__, exc)
            return self._answer(503, pages.NOT_RECORDED, ("Retry-After", "60"))
        rec = future.result()
        if rec.replay:
            log.debug("unsubscribe of contact %s replayed: already recorded", rec.contact_id)
        elif rec.sources:
            self.app.notifier.poke()
        self._answer(200, pages.DONE)

    def _write(self, code: int, body: bytes, extra: tuple[str, str] | None) -> None:
        self.answered = True
        if code == 503 and extra is None:
            extra = ("Retry-After", RETRY_AFTER)
        more = f"{extra[0]}: {extra[1]}\r\n" if extra is not None else ""
        head = (f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\n{_COMMON}"
                f"Date: {_date()}\r\nContent-Length: {len(body)}\r\n{more}\r\n")  # fmt: skip
        data = head.encode("latin-1")
        assert self.transport is not None
        self.transport.write(data if self.method == "HEAD" else data + body)
        if log.isEnabledFor(logging.DEBUG):  # the path only: the query holds the token
            log.debug("%s %s %d", self.method or "-", urlsplit(self.target).path, code)

    def _answer(self, code: int, body: bytes, extra: tuple[str, str] | None = None) -> None:
        """The answer to a request read in full: sent, then the connection closed."""
        if self.transport is None or self.transport.is_closing():
            return
        self._write(code, body, extra)
        self.transport.close()

    def _refuse(self, code: int, body: bytes, extra: tuple[str, str] | None = None) -> None:
        """An answer before the request was read: sent, our side shut, and what the client
        still sends read and dropped for a moment, so that closing with unread bytes (a
        TCP reset) does not destroy the answer before the client reads it."""
        if self.transport is None or self.transport.is_closing():
            return
        self._write(code, body, extra)
        if self.timer is not None:
            self.timer.cancel()
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.timer = self.app.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()
