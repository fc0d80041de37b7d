"""Mailchimp answers -> Segmerge's canonical tables, whole columns at a time.

Members become contacts: ``id`` (the subscriber hash) is ``contact_id``;
``status`` other than ``subscribed`` (unsubscribed, cleaned, pending,
transactional) means never mail; merge fields ``FNAME``/``LNAME`` are the
names and every other merge field is its own column named after its merge tag
in lower snake case (``CODE_POSTAL`` -> ``code_postal``), typed from the
audience's merge-field definitions (number -> float, date -> UTC timestamp,
address -> one column per part). Mailchimp writes an empty string for an
unset value or timestamp: those become nulls.

Every item is checked for the types the tables rely on before any column is
built, so an API changing a field's type mid-pull is reported with the
endpoint, the offset and the field, not as a pandas error three layers down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from segmerge.ports import CONTACT_COLUMNS, STRING, UTC, empty_events, empty_orders

from .mailchimp_api import Page, subscriber_hash
from .mailchimp_shapes import MEMBER_TYPES, bad, check, check_items

MEMBER_FIELDS = (
    "id",
    "email_address",
    "status",
    "merge_fields",
    "timestamp_signup",
    "timestamp_opt",
    "last_changed",
    "tags",
    "language",
    "vip",
    "member_rating",
)
NAMES = {"FNAME": "first_name", "LNAME": "last_name"}
RESERVED = set(CONTACT_COLUMNS) | {"status", "language", "vip", "member_rating"}
ADDRESS_PARTS = ("addr1", "addr2", "city", "state", "zip", "country")


def column_for(tag: str) -> str:
    """A merge tag as a column name: lower snake case, never a canonical column."""
    if tag in NAMES:
        return NAMES[tag]
    name = re.sub(r"[^a-z0-9]+", "_", tag.lower()).strip("_") or "field"
    if name[0].isdigit() or name in RESERVED:
        name = f"merge_{name}"
    return name


def utc_times(values: list[str | None]) -> pa.TimestampArray | list[str | None]:
    """A page's ISO 8601 timestamps parsed by Arrow, in the worker that fetched it (a
    tenth of pandas' time, and off the end of the pull); the strings themselves when
    one of them is not ISO 8601 with an offset, for :func:`timestamps` to read leniently."""
    try:
        return pa.array(values, pa.string()).cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return values


def times_column(chunks: list[Any]) -> pd.Series:
    """The pages' timestamps as one UTC column, whichever way each page was parsed."""
    if chunks and all(isinstance(c, pa.TimestampArray) for c in chunks):
        return pd.Series(pa.chunked_array(chunks).to_pandas()).astype(UTC)
    parts = [c.to_pandas() if isinstance(c, pa.TimestampArray) else timestamps(c) for c in chunks]
    if not parts:
        return timestamps([])
    return pd.concat([pd.Series(p).astype(UTC) for p in parts], ignore_index=True)


def timestamps(values: Iterable[Any]) -> pd.Series:
    """Mailchimp ISO 8601 strings ('' when unset) as UTC timestamps."""
    s = pd.Series([v if v else None for v in values], dtype=object)
    return pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601").astype(UTC)


def member_columns(page: Page, source: str) -> dict[str, Any]:
    """A page of members checked and split into columns, in the worker that fetched it
    (so this overlaps the other requests): text columns as Arrow arrays, merge fields
    as one list per merge tag."""
    check_items(page, MEMBER_TYPES, source)
    ms = page.items
    merge = [m.get("merge_fields") or {} for m in ms]
    tags: dict[str, None] = {}
    for d in merge:
        tags.update(dict.fromkeys(d))
    return {
        "contact_id": pa.array([m["id"] for m in ms], pa.string()),
        "email": pa.array([m["email_address"] for m in ms], pa.string()),
        "status": pa.array([m["status"] for m in ms], pa.string()),
        "language": pa.array([m.get("language") or None for m in ms], pa.string()),
        "created_at": utc_times(
            [m.get("timestamp_opt") or m.get("timestamp_signup") or None for m in ms]
        ),
        "updated_at": utc_times([m.get("last_changed") or None for m in ms]),
        "tags": [tag_names(page, i, m.get("tags"), source) for i, m in enumerate(ms)],
        "vip": [bool(m.get("vip")) for m in ms],
        "member_rating": [m.get("member_rating") for m in ms],
        "merge": (values := {tag: [d.get(tag) for d in merge] for tag in tags}),
        # merge fields holding only text on this page, as Arrow, for the common case
        "merge_text": {
            tag: pa.array(col, pa.string())
            for tag, col in values.items()
            if all(v is None or type(v) is str for v in col)
        },
        "n": len(ms),
    }


