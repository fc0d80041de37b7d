"""Brevo e-commerce orders -> the canonical orders table, pulled incrementally.

Orders come from ``GET /orders`` (Brevo's e-commerce app: orders a shop sent with
``POST /orders/status``): at most 100 a page, ``modifiedSince`` for the orders
changed since the previous pull (Brevo's spec, ``paths./orders.get``), under the
"all other endpoints" limit (100 requests an hour on the general tier), so a
daily pull of a few new orders costs one call instead of one per 100 orders.

An order's documented fields (spec example; SDK model ``GetOrdersOrdersInner``,
getbrevo/brevo-node@c353d32c:model/getOrdersOrdersInner.ts): ``id`` (string),
``createdAt``, ``updatedAt``, ``status`` (free text), ``amount`` (number),
``products``, and the buyer as ``email``, ``contact_id`` (the spec's example) or
``contactId`` (the SDK). A buyer who is not in the pulled contacts is looked up
once by e-mail.

Every order is kept with its ``status``, cancelled and refunded ones too: the engine
leaves those out of every metric (``segmerge/segment/order_status.py``), and an incremental
pull must carry an order that was live last time and is cancelled now, so that it
replaces the earlier row in the base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from segmerge.ports import (
    STRING,
    BadAnswer,
    HttpClient,
    _,
    empty_orders,
    field_of,
    number,
    vendor_times,
)

from .brevo_contacts import listing_count

PAGE = 100  # GET /orders: `limit` maximum
ENDPOINT = "GET /orders"


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
    offset = 0
    while True:
        body = client.get("/orders", {**params, "limit": PAGE, "offset": offset})
        page, count = orders_page(body, source, offset)
        rows.extend(page)
        offset += len(page)
        if len(page) < PAGE or offset >= count:
            break
    return orders_frame(rows, contact_of_email, source)


def orders_page(body: Any, source: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """One ``GET /orders`` answer -> its checked orders and the total ``count``."""
    if body is None or (isinstance(body, dict) and "orders" not in body):  # optional (SDK)
        return [], 0
    items = field_of(body, "orders", list, endpoint=ENDPOINT, source=source)
    count = listing_count(body, items, ENDPOINT, source, offset)
    for n, o in enumerate(items):
        where = f"{source}: {ENDPOINT} (offset {offset}): order #{offset + n}"
        if not isinstance(o, dict) or not isinstance(o.get("id"), str | int):
            raise BadAnswer(_("{where} has no id").format(where=where), field=source)
        where = f"{source}: {ENDPOINT}: order {o['id']!r}"
        for key, kinds, expected in (
            ("amount", (int, float), "a number"),
            ("createdAt", (str,), "a date-time"),
            ("status", (str,), "a string"),
        ):
            value = o.get(key)
            if not isinstance(value, kinds) or isinstance(value, bool):
                got = "missing" if value is None else type(value).__name__
                raise BadAnswer(
                    _("{where}: field {key!r} is {got}, expected {expected}").format(
                        where=where, key=key, got=got, expected=expected
                    ),
                    field=source,
                )
        buyer = o.get("contact_id", o.get("contactId"))
        if buyer is not None and (not isinstance(buyer, int) or isinstance(buyer, bool)):
            raise BadAnswer(
                _("{where}: field 'contact_id' is {kind}, expected an integer").format(
                    where=where, kind=type(buyer).__name__
                ),
                field=source,
            )
    return items, count


def orders_frame(
    rows: list[dict[str, Any]], contact_of_email: Callable[[str], str | None], source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Checked orders -> (canonical orders table, notes)."""
    notes: list[str] = []
    if not rows:
        return empty_orders().assign(status=pd.Series(dtype=STRING)), notes
    owners = [_owner(o, contact_of_email) for o in rows]
    orphans = sum(1 for x in owners if x is None)
    if orphans:
        notes.append(
            _("{source}: {n} order(s) whose buyer is no Brevo contact left out").format(
                source=source, n=number(orphans)
            )
        )
    at = vendor_times(
        [o["createdAt"] for o in rows],
        source=source,
        where=lambda n: f"{ENDPOINT}: field 'createdAt' of order {rows[n]['id']!r}",
    )
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series(owners, dtype=STRING),
            "order_id": pd.Series([str(o["id"]) for o in rows], dtype=STRING),
            "ordered_at": at,
            "amount": pd.Series([float(o["amount"]) for o in rows], dtype="float64"),
            "status": pd.Series([o["status"] for o in rows], dtype=STRING),
        }
    )
    return frame[frame["contact_id"].notna()].reset_index(drop=True), notes


def _owner(order: dict[str, Any], contact_of_email: Callable[[str], str | None]) -> str | None:
    cid = order.get("contact_id", order.get("contactId"))
    if isinstance(cid, int) and not isinstance(cid, bool):
        return str(cid)
    email = order.get("email")
    return contact_of_email(email) if isinstance(email, str) and email else None
