"""Brevo's own documented answers, run through the Brevo connector's parsers.

Our fake (tests/fakes/brevo.py) answers what we read in Brevo's documentation; if we
read it wrong, the fake and the connector agree and every test passes. So here the
parsers meet Brevo's spec directly (shared/api-specs/brevo-v3.yml, loaded by
tests/fakes/specs.py): for each endpoint the connector reads,

- every response example of the spec parses, with its values in the right canonical
  columns;
- an instance built from the response schema parses too, in full (every documented
  field) and minimal (only the required ones): no field the schema calls optional is
  required by us;
- a field of another shape is a BadAnswer naming the source, the endpoint and the field.

The spec has no schema for ``GET /orders`` (only an example); the SDK's model
``GetOrdersOrdersInner`` (getbrevo/brevo-node@c353d32c) names the buyer
``contactId`` where the example says ``contact_id``: both are read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from connectors.brevo import account_line
from connectors.brevo_activity import events_frame, events_of
from connectors.brevo_contacts import attributes_from, contact_id_of, contacts_frame, contacts_page
from connectors.brevo_lists import call_result, created_id, named_items
from connectors.brevo_orders import orders_frame, orders_page
from segmerge.errors import BadAnswer
from tests.fakes import specs

SOURCE = "shop"
PARIS = ZoneInfo("Europe/Paris")


def spec() -> dict[str, Any]:
    return specs.brevo_spec_dict()


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def media(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The 2xx answer's status and JSON media of an operation."""
    for status, answer in spec()["paths"][path][method]["responses"].items():
        if status.startswith("2"):
            content = resolve(answer).get("content", {}).get("application/json")
            if content is not None:
                return status, content
    raise AssertionError(f"{method} {path}: no JSON 2xx answer in the spec")


def examples(method: str, path: str) -> dict[str, Any]:
    return {k: v["value"] for k, v in media(method, path)[1].get("examples", {}).items()}


def instance(schema: dict[str, Any], minimal: bool) -> Any:
    """A value the schema accepts, from its own examples: every property, or only the required."""
    schema = resolve(schema)
    if "allOf" in schema:
        out: dict[str, Any] = {}
        for part in schema["allOf"]:
            out.update(instance(part, minimal))
        return out
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return instance(schema[key][0], minimal)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object":
        required = set(schema.get("required", []))
        return {
            name: instance(sub, minimal)
            for name, sub in schema.get("properties", {}).items()
            if not minimal or name in required
        }
    if kind == "array":
        return [instance(schema.get("items", {}), minimal)]
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1.5, "boolean": True, "string": "x"}.get(kind)


def schema_instances(method: str, path: str) -> list[Any]:
    schema = media(method, path)[1]["schema"]
    return [instance(schema, minimal=False), instance(schema, minimal=True)]


# -- documented examples, value by value -----------------------------------------------------


def test_account_example():
    (body,) = examples("get", "/account").values()
    assert account_line(body, SOURCE) == (
        "shop: Brevo account ok (MyShop; plan payAsYouGo, subscription, sms)"
    )


def attributes() -> dict[str, Any]:
    (body,) = examples("get", "/contacts/attributes").values()
    return attributes_from(body, SOURCE)


def test_attributes_example():
    attrs = attributes()
    assert set(attrs) == {"LASTNAME", "FIRSTNAME", "DOB", "GENDER"}
    assert attrs["DOB"].type == "date"
    assert attrs["GENDER"].labels == {1: "Men", 2: "Women", 3: "Kid"}


def test_contacts_example_lands_in_canonical_columns():
    (body,) = examples("get", "/contacts").values()
    items, count = contacts_page(body, SOURCE, "GET /contacts", 0)
    assert count == 3 and len(items) == 2
    names = {43: "Clients", 58: "seg:vip", 61: "SMS"}
    frame, mapping = contacts_frame(items, attributes(), names, {58}, PARIS, SOURCE)
    first = frame.iloc[0]
    assert first["contact_id"] == "247" and first["email"] == "contact1@example.com"
    assert (first["first_name"], first["last_name"]) == ("Meg", "Brennon")  # FIRST_NAME
    assert not first["subscribed"]  # emailBlacklisted: never mailed
    assert first["created_at"] == pd.Timestamp("2017-05-01T17:05:03Z")
    assert first["tags"] == ["seg:vip"] and first["brevo_lists"] == ["Clients", "seg:vip"]
    assert first["zip_code"] == "44300" and first["city"] == "New-York"
    # DOB is a date attribute: midnight in the workspace's time zone
    assert first["dob"] == pd.Timestamp("1986-05-01T22:00:00Z")
    assert mapping.columns["first_name"] == "FIRST_NAME"
    assert frame.iloc[1]["brevo_lists"] == ["Clients", "SMS", "seg:vip"]


