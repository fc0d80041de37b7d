"""Brevo contacts JSON -> the canonical contacts table.

Brevo keeps a contact's fields in an ``attributes`` map whose keys are the
account's attribute names (``FIRSTNAME``, ``PRENOM``, ``CODE_POSTAL``...), leaves
out the ones that are empty, and types them through ``GET /contacts/attributes``
(text, float, boolean, date, category with an enumeration of labels). This module
checks each item's shape (so a field that changes type is reported, not mis-read),
then builds the table column by column, once per pull.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from segmerge.ports import CONTACT_COLUMNS, STRING, BadAnswer, _, field_of, number

#: attribute names that carry the canonical first/last name, in order of preference
FIRST_NAMES = ("FIRSTNAME", "PRENOM", "FIRST_NAME", "VORNAME", "NOMBRE")
LAST_NAMES = ("LASTNAME", "NOM", "LAST_NAME", "NACHNAME", "APELLIDOS")
#: attribute categories that hold a per-contact value
PER_CONTACT = {"normal", "category", "calculated"}

#: (field, expected types, required) of every contact item of GET /contacts
SHAPE: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("id", (int,), True),
    ("email", (str,), False),
    ("emailBlacklisted", (bool,), True),
    ("createdAt", (str,), True),
    ("modifiedAt", (str,), True),
    ("listIds", (list,), True),
    ("attributes", (dict,), True),
)


@dataclass
class Attribute:
    name: str
    type: str = "text"  # text, float, boolean, date, id (Brevo's types)
    labels: dict[int, str] = field(default_factory=dict)  # category enumeration


def attributes_from(body: Any, source: str) -> dict[str, Attribute]:
    """``GET /contacts/attributes`` -> name -> Attribute, per-contact ones only."""
    items = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise BadAnswer(
            _(
                "{source}: GET /contacts/attributes: field 'attributes' is missing or not a list"
            ).format(source=source),
            field=source,
        )
    out: dict[str, Attribute] = {}
    for n, a in enumerate(items):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise BadAnswer(
                _("{source}: GET /contacts/attributes: attribute #{n} has no 'name'").format(
                    source=source, n=n
                ),
                field=source,
            )
        if a.get("category", "normal") not in PER_CONTACT:
            continue
        labels = {
            int(e["value"]): str(e["label"])
            for e in a.get("enumeration") or []
            if isinstance(e, dict) and isinstance(e.get("value"), int) and "label" in e
        }
        out[a["name"]] = Attribute(a["name"], str(a.get("type") or "text"), labels)
    return out


def snake(name: str) -> str:
    """``CODE_POSTAL`` -> ``code_postal``, ``DateNaissance`` -> ``date_naissance``, accents off."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not text or text[0].isdigit():
        text = f"attr_{text}"
    return text


def contacts_page(body: Any, source: str, endpoint: str, offset: int) -> tuple[list[Any], int]:
    """A page of ``GET /contacts`` (or of a list's contacts) -> checked contacts, ``count``."""
    items = field_of(body, "contacts", list, endpoint=endpoint, source=source)
    check_items(items, source, endpoint, offset)
    count = field_of(body, "count", int, endpoint=endpoint, source=source)
    return items, count


def listing_count(body: Any, items: list[Any], endpoint: str, source: str, offset: int) -> int:
    """A listing's total ``count``, optional in Brevo's schemas: the page's end when absent."""
    count = body.get("count", offset + len(items))
    if not isinstance(count, int) or isinstance(count, bool):
        raise BadAnswer(
            _("{source}: {endpoint}: field 'count' is {kind}, expected an integer").format(
                source=source, endpoint=endpoint, kind=type(count).__name__
            ),
            field=source,
        )
    return count


def contact_id_of(body: Any, source: str, endpoint: str) -> str:
    """``GET /contacts/{email}`` -> the contact's id."""
    return str(field_of(body, "id", int, endpoint=endpoint, source=source))


def check_items(items: list[Any], source: str, endpoint: str, offset: int) -> None:
    """Raise BadAnswer naming the first contact whose field has the wrong type."""
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadAnswer(
                _(
                    "{source}: {endpoint} (offset {offset}): contact #{value} is {kind}, "
                    "expected an object"
                ).format(
                    source=source,
                    endpoint=endpoint,
                    offset=offset,
                    value=offset + n,
                    kind=type(item).__name__,
                ),
                field=source,
            )
        for key, kinds, required in SHAPE:
            value = item.get(key)
            if value is None:
                if required and key in ("id", "attributes", "listIds"):
                    raise BadAnswer(
                        _(
                            "{source}: {endpoint} (offset {offset}): contact {value} has no "
                            "{key!r} field"
                        ).format(
                            source=source,
                            endpoint=endpoint,
                            offset=offset,
                            value=item.get("id", "#" + str(offset + n)),
                            key=key,
                        ),
                        field=source,
                    )
                continue
            if not isinstance(value, kinds) or (kinds == (int,) and isinstance(value, bool)):
                raise BadAnswer(
                    _(
                        "{source}: {endpoint} (offset {offset}): field {key!r} of contact "
                        "{value} is {kind}, expected {value2}: the API changed a field's "
                        "type mid-pull"
                    ).format(
                        source=source,
                        endpoint=endpoint,
                        offset=offset,
                        key=key,
                        value=item.get("id"),
                        kind=type(value).__name__,
                        value2=" or ".join(k.__name__ for k in kinds),
                    ),
                    field=source,
                )


