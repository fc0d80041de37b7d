"""Mailchimp transport: the data-center host, the 10-connection limit, parallel offset paging.

Mailchimp does not limit requests per second; it limits *simultaneous
connections* to 10 per user and answers the 11th with 429, without any
rate-limit header or Retry-After. So the polite and fast client is not a
paced one but a concurrent one: up to 10 requests in flight (a thread pool
over pages or batches), never more. A :class:`~connectors.mailchimp_gate.Gate`
caps the requests in flight; when a 429 still comes (another app uses the same key), the call
gives its slot back, the cap drops by one and the call waits its back-off, so
a shared key settles at what is left instead of hammering; the cap then probes
back up slowly.

Everything goes through :class:`segmerge.ports.http.HttpClient` (timeouts, retries,
clear errors); this module adds only what is Mailchimp's own.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from segmerge.ports import (
    BadAnswer,
    ConfigError,
    ConnectorError,
    CredentialError,
    HttpClient,
    _,
    field_of,
    retry_after,
    vendor_reason,
)

from .mailchimp_gate import Gate

PAGE = 1000  # Mailchimp's maximum `count`
MAX_CONNECTIONS = 10  # "up to 10 simultaneous connections" per user
MAX_429 = 8  # attempts of one call that keeps answering 429
#: readings of a listing whose pages slid under it (see torn) before the pull gives up
READINGS = 3
OK = (200, 201, 202, 204, 207)
_WORKER = "segmerge-mailchimp"  # thread name prefix of the pool's workers
_DC = re.compile(r"-([a-z]{2,4}\d{1,3})$")
T = TypeVar("T")
R = TypeVar("R")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased e-mail address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def base_url_for(api_key: str, *, source: str, config_file: Any = None) -> str:
    """``https://<dc>.api.mailchimp.com/3.0`` from the key's ``-us6`` suffix."""
    m = _DC.search(api_key.strip())
    if not m:
        raise ConfigError(
            _(
                "the Mailchimp API key has no data-center suffix (like '-us6'), so the API "
                "host is unknown"
            ),
            file=config_file,
            field=f"{source}.base_url",
            hint=_("store the full key with `segmerge auth set {source}`, or set {setting}").format(
                source=source, setting='base_url = "https://usN.api.mailchimp.com/3.0"'
            ),
        )
    return f"https://{m.group(1)}.api.mailchimp.com/3.0"


@dataclass(eq=False)
class Listing:
    """One paged collection to read: path, the key holding its items, query parameters.

    ``expected`` (a lower bound of the total, when known) lets the first wave ask
    all those pages at once instead of one page to learn the total; ``digest``
    runs on each page in the worker that fetched it, so checking and extracting
    columns overlaps the other requests instead of following them. A digested
    page keeps only what the digest made of it: 100,000 members' dicts kept
    alive until the end of the pull would make every garbage collection on the
    way scan them all (a tenth of the pull's CPU).
    """

    path: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    tag: Any = None  # the caller's label (a campaign id, a store id)
    expected: int = 0
    digest: Callable[[Page], Any] | None = None
    #: the item field that tells items apart ("id"): set it on a listing sorted by a field
    #: that changes (members by last_changed), which :meth:`Api.collect` then checks for
    #: items that moved between pages while they were read (see :func:`torn`)
    ident: str | None = None
    #: items each page repeats from the previous one (pages start every PAGE - overlap)
    overlap: int = 0

    @property
    def stride(self) -> int:
        return PAGE - self.overlap


@dataclass
class Page:
    listing: Listing
    offset: int
    items: list[dict[str, Any]]  # [] once digested
    total: int
    data: Any = None  # what the listing's digest made of the items
    count: int = -1  # items on the page as answered (-1: len(items))
    idents: frozenset[Any] = frozenset()  # the items' ``listing.ident`` values
    head: Any = None  # the first item's

    def __post_init__(self) -> None:
        if self.count < 0:
            self.count = len(self.items)


