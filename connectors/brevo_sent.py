"""Brevo's sent campaigns and their counters: where the engagement exports start.

One ``GET /emailCampaigns?status=sent&statistics=globalStats`` (paged by 100) lists
the campaigns of the events window; each one's counters (``uniqueViews``,
``uniqueClicks``...) say which recipient exports are worth starting
(brevo_engagement.py) and are the events stream's cursor. The answer's
``x-sib-ratelimit-remaining`` header is the budget those exports must fit in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from segmerge.ports import BadAnswer, HttpClient, _, field_of

#: recipientsType -> (its counter in statistics.globalStats, the canonical event)
KINDS: dict[str, tuple[str, str]] = {
    "openers": ("uniqueViews", "open"),
    "clickers": ("uniqueClicks", "click"),
    "hardBounces": ("hardBounces", "bounce"),
    "softBounces": ("softBounces", "bounce"),
    "unsubscribed": ("unsubscriptions", "unsubscribe"),
}
PAGE = 100  # GET /emailCampaigns maximum


@dataclass
class Campaign:
    id: int
    name: str
    sent: pd.Timestamp
    counts: dict[str, int]


def list_sent(client: HttpClient, days: int, source: str) -> tuple[list[Campaign], int | None]:
    """Campaigns sent in the last ``days`` days, and the calls Brevo says remain."""
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=days)
    params: dict[str, Any] = {
        "status": "sent",
        "statistics": "globalStats",
        "excludeHtmlContent": "true",
        "startDate": _stamp(start),
        "endDate": _stamp(now),
        "limit": PAGE,
        "sort": "desc",
    }
    endpoint = "GET /emailCampaigns"
    out: list[Campaign] = []
    remaining: int | None = None
    offset = 0
    while True:
        resp = client.request("GET", "/emailCampaigns", params={**params, "offset": offset})
        remaining = _header_int(resp.headers.get("x-sib-ratelimit-remaining"))
        body = client.decode(resp, endpoint)
        if body is None:
            break
        items = field_of(body, "campaigns", list, endpoint=endpoint, source=source)
        out.extend(_campaign(x, n + offset, source) for n, x in enumerate(items))
        offset += len(items)
        total = body.get("count") if isinstance(body, dict) else None
        if len(items) < PAGE or (isinstance(total, int) and offset >= total):
            break
    return out, remaining


def _campaign(item: Any, n: int, source: str) -> Campaign:
    endpoint = "GET /emailCampaigns"

    def bad(what: str) -> BadAnswer:
        return BadAnswer(
            _("{source}: {endpoint}: campaign #{n} {what}").format(
                source=source, endpoint=endpoint, n=n, what=what
            ),
            field=source,
        )

    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise bad(_("has no integer 'id'"))
    cid = item["id"]
    when = item.get("sentDate") or item.get("scheduledAt")
    sent = pd.to_datetime(when, utc=True, errors="coerce") if isinstance(when, str) else None
    if sent is None or pd.isna(sent):
        raise bad(_("(id {cid}) has no valid 'sentDate' ({when!r})").format(cid=cid, when=when))
    stats = item.get("statistics")
    glob = stats.get("globalStats") if isinstance(stats, dict) else None
    if not isinstance(glob, dict):
        raise bad(_("(id {cid}) has no 'statistics.globalStats'").format(cid=cid))
    counts: dict[str, int] = {}
    for kind, (counter, _event) in KINDS.items():
        value = glob.get(counter)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(
                _(
                    "(id {cid}): field 'statistics.globalStats.{counter}' is {value!r}, "
                    "expected a count"
                ).format(cid=cid, counter=counter, value=value)
            )
        counts[kind] = value
    return Campaign(cid, str(item.get("name") or cid), sent, counts)


def _header_int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _stamp(when: dt.datetime) -> str:
    """Brevo's filter format: YYYY-MM-DDTHH:mm:ss.SSSZ, in UTC."""
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )
