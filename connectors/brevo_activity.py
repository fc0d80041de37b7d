"""Each contact's e-mail campaign statistics -> canonical events (``events = "contact_stats"``).

``GET /contacts/{id}/campaignStats`` answers, per contact and over at most 90 days,
one list per kind of event, each in its own documented shape (Brevo's spec,
``components/schemas/getContactCampaignStats``; the official SDK models
``GetContactCampaignStats*``, getbrevo/brevo-node@c353d32c:model/):

- ``messagesSent``, ``delivered``, ``hardBounces``, ``softBounces``, ``complaints``:
  ``[{campaignId, eventTime}]``;
- ``opened``: ``[{campaignId, count, eventTime, ip}]``, one item per campaign;
- ``clicked``: ``[{campaignId, links: [{count, eventTime, ip, url}]}]``: the times
  are per link, there is none on the campaign item;
- ``unsubscriptions``: ``{userUnsubscription: [{campaignId, eventTime, ip}],
  adminUnsubscription: [{eventTime, ip}]}``: an administrator's unsubscription
  names no campaign;
- ``transacAttributes``: ``[{orderDate, orderId, orderPrice}]``, orders, not events.

Kinds map to the canonical events of DESIGN.md (``sent``, ``open``, ``click``,
``bounce``, ``unsubscribe``); what the kind alone does not say goes in two extra
columns: ``detail`` (``hard``/``soft`` bounce; ``link``, ``admin`` or
``complaint`` unsubscribe, a spam complaint ending consent as HubSpot's does) and
``url`` (the clicked link). ``delivered`` repeats ``sent`` and ``transacAttributes``
are orders (read from ``GET /orders``): both are checked, not kept. Any other field,
or an item of another shape, is a BadAnswer naming it: never an event dropped
silently. This costs one ``/contacts`` call per mailable contact (10 a second on
the general tier): fine for small bases; see docs/connectors/brevo.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import pandas as pd

from segmerge.ports import STRING, BadAnswer, HttpClient, _, empty_events, vendor_times

#: kinds answered as ``[{campaignId, eventTime, ...}]`` -> (event, detail)
PLAIN = {
    "messagesSent": ("sent", None),
    "hardBounces": ("bounce", "hard"),
    "softBounces": ("bounce", "soft"),
    "complaints": ("unsubscribe", "complaint"),
    "opened": ("open", None),
}
#: documented kinds that are not events: checked to be lists, not kept (see the docstring)
NOT_EVENTS = ("delivered", "transacAttributes")
UNSUBSCRIPTIONS = {"userUnsubscription": "link", "adminUnsubscription": "admin"}

#: one event: contact, campaign (None for an administrator's unsubscription), kind,
#: time as Brevo wrote it, detail, url
Row = tuple[str, str | None, str, str, str | None, str | None]


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

    def one(cid: str) -> list[Row]:
        return events_of(cid, client.get(f"/contacts/{cid}/campaignStats", params), source)

    ids = list(contact_ids)
    if not ids:
        return events_frame([], source)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = [row for rows in pool.map(one, ids) for row in rows]
    frame = events_frame(found, source)
    if since is not None:
        frame = frame[frame["at"] > since].reset_index(drop=True)
    return frame


def events_frame(rows: list[Row], source: str) -> pd.DataFrame:
    """The canonical events table (with ``detail`` and ``url``) of parsed rows."""
    if not rows:
        return empty_events().assign(detail=pd.Series(dtype=STRING), url=pd.Series(dtype=STRING))
    cids, campaigns, kinds, times, details, urls = zip(*rows, strict=True)
    at = vendor_times(
        list(times),
        source=source,
        where=lambda n: (
            f"GET /contacts/{cids[n]}/campaignStats: field 'eventTime' of a {kinds[n]} event"
        ),
    )
    return pd.DataFrame(
        {
            "contact_id": pd.Series(cids, dtype=STRING),
            "campaign_id": pd.Series(campaigns, dtype=STRING),
            "event": pd.Series(kinds, dtype=STRING),
            "at": at,
            "detail": pd.Series(details, dtype=STRING),
            "url": pd.Series(urls, dtype=STRING),
        }
    )


def events_of(cid: str, body: Any, source: str) -> list[Row]:
    """One contact's campaignStats answer -> its event rows, every documented kind read."""
    endpoint = f"GET /contacts/{cid}/campaignStats"
    if body is None:
        return []
    if not isinstance(body, dict):
        raise BadAnswer(
            _("{source}: {endpoint} answered {kind}, expected an object").format(
                source=source, endpoint=endpoint, kind=type(body).__name__
            ),
            field=source,
        )
    shape = _Shape(source, endpoint)
    out: list[Row] = []
    for key, items in body.items():
        if key in PLAIN:
            kind, detail = PLAIN[key]
            for e in shape.items(key, items):
                out.append((cid, shape.campaign(key, e), kind, shape.time(key, e), detail, None))
        elif key == "clicked":
            for e in shape.items(key, items):
                campaign = shape.campaign(key, e)
                for link in shape.items(f"{key}[].links", e.get("links")):
                    url = link.get("url")
                    if not isinstance(url, str):
                        shape.wrong(f"{key}[].links[].url", url, "a string")
                    out.append(
                        (cid, campaign, "click", shape.time(f"{key}[].links[]", link), None, url)
                    )
        elif key == "unsubscriptions":
            if not isinstance(items, dict):
                shape.wrong(key, items, "an object")
            for sub, detail in UNSUBSCRIPTIONS.items():
                name = f"{key}.{sub}"
                for e in shape.items(name, items.get(sub, [])):
                    which = shape.campaign(name, e) if sub == "userUnsubscription" else None
                    out.append((cid, which, "unsubscribe", shape.time(name, e), detail, None))
            unknown = sorted(set(items) - set(UNSUBSCRIPTIONS))
            if unknown:
                shape.unknown(f"{key}.{unknown[0]}")
        elif key in NOT_EVENTS:
            shape.items(key, items)
        else:
            shape.unknown(key)
    return out


class _Shape:
    """Checks of one answer's fields, each failure naming source, endpoint and field."""

    def __init__(self, source: str, endpoint: str) -> None:
        self.source = source
        self.endpoint = endpoint

    def wrong(self, name: str, value: Any, expected: str) -> NoReturn:
        got = "missing" if value is None else f"{type(value).__name__} {str(value)[:60]!r}"
        raise BadAnswer(
            _("{source}: {endpoint}: field {name!r} is {got}, expected {expected}").format(
                source=self.source, endpoint=self.endpoint, name=name, got=got, expected=expected
            ),
            field=self.source,
        )

    def unknown(self, name: str) -> NoReturn:
        raise BadAnswer(
            _(
                "{source}: {endpoint}: field {name!r} is no kind of event Segmerge "
                "knows (Brevo's documented ones are read)"
            ).format(source=self.source, endpoint=self.endpoint, name=name),
            field=self.source,
            hint=_('`events = "none"` pulls without events meanwhile; please report the field'),
        )

    def items(self, name: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            self.wrong(name, value, "a list of objects")
        return value

    def campaign(self, name: str, item: dict[str, Any]) -> str:
        value = item.get("campaignId")
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong(f"{name}[].campaignId", value, "an integer")
        return str(value)

    def time(self, name: str, item: dict[str, Any]) -> str:
        value = item.get("eventTime")
        if not isinstance(value, str):
            self.wrong(
                f"{name}.eventTime" if name.endswith("]") else f"{name}[].eventTime",
                value,
                "a date-time",
            )
        return value