def test_list_contacts_example():
    (body,) = examples("get", "/contacts/lists/{listId}/contacts").values()
    items, count = contacts_page(body, SOURCE, "GET /contacts/lists/12/contacts", 0)
    assert count == 17655 and [c["id"] for c in items] == [45, 32, 65]


def test_contact_by_email_example():
    (body,) = examples("get", "/contacts/{identifier}").values()
    assert contact_id_of(body, SOURCE, "GET /contacts/{email}") == "42"


def test_campaign_stats_example_gives_sends_opens_and_clicks():
    (body,) = examples("get", "/contacts/{identifier}/campaignStats").values()
    frame = events_frame(events_of("9", body, SOURCE), SOURCE)
    got = sorted(zip(frame["event"], frame["campaign_id"], frame["at"].astype(str), strict=True))
    assert got == [
        ("click", "21", "2016-05-03 21:25:01+00:00"),
        ("open", "21", "2016-05-03 21:24:56+00:00"),
        ("open", "45", "2017-01-30 13:56:40+00:00"),
        ("sent", "21", "2016-05-03 20:15:13+00:00"),
        ("sent", "42", "2016-10-17 10:30:01+00:00"),
        ("sent", "45", "2016-11-09 11:45:02+00:00"),
    ]  # `delivered` repeats `sent`: checked, not kept
    click = frame[frame["event"] == "click"].iloc[0]
    assert click["url"].startswith("https://url.domain.com/") and click["contact_id"] == "9"


@pytest.mark.parametrize(
    "path, key, ids",
    [
        ("/contacts/lists", "lists", [53, 50]),
        ("/contacts/folders", "folders", [42, 29]),
        ("/contacts/folders/{folderId}/lists", "lists", [46, 41, 22]),
        ("/emailCampaigns", "campaigns", None),
    ],
)
def test_listing_examples(path, key, ids):
    (body,) = examples("get", path).values()
    items, count = named_items(body, key, f"GET {path}", SOURCE)
    assert count == len(body[key]) or count == body.get("count")
    assert all(isinstance(x["name"], str) and x["name"] for x in items)
    if ids is not None:
        assert [x["id"] for x in items] == ids
    if path == "/contacts/lists":
        assert [x["folderId"] for x in items] == [1, 2]


def test_orders_example():
    (body,) = examples("get", "/orders").values()
    rows, count = orders_page(body, SOURCE)
    assert count == 1
    frame, notes = orders_frame(rows, lambda email: None, SOURCE)
    assert notes == []
    o = frame.iloc[0]
    assert (o["order_id"], o["contact_id"], o["amount"], o["status"]) == (
        "order1803",
        "2",
        2000.0,
        "complete",
    )
    assert o["ordered_at"] == pd.Timestamp("2021-12-31T11:42:35.638Z")


def test_order_buyer_named_as_the_sdk_names_it_or_by_email():
    (body,) = examples("get", "/orders").values()
    row = {k: v for k, v in body["orders"][0].items() if k != "contact_id"}
    frame, _ = orders_frame([{**row, "contactId": 7}], lambda email: None, SOURCE)
    assert frame.iloc[0]["contact_id"] == "7"
    frame, _ = orders_frame([row], {"testvisitor@sendinblue.com": "12"}.get, SOURCE)
    assert frame.iloc[0]["contact_id"] == "12"


@pytest.mark.parametrize("verb", ["add", "remove"])
def test_list_membership_examples(verb):
    path = f"/contacts/lists/{{listId}}/contacts/{verb}"
    found = {
        name: call_result(body, f"POST {path}", SOURCE)
        for name, body in examples("post", path).items()
    }
    # the spec's examples leave out the `contacts` wrapper its schema requires: both read
    assert found["emailsArray"] == {"jeff32@example.com", "jim56@example.com"}
    assert found["idsArray"] == {1, 2} and found["extIdsArray"] == {"ext123"}
    if verb == "remove":  # `all: true`, which Segmerge never sends, counts no one
        assert found["allTrue"] == set()
    wrapped = {"contacts": examples("post", path)["idsArray"]}
    assert call_result(wrapped, f"POST {path}", SOURCE) == {1, 2}


# -- schema instances, full and minimal --------------------------------------------------------

