"""A small stateful HTTP server on 127.0.0.1 for faking a vendor API in tests.

Each platform fake (``brevo.py``, ``hubspot.py``, ``mailchimp.py``) subclasses
:class:`FakeServer`, registers its routes and keeps its own state (contacts,
lists, campaigns). The base gives every fake the same honest behaviour:

- every request is checked against the vendor's OpenAPI spec when one is
  given (unknown path, missing required field, wrong type): a violation is
  answered 400 *and* recorded, and the ``fake_*`` fixtures fail the test at
  teardown if any was recorded, so a connector cannot pass by luck;
- answers of 2xx can be checked against the spec too (``check_responses``);
- faults are injected on demand: the next N requests (optionally only those
  matching a path) answer a given status, headers and body; or a seeded random
  share of requests answer 5xx;
- real keep-alive (HTTP/1.1, Content-Length always set), one thread per
  connection, so a connector's connection reuse and concurrency are exercised.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:  # openapi-core is a test dependency; a fake without a spec works without it
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse
except ImportError:  # pragma: no cover
    OpenAPI = None  # type: ignore[assignment,misc]


@dataclass
class Request:
    method: str
    path: str  # without the base path, e.g. "/contacts"
    full_path: str  # as sent, e.g. "/v3/contacts"
    params: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    groups: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int) -> int:
        value = self.arg(name)
        return int(value) if value not in (None, "") else default

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    path: str | None = None  # regex on the request path; None = any request
    delay: float = 0.0  # seconds to sleep before answering (timeouts)
    remaining: int = 1


Handler = Callable[[Request], Reply]


class FakeServer:
    """Base of the platform fakes; see the module docstring."""

    base_path = ""  # e.g. "/v3"

    def __init__(self, openapi: Any = None, *, check_responses: bool = True, seed: int = 0):
        self.openapi = openapi
        self.check_responses = check_responses and openapi is not None
        #: check only the first N requests, and the first N 2xx answers of each status, per
        #: endpoint (None: all). openapi-core takes ~0.2 s of CPU for a page of 1,000
        #: members, several times what the connector spends on it: a test about something
        #: else than the contract (paging, rates, faults) checks each kind of call and answer
        #: its first N times, and the tests of the contract check every one
        self.validate_first: int | None = None
        self._validated: dict[tuple[str, ...], int] = {}
        self.violations: list[str] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self.faults: list[Fault] = []
        self.random_5xx = 0.0
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # routes ---------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` like ``/contacts/lists/{listId}/contacts/add``; groups become ``groups``."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/") or "/")
        self._routes.append((method.upper(), re.compile(f"^{regex}/?$"), handler))

    # faults ---------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        path: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> None:
        with self.lock:
            self.faults.append(Fault(status, body, headers or {}, content_type, path, delay, times))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.remaining > 0 and (f.path is None or re.search(f.path, path)):
                    f.remaining -= 1
                    return f
            if self.random_5xx and self.rng.random() < self.random_5xx:
                return Fault(503, {"message": "Service Unavailable (injected)"})
        return None

    # hooks for subclasses ---------------------------------------------------
    def check_auth(self, req: Request) -> Reply | None:
        """Return a 401/403 reply when the credential is wrong."""
        return None

    def rate_limit(self, req: Request) -> Reply | None:
        """Return a 429 reply when the vendor's documented limit is exceeded."""
        return None

    def decorate(self, req: Request, reply: Reply) -> None:
        """Add headers every answer carries (rate-limit counters, ...)."""

    # lifecycle ----------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{self.base_path}"

    def start(self) -> FakeServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body are two writes: with Nagle's algorithm on, the
            # body waits for the client's delayed ACK of the headers (40 ms on Linux),
            # a stall no real API server has (they all set TCP_NODELAY).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                server._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # the request loop -----------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if len(body) < length:  # the client died mid-request (a killed run): nobody to answer
            h.close_connection = True
            return
        split = urlsplit(h.path)
        full_path = split.path
        path = full_path[len(self.base_path) :] if full_path.startswith(self.base_path) else None
        req = Request(
            method=h.command,
            path=path or "",
            full_path=full_path,
            params=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        reply = (
            self._answer(req, h, split.query)
            if path is not None
            else Reply(404, {"message": f"no such path {full_path}"})
        )
        with self.lock:
            self.log.append((req.method, req.path, reply.status))
        data = reply.encoded()
        h.send_response(reply.status)
        if data or reply.status not in (204, 304):
            h.send_header("Content-Type", reply.content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _answer(self, req: Request, h: BaseHTTPRequestHandler, query: str) -> Reply:
        problem = self._validate_request(req, h, query)
        if problem:
            with self.lock:
                self.violations.append(f"{req.method} {req.full_path}: {problem}")
            return Reply(400, {"code": "invalid_parameter", "message": problem})
        denied = self.check_auth(req)
        if denied is not None:
            return denied
        limited = self.rate_limit(req)
        if limited is not None:
            self.decorate(req, limited)
            return limited
        fault = self._take_fault(req.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            return Reply(fault.status, fault.body, dict(fault.headers), fault.content_type)
        for method, regex, handler in self._routes:
            m = regex.match(req.path)
            if m and method == req.method:
                req.groups = m.groupdict()
                try:
                    with self.lock:
                        reply = handler(req)
                except Exception as exc:  # a bug in the fake must fail the test, loudly
                    with self.lock:
                        self.violations.append(f"fake crashed on {req.method} {req.path}: {exc!r}")
                    return Reply(500, {"message": "fake server error"})
                self.decorate(req, reply)
                self._validate_response(req, h, query, reply)
                return reply
        with self.lock:
            self.violations.append(f"unrouted {req.method} {req.full_path} (the fake lacks it)")
        return Reply(404, {"message": "not found"})

    def _mock_request(self, req: Request, h: BaseHTTPRequestHandler, query: str) -> Any:
        host, port = h.server.server_address[:2]
        ctype = req.headers.get("content-type", "application/json").split(";")[0]
        return MockRequest(
            f"http://{host}:{port}",
            req.method.lower(),
            req.full_path,
            args={k: v[0] for k, v in req.params.items()},
            headers=req.headers,
            data=req.body or None,
            content_type=ctype,
        )

    def _first_times(self, req: Request, *kind: str) -> bool:
        """Whether this request (or its answer: ``kind`` says which check, of which
        status) is still among the first ``validate_first`` of its endpoint (its method
        and path, ids left out)."""
        if self.validate_first is None:
            return True
        key = (req.method, _IDS.sub("/{id}", req.path), *kind)
        with self.lock:
            seen = self._validated.get(key, 0)
            self._validated[key] = seen + 1
        return seen < self.validate_first

    def _request_key(self, req: Request) -> tuple[Any, ...]:
        """All a request's check reads, but its ``Host`` header: the specs' server URLs
        take any port, and none declares a Host parameter."""
        headers = tuple(sorted((k, v) for k, v in req.headers.items() if k != "host"))
        params = tuple(sorted((k, tuple(v)) for k, v in req.params.items()))
        return (self.openapi, req.method, req.full_path, params, headers, _digest(req.body))

    def _validate_request(self, req: Request, h: BaseHTTPRequestHandler, query: str) -> str | None:
        if self.openapi is None or not self._first_times(req):
            return None
        key = self._request_key(req)
        if key in _SAID:
            return _SAID[key]
        try:
            self.openapi.validate_request(self._mock_request(req, h, query))
            said = None
        except Exception as exc:
            said = _explain(exc)
        _SAID[key] = said
        return said

    def _validate_response(
        self, req: Request, h: BaseHTTPRequestHandler, query: str, reply: Reply
    ) -> None:
        if not self.check_responses or not 200 <= reply.status < 300:
            return
        if not self._first_times(req, "answer", str(reply.status)):
            return
        data = reply.encoded()
        headers = tuple(sorted(reply.headers.items()))
        key = (*self._request_key(req), reply.status, reply.content_type, headers, _digest(data))
        if key not in _SAID:
            try:
                self.openapi.validate_response(
                    self._mock_request(req, h, query),
                    MockResponse(
                        data,
                        status_code=reply.status,
                        content_type=reply.content_type if data else None,
                        headers=reply.headers,
                    ),
                )
                _SAID[key] = None
            except Exception as exc:
                _SAID[key] = _explain(exc)
        said = _SAID[key]
        if said is not None:
            with self.lock:
                self.violations.append(f"answer to {req.method} {req.full_path}: {said}")


#: what openapi-core said of each request, and each answer to it, checked this session
#: (None: nothing wrong), by everything the check reads (the spec's checker is kept for
#: the session, see specs.py): the same call checks the same, and most tests make the
#: same first calls (the account, the attributes, the first page of a listing)
_SAID: dict[tuple[Any, ...], str | None] = {}


def _digest(data: bytes) -> bytes:
    """A body as a key: pages of 1,000 members are not kept for the session."""
    return hashlib.sha256(data).digest()


_IDS = re.compile(r"/(?:[0-9a-f]{10,}|\d+)(?=/|$)")  # ids in a path


def _explain(exc: BaseException) -> str:
    """openapi-core hides the useful part (which field, which schema) in __cause__ chains."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    depth = 0
    while cause is not None and depth < 4:
        parts.append(str(cause))
        for sub in getattr(cause, "schema_errors", []) or []:
            parts.append(f"{'/'.join(map(str, sub.path))}: {sub.message}")
        cause = cause.__cause__ or cause.__context__
        depth += 1
    return " <- ".join(p for p in parts if p)


class WindowLimiter:
    """A vendor's fixed-window rate limit: at most ``limit`` requests per ``window`` seconds.

    Tracks how often a 429 was answered right after another 429 to the same
    client, which the pull benchmark reports (a polite client never gets two in
    a row: after one it waits for the window to reset).
    """

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.started = time.monotonic()
        self.count = 0
        self.total_429 = 0
        self.consecutive_429 = 0
        self.max_consecutive_429 = 0
        self.lock = threading.Lock()

    def hit(self) -> tuple[bool, int, float]:
        """Count one request: (allowed, remaining, seconds until the window resets)."""
        with self.lock:
            now = time.monotonic()
            if now - self.started >= self.window:
                elapsed_windows = int((now - self.started) // self.window)
                self.started += elapsed_windows * self.window
                self.count = 0
            reset = self.window - (now - self.started)
            if self.count >= self.limit:
                self.total_429 += 1
                self.consecutive_429 += 1
                self.max_consecutive_429 = max(self.max_consecutive_429, self.consecutive_429)
                return False, 0, reset
            self.count += 1
            self.consecutive_429 = 0
            return True, self.limit - self.count, reset
