"""Mailchimp's documented answers, run through the connector's own parsers.

Mailchimp's OpenAPI file (``shared/api-specs/mailchimp-marketing.json``, loaded with
the README's patches by ``tests/fakes/specs.py``) gives no whole response examples,
but every response has a schema and many fields their own ``example``. For each
endpoint the connector parses, the answer the schema documents is built from them
(a field's example, else the first value of its enum, else a value of its type
carrying the field's title, so that every field is told apart) and parsed: the
values must land in the right canonical columns. Then the same answer with a field
missing or of another type must be refused with a BadAnswer naming the endpoint and
the field, never parsed with that item left out.

The e-mail activity and unsubscribe items lost their schema in the file's
conversion (they point to their own collection, README defect 8); their shape is
Mailchimp's reference as singer-io/tap-mailchimp copies it
(``tap_mailchimp/schemas/reports_email_activity.json`` and ``unsubscribes.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from connectors import mailchimp_listings as ml
from connectors import mailchimp_tables as mt
from connectors.mailchimp import MailchimpConnector
from connectors.mailchimp_api import Listing, Page, subscriber_hash
from connectors.mailchimp_push import Chunk, EmailBook, Pusher
from connectors.mailchimp_tags import Segments
from segmerge.errors import BadAnswer
from segmerge.ports.connector import Action, ConnectorContext
from tests.fakes import specs

SOURCE = "news"
LIST = "1a2df69511"  # the stores' documented list_id example


def spec() -> dict[str, Any]:
    return specs.mailchimp_spec_dict()


def resolve(node: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    names = []
    while "$ref" in node:
        names.append(node["$ref"].rsplit("/", 1)[-1])
        node = spec()["components"]["schemas"][names[-1]]
    return node, names


def documented(node: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """The value a schema documents (None for a schema that refers back to itself)."""
    node, names = resolve(node)
    if any(n in stack for n in names):
        return None
    stack += tuple(names)
    if "example" in node:
        return node["example"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if "properties" in node or kind == "object":
        out = {}
        for key, sub in (node.get("properties") or {}).items():
            value = documented(sub, stack) if key != "_links" else None
            if value is not None:
                out[key] = value
        return out
    if kind == "array":
        item = documented(node.get("items", {}), stack)
        return [] if item is None else [item]
    if kind == "string":
        return (
            "2015-07-15T19:28:00+00:00"
            if node.get("format") == "date-time"
            else (f"<{node.get('title', 'text')}>")
        )
    return {"integer": 7, "number": 7.5, "boolean": True}.get(str(kind))


def answer(path: str, method: str = "get") -> Any:
    """The 200 answer of ``method path`` as the schema documents it."""
    media = spec()["paths"][path][method]["responses"]["200"]["content"]
    return documented(media["application/json"]["schema"])


def page(path: str, key: str, body: dict[str, Any], tag: Any = None) -> Page:
    return Page(Listing(path, key, tag=tag), 0, body[key], body.get("total_items", 0))


def member_answer() -> dict[str, Any]:
    body = answer("/lists/{list_id}/members")
    # "This object's keys are merge tags (like FNAME)": the schema gives no example of them
    body["members"][0]["merge_fields"] = {"FNAME": "Freddie", "LNAME": "Chimp", "ZIP": "30308"}
    return body


#: Mailchimp's reference shape of a campaign's e-mail activity (see the module docstring)
ACTIVITY = {
    "emails": [
        {
            "campaign_id": "42694e9e57",
            "list_id": LIST,
            "list_is_active": True,
            "email_id": "62eeb292278cc15f5817cb78f7790b08",
            "email_address": "urist.mcvankab@example.com",
            "activity": [
                {"action": "open", "timestamp": "2015-09-15T19:19:39+00:00", "ip": "198.2.191.34"},
                {
                    "action": "click",
                    "timestamp": "2015-09-15T19:20:03+00:00",
                    "url": "http://mailchimp.com",
                    "ip": "198.2.191.34",
                },
                {"action": "bounce", "type": "hard", "timestamp": "2015-09-16T08:00:00+00:00"},
            ],
        }
    ],
    "campaign_id": "42694e9e57",
    "total_items": 1,
}
UNSUBSCRIBES = {
    "unsubscribes": [
        {
            "email_id": "852aaa9532cb36adfb5e9fef7a4206a9",
            "email_address": "freddie@example.com",
            "merge_fields": {"FNAME": "Freddie"},
            "vip": False,
            "timestamp": "2015-09-17T10:00:00+00:00",
            "reason": "N/A (Unsubscribed from campaign)",
            "campaign_id": "42694e9e57",
            "list_id": LIST,
            "list_is_active": True,
        }
    ],
    "campaign_id": "42694e9e57",
    "total_items": 1,
}


# -- the documented answers parse into the right columns ------------------------------------


def test_a_documented_member_becomes_a_contact():
    body = member_answer()
    m = body["members"][0]
    p = page("/lists/x/members", "members", body)
    p.data = mt.member_columns(p, SOURCE)
    c = mt.contacts([p], {"FNAME": "text", "LNAME": "text", "ZIP": "zip"}).iloc[0]
    assert c["contact_id"] == m["id"] == "<Email ID>" and c["email"] == m["email_address"]
    assert c["subscribed"] and m["status"] == "subscribed" and c["status"] == "subscribed"
    assert c["first_name"] == "Freddie" and c["last_name"] == "Chimp" and c["zip"] == "30308"
    assert c["updated_at"] == pd.Timestamp(m["last_changed"])
    assert c["created_at"] == pd.Timestamp(m["timestamp_opt"])
    assert c["tags"] == [t["name"] for t in m["tags"]] == ["<Tag Name>"]
    assert c["language"] == m["language"] and bool(c["vip"]) == m["vip"]
    assert c["member_rating"] == m["member_rating"]


def test_documented_merge_fields_give_each_column_its_merge_tag():
    body = answer("/lists/{list_id}/merge-fields")
    field = body["merge_fields"][0]
    ctx = ConnectorContext(SOURCE, {"list_id": LIST}, root=".", config_file="x.toml")  # type: ignore[arg-type]
    conn = MailchimpConnector(ctx)
    kinds = conn._merge_types([page("/lists/x/merge-fields", "merge_fields", body)])
    assert kinds == {field["tag"]: field["type"]} == {"<Merge Tag>": "text"}
    assert conn.merge_tag(mt.column_for(field["tag"])) == "*|<Merge Tag>|*"


def test_documented_segments_are_the_tags_known_by_name():
    body = answer("/lists/{list_id}/segments")
    tags = Segments(None, LIST, SOURCE)  # type: ignore[arg-type]  # no call is made
    tags.remember([page("/lists/x/segments", "segments", body)])
    s = body["segments"][0]
    assert tags.known() == {s["name"]: s["id"]} == {"<Segment Name>": 7}


def test_documented_campaigns_give_their_send_times():
    body = answer("/campaigns")
    c = body["campaigns"][0]
    sent = ml.send_times([page("/campaigns", "campaigns", body)], SOURCE)
    assert sent == {c["id"]: pd.Timestamp(c["send_time"])}


def test_documented_stores_of_the_audience_are_kept():
    body = answer("/ecommerce/stores")
    store = body["stores"][0]
    p = page("/ecommerce/stores", "stores", body)
    assert ml.store_ids([p], store["list_id"], SOURCE) == [store["id"]] == ["example_store"]
    assert ml.store_ids([p], "another", SOURCE) == []


def test_a_documented_order_is_an_order_of_its_customer_unless_cancelled():
    body = answer("/ecommerce/stores/{store_id}/orders")
    o = body["orders"][0]
    assert o["cancelled_at_foreign"]  # the example is a cancelled order: left out
    assert mt.orders([page("/ecommerce/stores/s/orders", "orders", body, "s")], None, SOURCE).empty
    o["cancelled_at_foreign"] = ""  # Mailchimp's "unset"
    got = mt.orders([page("/ecommerce/stores/s/orders", "orders", body, "s")], None, SOURCE)
    row = got.iloc[0]
    assert row["order_id"] == f"{o['store_id']}:{o['id']}"
    assert row["contact_id"] == subscriber_hash(o["customer"]["email_address"])
    assert row["amount"] == o["order_total"] == 7.5 and row["currency"] == o["currency_code"]
    assert row["ordered_at"] == pd.Timestamp(o["processed_at_foreign"])


def test_documented_activity_and_unsubscribes_are_events():
    camp = ACTIVITY["campaign_id"]
    sent = pd.Timestamp("2015-09-15T18:00:00+00:00")
    events = mt.events(
        [page(f"/reports/{camp}/email-activity", "emails", ACTIVITY, camp)],
        [page(f"/reports/{camp}/unsubscribed", "unsubscribes", UNSUBSCRIBES, camp)],
        {camp: sent},
        None,
        SOURCE,
    )
    rec, unsub = ACTIVITY["emails"][0], UNSUBSCRIBES["unsubscribes"][0]
    got = list(zip(events["contact_id"], events["event"], events["at"], strict=True))
    assert got == [
        (rec["email_id"], "sent", sent),
        *[(rec["email_id"], a["action"], pd.Timestamp(a["timestamp"])) for a in rec["activity"]],
        (unsub["email_id"], "unsubscribe", pd.Timestamp(unsub["timestamp"])),
    ]
    assert set(events["campaign_id"]) == {camp}


class Answers:
    """An Api that answers each call with a documented body (no socket: the parsing is
    what is under test here; the loopback fake covers the wire)."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.body


