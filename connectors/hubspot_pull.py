"""Reading HubSpot contacts into the canonical table (deals: hubspot_deals, events: hubspot_events).

HubSpot sends every property value as a string (or null) whatever its type; the
property definitions (``GET /crm/v3/properties/contacts``) say which are numbers,
booleans or dates, so columns are converted once, whole, after the last page.
A value of another JSON type, or a record that is not an object, means the
answer changed shape mid-pull: that is a :class:`BadAnswer` naming the endpoint,
never a silently mangled column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from segmerge.ports import (
    CONTACT_COLUMNS,
    STRING,
    UTC,
    BadAnswer,
    ConnectorError,
    HttpClient,
    _,
    batched,
    field_of,
)

CONTACTS = "/crm/v3/objects/contacts"
#: properties the canonical columns and the consent flag come from
CORE = (
    "email",
    "firstname",
    "lastname",
    "createdate",
    "lastmodifieddate",
    "hs_email_optout",
    "hs_email_hard_bounce_reason_enum",
    "hs_email_quarantined",
)
CANONICAL = {"email": "email", "firstname": "first_name", "lastname": "last_name"}
RESERVED = frozenset(CONTACT_COLUMNS)  # a property with such a name would overwrite one


def snake(name: str) -> str:
    """HubSpot internal names are lower snake case already; fold anything else."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower() or "property"


def column_names(properties: Iterable[str], tags_property: str) -> dict[str, str]:
    """property -> column for every property that is not a canonical column's source."""
    out: dict[str, str] = {}
    taken = set(RESERVED)
    for prop in properties:
        if prop in CANONICAL or prop in ("createdate", "lastmodifieddate", tags_property):
            continue
        col = snake(prop)
        if col in taken:
            col = f"property_{col}"
        taken.add(col)
        out[prop] = col
    return out


def property_groups(props: list[str], budget: int) -> list[list[str]]:
    """Split property names so that each group, comma-joined, fits ``budget`` characters."""
    groups: list[list[str]] = [[]]
    size = 0
    for prop in props:
        if groups[-1] and size + len(prop) + 1 > budget:
            groups.append([])
            size = 0
        groups[-1].append(prop)
        size += len(prop) + 1
    return groups


def read_contacts(
    pages: Iterable[list[dict[str, Any]]], endpoint: str, source: str
) -> dict[str, dict[str, Any]]:
    """id -> record, checking each record's shape; a later copy of an id wins."""
    records: dict[str, dict[str, Any]] = {}
    for page in pages:
        for item in page:
            if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
                raise BadAnswer(
                    _(
                        "{source}: {endpoint}: a record is {kind} without a 'properties' object"
                    ).format(source=source, endpoint=endpoint, kind=type(item).__name__),
                    field=source,
                )
            rid = item.get("id")
            if not isinstance(rid, str | int) or isinstance(rid, bool):
                raise BadAnswer(
                    _("{source}: {endpoint}: a record has id {rid!r}").format(
                        source=source, endpoint=endpoint, rid=rid
                    ),
                    field=source,
                )
            for key, value in item["properties"].items():
                if value is not None and not isinstance(value, str):
                    raise BadAnswer(
                        _(
                            "{source}: {endpoint}: contact {rid} property {key!r} is {kind}, "
                            "expected a string or null"
                        ).format(
                            source=source,
                            endpoint=endpoint,
                            rid=rid,
                            key=key,
                            kind=type(value).__name__,
                        ),
                        field=source,
                    )
            records[str(rid)] = item
    return records


