"""The Mailchimp connector's pull and errors, against the stateful fake over real HTTP.

Every request is validated against Mailchimp's OpenAPI spec by the fake; the
``fake`` fixture fails a test at teardown if any request or answer violated it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from connectors import mailchimp_api
from connectors.mailchimp import MailchimpConnector
from segmerge.errors import BadAnswer, ConfigError, ConnectorError, CredentialError
from segmerge.ports.connector import ConnectorContext
from segmerge.ports.schema import CONTACT_COLUMNS, conform
from tests.fakes.mailchimp import API_KEY, LIST_ID, PROBLEM, MailchimpFake, serving, subscriber_hash

fake = pytest.fixture(serving, name="fake")


def connect(fake: MailchimpFake, tmp: Path, secret: str | None = API_KEY, **settings):
    values = {"list_id": LIST_ID, "base_url": fake.url, "retry_backoff": 0.01, **settings}
    if values["base_url"] is None:
        del values["base_url"]
    ctx = ConnectorContext(
        name="news",
        settings=values,
        root=tmp,
        config_file=tmp / "segmerge.toml",
        secret=lambda: secret,
    )
    return MailchimpConnector(ctx)


def populate(fake: MailchimpFake, n: int, **kw) -> list[str]:
    return [fake.add_member(f"client{i}@example.org", f"P{i}", f"N{i}", **kw) for i in range(n)]


def member_gets(fake: MailchimpFake) -> list[dict[str, str]]:
    return [q for m, p, q in fake.queries if m == "GET" and p.endswith("/members")]


# -- pull --------------------------------------------------------------------------------------


def test_full_pull_gives_canonical_tables(fake, tmp_path):
    fake.add_merge_field("AGE", "Âge", "number")
    fake.add_merge_field("ANNIV", "Anniversaire", "date")
    fake.add_merge_field("ADDRESS", "Adresse", "address")
    fake.add_merge_field("CODE_POSTAL", "Code postal", "zip")
    statuses = ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]
    ids = [
        fake.add_member(
            f"c{i}@example.org",
            f"Prénom{i}",
            f"Nom{i}",
            status=s,
            tags=["vip", "seg:zens"] if i == 0 else ["newsletter"],
            merge={
                "AGE": 41 if i == 0 else "",
                "ANNIV": "1985-04-12" if i == 0 else "",
                "CODE_POSTAL": "75011",
                "ADDRESS": {
                    "addr1": "1 rue Oberkampf",
                    "addr2": "",
                    "city": "Paris",
                    "state": "",
                    "zip": "75011",
                    "country": "FR",
                }
                if i == 0
                else "",
            },
        )
        for i, s in enumerate(statuses)
    ]
    fake.add_store("shop1")
    fake.add_store("other", list_id="zzzzzzzzzz")
    fake.add_order("shop1", "o1", "c0@example.org", 120.5, fake.now - timedelta(days=3))
    fake.add_order("shop1", "o2", "C1@Example.org", 30.0, fake.now - timedelta(days=40))
    fake.add_order(
        "shop1", "o3", "c2@example.org", 99.0, fake.now - timedelta(days=2), cancelled=True
    )
    fake.add_order("other", "o4", "c0@example.org", 10.0, fake.now - timedelta(days=2))
    sent = fake.now - timedelta(days=10)
    fake.add_campaign_report(
        "camp1",
        sent,
        {
            "c0@example.org": [
                ("open", sent + timedelta(hours=1)),
                ("click", sent + timedelta(hours=2)),
            ],
            "c1@example.org": [("bounce", sent + timedelta(minutes=5))],
            "c3@example.org": [],
        },
        unsubscribed={"c1@example.org": sent + timedelta(days=1)},
    )
    fake.add_campaign_report(
        "ancient",
        fake.now - timedelta(days=800),
        {"c0@example.org": [("open", fake.now - timedelta(days=799))]},
    )

    conn = connect(fake, tmp_path)
    tables = conform(conn.pull(), "news")
    c = tables.contacts.set_index("contact_id")
    assert tuple(tables.contacts.columns[:8]) == CONTACT_COLUMNS
    assert set(c.index) == set(ids) and ids[0] == subscriber_hash("c0@example.org")
    assert c["subscribed"].tolist() == [True, False, False, False, False]
    assert c.loc[ids[0], "first_name"] == "Prénom0" and c.loc[ids[0], "last_name"] == "Nom0"
    assert sorted(c.loc[ids[0], "tags"]) == ["seg:zens", "vip"]
    assert c.loc[ids[1], "tags"] == ["newsletter"]
    assert c.loc[ids[1], "status"] == "unsubscribed"
    assert (
        c["age"].dtype == "float64" and c.loc[ids[0], "age"] == 41 and pd.isna(c.loc[ids[1], "age"])
    )
    assert c.loc[ids[0], "anniv"] == pd.Timestamp("1985-04-12", tz="UTC")
    assert c.loc[ids[0], "address_city"] == "Paris" and pd.isna(c.loc[ids[1], "address_city"])
    assert c.loc[ids[0], "code_postal"] == "75011"
    assert str(c["updated_at"].dtype) == "datetime64[ns, UTC]"
    assert (c["created_at"] < c["updated_at"]).all()

    o = tables.orders.set_index("order_id")
    assert sorted(o.index) == ["shop1:o1", "shop1:o2"]  # cancelled and other audience left out
    assert o.loc["shop1:o1", "amount"] == 120.5
    assert o.loc["shop1:o2", "contact_id"] == ids[1]  # e-mail case does not matter
    assert str(o["ordered_at"].dtype) == "datetime64[ns, UTC]"

    e = tables.events
    assert set(e["campaign_id"]) == {"camp1"}  # the 800-day-old campaign is past events_days
    got = sorted(zip(e["contact_id"], e["event"], strict=True))
    assert got == sorted(
        [
            (ids[0], "sent"),
            (ids[0], "open"),
            (ids[0], "click"),
            (ids[1], "sent"),
            (ids[1], "bounce"),
            (ids[1], "unsubscribe"),
            (ids[3], "sent"),
        ]
    )
    assert (e.loc[e["event"] == "sent", "at"] == pd.Timestamp(sent)).all()
    assert tables.cursor and pd.Timestamp(tables.cursor).tzinfo is not None
    assert not tables.incremental
    conn.close()


def test_paging_reads_every_page_once_and_in_parallel(fake, tmp_path):
    ids = populate(fake, 2500)
    fake.gather_at("GET", "/lists/{id}/members", 2)  # pages read together meet at the server
    conn = connect(fake, tmp_path, orders=False, events=False)
    tables = conn.pull()
    assert len(tables.contacts) == 2500 and set(tables.contacts["contact_id"]) == set(ids)
    gets = member_gets(fake)
    # pages of 1,000 that repeat the last 10 members of the page before (see torn())
    assert sorted(int(q["offset"]) for q in gets) == [0, 990, 1980]
    assert {q["count"] for q in gets} == {"1000"}
    assert {(q["sort_field"], q["sort_dir"]) for q in gets} == {("last_changed", "ASC")}
    assert "members.merge_fields" in gets[0]["fields"]  # answers are kept small
    assert fake.peak > 1  # pages were read at the same time
    conn.close()


def test_members_the_counts_do_not_show_are_read_too(fake, tmp_path):
    """Mailchimp's audience stats leave out pending members: the pages planned from them
    are followed by the ones the answers' total_items still needs."""
    populate(fake, 900)  # one page by the counts, two by the answers
    pending = [fake.add_member(f"p{i}@example.org", status="pending") for i in range(300)]
    fake.validate_first = 1  # about which pages are read: each endpoint checked once
    conn = connect(fake, tmp_path, orders=False, events=False)
    conn.check()
    tables = conn.pull()
    assert len(tables.contacts) == 1200 and set(pending) <= set(tables.contacts["contact_id"])
    assert sorted(int(q["offset"]) for q in member_gets(fake)) == [0, 990]