def test_a_documented_creation_answer_gives_the_tags_id():
    body = answer("/lists/{list_id}/segments", "post")
    assert Segments(Answers(body), LIST, SOURCE)._post("seg:a") == body["id"] == 7  # type: ignore[arg-type]


def test_a_documented_batch_answer_names_the_members_it_could_not_tag():
    body = answer("/lists/{list_id}/segments/{segment_id}", "post")
    err = body["errors"][0]
    assert err["email_addresses"] and err["error"]
    pusher = Pusher(Answers(body), LIST, SOURCE, EmailBook())  # type: ignore[arg-type]
    action = Action("k", "tag", "c", {"tag": "seg:a"})  # type: ignore[arg-type]
    failed = pusher._send_chunk(Chunk(7, "seg:a", True, [(action, err["email_addresses"][0])]))
    assert failed == {str(e).lower(): err["error"] for e in err["email_addresses"]}


# -- an answer in another shape is refused, naming the endpoint and the field -----------------

Mutation = Callable[[dict[str, Any]], None]


def parse_members(body: dict[str, Any]) -> None:
    p = page("/lists/x/members", "members", body)
    p.data = mt.member_columns(p, SOURCE)


def parse_orders(body: dict[str, Any]) -> None:
    mt.orders([page("/ecommerce/stores/s/orders", "orders", body, "s")], None, SOURCE)