def contacts_frame(
    records: dict[str, dict[str, Any]],
    types: dict[str, str],
    columns: dict[str, str],
    tags_property: str,
    notes: list[str],
    source: str,
) -> pd.DataFrame:
    """The canonical contacts table, built once from every page."""
    ids = list(records)
    props = pd.DataFrame.from_records(
        [records[i]["properties"] for i in ids], index=range(len(ids))
    )

    def col(name: str) -> pd.Series:
        if name in props.columns:
            return props[name]
        return pd.Series([None] * len(ids), dtype=object)

    out = pd.DataFrame({"contact_id": pd.Series(ids, dtype=STRING)})
    for prop, canonical in CANONICAL.items():
        out[canonical] = col(prop).astype(STRING).str.strip()
    out["email"] = out["email"].str.lower()
    optout = _bool(col("hs_email_optout")).fillna(False)
    quarantined = _bool(col("hs_email_quarantined")).fillna(False)
    bounced = col("hs_email_hard_bounce_reason_enum").astype(STRING).fillna("").str.len() > 0
    out["subscribed"] = (~(optout | quarantined | bounced)).astype(bool).to_numpy()
    created = [
        records[i].get("createdAt") or records[i]["properties"].get("createdate") for i in ids
    ]
    updated = [
        records[i].get("updatedAt") or records[i]["properties"].get("lastmodifieddate") for i in ids
    ]
    out["created_at"] = when(pd.Series(created, dtype=object))
    out["updated_at"] = when(pd.Series(updated, dtype=object))
    out["tags"] = [split_tags(v) for v in col(tags_property).tolist()]
    bad: list[str] = []
    for prop, name in columns.items():
        out[name] = _typed(col(prop), types.get(prop, "string"), prop, bad)
    if bad:
        said = _("{source}: unreadable values left empty in {names}")
        notes.append(said.format(source=source, names=", ".join(sorted(set(bad)))))
    return out


def split_tags(value: Any) -> list[str]:
    """A multi-checkbox value: options joined by ';' (HubSpot's own separator)."""
    if not isinstance(value, str) or not value.strip():
        return []
    return [t.strip() for t in value.split(";") if t.strip()]


def _bool(s: pd.Series) -> pd.Series:
    folded = s.astype(STRING).str.strip().str.lower()
    return folded.map({"true": True, "false": False}).astype("boolean")


def when(s: pd.Series) -> pd.Series:
    """HubSpot dates: ISO 8601 in v3, epoch milliseconds in some older properties."""
    text = s.astype(STRING).str.strip()
    digits = text.str.fullmatch(r"\d{10,}").fillna(False)
    out = pd.to_datetime(text.where(~digits), utc=True, errors="coerce", format="ISO8601")
    if digits.any():
        ms = pd.to_datetime(pd.to_numeric(text.where(digits)), unit="ms", utc=True)
        out = out.where(~digits, ms)
    return out.astype(UTC)


def _typed(s: pd.Series, kind: str, prop: str, bad: list[str]) -> pd.Series:
    present = s.notna() & (s.astype(STRING).str.strip() != "")
    if kind == "number":
        out = pd.to_numeric(s.where(present), errors="coerce").astype("float64")
    elif kind == "bool":
        out = _bool(s.where(present))
    elif kind in ("date", "datetime"):
        out = when(s.where(present))
    else:
        return s.astype(STRING)
    if (present & out.isna()).any():
        bad.append(prop)
    return out


def ids_for_emails(client: HttpClient, emails: Iterable[str]) -> dict[str, str]:
    """Contact ids of addresses not in this pull (an incremental pull sees few contacts)."""
    path = f"{CONTACTS}/batch/read"
    found: dict[str, str] = {}
    for chunk in batched(sorted(set(emails)), 100):
        body = {
            "idProperty": "email",
            "properties": ["email"],
            "inputs": [{"id": e} for e in chunk],
        }
        answer = client.json("POST", path, json=body, ok=(200, 207))
        for item in field_of(
            answer, "results", list, endpoint=f"POST {path}", source=client.source
        ):
            email = ((item.get("properties") or {}).get("email") or "").strip().lower()
            if email and item.get("id") is not None:
                found[email] = str(item["id"])
    return found


def read_cursor(since: str | None) -> tuple[int | None, int | None]:
    """The pull's cursor (contacts' and events' times, in ms) is JSON; an ISO date (say,
    typed by hand) is accepted as both times."""
    if not since:
        return None, None
    try:
        data = json.loads(since)
        if isinstance(data, dict):
            contacts = int(data["contacts_ms"])
            events = data.get("events_ms")
            return contacts, int(events) if events is not None else contacts
    except (ValueError, KeyError, TypeError):
        pass
    try:
        when = pd.Timestamp(since)
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        ms = int(when.value // 1_000_000)
    except (ValueError, TypeError):
        said = _("unreadable HubSpot cursor {value}").format(value=repr(since))
        raise ConnectorError(said) from None
    return ms, ms


def iso(ms: int) -> str:
    """A cursor's time as the notes show it."""
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()