class Api:
    """One Mailchimp account: an HttpClient, the connection gate and a pool of 10 workers."""

    def __init__(
        self,
        source: str,
        base_url: str,
        api_key: str,
        *,
        connections: int = MAX_CONNECTIONS,
        timeout: float = 30.0,
        backoff: float = 0.5,
        credential_hint: str | None = None,
    ) -> None:
        self.source = source
        self.connections = connections
        self.backoff = backoff
        self.gate = Gate(connections)
        self.client = HttpClient(
            source=source,
            base_url=base_url,
            auth=("segmerge", api_key),
            rate=None,  # no per-second limit is documented: the Gate caps connections
            timeout=timeout,
            max_retries=5,  # 5xx, timeouts, dropped connections (429s are handled here)
            backoff=backoff,
            pool=connections,
            credential_hint=credential_hint,
        )
        self._pool: ThreadPoolExecutor | None = None

    # -- single calls ------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, ok: Iterable[int] = OK, **kwargs: Any
    ) -> requests.Response:
        """One call within the connection cap; a 429 frees its slot, lowers the cap and
        waits (Retry-After if ever sent, else exponential back-off) before trying again."""
        accepted = (*ok, 429)
        for attempt in range(1, MAX_429 + 1):
            with self.gate:
                resp = self.client.request(method, path, ok=accepted, **kwargs)
            if resp.status_code != 429:
                self.gate.succeeded()
                return resp
            self.gate.throttled()
            if attempt < MAX_429:
                wait = retry_after(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = min(30.0, self.backoff * 2 ** (attempt - 1)) * (
                        0.5 + random.random() / 2
                    )
                time.sleep(wait)
        raise ConnectorError(
            _("{source}: {value} {path} answered 429 {max_429} times, giving up: {value2}").format(
                source=self.source,
                value=method.upper(),
                path=path,
                max_429=MAX_429,
                value2=vendor_reason(resp),
            ),
            field=self.source,
            hint=_(
                "another app holds this key's 10 simultaneous connections; lower "
                "max_connections for this source, the next run picks up where this "
                "one stopped"
            ),
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        return self.client.decode(resp, f"{method.upper()} {path}")

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.json("GET", path, params=params)

    # -- concurrency -------------------------------------------------------------------------

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Twice as many workers as connections: while one worker decodes a page it has
        received, another holds its connection, so the 10 allowed stay in use (the Gate,
        not the pool, caps the requests in flight)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(2 * self.connections, thread_name_prefix=_WORKER)
        return self._pool

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | BaseException]:
        """``fn`` over ``items`` on the workers; exceptions are returned, not raised, except
        a refused credential, which stops everything. Called from a worker itself (a
        lookup inside a batch), it runs in that worker: waiting on the pool from inside
        the pool could leave no worker free to do the waited-for work."""
        items = list(items)
        if len(items) <= 1 or threading.current_thread().name.startswith(_WORKER):
            return [_attempt(fn, x) for x in items]
        return list(self.pool.map(lambda x: _attempt(fn, x), items))

    # -- paging ------------------------------------------------------------------------------

    def collect(self, listings: Sequence[Listing]) -> list[Page]:
        """Every page of every listing, up to 10 requests at a time, in offset order.

        First wave: the first page of each listing (or every page its ``expected``
        total implies), all listings in parallel; second wave: the offsets the
        announced ``total_items`` still need, all in parallel; then, should a total
        have grown meanwhile, the tail is read until a short page.

        A listing with an ``ident`` is read again, whole, when its pages do not fit
        together (:func:`torn`): the pages of every reading are kept, the last
        reading's last, so a member read only by the first one is not lost. After
        :data:`READINGS` torn readings the pull stops rather than miss members.
        """
        pages = self._collect_once(listings)
        latest = {id(lst): [p for p in pages if p.listing is lst] for lst in listings if lst.ident}
        for reading in range(1, READINGS + 1):
            tears = {key: why for key, own in latest.items() if (why := torn(own))}
            if not tears:
                return pages
            again = [lst for lst in listings if id(lst) in tears]
            if reading == READINGS:
                raise ConnectorError(
                    _(
                        "{source}: GET {value} was read {readings} times and the audience "
                        "changed under each reading ({value2})"
                    ).format(
                        source=self.source,
                        value=again[0].path,
                        readings=READINGS,
                        value2=tears[id(again[0])],
                    ),
                    field=self.source,
                    hint=_(
                        "members moved between pages while they were read (many changes at "
                        "once?); nothing was recorded, the next run reads them again"
                    ),
                )
            for lst in again:
                lst.expected = max((p.total for p in latest[id(lst)]), default=0)
            fresh = self._collect_once(again)
            latest = {id(lst): [p for p in fresh if p.listing is lst] for lst in again}
            pages = pages + fresh
        return pages

    def _collect_once(self, listings: Sequence[Listing]) -> list[Page]:
        first = [
            (lst, off) for lst in listings for off in range(0, max(lst.expected, 1), lst.stride)
        ]
        pages = self._pages_or_raise(first)
        done = {(id(p.listing), p.offset) for p in pages}
        totals: dict[int, int] = {}
        for p in pages:
            totals[id(p.listing)] = max(totals.get(id(p.listing), 0), p.total)
        rest = [
            (lst, off)
            for lst in listings
            for off in range(lst.stride, totals[id(lst)], lst.stride)
            if (id(lst), off) not in done
        ]
        pages += self._pages_or_raise(rest)
        by_listing: dict[int, list[Page]] = {}
        for p in pages:
            by_listing.setdefault(id(p.listing), []).append(p)
        out: list[Page] = []
        for lst in listings:
            own = sorted(by_listing.get(id(lst), []), key=lambda p: p.offset)
            while (
                own and own[-1].count == PAGE and own[-1].offset + PAGE < max(p.total for p in own)
            ):
                own.append(self._page((lst, own[-1].offset + lst.stride)))
            out.extend(p for p in own if p.count or p.offset == 0)
        return out

    def _pages_or_raise(self, work: list[tuple[Listing, int]]) -> list[Page]:
        results = self.map(self._page, work)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, Page)]

    def _page(self, work: tuple[Listing, int]) -> Page:
        lst, offset = work
        endpoint = f"GET {lst.path}"
        body = self.get(lst.path, {**lst.params, "count": PAGE, "offset": offset})
        items = field_of(body, lst.key, list, endpoint=endpoint, source=self.source)
        total = body.get("total_items", 0)
        if not isinstance(total, int) or isinstance(total, bool):
            raise BadAnswer(
                _(
                    "{source}: {endpoint} (offset {offset}): field 'total_items' is "
                    "{kind}, expected int"
                ).format(
                    source=self.source, endpoint=endpoint, offset=offset, kind=type(total).__name__
                ),
                field=self.source,
            )
        page = Page(lst, offset, items, total)
        if lst.ident is not None:
            idents = [m.get(lst.ident) if isinstance(m, dict) else None for m in items]
            page.idents = frozenset(idents)
            page.head = idents[0] if idents else None
        if lst.digest is not None:
            page.data = lst.digest(page)
            page.items = []
        return page

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()


