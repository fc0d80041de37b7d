"""HubSpot's HTTP side: two rate limits, its 429 headers, and CRM search past 10,000 results.

HubSpot counts every call of a private app against a burst window (100 calls per
10 s on Free/Starter, 190 on Professional/Enterprise) and the CRM search
endpoints against a second, per-second limit of their own (4 per second in the
changelog that raised it, 5 in the current search guide; we default to the
stricter). Both are enforced client-side so that a 429 stays an accident; when one
comes anyway, ``X-HubSpot-RateLimit-Interval-Milliseconds`` says how long the
window is, and waiting that long is the one wait that is sure to end it. A spent
budget (``X-HubSpot-RateLimit-Remaining: 0``, another app of the account having
used it) holds every call until the window turns (``budget_hint``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from segmerge.ports import (
    BadAnswer,
    ConnectorError,
    HttpClient,
    RateLimit,
    _,
    field_of,
    hubspot_budget,
)

#: HubSpot never pages a search beyond this many results per query (docs, "CRM search")
SEARCH_CAP = 10_000
SEARCH_PAGE = 200
LIST_PAGE = 100


class BothLimits(RateLimit):
    """A call that must fit two limits at once (a search counts against both)."""

    def __init__(self, *limits: RateLimit) -> None:  # noqa: D107 - the parts are the state
        self.limits = limits

    def acquire(self) -> float:
        return sum(limit.acquire() for limit in self.limits)

    def pause(self, seconds: float) -> None:
        for limit in self.limits:
            limit.pause(seconds)

    def observe(self, remaining: int, reset_seconds: float) -> float:
        """HubSpot's calls-left headers count the burst window: the first limit's budget."""
        return self.limits[0].observe(remaining, reset_seconds)


def wait_hint(source: str, search_window: float) -> Callable[[requests.Response], float | None]:
    """Seconds to wait after a HubSpot 429, from its headers and ``policyName``.

    The burst limits send the window length: waiting it out is sure to end the
    window. The search limit sends no headers, so its own window is waited. A
    daily limit cannot be waited out in a run: that stops at once, with HubSpot's
    words, instead of hammering a closed door.
    """

    def hint(resp: requests.Response) -> float | None:
        if resp.status_code != 429:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = None
        policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
        if "DAILY" in policy.upper():
            where = f"{resp.request.method} {urlsplit(resp.request.url or '').path}"
            raise ConnectorError(
                _(
                    "{source}: {where} answered 429: HubSpot's daily API limit is used up "
                    "({answer})"
                ).format(
                    source=source,
                    where=where,
                    answer=body.get("message", policy) if isinstance(body, dict) else policy,
                ),
                field=source,
                hint=_(
                    "it resets at midnight in the HubSpot account's time zone; the next run "
                    "picks up where this one stopped"
                ),
            )
        interval = resp.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if interval:
            try:
                return max(0.0, float(interval) / 1000.0)
            except ValueError:
                pass
        return search_window

    return hint


def spent_budget(resp: requests.Response) -> tuple[int, float] | None:
    """HubSpot's calls-left headers, followed only when they say the budget is spent.

    HubSpot names the window's length, not when it turns (the window rolls), so a
    budget with calls left says nothing the even pace does not already respect: taken
    as "these calls, then wait a whole window", it would make the pace burst and then
    stall (measured against the fake at 100 per 10 s: about half the limit reached).
    Spent (another app of the account used it up), every call waits the window
    instead of earning a 429 each.
    """
    budget = hubspot_budget(resp)
    return budget if budget is not None and budget[0] <= 0 else None


def make_clients(
    source: str,
    base_url: str,
    token: str,
    *,
    limit: int,
    window: float,
    search_limit: float,
    search_window: float,
    timeout: float,
    credential_hint: str | None,
) -> tuple[HttpClient, HttpClient]:
    """One client for ordinary calls, one for search (which pays both limits).

    HubSpot counts calls per app, not per connection: every connector instance
    using the same token and host shares the same two limiters (a run opens the
    source and the destination as two instances).
    """
    general, search = _shared_limits(base_url, token, limit, window, search_limit, search_window)
    common: dict[str, Any] = {
        "headers": {"Authorization": f"Bearer {token}"},
        "timeout": timeout,
        "max_retries": 5,
        "wait_hint": wait_hint(source, search_window),
        "pool": 4,
        "credential_hint": credential_hint,
        "budget_hint": spent_budget,
    }
    api = HttpClient(source, base_url, rate=general, **common)
    finder = HttpClient(source, base_url, rate=BothLimits(general, search), **common)
    return api, finder


_LIMITS: dict[tuple[Any, ...], tuple[RateLimit, RateLimit]] = {}
_LIMITS_LOCK = threading.Lock()


def _shared_limits(
    base_url: str, token: str, limit: int, window: float, search_limit: float, search_window: float
) -> tuple[RateLimit, RateLimit]:
    app = hashlib.sha256(token.encode()).hexdigest()[:16]  # never keep the token itself
    key = (base_url.rstrip("/"), app, limit, window, search_limit, search_window)
    with _LIMITS_LOCK:
        if key not in _LIMITS:
            # 2% under the documented limit: an even pace against a fixed window can
            # otherwise land limit + 1 calls in one window now and then
            _LIMITS[key] = (
                RateLimit(requests=max(1.0, limit * 0.98), per_seconds=window),
                RateLimit(requests=search_limit, per_seconds=search_window),
            )
        return _LIMITS[key]


def next_after(body: Any) -> str | None:
    """``paging.next.after`` of a CRM answer, or None on the last page."""
    paging = body.get("paging") if isinstance(body, dict) else None
    nxt = paging.get("next") if isinstance(paging, dict) else None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    return str(after) if after not in (None, "") else None


def search_modified_since(
    client: HttpClient,
    object_type: str,
    since_ms: int,
    properties: list[str],
    *,
    cap: int = SEARCH_CAP,
    modified_property: str = "lastmodifieddate",
) -> Iterator[list[dict[str, Any]]]:
    """Every record modified at or after ``since_ms``, oldest first, in pages.

    One search query stops at ``cap`` results; when it does, a new query starts
    from the last modification time seen (records at that very millisecond come
    twice: callers keep the last copy by id). A millisecond holding ``cap``
    records would loop forever: that raises :class:`StuckSearch` instead.
    """
    path = f"/crm/v3/objects/{object_type}/search"
    start = since_ms
    while True:
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": modified_property, "operator": "GTE", "value": str(start)}
                    ]
                }
            ],
            "sorts": [{"propertyName": modified_property, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_PAGE,
        }
        seen = 0
        last_ms = start
        after: str | None = None
        while True:
            payload = {**body, "after": after} if after else body
            answer = client.json("POST", path, json=payload)
            items = field_of(answer, "results", list, endpoint=f"POST {path}", source=client.source)
            if items:
                yield items
                last_ms = _modified_ms(items[-1], modified_property, client.source, path)
            seen += len(items)
            after = next_after(answer)
            if after is None:
                return
            if seen >= cap:  # HubSpot refuses an `after` at or past the cap
                break
        if last_ms <= start:
            raise StuckSearch(
                _(
                    "{source}: POST {path}: more than {cap} records were modified at the "
                    "same millisecond ({start}); the search cannot page past them"
                ).format(source=client.source, path=path, cap=cap, start=start),
                field=client.source,
            )
        start = last_ms


class StuckSearch(BadAnswer):
    """The search cap cannot be worked around by time; callers fall back to a full list."""


def _modified_ms(item: Any, prop: str, source: str, path: str) -> int:
    props = item.get("properties") if isinstance(item, dict) else None
    value = props.get(prop) if isinstance(props, dict) else None
    if value is None and isinstance(item, dict):
        value = item.get("updatedAt")
    try:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return int(pd.Timestamp(value).value // 1_000_000)
    except (TypeError, ValueError):
        raise BadAnswer(
            _("{source}: POST {path}: record {value} has no readable {prop!r} ({value2!r})").format(
                source=source,
                path=path,
                value=item.get("id") if isinstance(item, dict) else "?",
                prop=prop,
                value2=value,
            ),
            field=source,
        ) from None