@dataclass
class ContactMapping:
    """How Brevo attributes became columns, kept for merge tags and notes."""

    columns: dict[str, str] = field(default_factory=dict)  # column -> attribute name
    notes: list[str] = field(default_factory=list)


def contacts_frame(
    items: Sequence[dict[str, Any]],
    attributes: dict[str, Attribute],
    list_names: dict[int, str],
    tag_lists: set[int],
    tz: ZoneInfo,
    source: str,
) -> tuple[pd.DataFrame, ContactMapping]:
    """The canonical contacts table from checked GET /contacts items (one DataFrame per pull)."""
    mapping = ContactMapping()
    attrs = [it["attributes"] for it in items]
    used: dict[str, int] = {}
    for a in attrs:
        for k in a:
            used[k] = used.get(k, 0) + 1
    seen = set(attributes) | set(used)
    first = _pick(FIRST_NAMES, used, seen)
    last = _pick(LAST_NAMES, used, seen)
    # a declared name attribute nobody fills (FIRSTNAME beside PRENOM) is no column
    seen -= {n for n in FIRST_NAMES + LAST_NAMES if n not in used}
    mapping.columns.update(first_name=first, last_name=last, email="EMAIL")
    blocked = [bool(it.get("emailBlacklisted", True)) for it in items]
    emails = pd.Series([it.get("email") for it in items], dtype=STRING).str.strip()
    frame: dict[str, Any] = {
        "contact_id": pd.Series([str(it["id"]) for it in items], dtype=STRING),
        "email": emails,
        "first_name": _text([a.get(first) for a in attrs]),
        "last_name": _text([a.get(last) for a in attrs]),
        # never mail a blocklisted contact (unsubscribed, hard bounce, complaint) or one
        # without an address
        "subscribed": pd.Series([not b for b in blocked], dtype=bool).to_numpy()
        & emails.notna().to_numpy(),
        "created_at": _utc([it.get("createdAt") for it in items]),
        "updated_at": _utc([it.get("modifiedAt") for it in items]),
        "tags": [[list_names[i] for i in it["listIds"] if i in tag_lists] for it in items],
        "brevo_lists": [[list_names.get(i, str(i)) for i in it["listIds"]] for it in items],
    }
    taken = set(CONTACT_COLUMNS) | {"brevo_lists"}
    for name in sorted(seen - {first, last, "EMAIL"}):
        column = snake(name)
        if column in taken:
            column = f"attr_{column}"
        taken.add(column)
        mapping.columns[column] = name
        attr = attributes.get(name, Attribute(name, "unknown"))
        values = [a.get(name) for a in attrs]
        frame[column], bad = _typed(values, attr, tz)
        if bad:
            mapping.notes.append(
                _(
                    "{source}: attribute {name} ({kind}): {n} value(s) of another type "
                    "read as empty"
                ).format(source=source, name=name, kind=attr.type, n=number(bad))
            )
    return pd.DataFrame(frame), mapping


def _pick(candidates: tuple[str, ...], used: dict[str, int], seen: set[str]) -> str:
    """The name attribute the account fills most; else the first it declares."""
    filled = [n for n in candidates if used.get(n)]
    if filled:
        return max(filled, key=lambda n: used[n])
    return next((n for n in candidates if n in seen), candidates[0])


def _text(values: list[Any]) -> pd.Series:
    return pd.Series([None if v is None else str(v) for v in values], dtype=STRING)


def _utc(values: list[Any]) -> pd.Series:
    series = pd.Series(values, dtype=object)
    return pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")


def _typed(values: list[Any], attr: Attribute, tz: ZoneInfo) -> tuple[pd.Series, int]:
    """One attribute column in its Brevo type; values of another type become empty, counted."""
    raw = pd.Series(values, dtype=object)
    present = int(raw.notna().sum())
    if attr.labels:
        out = raw.map(lambda v: attr.labels.get(v, str(v)) if isinstance(v, int) else v)
        return out.astype(STRING), 0
    if attr.type == "float":
        num = pd.to_numeric(raw.map(lambda v: None if isinstance(v, bool) else v), errors="coerce")
        return num.astype("float64"), present - int(num.notna().sum())
    if attr.type == "boolean":
        ok = raw.map(lambda v: v if isinstance(v, bool) else None)
        return ok.astype("boolean"), present - int(ok.notna().sum())
    if attr.type == "date":
        # a date without a time of day is midnight in the workspace time zone (DESIGN.md)
        day = pd.to_datetime(
            raw.map(lambda v: v if isinstance(v, str) else None), errors="coerce", format="ISO8601"
        )
        if getattr(day.dt, "tz", None) is None:
            day = day.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        out = day.dt.tz_convert("UTC")
        return out, present - int(out.notna().sum())
    if attr.type in ("text", "id"):
        return raw.map(lambda v: None if v is None else str(v)).astype(STRING), 0
    # declared nowhere: keep numbers as numbers when every value is one
    numeric = raw.dropna().map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    if present and numeric.all():
        return pd.to_numeric(raw).astype("float64"), 0
    return raw.map(lambda v: None if v is None else str(v)).astype(STRING), 0
