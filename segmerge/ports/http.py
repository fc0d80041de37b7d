"""The one HTTP layer every API connector uses: polite, patient and clear.

Vendors publish limits and expect clients to keep to them; they also fail in
ordinary ways (a 503 during a deploy, a 429 when two jobs share a key, an HTML
maintenance page instead of JSON). Putting the answers to those in one place
means every connector gets them right, the same way:

- a timeout on every call (connect and read), connections kept alive;
- a client-side rate limiter set to the platform's documented limit, so that
  429s are the exception, not the pacing mechanism;
- retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped
  connections, honouring ``Retry-After`` (seconds or HTTP date) and the
  vendor's own rate-limit headers through a ``wait_hint``;
- the vendor's count of calls left (``budget_hint``, see :mod:`segmerge.ports.rate_headers`)
  read on every answer and given to the limiter, and a spent budget waited out
  (said once, with the time it resumes) or, past ``max_wait``, a clear stop;
- errors that name the source, the endpoint and the status, say which
  credential was refused and which scope is missing, and never show a secret;
- paging helpers for offset and cursor APIs, and a checked field accessor so a
  field that changes type mid-pull is reported, not silently mis-read.

Modelled on dlt's ``RESTClient`` paginators and the Singer SDK's
``RESTStream`` backoff handling.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from segmerge import __version__, redact
from segmerge.errors import BadAnswer, ConnectorError
from segmerge.i18n import _
from segmerge.ports.http_answers import (
    RETRY_STATUSES,
    _snippet,
    field_of,
    refusal,
    retry_after,
    vendor_reason,
)
from segmerge.ports.http_wait import MAX_WAIT, BudgetWatch
from segmerge.ports.rate_limit import RateLimit

USER_AGENT = f"segmerge/{__version__} (+https://github.com/segmerge)"
#: headers whose value is a credential (Authorization, api-key, X-Auth-Token...)
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|password|cookie", re.IGNORECASE)
T = TypeVar("T")
__all__ = ["HttpClient", "HttpStats", "batched", "field_of", "retry_after", "vendor_reason"]
#: a 429 whose vendor says to wait at least this long is its budget, not a failure
PATIENT_WAIT = 1.0
#: (calls left, seconds until the vendor's window resets), read from an answer's headers
BudgetHint = Callable[[requests.Response], "tuple[int, float] | None"]


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    max_consecutive_429: int = 0
    waited_seconds: float = 0.0
    _consecutive_429: int = 0

    def saw(self, status: int | None) -> None:
        self.requests += 1
        if status == 429:
            self.throttled += 1
            self._consecutive_429 += 1
            self.max_consecutive_429 = max(self.max_consecutive_429, self._consecutive_429)
        else:
            self._consecutive_429 = 0


class HttpClient:
    """A requests session bound to one source's base URL, credential and limits."""

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        rate: RateLimit | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        wait_hint: Callable[[requests.Response], float | None] | None = None,
        pool: int = 10,
        credential_hint: str | None = None,
        budget_hint: BudgetHint | None = None,
        notify: Callable[[str], None] | None = None,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``budget_hint`` reads the vendor's calls left from every answer (e.g.
        :func:`segmerge.ports.rate_headers.brevo_budget`) for ``rate`` to follow; a spent
        budget is waited out up to ``max_wait`` seconds, told through ``notify``
        (default: the ``segmerge`` logger) when longer than a few seconds."""
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.rate = rate
        self.timeout = (connect_timeout, timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.wait_hint = wait_hint
        self.budget_hint = budget_hint
        self.max_wait = max_wait
        self.credential_hint = credential_hint
        self._sleep_for = sleep
        self.watch = BudgetWatch(source, notify=notify, max_wait=max_wait, clock=clock)
        self.stats = HttpStats()
        self._stats_lock = threading.Lock()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if headers:
            self.session.headers.update(headers)
            for name, value in headers.items():  # hidden from every message from now on
                if _CREDENTIAL_HEADER.search(name) and isinstance(value, str):
                    redact.add_header(name, value)
        if auth:
            redact.add_basic(*auth)
            self.session.auth = auth
        password = urlsplit(base_url).password  # https://user:secret@host in a base_url
        if password:
            redact.add(password)
        # never let requests pick credentials from ~/.netrc behind the user's back
        self.session.trust_env = False

    # the one call -----------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        ok: Iterable[int] = (200, 201, 202, 204, 207),
        retry: bool = True,
    ) -> requests.Response:
        """Send one request, retrying what is worth retrying; raise a clear error otherwise."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        endpoint = f"{method.upper()} {path.split('?')[0]}"
        accepted = set(ok)
        attempt = 0
        patience = 0.0  # seconds waited for the vendor's budget: no failed attempts
        while True:
            self.watch.before_call(endpoint)
            if self.rate is not None:
                waited = self.rate.acquire()
                self._add_wait(waited)
            try:
                resp = self.session.request(
                    method, url, params=params, json=json, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._count(None)
                kind = _("timed out") if isinstance(exc, requests.Timeout) else _("unreachable")
                if retry and attempt < self.max_retries:
                    attempt += 1
                    self._sleep(self._backoff(attempt))
                    continue
                raise ConnectorError(
                    _("{source}: {endpoint} {kind} after {value} attempt(s)").format(
                        source=self.source, endpoint=endpoint, kind=kind, value=attempt + 1
                    ),
                    field=self.source,
                    hint=_("is {base_url} reachable? ({kind})").format(
                        base_url=self.base_url, kind=type(exc).__name__
                    ),
                ) from None
            self._count(resp.status_code)
            spent = self._observe(resp)
            if resp.status_code in accepted:
                if spent:
                    self.watch.spent(spent)
                return resp
            if resp.status_code in RETRY_STATUSES and retry:
                wait, patient = self._wait_for(resp, attempt + 1, spent)
                if wait == float("inf"):  # the vendor says: not before tomorrow (a daily quota)
                    raise self._failed(resp, endpoint, attempt)
                if patient and patience + wait > self.max_wait:
                    raise self.watch.too_long(endpoint, wait, vendor_reason(resp))
                if patient:
                    patience += wait
                elif attempt < self.max_retries:
                    attempt += 1
                else:
                    raise self._failed(resp, endpoint, attempt)
                self.watch.tell(endpoint, wait)
                if resp.status_code == 429 and self.rate is not None and wait > (spent or 0.0):
                    self.rate.pause(wait)  # a spent budget is held already, and comes back whole
                self._sleep(wait)
                continue
            raise self._failed(resp, endpoint, attempt)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        return self.decode(resp, f"{method.upper()} {path.split('?')[0]}")

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.json("GET", path, params=params)

    def decode(self, resp: requests.Response, endpoint: str) -> Any:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type", "no content type")
            raise BadAnswer(
                _(
                    "{source}: {endpoint} answered {status_code} with {ctype}, not JSON: {value!r}"
                ).format(
                    source=self.source,
                    endpoint=endpoint,
                    status_code=resp.status_code,
                    ctype=ctype,
                    value=_snippet(redact.redact(resp.text)),
                ),
                field=self.source,
                hint=_("a proxy, a captive portal or a maintenance page? check base_url"),
            ) from None

    # paging -----------------------------------------------------------------
    def pages_offset(
        self,
        path: str,
        *,
        items_key: str,
        limit: int,
        limit_param: str = "limit",
        offset_param: str = "offset",
        params: Mapping[str, Any] | None = None,
        total_key: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Offset paging: ask ``limit`` at a time until a short page or the announced total."""
        offset = 0
        endpoint = f"GET {path}"
        while True:
            query = {**(params or {}), limit_param: limit, offset_param: offset}
            body = self.get(path, query)
            if body is None:  # some vendors answer 204 for "nothing here"
                return
            items = field_of(body, items_key, list, endpoint=endpoint, source=self.source)
            if items:
                yield items
            offset += len(items)
            total = body.get(total_key) if total_key and isinstance(body, dict) else None
            if len(items) < limit or (isinstance(total, int) and offset >= total):
                return

    def pages_cursor(
        self,
        path: str,
        *,
        items_key: str,
        next_cursor: Callable[[Any], str | None],
        cursor_param: str = "after",
        params: Mapping[str, Any] | None = None,
        method: str = "GET",
        body: dict[str, Any] | None = None,
        cursor_in_body: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Cursor paging: pass the vendor's cursor back unchanged until it stops giving one."""
        cursor: str | None = None
        endpoint = f"{method.upper()} {path}"
        seen: set[str] = set()
        while True:
            query = dict(params or {})
            payload = dict(body) if body is not None else None
            if cursor is not None:
                if cursor_in_body:
                    payload = {**(payload or {}), cursor_param: cursor}
                else:
                    query[cursor_param] = cursor
            answer = self.json(method, path, params=query or None, json=payload)
            items = field_of(answer, items_key, list, endpoint=endpoint, source=self.source)
            if items:
                yield items
            cursor = next_cursor(answer)
            if not cursor:
                return
            if cursor in seen:  # a server looping on the same cursor would never end
                raise BadAnswer(
                    _("{source}: {endpoint} gave the same paging cursor twice ({cursor!r})").format(
                        source=self.source, endpoint=endpoint, cursor=cursor
                    ),
                    field=self.source,
                )
            seen.add(cursor)

    # errors -----------------------------------------------------------------
    def _failed(self, resp: requests.Response, endpoint: str, attempt: int) -> ConnectorError:
        err = self._error(resp, endpoint, attempt)
        err.status = resp.status_code
        return err

    def _error(self, resp: requests.Response, endpoint: str, attempt: int) -> ConnectorError:
        return refusal(resp, endpoint, attempt, self.source, self.credential_hint)

    # timing -----------------------------------------------------------------
    def _observe(self, resp: requests.Response) -> float | None:
        """The vendor's count of calls left, given to the limiter; the seconds until calls
        may go again when it is spent (0.0 when not), None when the answer says nothing."""
        budget = self.budget_hint(resp) if self.budget_hint is not None else None
        if budget is None:
            return None
        remaining, reset = budget
        if self.rate is not None:
            return self.rate.observe(remaining, reset)
        return reset if remaining <= 0 else 0.0

    def _wait_for(
        self, resp: requests.Response, attempt: int, spent: float | None = None
    ) -> tuple[float, bool]:
        """Seconds to wait before retrying, and whether it is the vendor's budget (a 429
        that says when it resets): that wait is honoured in full, up to ``max_wait``, and
        is not a failed attempt. Other hinted waits are capped at ``max_backoff``."""
        hinted = retry_after(resp.headers.get("Retry-After"))
        if hinted is None and self.wait_hint is not None:
            hinted = self.wait_hint(resp)
        if hinted is None and spent:
            hinted = spent
        if hinted is None:
            return self._backoff(attempt), False
        if hinted == float("inf"):
            return hinted, True
        hinted = max(hinted, 0.0)
        if resp.status_code == 429 and hinted >= PATIENT_WAIT:
            return hinted, True
        return min(hinted, self.max_backoff), False

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep_for(seconds)
        self._add_wait(seconds)
        with self._stats_lock:
            self.stats.retries += 1

    def _add_wait(self, seconds: float) -> None:
        if seconds:
            with self._stats_lock:
                self.stats.waited_seconds += seconds

    def _count(self, status: int | None) -> None:
        with self._stats_lock:
            self.stats.saw(status)

    def close(self) -> None:
        self.session.close()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
