"""Marketing e-mail events, in time windows, each page turned into columns as it comes.

HubSpot's per-recipient e-mail events exist only in the legacy Email Events API,
``GET /email/public/v1/events`` (https://legacydocs.hubspot.com/docs/methods/email/get_events):
``{hasMore, offset, events: [{id, created (epoch ms), type, recipient,
emailCampaignId, ...}]}``, 1000 a page. A year of events of a large account is
millions of dicts; they are never held together: the range is read window by window
(``events_window_days``) and each page keeps only four columns of its engagement
events. A page whose events lack the fields those columns come from is a changed
shape: a :class:`BadAnswer` naming the field, never a silently smaller table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from segmerge.ports import STRING, UTC, BadAnswer, HttpClient, _, empty_events

EVENTS = "/email/public/v1/events"
PAGE = 1000
#: HubSpot e-mail event types -> canonical event kinds (others are not engagement)
EVENT_KINDS = {
    "SENT": "sent",
    "OPEN": "open",
    "CLICK": "click",
    "BOUNCE": "bounce",
    "SPAMREPORT": "unsubscribe",
}
COLUMNS = ["recipient", "campaign_id", "event", "at_ms"]


def _more(body: Any) -> str | None:
    has_more = body.get("hasMore") if isinstance(body, dict) else None
    offset = body.get("offset") if isinstance(body, dict) else None
    return str(offset) if has_more and offset else None


def pages(client: HttpClient, start_ms: int, end_ms: int, window_ms: int) -> Iterator[pd.DataFrame]:
    """The engagement events of [start, end], one small frame per page of each window."""
    a = start_ms
    while a <= end_ms:
        b = min(a + window_ms, end_ms + 1)
        # endTimestamp is inclusive: b - 1, so that windows never share a millisecond
        params = {"startTimestamp": a, "endTimestamp": b - 1, "limit": PAGE}
        for page in client.pages_cursor(
            EVENTS, items_key="events", next_cursor=_more, cursor_param="offset", params=params
        ):
            yield page_frame(page, client.source)
        a = b


def page_frame(page: list[Any], source: str) -> pd.DataFrame:
    """One page's engagement events as columns: recipient, campaign_id, event, at_ms."""
    bad = next((e for e in page if not isinstance(e, dict)), None)
    if bad is not None:
        raise BadAnswer(
            _("{source}: GET {events}: an event is {kind}, not an object").format(
                source=source, events=EVENTS, kind=type(bad).__name__
            ),
            field=source,
        )
    df = pd.DataFrame.from_records(page)
    if df.empty:
        return _empty()
    if "type" not in df.columns:
        raise BadAnswer(
            _("{source}: GET {events}: events have no 'type' field").format(
                source=source, events=EVENTS
            ),
            field=source,
        )
    kinds = df["type"].map(EVENT_KINDS)
    changes = df["type"] == "STATUSCHANGE"
    if changes.any():
        kinds = kinds.where(~changes, df[changes].apply(_unsubscribed, axis=1))
    df = df[kinds.notna()]
    if df.empty:
        return _empty()
    for field in ("created", "recipient"):
        if field not in df.columns or df[field].isna().any():
            raise BadAnswer(
                _("{source}: GET {events}: a {value} event has no {field!r}").format(
                    source=source, events=EVENTS, value=df["type"].iloc[0], field=field
                ),
                field=source,
            )
    at = pd.to_numeric(df["created"], errors="coerce")
    if at.isna().any() or not df["recipient"].map(lambda r: isinstance(r, str)).all():
        raise BadAnswer(
            _(
                "{source}: GET {events}: an event's 'created' is not epoch "
                "milliseconds or its 'recipient' not a string"
            ).format(source=source, events=EVENTS),
            field=source,
        )
    return pd.DataFrame(
        {
            "recipient": df["recipient"].str.strip().str.lower().astype(STRING),
            "campaign_id": _campaigns(df),
            "event": kinds[df.index].astype(STRING),
            "at_ms": at.astype("int64"),
        }
    ).reset_index(drop=True)


def _campaigns(df: pd.DataFrame) -> pd.Series:
    """``emailCampaignId`` as text: a number in HubSpot's answers (77, never "77.0")."""
    if "emailCampaignId" not in df.columns:
        return pd.Series(pd.NA, index=df.index, dtype=STRING)
    raw = df["emailCampaignId"]
    num = pd.to_numeric(raw, errors="coerce")
    whole = num.notna() & (num % 1 == 0)
    text = num.where(whole).astype("Int64").astype(STRING)
    return text.where(whole, raw.astype(STRING))


def _unsubscribed(e: pd.Series) -> str | None:
    """A STATUSCHANGE is an unsubscribe when the portal or a subscription says UNSUBSCRIBED."""
    if e.get("portalSubscriptionStatus") == "UNSUBSCRIBED":
        return "unsubscribe"
    subs = e.get("subscriptions")
    if isinstance(subs, list) and any(
        isinstance(s, dict) and s.get("status") == "UNSUBSCRIBED" for s in subs
    ):
        return "unsubscribe"
    return None


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recipient": pd.Series(dtype=STRING),
            "campaign_id": pd.Series(dtype=STRING),
            "event": pd.Series(dtype=STRING),
            "at_ms": pd.Series(dtype="int64"),
        }
    )


def collect(frames: Iterator[pd.DataFrame]) -> pd.DataFrame:
    """The pages' columns, one frame (only engagement events were kept)."""
    parts = [f for f in frames if not f.empty]
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def canonical(raw: pd.DataFrame, ids_by_email: dict[str, str]) -> tuple[pd.DataFrame, int]:
    """The canonical events table, and how many events matched no contact."""
    if raw.empty:
        return empty_events(), 0
    cid = raw["recipient"].map(ids_by_email)
    matched = raw[cid.notna()]
    out = pd.DataFrame(
        {
            "contact_id": cid[matched.index].astype(STRING),
            "campaign_id": matched["campaign_id"].fillna("").astype(STRING),
            "event": matched["event"].astype(STRING),
            "at": pd.to_datetime(matched["at_ms"], unit="ms", utc=True).astype(UTC),
        }
    ).reset_index(drop=True)
    return out, int(len(raw) - len(matched))