def torn(pages: Sequence[Page]) -> str | None:
    """Why the pages of one reading of a listing may have missed items, or None.

    Offset pages of a collection sorted by a field that changes (members by
    ``last_changed``) slide while they are read: a member changed after its page
    was read moves to the end, the items after it move up one place, and the one
    that moved across the next page's start is on neither page. Pages overlap by
    ``listing.overlap`` items, so a slide that small loses nothing; a larger one
    shows as a page whose first item the previous full page does not hold. A
    reading also has to hold as many distinct items as the smallest total it was
    told (ties of the sort key in another order from page to page would repeat
    some and miss others).
    """
    for prev, cur in zip(pages, pages[1:], strict=False):
        if prev.count == PAGE and cur.count and cur.head not in prev.idents:
            return f"the page at offset {cur.offset} does not follow the one before"
    seen: set[Any] = set().union(*(p.idents for p in pages))
    least = min((p.total for p in pages), default=0)
    if len(seen) < least:
        return f"{len(seen)} distinct items where {least} were announced"
    return None


def _attempt(fn: Callable[[T], R], item: T) -> R | BaseException:
    try:
        return fn(item)
    except CredentialError:
        raise
    except Exception as exc:  # returned to the caller, who decides per item
        return exc


def fields(key: str, names: Iterable[str]) -> str:
    """Mailchimp's ``fields=`` projection: ``members.id,members.status,...,total_items``."""
    return ",".join([*(f"{key}.{n}" for n in names), "total_items"])
