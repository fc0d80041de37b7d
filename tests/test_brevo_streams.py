"""The Brevo connector's streams as Brevo answers them: campaign statistics of every
documented kind, orders pulled incrementally, each stream's progress handed over as
soon as it is complete, and the hourly budget spent as Brevo counts it.

Against the stateful fake (tests/fakes/brevo.py), whose answers are checked against
Brevo's OpenAPI spec; the documented examples themselves go through the parsers in
tests/contracts/test_brevo_examples.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from segmerge.errors import BadAnswer, ConnectorError
from tests.brevo_setup import FAST, make, serve
from tests.fakes import specs
from tests.fakes.brevo import BrevoFake, populate


@pytest.fixture
def fake():
    yield from serve()


def ago(**delta: float) -> str:
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(**delta)
    return when.isoformat().replace("+00:00", "Z")


# -- campaign statistics ---------------------------------------------------------------------


def test_every_documented_kind_of_campaign_event_is_read(fake, tmp_path):
    ana = fake.add_contact("ana@example.org")
    t1, t2, t3 = ago(days=3), ago(days=2), ago(days=1)
    # getContactCampaignStats as the spec and the SDK models give it: clicks carry their
    # times per link, an administrator's unsubscription names no campaign
    ana.stats = {
        "messagesSent": [{"campaignId": 7, "eventTime": t1}, {"campaignId": 8, "eventTime": t1}],
        "delivered": [{"campaignId": 7, "eventTime": t1}],
        "opened": [{"campaignId": 7, "count": 3, "eventTime": t2, "ip": "1.2.3.4"}],
        "clicked": [
            {
                "campaignId": 7,
                "links": [
                    {
                        "count": 2,
                        "eventTime": t2,
                        "ip": "1.2.3.4",
                        "url": "https://boutique.example/a",
                    },
                    {
                        "count": 1,
                        "eventTime": t3,
                        "ip": "1.2.3.4",
                        "url": "https://boutique.example/b",
                    },
                ],
            }
        ],
        "hardBounces": [{"campaignId": 8, "eventTime": t2}],
        "softBounces": [{"campaignId": 7, "eventTime": t1}],
        "complaints": [{"campaignId": 7, "eventTime": t3}],
        "userUnsubscription": [{"campaignId": 7, "eventTime": t3, "ip": "1.2.3.4"}],
        "adminUnsubscription": [{"eventTime": t3, "ip": "5.6.7.8"}],
    }
    t = make(fake, tmp_path, events="contact_stats", orders=False).pull()
    e = t.events.sort_values(["event", "at", "url"]).reset_index(drop=True)
    got = [
        (
            r.event,
            r.campaign_id if pd.notna(r.campaign_id) else None,
            r.detail if pd.notna(r.detail) else None,
            r.url if pd.notna(r.url) else None,
        )
        for r in e.itertuples()
    ]
    assert sorted(got, key=str) == sorted(
        [
            ("sent", "7", None, None),
            ("sent", "8", None, None),
            ("open", "7", None, None),
            ("click", "7", None, "https://boutique.example/a"),
            ("click", "7", None, "https://boutique.example/b"),
            ("bounce", "8", "hard", None),
            ("bounce", "7", "soft", None),
            ("unsubscribe", "7", "complaint", None),
            ("unsubscribe", "7", "link", None),
            ("unsubscribe", None, "admin", None),
        ],
        key=str,
    )
    clicks = e[e["event"] == "click"].set_index("url")["at"]
    assert clicks["https://boutique.example/b"] == pd.Timestamp(t3)  # the link's own time
    assert str(t.events["at"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    "body, field",
    [
        # a click without its links (the shape the connector used to expect): refused
        ({"clicked": [{"campaignId": 7, "eventTime": "2026-12-01T10:00:00Z"}]}, "clicked[].links"),
        (
            {
                "clicked": [
                    {
                        "campaignId": 7,
                        "links": [
                            {"count": 1, "eventTime": "2026-12-01T10:00:00Z", "ip": "1.2.3.4"}
                        ],
                    }
                ]
            },
            "clicked[].links[].url",
        ),
        (
            {
                "opened": [
                    {
                        "campaignId": "7",
                        "count": 1,
                        "eventTime": "2026-12-01T10:00:00Z",
                        "ip": "1.2.3.4",
                    }
                ]
            },
            "opened[].campaignId",
        ),
        ({"hardBounces": [{"campaignId": 7}]}, "hardBounces[].eventTime"),
        ({"softBounces": {"campaignId": 7}}, "softBounces"),
        ({"forwarded": [{"campaignId": 7, "eventTime": "2026-12-01T10:00:00Z"}]}, "forwarded"),
        (
            {
                "unsubscriptions": {
                    "userUnsubscription": [],
                    "adminUnsubscription": [],
                    "listUnsubscription": [],
                }
            },
            "unsubscriptions.listUnsubscription",
        ),
        ({"messagesSent": [{"campaignId": 7, "eventTime": "yesterday"}]}, "eventTime"),
    ],
)
def test_an_unknown_shape_of_campaign_statistics_fails_naming_the_field(
    fake, tmp_path, body, field
):
    fake.add_contact("ana@example.org")
    fake.fail_next(200, path=r"^/contacts/1/campaignStats$", body=body)
    with pytest.raises(BadAnswer) as info:
        make(fake, tmp_path, events="contact_stats", orders=False).pull()
    text = str(info.value)
    assert "shop" in text and "GET /contacts/1/campaignStats" in text and f"'{field}'" in text
    assert info.value.exit_code == 2


# -- orders and streams ----------------------------------------------------------------------


def order(oid: str, email: str, updated: str, amount: float = 20.0, **extra) -> dict[str, Any]:
    return {
        "id": oid,
        "createdAt": updated,
        "updatedAt": updated,
        "status": "completed",
        "amount": amount,
        "products": [{"productId": "P1", "quantity": 1, "price": amount}],
        "email": email,
        **extra,
    }


def test_each_stream_resumes_from_its_own_cursor_and_is_handed_over_when_complete(fake, tmp_path):
    populate(fake, 5, seed_lists=False)
    fake.orders = [
        order("A1", "client1@example.org", ago(days=9)),
        order("A2", "client2@example.org", ago(hours=1), 35.0),
    ]
    done: list[tuple[str, Any, str | None]] = []
    contacts_cursor, orders_cursor = ago(days=400), ago(days=2)
    t = make(
        fake,
        tmp_path,
        events="none",
        done=done,
        cursors={"contacts": contacts_cursor, "orders": orders_cursor},
    ).pull()
    # orders: only those modified since the orders' own cursor, 1 call
    assert fake.order_queries[-1]["modifiedSince"] == [orders_cursor]
    assert list(t.orders["order_id"]) == ["A2"] and t.orders.loc[0, "contact_id"] == "2"
    assert fake.contact_queries[-1]["modifiedSince"] == [contacts_cursor]
    assert t.incremental
    # each stream was handed over with the cursor the next pull starts from
    assert [s for s, _, _ in done] == ["contacts", "orders"]
    assert set(t.cursors) == {"contacts", "orders"}
    for stream, _rows, cursor in done:
        assert cursor == t.cursors[stream] and cursor.endswith("Z")
        assert pd.Timestamp(cursor) < pd.Timestamp.now(tz="UTC")
    assert len(done[0][1]) == 5 and list(done[1][1]["order_id"]) == ["A2"]


def test_a_failing_later_stream_keeps_the_contacts_already_handed_over(fake, tmp_path):
    populate(fake, 3, seed_lists=False)
    fake.fail_next(400, path="^/orders$", body={"code": "invalid_parameter", "message": "no"})
    done: list[tuple[str, Any, str | None]] = []
    with pytest.raises(BadAnswer) as info:
        make(fake, tmp_path, events="none", done=done).pull()
    assert "GET /orders answered 400" in str(info.value)
    assert [s for s, _, _ in done] == ["contacts"] and len(done[0][1]) == 3


def test_full_pull_without_cursors_reads_every_order_in_pages_of_100(fake, tmp_path):
    populate(fake, 3, seed_lists=False)
    fake.orders = [
        order(f"O{i}", f"client{1 + i % 3}@example.org", ago(days=30 - i / 10)) for i in range(250)
    ]
    t = make(fake, tmp_path, events="none").pull()
    assert len(t.orders) == 250 and t.orders["order_id"].is_unique
    assert [q["limit"] for q in fake.order_queries] == [["100"]] * 3
    assert all("modifiedSince" not in q for q in fake.order_queries)


def test_an_order_of_an_unknown_shape_names_the_field(fake, tmp_path):
    populate(fake, 1, seed_lists=False)
    fake.check_responses = False  # the fake lies on purpose
    fake.orders = [order("A1", "client1@example.org", ago(days=1), amount="30,00")]  # type: ignore[arg-type]
    with pytest.raises(BadAnswer) as info:
        make(fake, tmp_path, events="none").pull()
    assert "GET /orders" in str(info.value) and "'amount'" in str(info.value)
    assert "'A1'" in str(info.value)


# -- the hourly budget -------------------------------------------------------------------------

GENERAL_TIER = {"contacts_requests_per_second": 10.0, "other_requests_per_hour": 100.0}


def shop_with_orders(server: BrevoFake, n: int) -> None:
    populate(server, 20, seed_lists=False)
    server.orders = [
        order(f"O{i}", f"client{1 + i % 20}@example.org", ago(days=60 - i / 20)) for i in range(n)
    ]


def test_an_hourly_budget_is_spent_at_once_not_paced_one_call_every_38_s(tmp_path):
    # Brevo's general tier as it is: 10 calls a second on /contacts, 100 an hour elsewhere
    server = BrevoFake(
        specs.brevo(), contacts_limit=10, contacts_window=1.0, other_limit=100, other_window=3600.0
    ).start()
    try:
        shop_with_orders(server, 750)
        conn = make(server, tmp_path, events="none", **GENERAL_TIER)
        assert conn.check()[0].startswith("shop: Brevo account ok")
        t = conn.pull()
        assert len(t.orders) == 750
        stats = conn.other_client.stats
        assert stats.requests == 9  # the account + 8 pages of 100 orders
        assert stats.waited_seconds < 0.5 and stats.throttled == 0  # was 8 x 38 s
        assert server.other_limiter.total_429 == 0 and not server.violations
    finally:
        server.stop()


def test_a_spent_budget_is_waited_out_and_said_with_the_time_it_resumes(
    tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr("segmerge.ports.http_wait.TELL_AFTER", 0.2)  # a shrunk hour: say it anyway
    # the account's budget is smaller than the plan's documented one: Brevo's count wins
    server = BrevoFake(specs.brevo(), other_limit=3, other_window=1.5).start()
    try:
        shop_with_orders(server, 750)
        conn = make(server, tmp_path, events="none", **{**FAST, "other_requests_per_hour": 100.0})
        with caplog.at_level("WARNING", logger="segmerge"):
            t = conn.pull()
        assert len(t.orders) == 750
        # it waited for each reset Brevo announced instead of earning a 429 per call
        assert server.other_limiter.total_429 == 0 and not server.violations
        assert conn.other_client.stats.waited_seconds >= 1.0
        told = [r.getMessage() for r in caplog.records if "budget is spent" in r.getMessage()]
        assert told and all(m.startswith("shop: ") and "GET /orders" in m for m in told)
        assert "resuming at " in told[0] and " UTC (in " in told[0]
    finally:
        server.stop()


def test_a_budget_spent_for_longer_than_max_wait_stops_at_once_saying_when(tmp_path):
    server = BrevoFake(specs.brevo(), other_limit=2, other_window=3600.0).start()
    try:
        shop_with_orders(server, 750)
        done: list[tuple[str, Any, str | None]] = []
        conn = make(
            server,
            tmp_path,
            events="none",
            done=done,
            max_wait=60.0,
            **{**FAST, "other_requests_per_hour": 100.0},
        )
        with pytest.raises(ConnectorError) as info:
            conn.pull()
        text = info.value.message
        assert text.startswith("shop: GET /orders") and "budget is spent until" in text
        assert "run again after" in str(info.value.hint) and info.value.exit_code != 0
        assert len([p for m, p, s in server.log if p == "/orders"]) == 2  # no call wasted
        assert [s for s, _, _ in done] == ["contacts"]  # the next run resumes from there
    finally:
        server.stop()


def test_the_fake_refuses_to_answer_a_field_brevo_does_not_document(tmp_path):
    """The shape our fake once invented (a click's time on the campaign, not its links) is
    caught by the fake itself, so a connector cannot be tested against it again."""
    server = BrevoFake(specs.brevo()).start()
    try:
        ana = server.add_contact("ana@example.org")
        at = ago(days=1)
        ana.stats = {
            "clicked": [
                {
                    "campaignId": 7,
                    "eventTime": at,
                    "links": [
                        {"count": 1, "eventTime": at, "ip": "1.2.3.4", "url": "https://x.example"}
                    ],
                }
            ]
        }
        server.orders = [order("A1", "ana@example.org", at, shipping=4.9)]
        make(server, tmp_path, events="contact_stats").pull()
        assert any("campaignStats" in v and "clicked[0].eventTime" in v for v in server.violations)
        assert any("/orders" in v and "orders[0].shipping" in v for v in server.violations)
    finally:
        server.stop()
