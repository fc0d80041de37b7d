"""What the Mailchimp connector reads: its listings, and the cursors it keeps between pulls.

Pure functions over settings, answers and timestamps, so :mod:`connectors.mailchimp`
keeps to the order of a pull.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from segmerge.ports import ConfigError, _

from . import mailchimp_tables as mt
from .mailchimp_api import Listing, Page, fields
from .mailchimp_shapes import check


def order_listings(stores: list[str]) -> list[Listing]:
    names = (
        "id",
        "store_id",
        "customer.email_address",
        "order_total",
        "currency_code",
        "processed_at_foreign",
        "updated_at_foreign",
        "cancelled_at_foreign",
    )
    return [
        Listing(
            f"/ecommerce/stores/{s}/orders",
            "orders",
            {"fields": fields("orders", names)},
            tag=s,
        )
        for s in stores
    ]


def store_ids(pages: list[Page], list_id: str, source: str) -> list[str]:
    """The e-commerce stores connected to this audience (the others are left out)."""
    for page in pages:
        check(page, source)
    return [s["id"] for p in pages for s in p.items if s["list_id"] == list_id]


def send_times(pages: list[Page], source: str) -> dict[str, pd.Timestamp | None]:
    """Campaign id -> when it was sent (None if Mailchimp gives no time)."""
    for page in pages:
        check(page, source)
    camps = [c for p in pages for c in p.items]
    times = mt.timestamps(c.get("send_time") for c in camps)
    pairs = zip(camps, times, strict=True)
    return {str(c["id"]): (None if pd.isna(t) else t) for c, t in pairs}


def activity_listings(
    sent_at: dict[str, pd.Timestamp | None], since: pd.Timestamp | None
) -> list[Listing]:
    activity: dict[str, Any] = {
        "fields": fields("emails", ("email_id", "email_address", "activity"))
    }
    if since is not None:
        activity["since"] = since.isoformat()
    unsub = {"fields": fields("unsubscribes", ("email_id", "email_address", "timestamp"))}
    return [Listing(f"/reports/{c}/email-activity", "emails", activity, tag=c) for c in sent_at] + [
        Listing(f"/reports/{c}/unsubscribed", "unsubscribes", unsub, tag=c) for c in sent_at
    ]


def audience_size(audience: Any) -> int:
    stats = audience.get("stats") if isinstance(audience, dict) else None
    if not isinstance(stats, dict):
        return 0
    counts = [stats.get(k) for k in ("member_count", "unsubscribe_count", "cleaned_count")]
    return sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool))


def latest_change(changed: pd.Series, previous: str | None, started: datetime) -> str:
    """The members' cursor: the latest ``last_changed`` read; the previous cursor when
    nothing changed since it; the pull's start when an audience has no member yet."""
    latest = changed.max() if len(changed) else None
    if latest is not None and not pd.isna(latest):
        return pd.Timestamp(latest).isoformat()
    return previous or started.isoformat(timespec="seconds")


def parse_cursor(since: str, source: str) -> datetime:
    try:
        dt = datetime.fromisoformat(since)
    except ValueError:
        raise ConfigError(
            _("{source}: the stored cursor {value} is not an ISO 8601 time").format(
                source=source, value=repr(since)
            ),
            field=source,
            hint=_("run once with a full pull (the ledger's cursor for this source is damaged)"),
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
