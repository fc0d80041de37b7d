"""The `brevo` connector's pulls, faults and the CLI end to end, against a stateful fake
of Brevo API v3 on 127.0.0.1 (pushes: test_brevo_push.py; streams, events and the
hourly budget: test_brevo_streams.py; Brevo's own examples: tests/contracts/).

Every request is validated against Brevo's OpenAPI spec (and every 2xx answer of
the fake too); the fixture fails a test at teardown if anything was off.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from tests.brevo_setup import make, serve, tag
from tests.cli import segmerge
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake, populate
from tests.workspaces import two_segment_workspace


@pytest.fixture
def fake():
    yield from serve()


# -- pull ------------------------------------------------------------------------------------


def test_full_pull_gives_canonical_tables(fake, tmp_path):
    folder = fake.add_folder("Segmerge")
    seg = fake.add_list("seg:fonceurs", folder)
    other = fake.add_list("seg:zens", 1)  # same prefix, but not in the Segmerge folder
    fake.add_contact(
        "ana@example.org",
        attributes={
            "PRENOM": "Ana",
            "NOM": "Lopez",
            "CODE_POSTAL": "69001",
            "AGE": 41,
            "VIP": True,
            "CIVILITE": 1,
            "DATE_NAISSANCE": "1985-03-02",
        },
        list_ids=[seg, other],
    )
    fake.add_contact("bob@example.org", attributes={"PRENOM": "Bob"}, blacklisted=True)
    fake.add_contact(None, attributes={"SMS": "33600000000"})
    t = make(fake, tmp_path, events="none").pull()
    c = t.contacts
    assert list(c["contact_id"]) == ["1", "2", "3"]
    assert list(c["first_name"].fillna("")) == ["Ana", "Bob", ""]
    assert c.loc[0, "last_name"] == "Lopez"
    assert list(c["subscribed"]) == [True, False, False]  # blocklisted; no address
    assert c.loc[0, "tags"] == ["seg:fonceurs"]
    assert sorted(c.loc[0, "brevo_lists"]) == ["seg:fonceurs", "seg:zens"]
    assert c.loc[0, "code_postal"] == "69001" and c.loc[0, "age"] == 41.0
    assert c.loc[0, "civilite"] == "Madame" and bool(c.loc[0, "vip"]) is True
    assert c.loc[0, "date_naissance"] == pd.Timestamp("1985-03-01T23:00:00Z")
    assert str(c["created_at"].dt.tz) == "UTC" and str(c["updated_at"].dt.tz) == "UTC"
    assert c.loc[0, "created_at"] == pd.Timestamp("2026-01-05T09:01:00Z")
    assert "prenom" not in c.columns and "firstname" not in c.columns
    assert t.cursor and t.cursor.endswith("Z") and not t.incremental


def test_paging_reads_every_page_once(fake, tmp_path):
    populate(fake, 2345)
    conn = make(fake, tmp_path, events="none", orders=False)
    t = conn.pull()
    assert len(t.contacts) == 2345 and t.contacts["contact_id"].is_unique
    pages = [p for m, p, s in fake.log if p == "/contacts" and m == "GET"]
    assert len(pages) == 3
    assert t.contacts["subscribed"].sum() == 2345 - 234


def test_incremental_pull_uses_the_cursor(fake, tmp_path):
    populate(fake, 30)
    conn = make(fake, tmp_path, events="none", orders=False)
    first = conn.pull()
    fake.clock = dt.datetime.now(dt.UTC)
    changed = fake.contacts[7]
    changed.attributes["FIRSTNAME"] = "Zoé"
    fake.touch(changed)
    second = make(fake, tmp_path, events="none", orders=False).pull(first.cursor)
    assert second.incremental
    assert list(second.contacts["contact_id"]) == ["7"]
    assert second.contacts.loc[0, "first_name"] == "Zoé"
    assert any("incremental" in n for n in second.notes)
    assert fake.contact_queries[-1]["modifiedSince"] == [first.cursor]
    assert "modifiedSince" not in fake.contact_queries[0]


def test_orders_and_events(fake, tmp_path):
    ana = fake.add_contact("ana@example.org", attributes={"FIRSTNAME": "Ana"})
    fake.add_contact("bob@example.org", blacklisted=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = (now - dt.timedelta(days=3)).isoformat().replace("+00:00", "Z")
    ana.stats = {
        "messagesSent": [{"campaignId": 12, "eventTime": t0}],
        "opened": [{"campaignId": 12, "count": 2, "eventTime": t0, "ip": "1.2.3.4"}],
        "clicked": [
            {
                "campaignId": 12,
                "links": [{"count": 1, "eventTime": t0, "ip": "1.2.3.4", "url": "https://x.fr"}],
            }
        ],
        "hardBounces": [],
        "userUnsubscription": [{"campaignId": 12, "eventTime": t0}],
        "adminUnsubscription": [],
    }
    base = {
        "createdAt": "2026-02-01T10:00:00.000Z",
        "updatedAt": "2026-02-01T10:00:00.000Z",
        "status": "completed",
        "products": [{"productId": "P1", "quantity": 1, "price": 30}],
    }
    fake.orders = [
        {**base, "id": "A1", "amount": 30, "email": "ANA@example.org"},
        {**base, "id": "A2", "amount": 12.5, "contact_id": 1, "email": "ana@example.org"},
        {**base, "id": "A3", "amount": 99, "email": "ana@example.org", "status": "cancelled"},
        {**base, "id": "X", "amount": 5, "email": "nobody@example.org"},
    ]
    t = make(fake, tmp_path, events="contact_stats").pull()
    # the cancelled order keeps its status: the engine leaves it out of every metric
    assert list(t.orders["order_id"]) == ["A1", "A2", "A3"]
    assert list(t.orders["contact_id"]) == ["1", "1", "1"]
    assert list(t.orders["status"]) == ["completed", "completed", "cancelled"]
    assert sorted(t.events["event"]) == ["click", "open", "sent", "unsubscribe"]
    assert set(t.events["campaign_id"]) == {"12"} and set(t.events["contact_id"]) == {"1"}
    stats = [p for m, p, s in fake.log if p.endswith("/campaignStats")]
    assert stats == ["/contacts/1/campaignStats"]  # the blocklisted contact costs no call
    assert any("1 order(s) whose buyer is no Brevo contact" in n for n in t.notes)


# -- faults --------------------------------------------------------------------------------


def test_a_lower_limit_than_documented_is_followed_from_brevos_headers(tmp_path):
    server = BrevoFake(specs.brevo(), contacts_limit=2, contacts_window=0.5)
    server.start()
    try:
        populate(server, 2001, seed_lists=False)  # three pages: one more than the limit
        server.validate_first = 2  # about the rate: each call and answer checked twice
        # the client believes in a higher limit than the server's: Brevo's count wins
        conn = make(
            server,
            tmp_path,
            events="none",
            orders=False,
            contacts_requests_per_second=40.0,
            concurrency=1,
        )
        t = conn.pull()
        assert len(t.contacts) == 2001
        stats = conn.contacts_client.stats
        assert server.contacts_limiter.total_429 == 0 and stats.throttled == 0
        assert stats.waited_seconds >= 0.5  # it waited for the resets Brevo announced
        assert not server.violations
    finally:
        server.stop()


def test_429_from_another_job_on_the_key_waits_for_the_reset_once(fake, tmp_path):
    populate(fake, 10)
    spent = {
        "x-sib-ratelimit-limit": "10",
        "x-sib-ratelimit-remaining": "0",
        "x-sib-ratelimit-reset": "1",
    }
    fake.fail_next(
        429,
        path="^/contacts$",
        headers=spent,
        body={"code": "too_many_requests", "message": "The expected rate limit is exceeded."},
    )
    conn = make(fake, tmp_path, events="none", orders=False)
    t = conn.pull()
    assert len(t.contacts) == 10
    assert [s for m, p, s in fake.log if p == "/contacts"][:2] == [429, 200]
    stats = conn.contacts_client.stats
    assert stats.throttled == 1 and stats.max_consecutive_429 == 1
    assert stats.waited_seconds >= 0.9  # x-sib-ratelimit-reset: 1 s


def test_5xx_is_retried(fake, tmp_path):
    populate(fake, 10)
    fake.fail_next(503, times=2, path="^/contacts$", body={"message": "down"})
    t = make(fake, tmp_path, events="none", orders=False).pull()
    assert len(t.contacts) == 10
    assert [s for m, p, s in fake.log if p == "/contacts"][:3] == [503, 503, 200]


def test_401_is_a_credential_error_without_the_secret(fake, tmp_path):
    conn = make(fake, tmp_path, key="xkeysib-wrong-secret-value")
    with pytest.raises(CredentialError) as info:
        conn.check()
    text = str(info.value)
    assert info.value.exit_code == 2
    assert "shop" in text and "GET /account" in text and "401" in text and "Key not found" in text
    assert "segmerge auth set shop" in text
    assert "xkeysib-wrong-secret-value" not in text and "secret-value" not in repr(info.value)


def test_missing_key_names_the_command_and_variable(fake, tmp_path):
    with pytest.raises(CredentialError) as info:
        make(fake, tmp_path, key=None).check()
    assert "segmerge auth set shop" in str(info.value) and "SEGMERGE_SHOP_TOKEN" in str(info.value)


def test_check_names_the_account(fake, tmp_path):
    notes = make(fake, tmp_path).check()
    assert "account ok" in notes[0] and "La Boutique" in notes[0]


def test_html_answer_is_a_bad_answer(fake, tmp_path):
    fake.fail_next(
        200,
        path="^/contacts$",
        body="<html><body>Maintenance</body></html>",
        content_type="text/html",
    )
    with pytest.raises(BadAnswer) as info:
        make(fake, tmp_path, events="none", orders=False).pull()
    text = str(info.value)
    assert "GET /contacts" in text and "200" in text and "text/html" in text
    assert info.value.exit_code == 2


def test_garbage_4xx_names_the_status(fake, tmp_path):
    fake.fail_next(
        418, path="^/contacts/attributes$", body="I'm a teapot", content_type="text/plain"
    )
    with pytest.raises(ConnectorError) as info:
        make(fake, tmp_path).pull()
    assert "GET /contacts/attributes answered 418" in str(info.value)


def test_field_changing_type_mid_pull(fake, tmp_path):
    populate(fake, 2500)
    fake.type_change_after = 1  # from the second page on, listIds is a string
    fake.check_responses = False  # the fake lies on purpose
    with pytest.raises(BadAnswer) as info:
        make(fake, tmp_path, events="none", orders=False, concurrency=1).pull()
    text = str(info.value)
    assert "GET /contacts" in text and "'listIds'" in text and "str" in text
    assert "offset 1000" in text


def test_attribute_of_another_type_is_read_as_empty_with_a_note(fake, tmp_path):
    fake.add_contact("a@example.org", attributes={"AGE": 30})
    fake.add_contact("b@example.org", attributes={"AGE": "trente"})
    t = make(fake, tmp_path, events="none", orders=False).pull()
    assert t.contacts.loc[0, "age"] == 30 and pd.isna(t.contacts.loc[1, "age"])
    assert any("AGE" in n and "1 value" in n for n in t.notes)


# -- the CLI end to end --------------------------------------------------------------------


def test_cli_run_end_to_end(fake, tmp_path):
    populate(fake, 60)
    root = tmp_path / "ws"
    env = {"SEGMERGE_SHOP_TOKEN": KEY}
    two_segment_workspace(
        root,
        env,
        "brevo",
        "vip == true",
        f"""
        [sources.shop]
        connector = "brevo"
        base_url = "{fake.url}"
        events = "none"
        orders = false
        contacts_requests_per_second = 200.0
        other_requests_per_hour = 360000.0

        [campaigns.brevo]
        source = "shop"
        rules = "segrules/brevo.yaml"
        templates = "templates/brevo"
        destination = "shop"
        tag_prefix = "seg:"
        """,
    )
    check = segmerge("validate", "brevo", "-w", str(root), env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "account ok" in check.stdout + check.stderr
    dry = segmerge("run", "brevo", "-w", str(root), "--as-of", "2026-12-01", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert fake.mutations == [] and not fake.campaigns  # a dry run writes nothing
    proc = segmerge("run", "brevo", "-w", str(root), "--as-of", "2026-12-01", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vip, autres = fake.list_named("seg:vip"), fake.list_named("seg:autres")
    assert vip and autres
    subscribed = {c.id for c in fake.contacts.values() if not c.blacklisted}
    assert fake.members(vip) == {i for i in subscribed if i % 3 == 0}
    assert fake.members(vip) | fake.members(autres) == subscribed
    assert {c["name"].split(" · ")[-1] for c in fake.campaigns.values()} == {"vip", "autres"}
    assert all("{{ contact.FIRSTNAME }}" in c["htmlContent"] for c in fake.campaigns.values())
    n = len(fake.mutations)
    again = segmerge("run", "brevo", "-w", str(root), "--as-of", "2026-12-01", env=env)
    assert again.returncode == 0, again.stderr
    assert len(fake.mutations) == n  # the same run again repeats nothing


def test_random_5xx_and_a_timeout_lose_nothing(fake, tmp_path):
    """Two pages of contacts and eleven list calls of tags; the fake's seed puts 503s
    among the first of these few requests (its default one drew one in 32)."""
    populate(fake, 1600, seed_lists=False)
    fake.validate_first = 2  # about faults: each call and answer checked twice, not each page
    fake.rng = random.Random(9)
    fake.random_5xx = 0.15
    fake.fail_next(200, path="^/contacts$", delay=1.5, body={"contacts": [], "count": 0})
    conn = make(fake, tmp_path, events="none", orders=False, timeout=0.5)
    t = conn.pull()
    assert len(t.contacts) == 1600
    out = conn.push([tag(str(i), "seg:zens") for i in range(1, 1601)])
    fake.random_5xx = 0.0
    assert {o.status for o in out} == {"done"}
    assert fake.members(fake.list_named("seg:zens")) == set(range(1, 1601))
    assert conn.contacts_client.stats.retries >= 1
    assert sum(status == 503 for _, _, status in fake.log) >= 2  # the faults happened


def test_incremental_events_are_only_the_new_ones(fake, tmp_path):
    ana = fake.add_contact("ana@example.org")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = (now - dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
    new = (now - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    ana.stats = {
        "opened": [
            {"campaignId": 3, "count": 1, "eventTime": old, "ip": "1.1.1.1"},
            {"campaignId": 4, "count": 1, "eventTime": new, "ip": "1.1.1.1"},
        ]
    }
    fake.clock = now
    fake.touch(ana)
    since = (now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    t = make(fake, tmp_path, orders=False, events="contact_stats").pull(since)
    assert list(t.events["campaign_id"]) == ["4"] and t.incremental
