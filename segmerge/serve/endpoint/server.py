"""The RFC 8058 one-click unsubscribe endpoint that `segmerge serve --unsubscribe-port` opens.

- ``POST /unsubscribe?token=T`` with the body ``List-Unsubscribe=One-Click``
  (what a mail client sends for ``List-Unsubscribe-Post``, and what our own
  page's button sends) suppresses the contact by id and by every address
  known for them before answering (:mod:`segmerge.serve.endpoint.record`), then
  queues the call that tells the source platform
  (:mod:`segmerge.mail.unsubscribe_queue`, drained by one worker thread,
  :mod:`segmerge.serve.endpoint.notify`). A replay answers 200 and records
  nothing more.
- ``GET /unsubscribe?token=T`` only shows a page with a button: mail scanners
  and link previewers fetch every link of a message, so a GET must never
  unsubscribe anyone by itself.
- The token is the one every message carries (an HMAC of the contact id with
  the workspace's key); a token this workspace did not sign gets 403 and
  nothing is recorded. A `test-send` letter's token gets a page saying it was
  a test: a test can never unsubscribe a customer.

It faces the network, so it is one ``selectors`` loop in a thread rather
than a thread per connection: an idle or slow connection costs a socket and
a few bytes, not a thread, and a slowloris client (one byte a second) is cut
off when its whole request has not arrived within ``read_timeout`` seconds
(408). Requests are capped (:mod:`segmerge.serve.endpoint.http`), open
connections too: beyond ``max_connections`` a connection gets an immediate
503 with ``Retry-After``, never a hang. The listen backlog is sized for
bursts. Only a valid POST touches the disk, in two daemon threads, so a flood
of forged requests costs an HMAC each. Not asyncio: its tasks, handles and
transports cost several times the CPU per connection of this loop, which
is what bounds the answers a second on a small machine.

- ``GET /t/c/<token>`` and ``/t/o/<token>.gif``: the clicks and opens of our own
  sends, recorded before the redirect or the pixel (:mod:`segmerge.serve.endpoint.tracking_http`).

It listens on 127.0.0.1 by default: put it behind the site's reverse proxy
(HTTPS), which maps the public unsubscribe URL of `[mail] unsubscribe_url`.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

from segmerge.mail.unsubscribe_queue import AUDIT_FILE, RETRY_BASE
from segmerge.serve.endpoint import pages
from segmerge.serve.endpoint.http import (
    MAX_BODY,
    MAX_HEADER,
    Answer,
    Head,
    parse_head,
    response,
    route,
)
from segmerge.serve.endpoint.notify import Notifier
from segmerge.serve.endpoint.record import Recorded, Recorder
from segmerge.serve.endpoint.tracking_http import Work
from segmerge.serve.endpoint.tracking_http import route as track_route
from segmerge.serve.endpoint.tracking_record import Clock, TrackRecorder
from segmerge.serve.endpoint.workers import DaemonPool
from segmerge.workspace.config import Workspace

__all__ = ["AUDIT_FILE", "MAX_BODY", "UnsubscribeServer"]

log = logging.getLogger("segmerge.unsubscribe")
READ_TIMEOUT = 5.0  # seconds for a whole request (line, headers, body) to arrive
MAX_CONNECTIONS = 512  # open at once; beyond: 503 at once
BACKLOG = 1024  # connections the kernel queues before they are accepted (request_queue_size)
MAX_RECORDING = 64  # valid POSTs waiting for the disk; beyond: 503
STOP_WAIT = 5.0  # seconds `stop()` waits for a recording or a platform call in hand
LINGER = 1.0  # seconds a connection answered before its request was read may still send
SWEEP = 0.25  # seconds between two looks at the connections' deadlines
ACCEPT_BATCH = 128  # connections accepted per wake-up of the loop
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_WAKE = object()


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
        clock: Clock | None = None,
    ) -> None:
        self.ws = ws
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.recorder = Recorder(ws)
        self.tracker = TrackRecorder(ws, clock)  # opens and clicks: /t/... (tracking_http)
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
        self.sock.setblocking(False)
        self.host, self.port = self.sock.getsockname()[:2]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, _READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self.selector.register(self._wake_r, _READ, _WAKE)
        self.conns: dict[int, _Conn] = {}  # by file descriptor; only the loop changes it
        self.recording = 0  # valid POSTs in the pool
        self.done: SimpleQueue[tuple[_Conn, Future[Recorded | Answer]]] = SimpleQueue()
        self.pool = DaemonPool(2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="unsubscribe", daemon=True)

    def start(self) -> None:
        self.notifier.start()
        self.thread.start()

    def stop(self) -> None:
        """Stop listening; recordings in hand finish, platform calls left stay queued."""
        self.stopping.set()
        if self.thread.is_alive():
            self.wake()
            self.thread.join(10)
        else:
            self._close_all()
        deadline = time.monotonic() + STOP_WAIT  # for both: SIGTERM must stop serve in seconds
        self.pool.close(STOP_WAIT)
        self.notifier.stop(max(0.1, deadline - time.monotonic()))

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full (the loop is awake already) or closed
            self._wake_w.send(b"x")

    # the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        next_sweep = 0.0
        try:
            while not self.stopping.is_set():
                for key, mask in self.selector.select(SWEEP):
                    if key.data is None:
                        self._accept()
                    elif key.data is _WAKE:
                        self._completions()
                    else:
                        key.data.ready(mask)
                now = time.monotonic()
                if now >= next_sweep:
                    for conn in [c for c in self.conns.values() if c.deadline <= now]:
                        conn.expired()
                    next_sweep = now + SWEEP
        except Exception:  # a bug must not leave a silent, dead endpoint behind a live serve
            log.exception("the unsubscribe endpoint stopped")
            raise
        finally:
            self._close_all()

    def _close_all(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()
        for s in (self.sock, self._wake_r, self._wake_w):
            s.close()
        self.selector.close()

    def _accept(self) -> None:
        for _attempt in range(ACCEPT_BATCH):
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: the backlog holds them meanwhile
                log.warning("cannot accept a connection: %s", exc)
                return
            if len(self.conns) >= 2 * self.max_connections:
                sock.close()  # far beyond the cap: not even a 503 to write
                continue
            conn = _Conn(self, sock)
            if len(self.conns) > self.max_connections:
                conn.answer(Answer(503, pages.BUSY), linger=True)

    def record(self, conn: _Conn, contact_id: str) -> None:
        if self.recording >= MAX_RECORDING:
            return conn.answer(Answer(503, pages.BUSY))
        self.recording += 1
        future = self.pool.submit(self.recorder.record, contact_id)
        future.add_done_callback(lambda f: self._recorded(conn, f))

    def work(self, conn: _Conn, job: Work) -> None:
        """A tracked click or open: recorded in the pool, answered when it is on disk."""
        if self.recording >= MAX_RECORDING:
            return conn.answer(Answer(503, pages.BUSY))
        self.recording += 1
        future = self.pool.submit(job.run)
        future.add_done_callback(lambda f: self._recorded(conn, f))

    def _recorded(self, conn: _Conn, future: Future[Any]) -> None:
        """In a pool thread: hand the result to the loop, which alone touches sockets."""
        self.done.put((conn, future))
        self.wake()

    def _completions(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        while True:
            try:
                conn, future = self.done.get_nowait()
            except Empty:
                return
            self.recording -= 1
            exc = future.exception()
            if exc is not None:
                log.error("an unsubscribe could not be recorded: %s: %s", type(exc).__name__, exc)
                conn.answer(Answer(503, pages.NOT_RECORDED, ("Retry-After", "60")))
                continue
            rec = future.result()
            if isinstance(rec, Answer):  # a tracked hit's answer, made once it was recorded
                conn.answer(rec)
                continue
            if rec.replay:
                log.debug("unsubscribe of contact %s replayed: already recorded", rec.contact_id)
            elif rec.sources:
                self.notifier.poke()
            conn.answer(Answer(200, pages.DONE))


class _Conn:
    """One request per connection (``Connection: close``), read under a deadline and caps.

    ``state``: reading -> busy (a valid POST being recorded) -> writing -> closed, or
    writing -> lingering (answered before the request was read: our side is shut and
    what the client still sends is dropped for a moment, so that closing with unread
    bytes, a TCP reset, does not destroy the answer before the client reads it)."""

    __slots__ = (
        "after",
        "app",
        "buf",
        "deadline",
        "events",
        "fd",
        "head",
        "need",
        "out",
        "sock",
        "state",
    )

    def __init__(self, app: UnsubscribeServer, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.app, self.sock, self.fd = app, sock, sock.fileno()
        self.buf = bytearray()
        self.head: Head | None = None
        self.need = -1  # bytes of the whole request, once the headers are read
        self.out = b""
        self.after = "close"
        self.state = "reading"
        self.deadline = time.monotonic() + app.read_timeout
        self.events = _READ
        app.conns[self.fd] = self
        app.selector.register(sock, _READ, self)

    def ready(self, mask: int) -> None:
        try:
            if mask & _WRITE:
                self._flush()
            if mask & _READ and self.state != "closed":
                self._read()
        except Exception:
            log.exception("unsubscribe endpoint: a request failed")
            self.close()

    def expired(self) -> None:
        if self.state == "reading":
            self.answer(Answer(408, pages.TIMEOUT), linger=True)
        elif self.state in ("writing", "lingering"):
            self.close()

    def _read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close()
        if not data:  # the client is done sending
            if self.state in ("reading", "lingering"):
                return self.close()
            return self._watch(self.events & ~_READ)  # busy: the answer still goes out
        if self.state != "reading":
            return  # after the request (or an early answer): dropped
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or end + 4 > MAX_HEADER:
                if len(self.buf) > MAX_HEADER:
                    self.answer(Answer(431, pages.TOO_LARGE), linger=True)
                return
            head = parse_head(bytes(self.buf[:end]))
            if isinstance(head, Answer):
                return self.answer(head, linger=True)
            self.head, self.need = head, end + 4 + head.length
        if len(self.buf) >= self.need:
            assert self.head is not None
            body = bytes(self.buf[self.need - self.head.length : self.need])
            self.state, self.deadline = "busy", float("inf")
            result = track_route(self.head, self.app.tracker) or route(
                self.head, body, self.app.recorder
            )
            if isinstance(result, Answer):
                return self.answer(result)
            if isinstance(result, Work):
                return self.app.work(self, result)
            self.app.record(self, result)

    def answer(self, answer: Answer, *, linger: bool = False) -> None:
        if self.state == "closed":
            return  # the client left while its unsubscribe was recorded
        method = self.head.method if self.head is not None else ""
        self.out = response(answer, method)
        self.after = "linger" if linger else "close"
        self.state = "writing"
        self.deadline = time.monotonic() + self.app.read_timeout
        if log.isEnabledFor(logging.DEBUG):  # the path only: the query holds the token
            path = self.head.target.split("?")[0] if self.head is not None else "-"
            log.debug("%s %s %d", method or "-", path, answer.code)
        self._flush()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return self.close()
        self.out = self.out[sent:]
        if self.out:
            return self._watch(_WRITE)  # a client that reads slowly: the rest when it can
        if self.after == "close":
            return self.close()
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self.close()
        self.state, self.deadline = "lingering", time.monotonic() + LINGER
        self._watch(_READ)

    def _watch(self, events: int) -> None:
        if events == self.events:
            return
        if self.events == 0:
            self.app.selector.register(self.sock, events, self)
        elif events == 0:
            self.app.selector.unregister(self.sock)
        else:
            self.app.selector.modify(self.sock, events, self)
        self.events = events

    def close(self) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.app.conns.pop(self.fd, None)
        if self.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.app.selector.unregister(self.sock)
        self.sock.close()
