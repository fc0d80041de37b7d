"""Brevo e-commerce orders and e-mail campaign engagement -> canonical orders and events.

Orders come from ``GET /orders`` (Brevo's e-commerce app: orders a shop pushed with
``POST /orders/status``), at most 100 a page, under Brevo's "all other endpoints"
limit (100 requests an hour on the general tier). An order names its buyer by
``email`` (sometimes a ``contact_id``); orders whose buyer is not in the pulled
contacts are looked up once by e-mail.

Brevo API v3 has no account-wide feed of marketing-campaign events (only webhooks
and the asynchronous recipient exports, which carry no event times), so events come
from each contact's ``GET /contacts/{id}/campaignStats``: sent, opened, clicked,
unsubscribed, hard and soft bounces, each with its campaign and time, over a window
of at most 90 days (Brevo's maximum).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from segmerge.errors import BadAnswer
from segmerge.http import HttpClient
from segmerge.schema import STRING, empty_events, empty_orders

#: campaignStats keys -> canonical event kinds
EVENT_KEYS = {
    "messagesSent": "sent",
    "opened": "open",
    "clicked": "click",
    "hardBounces": "bounce",
    "softBounces": "bounce",
}
DROPPED_STATUSES = {"cancelled", "canceled", "refunded"}


def pull_orders(
    client: HttpClient,
    since: str | None,
    contact_of_email: Callable[[str], str | None],
    source: str,
) -> tuple[pd.DataFrame, list[str]]:
    """Every order (or those modified since), with its buyer's contact id."""
    params: dict[str, Any] = {"sort": "asc"}
    if since:
        params["modifiedSince"] = since
    rows: list[dict[str, Any]] = []
    for page in client.pages_offset("/orders", items_key="orders", limit=100,
                                    params=params, total_key="count"):  # fmt: skip
        rows.extend(page)
    notes: list[str] = []
    if not rows:
        return empty_orders(), notes
    for n, o in enumerate(rows):
        if not isinstance(o, dict) or not isinstance(o.get("id"), str | int):
            raise BadAnswer(f"{source}: GET /orders: order #{n} has no id", field=source)
        if not isinstance(o.get("amount"), int | float) or isinstance(o.get("amount"), bool):
            raise BadAnswer(
                f"{source}: GET /orders: field 'amount' of order {o['id']} is "
                f"{type(o.get('amount')).__name__}, expected a number",
                field=source,
            )
    kept = [o for o in rows if str(o.get("status", "")).lower() not in DROPPED_STATUSES]
    if len(kept) < len(rows):
        notes.append(f"{source}: {len(rows) - len(kept)} cancelled or refunded order(s) left out")
    owners = [_owner(o, contact_of_email) for o in kept]
    orphans = sum(1 for x in owners if x is None)
    if orphans:
        notes.append(f"{source}: {orphans} order(s) whose buyer is no Brevo contact left out")
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series(owners, dtype=STRING),
            "order_id": pd.Series([str(o["id"]) for o in kept], dtype=STRING),
            "ordered_at": pd.to_datetime(pd.Series([o.get("createdAt") for o in kept]),
                                         utc=True, errors="coerce", format="ISO8601"),
            "amount": pd.Series([float(o["amount"]) for o in kept], dtype="float64"),
            "status": pd.Series([o.get("status") for o in kept], dtype=STRING),
        }
    )  # fmt: skip
    return frame[frame["contact_id"].notna()].reset_index(drop=True), notes


def _owner(order: dict[str, Any], contact_of_email: Callable[[str], str | None]) -> str | None:
    cid = order.get("contact_id")
    if isinstance(cid, int) and not isinstance(cid, bool):
        return str(cid)
    email = order.get("email")
    return contact_of_email(email) if isinstance(email, str) and email else None


def pull_events(
    client: HttpClient,
    contact_ids: Iterable[str],
    *,
    days: int,
    since: dt.datetime | None,
    workers: int,
    source: str,
) -> pd.DataFrame:
    """Each contact's campaign events over the last ``days`` (only newer than ``since``)."""
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=days - 1)
    if since is not None:
        start = max(start, since.date())
    params = {"startDate": start.isoformat(), "endDate": today.isoformat()}

    def one(cid: str) -> list[tuple[str, str, str, str]]:
        body = client.get(f"/contacts/{cid}/campaignStats", params)
        return _events_of(cid, body, source)

    ids = list(contact_ids)
    if not ids:
        return empty_events()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = [row for rows in pool.map(one, ids) for row in rows]
    if not found:
        return empty_events()
    cids, campaigns, kinds, times = zip(*found, strict=True)
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series(cids, dtype=STRING),
            "campaign_id": pd.Series(campaigns, dtype=STRING),
            "event": pd.Series(kinds, dtype=STRING),
            "at": pd.to_datetime(pd.Series(times), utc=True, errors="coerce", format="ISO8601"),
        }
    )
    if since is not None:
        frame = frame[frame["at"] > since]
    return frame.dropna(subset=["at"]).reset_index(drop=True)


def _events_of(cid: str, body: Any, source: str) -> list[tuple[str, str, str, str]]:
    endpoint = f"GET /contacts/{cid}/campaignStats"
    if body is None:
        return []
    if not isinstance(body, dict):
        raise BadAnswer(f"{source}: {endpoint} answered {type(body).__name__}", field=source)
    out: list[tuple[str, str, str, str]] = []
    groups: list[tuple[str, Any]] = [(EVENT_KEYS[k], body.get(k)) for k in EVENT_KEYS]
    unsub = body.get("unsubscriptions")
    if isinstance(unsub, dict):
        groups.append(("unsubscribe", unsub.get("userUnsubscription")))
    for kind, items in groups:
        if items is None:
            continue
        if not isinstance(items, list):
            raise BadAnswer(
                f"{source}: {endpoint}: a {kind} list is {type(items).__name__}, expected list",
                field=source,
            )
        for e in items:
            if isinstance(e, dict) and "campaignId" in e and isinstance(e.get("eventTime"), str):
                out.append((cid, str(e["campaignId"]), kind, e["eventTime"]))
    return out