def test_incremental_pull_uses_the_cursor(fake, tmp_path):
    ids = populate(fake, 50)
    sent = fake.now - timedelta(days=2)
    fake.add_campaign_report(
        "camp1", sent, {"client1@example.org": [("open", sent + timedelta(hours=1))]}
    )
    conn = connect(fake, tmp_path, orders=False)
    first = conn.pull()
    assert len(first.contacts) == 50 and len(first.events) == 2
    # the cursor has a one-second resolution: the changes come on Mailchimp's clock, moved
    # two seconds ahead, rather than after a second of sleep
    fake.skew = timedelta(seconds=2)
    fake.touch(ids[3], status="unsubscribed")
    fake.touch(ids[7], merge_fields={"FNAME": "Zoé", "LNAME": "N7"})
    fake.activity["camp1"][0]["activity"].append(
        {"action": "click", "timestamp": fake.now.isoformat(), "ip": "192.0.2.1"}
    )
    second = conn.pull(first.cursor)
    assert second.incremental
    assert sorted(second.contacts["contact_id"]) == sorted([ids[3], ids[7]])
    row = second.contacts.set_index("contact_id")
    assert not row.loc[ids[3], "subscribed"] and row.loc[ids[7], "first_name"] == "Zoé"
    assert second.events["event"].tolist() == ["click"]  # no sent/open again
    assert any("incremental" in n for n in second.notes)
    since = member_gets(fake)[-1]["since_last_changed"]
    assert pd.Timestamp(since) == pd.Timestamp(first.cursor) - timedelta(minutes=5)
    changed = pd.Timestamp(fake.members[ids[7]]["last_changed"])
    assert pd.Timestamp(second.cursors["contacts"]) == changed > pd.Timestamp(first.cursor)
    conn.close()