#: (method, path) -> parser of an answer body, given the endpoint to name in its errors
PARSERS: dict[tuple[str, str], Callable[[Any, str], Any]] = {
    ("get", "/account"): lambda b, e: account_line(b, SOURCE),
    ("get", "/contacts/attributes"): lambda b, e: attributes_from(b, SOURCE),
    ("get", "/contacts"): lambda b, e: contacts_frame(
        contacts_page(b, SOURCE, e, 0)[0], {}, {}, set(), PARIS, SOURCE
    ),
    ("get", "/contacts/lists/{listId}/contacts"): lambda b, e: contacts_page(b, SOURCE, e, 0),
    ("get", "/contacts/{identifier}"): lambda b, e: contact_id_of(b, SOURCE, e),
    ("get", "/contacts/{identifier}/campaignStats"): lambda b, e: events_frame(
        events_of("{identifier}", b, SOURCE), SOURCE
    ),
    ("get", "/contacts/lists"): lambda b, e: named_items(b, "lists", e, SOURCE),
    ("get", "/contacts/folders"): lambda b, e: named_items(b, "folders", e, SOURCE),
    ("get", "/contacts/folders/{folderId}/lists"): lambda b, e: named_items(b, "lists", e, SOURCE),
    ("get", "/emailCampaigns"): lambda b, e: named_items(b, "campaigns", e, SOURCE),
    ("post", "/emailCampaigns"): lambda b, e: created_id(b, e, SOURCE),
    ("post", "/contacts/lists"): lambda b, e: created_id(b, e, SOURCE),
    ("post", "/contacts/folders"): lambda b, e: created_id(b, e, SOURCE),
    ("post", "/contacts/lists/{listId}/contacts/add"): lambda b, e: call_result(b, e, SOURCE),
    ("post", "/contacts/lists/{listId}/contacts/remove"): lambda b, e: call_result(b, e, SOURCE),
}


def parse(op: tuple[str, str], body: Any) -> Any:
    return PARSERS[op](copy.deepcopy(body), f"{op[0].upper()} {op[1]}")


@pytest.mark.parametrize("op", list(PARSERS), ids=lambda op: f"{op[0].upper()} {op[1]}")
def test_every_documented_answer_parses(op):
    """The schema's full and minimal instances, and every example, go through the parser."""
    method, path = op
    bodies = schema_instances(method, path) + list(examples(method, path).values())
    for body in bodies:
        parse(op, body)


def test_full_campaign_stats_instance_reads_every_kind():
    full, minimal = schema_instances("get", "/contacts/{identifier}/campaignStats")
    frame = events_frame(events_of("1", full, SOURCE), SOURCE)
    kinds = sorted(zip(frame["event"], frame["detail"].fillna("-"), strict=True))
    assert kinds == [
        ("bounce", "hard"),
        ("bounce", "soft"),
        ("click", "-"),
        ("open", "-"),
        ("sent", "-"),
        ("unsubscribe", "admin"),
        ("unsubscribe", "complaint"),
        ("unsubscribe", "link"),
    ]
    assert events_of("1", minimal, SOURCE) == []


# -- unknown shapes fail loudly -----------------------------------------------------------------


def _set(body: Any, path: list[Any], value: Any) -> Any:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


@pytest.mark.parametrize(
    "op, path, value, names",
    [
        (("get", "/account"), ["plan"], "free", "'plan'"),
        (("get", "/contacts"), ["contacts", 0, "listIds"], "43,58", "'listIds'"),
        (("get", "/contacts"), ["count"], KeyError, "'count'"),
        (("get", "/contacts/{identifier}"), ["id"], "42", "'id'"),
        (
            ("get", "/contacts/{identifier}/campaignStats"),
            ["clicked", 0, "links"],
            KeyError,
            "'clicked[].links'",
        ),
        (
            ("get", "/contacts/{identifier}/campaignStats"),
            ["opened", 0, "eventTime"],
            1488,
            "'opened[].eventTime'",
        ),
        (("get", "/contacts/lists"), ["lists", 1, "id"], "50", "item #1 of 'lists'"),
        (("get", "/contacts/folders"), ["folders"], {"id": 42}, "'folders'"),
        (("get", "/contacts/attributes"), ["attributes", 0, "name"], KeyError, "#0"),
        (
            ("post", "/contacts/lists/{listId}/contacts/add"),
            ["success"],
            "1, 2",
            "'contacts.success'",
        ),
    ],
)
def test_a_field_of_another_shape_is_a_bad_answer_naming_it(op, path, value, names):
    (body, *_) = examples(*op).values()
    with pytest.raises(BadAnswer) as info:
        parse(op, _set(body, path, value))
    text = str(info.value)
    assert text.startswith(f"{SOURCE}: ") and names in text and info.value.exit_code == 2
    assert f"{op[0].upper()} {op[1]}" in text


@pytest.mark.parametrize(
    "field, value",
    [("amount", "2000"), ("createdAt", KeyError), ("status", None), ("contact_id", "2")],
)
def test_an_order_of_another_shape_names_the_order_and_field(field, value):
    (body,) = examples("get", "/orders").values()
    with pytest.raises(BadAnswer) as info:
        orders_page(_set(body, ["orders", 0, field], value), SOURCE)
    text = str(info.value)
    assert "shop: GET /orders" in text and f"'{field}'" in text and "'order1803'" in text