def parse_events(body: dict[str, Any]) -> None:
    key = "emails" if "emails" in body else "unsubscribes"
    p = page(
        f"/reports/c/{'email-activity' if key == 'emails' else 'unsubscribed'}", key, body, "c"
    )
    mt.events([p] if key == "emails" else [], [p] if key != "emails" else [], {}, None, SOURCE)


def parse_merge_fields(body: dict[str, Any]) -> None:
    ctx = ConnectorContext(SOURCE, {"list_id": LIST}, root=".", config_file="x.toml")  # type: ignore[arg-type]
    MailchimpConnector(ctx)._merge_types([page("/lists/x/merge-fields", "merge_fields", body)])


def parse_segments(body: dict[str, Any]) -> None:
    Segments(None, LIST, SOURCE).remember([page("/lists/x/segments", "segments", body)])  # type: ignore[arg-type]


def parse_campaigns(body: dict[str, Any]) -> None:
    ml.send_times([page("/campaigns", "campaigns", body)], SOURCE)


def parse_stores(body: dict[str, Any]) -> None:
    ml.store_ids([page("/ecommerce/stores", "stores", body)], LIST, SOURCE)


def first(key: str, field: str, value: Any = None) -> Mutation:
    """Set (or, with None, remove) ``field`` of the first item under ``key``."""

    def mutate(body: dict[str, Any]) -> None:
        item = body[key][0]
        for part in field.split(".")[:-1]:
            item = item[part]
        if value is None:
            item.pop(field.split(".")[-1])
        else:
            item[field.split(".")[-1]] = value

    return mutate


