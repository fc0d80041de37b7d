"""The HubSpot connector's pull, against the stateful fake on loopback.

Every request is checked against the documented shapes (tests/fakes/hubspot.py);
a fixture fails the test at teardown if the fake recorded a violation.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from connectors import hubspot_client
from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.ports.schema import conform
from tests.fakes.hubspot import TOKEN, HubSpotFake, make_connector, populate


@pytest.fixture
def fake():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server
        assert server.violations == [], server.violations


def calls(fake: HubSpotFake, method: str, path: str) -> list[int]:
    return [status for m, p, status in fake.log if m == method and p.rstrip("/") == path]


def test_full_pull_gives_canonical_tables(fake):
    ids = populate(fake, 30)
    bounced = fake.add_contact(
        "BOB@Example.org ",
        firstname="Bob",
        lastname="Hard",
        hs_email_hard_bounce_reason_enum="MAILBOX_FULL",
    )
    jailed = fake.add_contact("q@example.org", hs_email_quarantined="true")
    fake.add_deal([ids[0], ids[1]], "120.50", "2026-02-01T10:00:00.000Z")
    fake.add_deal([ids[2]], "80", "2026-03-01T00:00:00.000Z", stage="appointmentscheduled")
    now = dt.datetime.now(dt.UTC)
    fake.add_event("OPEN", "ann0@example.org", now - dt.timedelta(days=3))
    fake.add_event("CLICK", "ann0@example.org", now - dt.timedelta(days=3))
    fake.add_event("DELIVERED", "ann0@example.org", now - dt.timedelta(days=3))
    fake.add_event(
        "STATUSCHANGE",
        "ann1@example.org",
        now - dt.timedelta(days=2),
        portalSubscriptionStatus="UNSUBSCRIBED",
    )
    fake.add_event("BOUNCE", "bob@example.org", now - dt.timedelta(days=1))
    fake.add_event("OPEN", "stranger@example.org", now - dt.timedelta(days=1))
    conn = make_connector(fake)

    tables = conform(conn.pull(), "crm")

    c = tables.contacts.set_index("contact_id")
    assert len(c) == 32 and tables.incremental is False
    first = c.loc[str(ids[0])]
    assert (first["email"], first["first_name"], first["last_name"]) == (
        "ann0@example.org",
        "Ann0",
        "Lee0",
    )
    assert first["tags"] == ["vip", "seg:old"] and c.loc[str(ids[1]), "tags"] == []
    assert c["age"].dtype == "float64" and first["age"] == 20.0
    assert str(c["member_since"].dtype) == "datetime64[ns, UTC]"
    assert c["favourite_genre"].dtype == "string" and pd.isna(c.loc[str(ids[2]), "favourite_genre"])
    assert str(c["created_at"].dtype) == "datetime64[ns, UTC]"
    # consent: opted out, hard-bounced and quarantined addresses are never mailed
    assert not c.loc[str(ids[3]), "subscribed"] and c.loc[str(ids[4]), "subscribed"]
    assert not c.loc[str(bounced), "subscribed"] and not c.loc[str(jailed), "subscribed"]
    assert c.loc[str(bounced), "email"] == "bob@example.org"
    assert "segmerge_segments" not in c.columns and "firstname" not in c.columns
    # orders: won deals only, one row per associated contact
    o = tables.orders
    assert sorted(o["contact_id"]) == sorted([str(ids[0]), str(ids[1])])
    assert o["amount"].tolist() == [120.5, 120.5]
    assert o["ordered_at"].iloc[0] == pd.Timestamp("2026-02-01T10:00:00Z")
    # events: engagement kinds only, matched to contacts by address
    e = tables.events.sort_values("event")
    assert sorted(zip(e["contact_id"], e["event"], strict=True)) == sorted(
        [
            (str(ids[0]), "click"),
            (str(ids[0]), "open"),
            (str(ids[1]), "unsubscribe"),
            (str(bounced), "bounce"),
        ]
    )
    cursor = json.loads(tables.cursor)
    assert cursor["contacts_ms"] < int(now.timestamp() * 1000)


def test_paging_walks_every_page_with_the_cursor(fake):
    ids = populate(fake, 345)
    tables = make_connector(fake, orders="none", events=False).pull()
    assert sorted(tables.contacts["contact_id"].astype(int)) == ids
    assert calls(fake, "GET", "/crm/v3/objects/contacts") == [200] * 4  # 100, 100, 100, 45


def test_incremental_pull_returns_only_what_changed(fake):
    ids = populate(fake, 50)
    conn = make_connector(fake)
    first = conn.pull()
    fake.touch(ids[5], firstname="Annette")
    fake.touch(ids[6], hs_email_optout="true")
    later = dt.datetime.now(dt.UTC)
    fake.add_event("OPEN", "ann5@example.org", later)
    fake.add_event("OPEN", "ann9@example.org", later)  # not changed: found by address

    delta = conform(conn.pull(first.cursor), "crm")

    assert delta.incremental is True
    c = delta.contacts.set_index("contact_id")
    assert sorted(c.index) == [str(ids[5]), str(ids[6])]
    assert c.loc[str(ids[5]), "first_name"] == "Annette"
    assert not c.loc[str(ids[6]), "subscribed"]
    assert sorted(delta.events["contact_id"]) == [str(ids[5]), str(ids[9])]
    assert calls(fake, "POST", "/crm/v3/objects/contacts/search") == [200]
    assert any("2 contact(s) modified since" in n for n in delta.notes)
    # the next delta starts after the events already seen: none comes twice
    again = conn.pull(delta.cursor)
    assert again.events.empty


def test_search_past_its_10000_cap_restarts_from_the_last_time_seen(fake, monkeypatch):
    # HubSpot's 10,000 and its pages of 200, shrunk alike: the same 6 searches (3 windows)
    monkeypatch.setattr(hubspot_client, "SEARCH_PAGE", 100)
    fake.search_cap = 200
    ids = populate(fake, 500)
    base = dt.datetime.now(dt.UTC)
    for n, cid in enumerate(ids):  # two contacts per millisecond: ties across restarts
        fake.touch(cid, when=base + dt.timedelta(milliseconds=n // 2))
    since = json.dumps({"v": 1, "contacts_ms": int(base.timestamp() * 1000) - 1, "events_ms": 0})
    conn = make_connector(fake, search_result_cap=200, orders="none", events=False)

    delta = conn.pull(since)

    assert sorted(delta.contacts["contact_id"].astype(int)) == ids
    searches = calls(fake, "POST", "/crm/v3/objects/contacts/search")
    assert len(searches) >= 6 and set(searches) == {200}  # never a 400 for paging too far


def test_a_millisecond_holding_more_than_the_cap_falls_back_to_a_full_pull(fake):
    fake.search_cap = 200
    ids = populate(fake, 250)  # more than the cap, all in one millisecond
    same = dt.datetime.now(dt.UTC)
    for cid in ids:
        fake.touch(cid, when=same)
    since = json.dumps({"v": 1, "contacts_ms": int(same.timestamp() * 1000), "events_ms": 0})
    delta = make_connector(fake, search_result_cap=200, orders="none", events=False).pull(since)
    assert len(delta.contacts) == 250 and delta.incremental is False
    assert any("pulled every contact instead" in n for n in delta.notes)


class VirtualTime:
    """The client's clock and sleeps, injected: a wait is recorded and passes at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []  # the client's waits after an answer (429, 5xx)
        self.paced = 0.0  # the limiter's pacing between calls

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds

    def pace(self, seconds: float) -> None:
        self.paced += seconds
        self.now += seconds