# -- limits and failures -----------------------------------------------------------------------


def test_429_waits_retry_after_when_given_and_is_not_repeated(fake, tmp_path):
    populate(fake, 10)
    body = {
        "type": "x",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "You have exceeded the limit of 10 simultaneous connections.",
        "instance": "i",
    }
    fake.fail_next(
        429, path="/members$", body=body, headers={"Retry-After": "0.4"}, content_type=PROBLEM
    )
    conn = connect(fake, tmp_path, orders=False, events=False)
    t0 = time.monotonic()
    assert len(conn.pull().contacts) == 10
    assert time.monotonic() - t0 >= 0.4
    stats = conn.api.client.stats
    assert stats.throttled == 1 and stats.max_consecutive_429 == 1


def test_a_shared_key_settles_on_the_free_connections(fake, tmp_path, monkeypatch):
    """Another app holds 7 of the key's 10 connections: the slow start (4 connections, one
    more every 50 ms) meets a few 429s on first contact, settles on what is free, and from
    then on never meets two 429s in a row."""
    # about connections, not contents: 32 pages of one shape (16 a pull), whose requests
    # and answers are checked against the spec twice per endpoint, of 100 members rather
    # than Mailchimp's 1,000 (the same requests, a tenth of the JSON to write and read);
    # test_paging_reads_every_page_once_and_in_parallel checks every page of 1,000 members
    monkeypatch.setattr(mailchimp_api, "PAGE", 100)
    populate(fake, 1450)
    fake.occupied = 7
    fake.latency = 0.05  # answers take time, so requests really overlap at the server
    fake.validate_first = 2
    conn = connect(fake, tmp_path, orders=False, events=False)
    assert len(conn.pull().contacts) == 1450
    assert 1 <= fake.total_429 <= 8
    assert conn.api.gate.limit <= 3
    fake.reset_stats()
    assert len(conn.pull().contacts) == 1450  # the next pull starts where the cap settled
    assert fake.total_429 <= 1 and fake.max_consecutive_429 <= 1 and fake.peak <= 3