CASES = [
    ("members", member_answer, parse_members, first("members", "id"), "members[0].id"),
    ("members", member_answer, parse_members, first("members", "vip", "yes"), "members[0].vip"),
    (
        "members",
        member_answer,
        parse_members,
        first("members", "tags", [{"id": 1}]),
        "members[0].tags[0].name",
    ),
    (
        "members",
        member_answer,
        parse_members,
        first("members", "merge_fields", "FNAME=x"),
        "members[0].merge_fields",
    ),
    (
        "orders",
        lambda: answer("/ecommerce/stores/{store_id}/orders"),
        parse_orders,
        first("orders", "customer.email_address"),
        "orders[0].customer.email_address",
    ),
    (
        "orders",
        lambda: answer("/ecommerce/stores/{store_id}/orders"),
        parse_orders,
        first("orders", "order_total", "7,50"),
        "orders[0].order_total",
    ),
    (
        "email-activity",
        lambda: copy.deepcopy(ACTIVITY),
        parse_events,
        lambda b: b["emails"][0]["activity"].append({"action": "forward", "timestamp": "x"}),
        "emails[0].activity[3].action",
    ),
    (
        "email-activity",
        lambda: copy.deepcopy(ACTIVITY),
        parse_events,
        lambda b: b["emails"][0]["activity"][0].pop("timestamp"),
        "emails[0].activity[0].timestamp",
    ),
    (
        "email-activity",
        lambda: copy.deepcopy(ACTIVITY),
        parse_events,
        first("emails", "email_id"),
        "emails[0].email_id",
    ),
    (
        "unsubscribed",
        lambda: copy.deepcopy(UNSUBSCRIBES),
        parse_events,
        first("unsubscribes", "timestamp", 1442484000),
        "unsubscribes[0].timestamp",
    ),
    (
        "merge-fields",
        lambda: answer("/lists/{list_id}/merge-fields"),
        parse_merge_fields,
        first("merge_fields", "tag"),
        "merge_fields[0].tag",
    ),
    (
        "segments",
        lambda: answer("/lists/{list_id}/segments"),
        parse_segments,
        first("segments", "id", "7"),
        "segments[0]",
    ),
    (
        "campaigns",
        lambda: answer("/campaigns"),
        parse_campaigns,
        first("campaigns", "send_time", 1436988480),
        "campaigns[0].send_time",
    ),
    (
        "stores",
        lambda: answer("/ecommerce/stores"),
        parse_stores,
        first("stores", "list_id"),
        "stores[0].list_id",
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "make", "parse", "mutate", "field"), CASES, ids=[f"{c[0]}:{c[4]}" for c in CASES]
)
def test_an_answer_in_another_shape_is_refused_naming_endpoint_and_field(
    endpoint, make, parse, mutate, field
):
    body = make()
    parse(copy.deepcopy(body))  # the documented answer itself parses
    mutate(body)
    with pytest.raises(BadAnswer) as info:
        parse(body)
    text = str(info.value)
    assert SOURCE in text and "GET /" in text and endpoint in text and field in text
    assert info.value.exit_code == 2


def test_documented_audience_counts_plan_the_member_pages():
    body = answer("/lists/{list_id}")
    stats = body["stats"]
    expected = stats["member_count"] + stats["unsubscribe_count"] + stats["cleaned_count"]
    assert ml.audience_size(body) == expected > 0