def on_virtual_time(conn) -> VirtualTime:
    """Both of the connector's clients (and their shared limiters) on one virtual clock."""
    t = VirtualTime()
    for client in conn._clients():
        client._sleep_for, client.watch.clock = t.wait, t.clock
        for limit in getattr(client.rate, "limits", (client.rate,)):
            limit.clock, limit.sleep = t.clock, t.pace
    return t


RATE_429 = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c",
    "policyName": "TEN_SECONDLY_ROLLING",
}


def test_a_429_waits_the_interval_hubspot_sends_then_goes_on():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as fake:
        populate(fake, 250)
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        fake.fail_next(429, path=r"^/crm/v3/objects/contacts$", body=RATE_429, headers=headers)
        conn = make_connector(
            fake,
            rate_limit=1000,
            rate_window_seconds=1.0,
            orders="none",
            events=False,
            search_rate_limit=100,
        )
        t = on_virtual_time(conn)
        tables = conn.pull()
        assert len(tables.contacts) == 250
        assert t.waits == [10.0]  # the window HubSpot named, once: no second 429
        assert t.paced < 1.0  # and the pacing did not add a second wait on top
        assert calls(fake, "GET", "/crm/v3/objects/contacts") == [429, 200, 200, 200]
        assert conn.api.stats.max_consecutive_429 == 1 and fake.violations == []


