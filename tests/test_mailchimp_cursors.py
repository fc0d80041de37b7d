"""Mailchimp pulls: members oldest change first, each stream's progress kept as it completes.

Against the stateful fake over real HTTP (requests and answers checked against the spec).
The members' cursor is the latest ``last_changed`` read, in Mailchimp's clock; each
stream resumes from its own cursor; a member page that slid while the audience
changed is read again rather than missing members.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from test_mailchimp import connect, member_gets, populate

from connectors.mailchimp_api import PAGE
from segmerge.errors import ConnectorError
from tests.fakes.base import Request
from tests.fakes.mailchimp import MailchimpFake, serving

fake = pytest.fixture(serving, name="fake")


def recording(conn) -> list[tuple[str, Any, str | None]]:
    done: list[tuple[str, Any, str | None]] = []
    conn.ctx.stream_done = lambda stream, rows, cursor: done.append((stream, rows, cursor))
    return done


def test_members_come_oldest_change_first_and_their_cursor_is_the_latest_change(fake, tmp_path):
    base = fake.now - timedelta(days=3)
    ids = [
        fake.add_member(f"c{i}@example.org", changed=base + timedelta(minutes=37 * i))
        for i in (4, 1, 3, 0, 2)
    ]
    fake.add_store("shop1")
    conn = connect(fake, tmp_path)
    done = recording(conn)
    tables = conn.pull()
    assert tables.contacts["contact_id"].tolist() == [ids[3], ids[1], ids[4], ids[2], ids[0]]
    latest = pd.Timestamp(base + timedelta(minutes=37 * 4))
    assert pd.Timestamp(tables.cursors["contacts"]) == latest  # Mailchimp's clock
    assert [(s, c) for s, _, c in done] == [
        ("contacts", tables.cursors["contacts"]),
        ("orders", tables.cursor),
        ("events", tables.cursor),
    ]
    assert done[0][1] is tables.contacts and tables.cursors["orders"] == tables.cursor

    fake.touch(ids[2])
    conn.ctx.cursors = dict(tables.cursors)
    again = conn.pull(tables.cursor)
    # the latest member is read again too: the cursor goes back 5 minutes (clock skew)
    assert again.incremental and again.contacts["contact_id"].tolist() == [ids[0], ids[2]]
    since = pd.Timestamp(member_gets(fake)[-1]["since_last_changed"])
    assert since == latest - timedelta(minutes=5)  # from the members' own cursor
    assert pd.Timestamp(again.cursors["contacts"]) == pd.Timestamp(
        fake.members[ids[2]]["last_changed"]
    )


def test_a_pull_that_reads_no_member_keeps_the_members_cursor(fake, tmp_path):
    populate(fake, 3)
    conn = connect(fake, tmp_path, orders=False, events=False)
    done = recording(conn)
    later = (fake.now + timedelta(hours=1)).isoformat()
    conn.ctx.cursors = {"contacts": later}
    tables = conn.pull(later)
    assert tables.contacts.empty and tables.cursors == {"contacts": later}
    assert [(s, c) for s, _, c in done] == [("contacts", later)]  # orders, events not pulled


def test_each_stream_resumes_from_its_own_cursor(fake, tmp_path):
    populate(fake, 3)
    sent = fake.now - timedelta(days=2)
    fake.add_campaign_report("camp1", sent, {"client1@example.org": [("open", sent)]})
    conn = connect(fake, tmp_path, orders=False)
    members_at = (fake.now - timedelta(days=30)).isoformat()
    events_at = (fake.now - timedelta(hours=1)).isoformat()
    conn.ctx.cursors = {"contacts": members_at, "events": events_at}
    tables = conn.pull((fake.now - timedelta(days=400)).isoformat())
    since = pd.Timestamp(member_gets(fake)[-1]["since_last_changed"])
    assert since == pd.Timestamp(members_at) - timedelta(minutes=5)
    activity = [q for m, p, q in fake.queries if p.endswith("/email-activity")]
    assert activity and all(pd.Timestamp(q["since"]) == pd.Timestamp(events_at) for q in activity)
    assert tables.events.empty  # the open is older than the events' cursor
    assert len(tables.contacts) == 3


def test_a_late_failure_still_hands_over_the_members(fake, tmp_path):
    """The orders fail after the members were read: the members and their cursor were
    handed over first, so the engine keeps them and the next run resumes from there."""
    populate(fake, 5)
    fake.add_store("shop1")
    fake.fail_next(503, times=50, path="/orders$", body={"title": "Service Unavailable"})
    conn = connect(fake, tmp_path)
    done = recording(conn)
    with pytest.raises(ConnectorError) as info:
        conn.pull()
    assert "orders" in str(info.value) and "503" in str(info.value)
    assert [s for s, _, _ in done] == ["contacts"] and len(done[0][1]) == 5 and done[0][2]


def test_the_read_timeout_fits_a_slow_page(fake, tmp_path):
    conn = connect(fake, tmp_path)
    assert conn.api.client.timeout[1] == 120.0
    assert connect(fake, tmp_path, timeout=300).api.client.timeout[1] == 300.0


# -- members changing while their pages are read --------------------------------------------


def slide_after_first_page(fake: MailchimpFake, moved: int, readings: int = 1) -> list[int]:
    """For the first ``readings`` readings: hold the second member page until the first
    one is answered, then change ``moved`` members of the first page (they go to the end
    of the order, and every member after them moves up as many places). Returns the
    offsets of the member pages asked, in order of arrival."""
    # every request is still checked against the spec; the answers, pages of 1,000 members
    # of one shape, are by tests/test_mailchimp.py's paging test (here: which pages, when)
    fake.check_responses = False
    first_done = threading.Event()
    asked: list[int] = []
    left = [readings]

    def is_page(req: Request, offset: int) -> bool:
        return (
            req.method == "GET"
            and req.path.endswith("/members")
            and (req.int_arg("offset", 0) == offset)
        )

    def before(req: Request) -> None:
        if req.method == "GET" and req.path.endswith("/members"):
            asked.append(req.int_arg("offset", 0))
        if is_page(req, PAGE - 10) and left[0] > 0:
            assert first_done.wait(30), "the first page never came"
            first_done.clear()
            left[0] -= 1

    def after(req: Request) -> None:
        if is_page(req, 0) and left[0] > 0:
            with fake.lock:
                order = fake.in_order(fake.order, "last_changed", "ASC")
                for mid in order[100 : 100 + moved]:
                    fake.touch(mid)
            first_done.set()

    fake.before_answer, fake.after_answer = before, after
    return asked


def test_members_sliding_further_than_the_overlap_are_read_again_not_lost(fake, tmp_path):
    ids = populate(fake, 2500)
    asked = slide_after_first_page(fake, moved=25)
    conn = connect(fake, tmp_path, orders=False, events=False)
    tables = conn.pull()
    assert set(tables.contacts["contact_id"]) == set(ids) and len(tables.contacts) == 2500
    assert sorted(asked) == [0, 0, 990, 990, 1980, 1980]  # read once more, whole


def test_members_sliding_within_the_overlap_cost_no_second_reading(fake, tmp_path):
    ids = populate(fake, 2500)
    asked = slide_after_first_page(fake, moved=4)
    tables = connect(fake, tmp_path, orders=False, events=False).pull()
    assert set(tables.contacts["contact_id"]) == set(ids)
    assert sorted(asked) == [0, 990, 1980]


def test_an_audience_sliding_under_every_reading_stops_the_pull(fake, tmp_path):
    populate(fake, 2500)
    slide_after_first_page(fake, moved=25, readings=3)
    with pytest.raises(ConnectorError) as info:
        connect(fake, tmp_path, orders=False, events=False).pull()
    text = str(info.value)
    assert "read 3 times" in text and "/members" in text and "offset 990" in text


def test_pages_that_repeat_some_members_and_miss_others_are_torn():
    """Members changed in the same second are ties of the sort: were Mailchimp to give
    them in another order from one page to the next, a page could begin where it
    should and still repeat some and miss others. The count tells."""
    from connectors.mailchimp_api import Listing, Page, torn

    listing = Listing("/lists/x/members", "members", ident="id", overlap=2)

    def reading(*pages: list[str], total: int) -> list[Page]:
        out = []
        for k, ids in enumerate(pages):
            p = Page(listing, k * listing.stride, [{"id": i} for i in ids], total)
            p.idents, p.head, p.count = (
                frozenset(ids),
                ids[0],
                PAGE if k < len(pages) - 1 else len(ids),
            )
            out.append(p)
        return out

    full = [f"m{i}" for i in range(PAGE)]
    nxt = ["m998", "m999", "n0", "n1"]
    assert torn(reading(full, nxt, total=PAGE + 2)) is None
    slid = ["n0", "n1"]  # the page began after the overlap: m998, m999 were not the start
    assert "offset 998" in (torn(reading(full, slid, total=PAGE + 2)) or "")
    again = ["m998", "m999", "m997", "n1"]  # a tie read twice, n0 never
    assert "distinct" in (torn(reading(full, again, total=PAGE + 2)) or "")