def test_5xx_are_retried(fake, tmp_path):
    populate(fake, 10)
    fake.fail_next(503, times=2, path="/members$", body={"title": "Service Unavailable"})
    conn = connect(fake, tmp_path, orders=False, events=False)
    assert len(conn.pull().contacts) == 10
    assert conn.api.client.stats.retries == 2


def test_5xx_that_do_not_stop_fail_clearly(fake, tmp_path):
    fake.fail_next(
        502, times=20, path="/members$", body="<html>Bad gateway</html>", content_type="text/html"
    )
    conn = connect(fake, tmp_path, orders=False, events=False)
    with pytest.raises(ConnectorError) as info:
        conn.pull()
    text = str(info.value)
    assert info.value.exit_code == 1 and "news" in text and "members" in text and "502" in text


def test_401_is_a_credential_error_without_the_secret(fake, tmp_path):
    wrong = "ffffffffffffffffffffffffffffffff-us6"
    conn = connect(fake, tmp_path, secret=wrong)
    with pytest.raises(CredentialError) as info:
        conn.check()
    text = str(info.value) + (info.value.hint or "")
    assert info.value.exit_code == 2
    assert "news" in text and "GET /" in text and "401" in text and "API Key Invalid" in text
    assert "segmerge auth set news" in text
    assert wrong not in text and wrong[:12] not in text


def test_key_revoked_mid_pull_stops_with_a_credential_error(fake, tmp_path):
    populate(fake, 2500)
    conn = connect(fake, tmp_path, orders=False, events=False)
    fake.fail_next(
        401,
        path="/members$",
        body={
            "type": "x",
            "title": "API Key Invalid",
            "status": 401,
            "detail": "Your API key may be invalid.",
            "instance": "i",
        },
        content_type=PROBLEM,
    )
    with pytest.raises(CredentialError):
        conn.pull()


def test_missing_key_names_the_command_and_variable(fake, tmp_path):
    with pytest.raises(CredentialError) as info:
        connect(fake, tmp_path, secret=None).check()
    text = str(info.value)
    assert "segmerge auth set news" in text and "SEGMERGE_NEWS_TOKEN" in text


def test_host_comes_from_the_key_data_center(fake, tmp_path):
    conn = connect(fake, tmp_path, secret="0123456789abcdef-us21", base_url=None)
    assert conn.api.client.base_url == "https://us21.api.mailchimp.com/3.0"
    with pytest.raises(ConfigError) as info:
        _ = connect(fake, tmp_path, secret="0123456789abcdef", base_url=None).api
    assert "data-center" in str(info.value) and "0123456789abcdef" not in str(info.value)


def test_check_names_the_account_and_audience(fake, tmp_path):
    populate(fake, 3)
    notes = connect(fake, tmp_path).check()
    assert notes == [
        "news: account ok (Boutique Test, plan monthly); audience 'Newsletter', 3 members"
    ]
    with pytest.raises(ConfigError) as info:
        connect(fake, tmp_path, list_id="nope").check()
    assert info.value.field == "news.list_id" and "nope" in str(info.value)


def test_html_answer_is_a_bad_answer(fake, tmp_path):
    fake.fail_next(
        200,
        path="/members$",
        body="<html><body>Maintenance</body></html>",
        content_type="text/html",
    )
    with pytest.raises(BadAnswer) as info:
        connect(fake, tmp_path, orders=False, events=False).pull()
    text = str(info.value)
    assert info.value.exit_code == 2
    assert "news" in text and f"GET /lists/{LIST_ID}/members" in text and "200" in text
    assert "text/html" in text


def test_garbage_4xx_names_the_status(fake, tmp_path):
    fake.fail_next(
        418,
        path="/members$",
        body={
            "type": "x",
            "title": "I'm a teapot",
            "status": 418,
            "detail": "short and stout",
            "instance": "i",
        },
        content_type=PROBLEM,
    )
    with pytest.raises(BadAnswer) as info:
        connect(fake, tmp_path, orders=False, events=False).pull()
    assert "418" in str(info.value) and "short and stout" in str(info.value)