def test_a_search_429_without_headers_waits_the_search_window():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as fake:
        ids = populate(fake, 30)
        conn = make_connector(fake, orders="none", events=False, search_window_seconds=2.5)
        first = conn.pull()
        for cid in ids[:5]:
            fake.touch(cid)
        body = {
            **RATE_429,
            "message": "You have reached your secondly limit.",
            "policyName": "SECONDLY",
        }
        fake.fail_next(429, path=r"/search$", body=body)
        t = on_virtual_time(conn)
        delta = conn.pull(first.cursor)
        assert sorted(delta.contacts["contact_id"].astype(int)) == ids[:5]
        assert t.waits == [2.5]
        assert calls(fake, "POST", "/crm/v3/objects/contacts/search") == [429, 200]


def test_a_real_limit_is_never_hit_twice_in_a_row():
    """Against the fake's own window: whatever the machine's speed, the client follows the
    calls left that HubSpot sends, and after a 429 waits out the window it was told."""
    with HubSpotFake(limit=4, window=0.4, search_limit=2, search_window=0.3) as fake:
        populate(fake, 600)
        # paced far above the fake's limit, so only the 429 handling keeps it polite
        conn = make_connector(
            fake,
            rate_limit=100,
            rate_window_seconds=0.4,
            orders="none",
            events=False,
            search_rate_limit=50,
        )
        assert len(conn.pull().contacts) == 600
        assert fake.limiter.total_429 == 0  # X-HubSpot-RateLimit-Remaining was followed
        assert fake.limiter.max_consecutive_429 <= 1
        assert conn.api.stats.max_consecutive_429 <= 1 and fake.violations == []


def test_a_used_up_daily_limit_stops_at_once(fake):
    populate(fake, 3)
    body = {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "x",
        "policyName": "DAILY",
    }
    fake.fail_next(429, times=5, path=r"^/crm/v3/objects/contacts$", body=body)
    conn = make_connector(fake, orders="none", events=False)
    with pytest.raises(ConnectorError) as err:
        conn.pull()
    assert "GET /crm/v3/objects/contacts answered 429" in str(err.value)
    assert "daily" in str(err.value) and conn.api.stats.throttled == 1


def test_5xx_are_retried(fake):
    populate(fake, 120)
    fake.fail_next(
        503,
        times=2,
        path=r"^/crm/v3/objects/contacts$",
        body={"status": "error", "message": "Service Unavailable"},
    )
    conn = make_connector(fake, orders="none", events=False)
    assert len(conn.pull().contacts) == 120
    assert conn.api.stats.retries == 2


@pytest.mark.parametrize("expired", [False, True])
def test_a_refused_token_is_a_credential_error_without_the_secret(fake, expired):
    populate(fake, 3)
    if expired:
        fake.expired = True
        token = TOKEN
    else:
        token = "pat-eu1-wrong-SECRET-9999"
    conn = make_connector(fake, token=token)
    with pytest.raises(CredentialError) as err:
        conn.check()
    text = str(err.value)
    assert err.value.exit_code == 2
    assert "crm" in text and "GET /account-info/v3/details" in text and "401" in text
    assert ("expired" in text) if expired else ("credentials not found" in text)
    assert "segmerge auth set crm" in text and token not in text


def test_a_missing_scope_is_named(fake):
    fake.scopes.discard("crm.objects.contacts.read")
    with pytest.raises(CredentialError) as err:
        make_connector(fake).check()
    text = str(err.value)
    assert "403" in text and "crm.objects.contacts.read" in text and TOKEN not in text


def test_no_token_says_where_to_put_one(fake):
    with pytest.raises(CredentialError) as err:
        make_connector(fake, token="").check()
    assert "segmerge auth set crm" in str(err.value) and "SEGMERGE_CRM_TOKEN" in str(err.value)


def test_an_html_page_is_a_bad_answer_naming_endpoint_and_status(fake):
    populate(fake, 5)
    fake.fail_next(
        200,
        path=r"^/crm/v3/objects/contacts$",
        content_type="text/html",
        body="<html><body>Maintenance</body></html>",
    )
    with pytest.raises(BadAnswer) as err:
        make_connector(fake, orders="none", events=False).pull()
    text = str(err.value)
    assert "crm: GET /crm/v3/objects/contacts answered 200 with text/html" in text
    assert err.value.exit_code == 2