def tag_names(page: Page, i: int, tags: list[Any] | None, source: str) -> list[str]:
    """A member's tag names; a tag without a text name is reported, not left out."""
    if not tags:
        return []
    names = [t.get("name") if type(t) is dict else None for t in tags]
    if all(type(n) is str for n in names):
        return names  # type: ignore[return-value]
    k = next(k for k, n in enumerate(names) if type(n) is not str)
    bad(page, source, f"members[{i}].tags[{k}].name", names[k], "str")
    return []


def contacts(pages: list[Page], merge_types: Mapping[str, str]) -> pd.DataFrame:
    """The contacts table, built once from every page's columns; the last copy of a
    member seen twice (offset paging while the audience changes) wins."""
    digests = [p.data for p in pages if p.data]
    n = sum(d["n"] for d in digests)

    def joined(name: str) -> list[Any]:
        out: list[Any] = []
        for d in digests:
            out.extend(d[name])
        return out

    def text(name: str) -> pd.Series:
        chunks = pa.chunked_array([d[name] for d in digests], pa.string())
        return chunks.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)

    status = text("status")
    frame = pd.DataFrame(
        {
            "contact_id": text("contact_id"),
            "email": text("email"),
            "subscribed": (status == "subscribed").fillna(False).astype(bool),
            "created_at": times_column([d["created_at"] for d in digests]),
            "updated_at": times_column([d["updated_at"] for d in digests]),
            "tags": pd.Series(joined("tags"), dtype=object),
            "status": status,
            "language": text("language"),
            "vip": pd.array(joined("vip"), dtype=bool),
            "member_rating": pd.to_numeric(
                pd.Series(joined("member_rating"), dtype=object), errors="coerce"
            ).astype("Int64"),
        }
    )
    tags = dict.fromkeys(merge_types)
    for d in digests:
        tags.update(dict.fromkeys(d["merge"]))
    merged: dict[str, Any] = {}
    for tag in tags:
        chunks = [
            d["merge_text"].get(tag) if tag in d["merge"] else pa.nulls(d["n"], pa.string())
            for d in digests
        ]
        if merge_types.get(str(tag), "text") == "text" and all(c is not None for c in chunks):
            column = pa.chunked_array(chunks, pa.string())
            texts = pd.Series(column.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get))
            merged[column_for(str(tag))] = texts.mask(texts == "")
            continue
        values = [v for d in digests for v in d["merge"].get(tag, [None] * d["n"])]
        merged.update(merge_columns({tag: values}, n, merge_types))
    for col in ("first_name", "last_name"):
        if col not in merged:
            merged[col] = pd.array([None] * n, dtype=STRING)
    out = pd.concat([frame, pd.DataFrame(merged, index=frame.index)], axis=1)
    first = [c for c in CONTACT_COLUMNS if c in out.columns]
    out = out[first + [c for c in out.columns if c not in first]]
    ids = out["contact_id"].tolist()
    if len(set(ids)) == len(ids):  # the usual case; Arrow's first hash costs 50 ms cold
        return out
    dupes = out["contact_id"].duplicated(keep="last").to_numpy()
    return out[~dupes].reset_index(drop=True)


def merge_columns(
    values: Mapping[str, list[Any]], n: int, merge_types: Mapping[str, str]
) -> dict[str, Any]:
    """One column per merge field (``values``: merge tag -> its n values), typed by the
    field's Mailchimp type."""
    out: dict[str, Any] = {}
    for tag, col in values.items():
        kind = merge_types.get(str(tag), "text")
        name = column_for(str(tag))
        if kind == "address" or (tag not in merge_types and any(type(v) is dict for v in col)):
            for part in ADDRESS_PARTS:
                out[f"{name}_{part}"] = _text(
                    [v.get(part) if type(v) is dict else None for v in col]
                )
        elif kind == "number":
            numbers = pd.Series([None if v == "" else v for v in col], dtype=object)
            out[name] = pd.to_numeric(numbers, errors="coerce").astype("float64")
        elif kind == "date":
            out[name] = timestamps(col)
        else:
            out[name] = _text(col)
    return out