def test_field_changing_type_mid_pull(tmp_path):
    fake = MailchimpFake(check_responses=False).start()  # the answer is broken on purpose
    try:
        ids = populate(fake, 2500)
        fake.members[ids[1500]]["merge_fields"] = "Prénom: P1500"
        with pytest.raises(BadAnswer) as info:
            connect(fake, tmp_path, orders=False, events=False).pull()
        text = str(info.value)
        assert "offset 990" in text and "members[510].merge_fields is str" in text
        assert "expected dict" in text and f"GET /lists/{LIST_ID}/members" in text
        assert not fake.violations
    finally:
        fake.stop()


def test_total_changing_type_is_reported(fake, tmp_path):
    fake.fail_next(200, path="/members$", body={"members": [], "total_items": "many"})
    with pytest.raises(BadAnswer) as info:
        connect(fake, tmp_path, orders=False, events=False).pull()
    assert "total_items" in str(info.value) and "str" in str(info.value)


def test_a_stale_cursor_is_a_clear_error(fake, tmp_path):
    with pytest.raises(ConfigError) as info:
        connect(fake, tmp_path).pull("yesterday")
    assert "cursor" in str(info.value) and "yesterday" in str(info.value)


def test_timestamps_read_per_page_are_what_pandas_reads_and_odd_ones_are_lenient():
    """Each page's timestamps are parsed by Arrow in the worker that fetched it; a page
    holding a value Arrow refuses (no offset, garbage) is read leniently instead, as
    pandas reads ISO 8601: same instants, garbage as NaT."""
    from connectors import mailchimp_tables as mt

    good = ["2026-11-01T21:35:11+00:00", None, "2025-01-01T00:00:00+02:00", "2026-03-29T01:30:00Z"]
    odd = ["2026-11-01T21:35:11", "pas une date", None, "2026-11-01T21:35:11.250+01:00"]
    chunks = [mt.utc_times(good), mt.utc_times(odd), mt.utc_times(good)]
    assert chunks[1] == odd  # the page Arrow refused is kept as text, the others parsed
    assert not isinstance(chunks[0], list) and not isinstance(chunks[2], list)
    column = mt.times_column(chunks)
    assert str(column.dtype) == "datetime64[ns, UTC]"
    assert column.tolist() == mt.timestamps(good + odd + good).tolist()
    assert column.isna().tolist() == [
        False,
        True,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert mt.times_column([]).empty


def test_text_merge_fields_read_per_page_are_what_the_generic_reading_gives():
    """A merge field holding only text on every page takes Arrow's short path; one
    with a number on some page, an address, a number field or an undeclared field
    take the generic one: either way the columns are those of the generic reading."""
    from connectors import mailchimp_tables as mt
    from connectors.mailchimp_api import Listing, Page

    def member(i, merge):
        return {
            "id": f"{i:032x}",
            "email_address": f"c{i}@x.fr",
            "status": "subscribed",
            "merge_fields": merge,
            "tags": [],
            "last_changed": "",
        }

    rows = [
        [
            member(1, {"FNAME": "Léa", "VILLE": "Lyon", "AGE": 30}),
            member(2, {"FNAME": "", "VILLE": None, "AGE": ""}),
        ],
        [
            member(3, {"FNAME": "Marc", "VILLE": 75, "ADDR": {"city": "Brest", "zip": "29200"}}),
            member(4, {"FNAME": None, "NOTE": "vip"}),
        ],
    ]
    listing = Listing("/lists/x/members", "members")
    pages = []
    for k, items in enumerate(rows):
        page = Page(listing, 1000 * k, items, 4)
        page.data = mt.member_columns(page, "news")
        pages.append(page)
    types = {"FNAME": "text", "VILLE": "text", "AGE": "number", "ADDR": "address"}
    got = mt.contacts(pages, types)
    every = [m for items in rows for m in items]
    tags = ["FNAME", "VILLE", "AGE", "ADDR", "NOTE"]
    want = mt.merge_columns(
        {t: [(m["merge_fields"] or {}).get(t) for m in every] for t in tags}, 4, types
    )
    assert "FNAME" in pages[0].data["merge_text"] and "VILLE" not in pages[1].data["merge_text"]
    for name, column in want.items():
        pd.testing.assert_series_equal(
            got[name].reset_index(drop=True),
            pd.Series(column).reset_index(drop=True),
            check_names=False,
        )
    assert got["first_name"].tolist()[:2] == ["Léa", pd.NA] and got["ville"].tolist()[2] == "75"


QUERIES = [
    {"count": 1000, "offset": 0},
    {"count": 1000, "offset": 1000, "fields": "members.id,members.tags,total_items"},
    {"count": 5, "offset": 3, "fields": "total_items,list_id"},
    {"count": 7, "offset": 0, "fields": "members.merge_fields.FNAME,members.status"},
]


def test_the_benchmark_fake_answers_member_pages_exactly_as_the_plain_fake():
    """The benchmark's fake keeps members' JSON encoded: its pages must be the plain
    fake's, field for field, before and after tags change, whatever the projection."""
    from segmerge.ports.connector import Action

    # the spec checks each projection's page once (the first four), not every page again
    fake = MailchimpFake(encode_once=True, validate_first=len(QUERIES)).start()
    try:
        ids = populate(fake, 1200, tags=("vip",))
        fake.add_merge_field("AGE", "Âge", "number")
        conn = connect(fake, Path("."))
        path = f"/lists/{LIST_ID}/members"

        def pages(encoded: bool) -> list[object]:
            fake.encode_once = encoded
            return [conn.api.get(path, q) for q in QUERIES]

        assert pages(True) == pages(False) and pages(True) == pages(False)  # cold, then warm
        conn.pull()
        tags = [Action(f"r|{i}|tag:seg:x", "tag", i, {"tag": "seg:x"}) for i in ids[:600]]
        assert {o.status for o in conn.push(tags)} == {"done"}
        # actions without their e-mail find it in the pull, not with a call per member
        member = f"/lists/{LIST_ID}/members/"
        assert not [p for m, p, _ in fake.queries if m == "GET" and p.startswith(member)]
        after = pages(True)
        assert after == pages(False)
        assert {t["name"] for t in after[0]["members"][0]["tags"]} == {"vip", "seg:x"}
        assert {t["name"] for t in after[1]["members"][0]["tags"]} == {"vip"}
        conn.close()
    finally:
        fake.stop()
    assert not fake.violations


def test_a_check_reads_the_first_wave_so_the_pull_after_it_asks_only_for_members(tmp_path):
    """A run checks, then pulls: the check reads the merge fields, tags, stores and
    campaigns together with the account and the audience (one round trip), and the pull
    then asks for nothing but the member pages before its second wave."""
    fake = MailchimpFake(latency=0.05).start()
    try:
        populate(fake, 2500)
        conn = connect(fake, tmp_path)
        side = ("/merge-fields", "/segments", "/ecommerce/stores", "/campaigns")
        conn.check()
        checked = [p for _, p, _ in fake.queries]
        assert all(any(p.endswith(s) for p in checked) for s in side)
        assert fake.peak >= 4  # at once, not one after another
        n = len(fake.queries)
        # which requests, not their contents: the member pages' answers are checked against
        # the spec by test_paging_reads_every_page_once_and_in_parallel
        fake.check_responses = False
        tables = conn.pull()
        pulled = [p for _, p, _ in fake.queries[n:]]
        assert len(tables.contacts) == 2500 and sum(p.endswith("/members") for p in pulled) == 3
        assert not any(p.endswith(side) for p in pulled)
        n = len(fake.queries)
        conn.pull()  # no check just before: it reads them itself
        again = [p for _, p, _ in fake.queries[n:]]
        assert all(any(p.endswith(s) for p in again) for s in side)
        conn.close()
    finally:
        fake.stop()
    assert not fake.violations