def test_a_502_html_page_after_retries_names_the_endpoint(fake):
    fake.fail_next(
        502,
        times=10,
        path=r"^/crm/v3/properties/contacts$",
        content_type="text/html",
        body="<html>Bad gateway</html>",
    )
    conn = make_connector(fake)
    conn.api.backoff = 0.01
    with pytest.raises(ConnectorError) as err:
        conn.pull()
    assert "GET /crm/v3/properties/contacts answered 502" in str(err.value)
    assert "HTML page" in str(err.value)


def test_a_field_changing_type_mid_pull_is_reported(fake):
    ids = populate(fake, 150)
    fake.contacts[ids[120]].props["age"] = {"value": 42}  # type: ignore[assignment]
    with pytest.raises(BadAnswer) as err:
        make_connector(fake, orders="none", events=False).pull()
    text = str(err.value)
    assert "GET /crm/v3/objects/contacts" in text and f"contact {ids[120]}" in text
    assert "'age' is dict" in text
    assert calls(fake, "GET", "/crm/v3/objects/contacts") == [200, 200]  # failed on page 2
    # the fake knows it broke its own contract here; that is the point of the test
    assert [v.split(":")[0] for v in fake.violations] == ["answer to GET /crm/v3/objects/contacts"]
    fake.violations.clear()


def test_results_of_the_wrong_type_are_reported(fake):
    fake.fail_next(200, path=r"^/crm/v3/objects/deals$", body={"results": {"id": "1"}})
    with pytest.raises(BadAnswer) as err:
        make_connector(fake, events=False).pull()
    assert "GET /crm/v3/objects/deals: field 'results' is dict, expected list" in str(err.value)


def test_a_missing_deals_scope_stops_the_pull_with_its_name(fake):
    populate(fake, 3)
    fake.scopes.discard("crm.objects.deals.read")
    with pytest.raises(CredentialError) as err:
        make_connector(fake).pull()
    assert "crm.objects.deals.read" in str(err.value)
    assert len(make_connector(fake, orders="none").pull().contacts) == 3


def test_merge_tags_are_hubl(fake):
    populate(fake, 2)
    conn = make_connector(fake)
    assert conn.merge_tag("first_name") == "{{ contact.firstname }}"
    assert conn.merge_tag("unsubscribe_url") == "{{ unsubscribe_link }}"
    assert conn.merge_tag("favourite_genre") == "{{ contact.favourite_genre }}"
    assert conn.merge_tag("rfm_segment") is None


def test_settings_are_checked(fake):
    from segmerge.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        make_connector(fake, tags_property="Segmerge Segments")
    assert "crm.tags_property" in str(err.value) and "internal property name" in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_connector(fake, list_id="x")
    assert "crm.list_id" in str(err.value)


def test_a_foreign_cursor_means_a_full_pull_not_a_failure(fake):
    populate(fake, 4)
    tables = make_connector(fake, orders="none", events=False).pull("offset=1200")
    assert len(tables.contacts) == 4 and tables.incremental is False
    assert any("unreadable HubSpot cursor 'offset=1200'" in n for n in tables.notes)
    iso = make_connector(fake, orders="none", events=False).pull("2026-01-01T00:00:00Z")
    assert iso.incremental is True  # an ISO date is taken as the time to search from


def test_a_long_property_list_is_pulled_in_several_passes(fake, monkeypatch):
    import connectors.hubspot as module

    ids = populate(fake, 120)
    for n in range(30):
        fake.add_property(f"custom_field_number_{n:02d}", "string")
        fake.contacts[ids[n]].props[f"custom_field_number_{n:02d}"] = f"v{n}"
    monkeypatch.setattr(module, "URL_BUDGET", 300)
    tables = make_connector(fake, orders="none", events=False).pull()
    c = tables.contacts.set_index("contact_id")
    assert c.loc[str(ids[29]), "custom_field_number_29"] == "v29"
    assert c.loc[str(ids[0]), "age"] == 20.0 and c.loc[str(ids[0]), "tags"] == ["vip", "seg:old"]
    passes = len(calls(fake, "GET", "/crm/v3/objects/contacts")) // 2  # 2 pages per pass
    assert passes >= 3