def _text(values: list[Any]) -> pd.Series:
    """Strings with '' (Mailchimp's "unset") as null; anything else shown as text."""
    if not {type(v) for v in values} <= {str, type(None)}:
        values = [None if v is None or v != v else str(v) for v in values]
    s = pd.Series(pd.array(values, dtype=STRING))
    return s.mask(s == "")


def orders(pages: list[Page], since: pd.Timestamp | None, source: str) -> pd.DataFrame:
    """E-commerce orders: contact = subscriber hash of the customer's e-mail; cancelled
    orders left out; amount = ``order_total`` in the store's currency."""
    for page in pages:
        check(page, source)
    rows = [o for p in pages for o in p.items]
    if not rows:
        return empty_orders()
    emails = [str((o.get("customer") or {}).get("email_address") or "") for o in rows]
    frame = pd.DataFrame(
        {
            "contact_id": pd.array(
                [subscriber_hash(e) if e else None for e in emails], dtype=STRING
            ),
            "order_id": pd.array(
                [f"{o.get('store_id') or p.listing.tag}:{o['id']}" for p in pages for o in p.items],
                dtype=STRING,
            ),
            "ordered_at": timestamps(o.get("processed_at_foreign") for o in rows),
            "amount": pd.to_numeric(
                pd.Series([o.get("order_total") for o in rows], dtype=object), errors="coerce"
            ).astype("float64"),
            "currency": pd.array([o.get("currency_code") or None for o in rows], dtype=STRING),
        }
    )
    cancelled = pd.Series([bool(o.get("cancelled_at_foreign")) for o in rows])
    keep = ~cancelled & frame["contact_id"].notna().to_numpy()
    if since is not None:
        changed = timestamps(
            o.get("updated_at_foreign") or o.get("processed_at_foreign") for o in rows
        )
        keep &= (changed.isna() | (changed > since)).to_numpy()
    return frame[keep.to_numpy()].reset_index(drop=True)


def events(
    activity: list[Page],
    unsubscribes: list[Page],
    sent_at: Mapping[str, pd.Timestamp | None],
    since: pd.Timestamp | None,
    source: str,
) -> pd.DataFrame:
    """sent (each recipient, at the campaign's send time), open, click, bounce, unsubscribe."""
    for page in (*activity, *unsubscribes):
        check(page, source)
    cid: list[str] = []
    who: list[str] = []
    kind: list[str] = []
    at: list[Any] = []

    def add(camp: str, contact: str, event: str, when: Any) -> None:
        cid.append(camp)
        who.append(contact)
        kind.append(event)
        at.append(when)

    for page in activity:
        camp = str(page.listing.tag)
        sent = sent_at.get(camp)
        with_sent = sent is not None and (since is None or sent > since)
        for rec in page.items:
            contact = rec.get("email_id") or subscriber_hash(str(rec.get("email_address", "")))
            if with_sent:
                add(camp, contact, "sent", sent)
            for act in rec["activity"]:  # checked: objects with a known action and a time
                add(camp, contact, act["action"], act["timestamp"])
    for page in unsubscribes:
        camp = str(page.listing.tag)
        for rec in page.items:
            contact = rec.get("email_id") or subscriber_hash(str(rec.get("email_address", "")))
            add(camp, contact, "unsubscribe", rec.get("timestamp"))
    if not cid:
        return empty_events()
    frame = pd.DataFrame(
        {
            "contact_id": pd.array(who, dtype=STRING),
            "campaign_id": pd.array(cid, dtype=STRING),
            "event": pd.array(kind, dtype=STRING),
            "at": timestamps(a.isoformat() if isinstance(a, pd.Timestamp) else a for a in at),
        }
    )
    if since is not None:
        frame = frame[frame["at"].isna() | (frame["at"] > since)].reset_index(drop=True)
    return frame
