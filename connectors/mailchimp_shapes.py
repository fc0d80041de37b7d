"""The shapes of Mailchimp's answers the connector relies on, checked before use.

Every listing the connector parses has its fields and types here, as Mailchimp's
API reference documents them (the OpenAPI file in ``shared/api-specs``; for the
e-mail activity and unsubscribe items, whose schemas that file lost, Mailchimp's
reference pages as Singer's tap-mailchimp copies them: ``tap_mailchimp/schemas/
reports_email_activity.json`` and ``unsubscribes.json``). An item in another shape
is reported with the endpoint, the offset and the field, never skipped: a member,
an order or an event left out quietly would be a wrong segment with no one told.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from segmerge.ports import BadAnswer, _

from .mailchimp_api import Page

Spec = tuple[tuple[str, type | tuple[type, ...], bool], ...]

#: (field, expected type, required) of every member
MEMBER_TYPES: Spec = (
    ("id", str, True),
    ("email_address", str, True),
    ("status", str, True),
    ("merge_fields", dict, False),
    ("tags", list, False),
    ("last_changed", str, False),
    ("timestamp_opt", str, False),
    ("timestamp_signup", str, False),
    ("language", str, False),
    ("vip", bool, False),
    ("member_rating", int, False),
)
#: the other listings, by the key holding their items
SHAPES: dict[str, Spec] = {
    "merge_fields": (("tag", str, True), ("type", str, True)),
    "stores": (("id", str, True), ("list_id", str, True)),
    "campaigns": (("id", str, True), ("send_time", str, False), ("settings", dict, False)),
    "orders": (
        ("id", str, True),
        ("customer", dict, True),
        ("order_total", (int, float), True),
        ("currency_code", str, False),
        ("processed_at_foreign", str, False),
        ("updated_at_foreign", str, False),
        ("cancelled_at_foreign", str, False),
    ),
    "emails": (("email_id", str, True), ("email_address", str, False), ("activity", list, True)),
    "unsubscribes": (("email_id", str, True), ("timestamp", str, True)),
}
#: what a campaign's e-mail activity holds ("open", "click" or "bounce", the reference says)
ACTIONS = frozenset({"open", "click", "bounce"})
HINT = (
    "Mailchimp answered in a shape it does not document; nothing was recorded, the next "
    "run starts again from the same cursor"
)


def check(page: Page, source: str) -> None:
    """The page's items have the shape their listing documents (see :data:`SHAPES`)."""
    check_items(page, SHAPES[page.listing.key], source)
    if page.listing.key == "orders":
        for i, o in enumerate(page.items):
            email = o["customer"].get("email_address")
            if type(email) is not str:
                bad(page, source, f"orders[{i}].customer.email_address", email, "str")
    elif page.listing.key == "emails":
        for i, rec in enumerate(page.items):
            for k, act in enumerate(rec["activity"]):
                where = f"emails[{i}].activity[{k}]"
                if type(act) is not dict:
                    bad(page, source, where, act, _("an object"))
                if act.get("action") not in ACTIONS:
                    bad(
                        page,
                        source,
                        f"{where}.action",
                        act.get("action"),
                        _(" or ").join(sorted(ACTIONS)),
                    )
                if type(act.get("timestamp")) is not str:
                    bad(page, source, f"{where}.timestamp", act.get("timestamp"), "str")


def check_items(
    page: Page, spec: Iterable[tuple[str, type | tuple[type, ...], bool]], source: str
) -> None:
    """Every item is an object whose fields have the documented types.

    One pass per field over the set of types seen (cheap); the offending item is
    only looked for when a wrong type is there.
    """
    items = page.items
    if any(type(m) is not dict for m in items):
        i = next(i for i, m in enumerate(items) if not isinstance(m, dict))
        bad(page, source, f"{page.listing.key}[{i}]", items[i], _("an object"))
    for name, kind, required in spec:
        allowed = kind if isinstance(kind, tuple) else (kind,)
        seen = {type(m.get(name)) for m in items}
        if not required:
            seen.discard(type(None))
        if all(t in allowed for t in seen):
            continue
        for i, m in enumerate(items):
            v = m.get(name)
            if (v is not None or required) and type(v) not in allowed:
                expected = "/".join(k.__name__ for k in allowed)
                bad(page, source, f"{page.listing.key}[{i}].{name}", v, expected)


def bad(page: Page, source: str, where: str, value: Any, expected: str) -> None:
    shown = _("missing") if value is None else f"{type(value).__name__} {value!r:.60}"
    raise BadAnswer(
        _(
            "{source}: GET {path} (offset {offset}): field {where} is {shown}, expected {expected}"
        ).format(
            source=source,
            path=page.listing.path,
            offset=page.offset,
            where=where,
            shown=shown,
            expected=expected,
        ),
        field=source,
        hint=_(HINT),
    )
