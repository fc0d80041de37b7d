"""The HTTP of the unsubscribe endpoint: parse one request, choose the answer, write it.

Pure functions over bytes, apart from the token check, so the network loop
(:mod:`segmerge.serve.endpoint.server`) stays about sockets and time only. The
parser accepts exactly what a mail client or a browser sends for a one-click
unsubscribe and refuses the rest early and cheaply: headers over 8 KiB (431),
a body over 4 KiB (413), chunked bodies (411), two lengths (400, a request
smuggling attempt through a proxy), methods other than GET, POST and HEAD
(405). The tracking routes of :mod:`segmerge.serve.endpoint.tracking_http` share the parser, and
need the ``User-Agent`` and a content type other than HTML (the pixel).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote_plus, urlsplit

from segmerge.serve.endpoint import pages
from segmerge.serve.endpoint.record import Recorder

log = logging.getLogger("segmerge.unsubscribe")
MAX_HEADER = 8192  # bytes of request line and headers
MAX_BODY = 4096
METHODS = ("GET", "POST", "HEAD")
ONE_CLICK = b"List-Unsubscribe=One-Click"  # RFC 8058 §3.1; also found in multipart bodies
RETRY_AFTER = "5"


@dataclass
class Head:
    method: str
    target: str
    length: int  # of the body
    agent: str = ""  # User-Agent: the tracking routes filter scanners by it


@dataclass
class Answer:
    code: int
    body: bytes
    extra: tuple[str, str] | None = None  # one more header
    ctype: str = "text/html; charset=utf-8"


def parse_head(head: bytes) -> Head | Answer:
    """The request line and headers (without the blank line), or the refusal to send."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return Answer(400, pages.BAD_REQUEST)
    method, target = parts[0], parts[1]
    seen: dict[str, str] = {}
    agent = ""
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():  # obs-fold, "Name :" ...
            return Answer(400, pages.BAD_REQUEST)
        name = name.lower()
        if name in ("content-length", "transfer-encoding"):
            if name in seen:  # two lengths: a smuggling attempt
                return Answer(400, pages.BAD_REQUEST)
            seen[name] = value.strip()
        elif name == "user-agent":
            agent = value.strip()
    if method not in METHODS:
        return Answer(405, pages.METHOD, ("Allow", ", ".join(METHODS)))
    if "transfer-encoding" in seen:  # chunked bodies are not for one-click forms
        return Answer(411, pages.BAD_REQUEST)
    length = seen.get("content-length", "0")
    if not length.isdigit() or len(length) > 9:
        return Answer(400, pages.BAD_REQUEST)
    if int(length) > MAX_BODY:
        return Answer(413, pages.TOO_LARGE)
    return Head(method, target, int(length), agent)


def _token(query: str) -> str:
    """The first ``token=`` of a query string (parse_qs builds a dict of lists per request)."""
    for part in query.split("&"):
        if part.startswith("token="):
            return unquote_plus(part[6:])
    return ""


def route(head: Head, body: bytes, recorder: Recorder) -> Answer | str:
    """The answer, or the contact id whose unsubscribe is to be recorded (then 200)."""
    url = urlsplit(head.target)
    if url.path.rstrip("/") != "/unsubscribe":
        return Answer(404, pages.NOT_FOUND)
    token = _token(url.query)
    if not token:
        return Answer(400, pages.INCOMPLETE)
    post = head.method == "POST"
    if post and ONE_CLICK not in body:
        return Answer(400, pages.NOT_ONE_CLICK)
    kind, value = recorder.check(token)
    if kind == "forged" or value is None:
        return Answer(403, pages.FORGED_POST if post else pages.FORGED_GET)
    if kind == "test":
        if post:
            log.info("a test-send letter's unsubscribe link was used: nothing recorded")
        return Answer(200, pages.TEST)
    return value if post else Answer(200, pages.confirm(head.target))


_COMMON = (
    "Server: segmerge\r\nCache-Control: no-store\r\n"
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


def response(answer: Answer, method: str) -> bytes:
    extra = answer.extra
    if answer.code == 503 and extra is None:
        extra = ("Retry-After", RETRY_AFTER)
    more = f"{extra[0]}: {extra[1]}\r\n" if extra is not None else ""
    head = (
        f"HTTP/1.1 {answer.code} {HTTPStatus(answer.code).phrase}\r\n{_COMMON}"
        f"Content-Type: {answer.ctype}\r\nDate: {_date()}\r\n"
        f"Content-Length: {len(answer.body)}\r\n{more}\r\n"
    )
    data = head.encode("latin-1")
    return data if method == "HEAD" else data + answer.body
