"""Brevo engagement from campaign recipient exports (``events = "campaign_exports"``).

Against the Brevo fake on 127.0.0.1, every request and answer checked against Brevo's
spec: sent campaigns listed with their counters, one export per campaign and kind that
moved, polled through ``GET /processes``, the files fetched from the fake's file host.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from connectors.brevo import BrevoConnector
from connectors.brevo_engagement import Job, _poll
from connectors.brevo_export_file import emails_of, export_url
from connectors.brevo_sent import Campaign, _campaign
from segmerge.errors import BadAnswer
from segmerge.ports.connector import ConnectorContext
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake

FAST = {
    "contacts_requests_per_second": 200.0,
    "other_requests_per_hour": 360_000.0,
    "events_poll_seconds": 0.0,
    "orders": False,
}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def fake():
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=1000, other_window=1.0)
    server.start()
    yield server
    server.stop()
    assert not server.violations, server.violations


def make(
    fake: BrevoFake, tmp_path: Path, cursors: dict[str, str] | None = None, **settings
) -> BrevoConnector:
    ctx = ConnectorContext(
        name="shop",
        settings={"base_url": fake.url, **FAST, **settings},
        root=tmp_path,
        config_file=tmp_path / "segmerge.toml",
        secret=lambda: KEY,
        cursors=dict(cursors or {}),
    )
    return BrevoConnector(ctx)


def people(fake: BrevoFake, n: int) -> list[str]:
    emails = [f"client{i}@example.org" for i in range(1, n + 1)]
    for e in emails:
        fake.add_contact(e, attributes={"FIRSTNAME": e.split("@")[0]})
    return emails


def test_opens_clicks_bounces_unsubscribes_per_campaign_dated_at_the_send(fake, tmp_path):
    mails = people(fake, 6)
    sent = NOW - dt.timedelta(days=3)
    cid = fake.sent.add(
        "Soldes",
        sent,
        recipients=6,
        openers=mails[:3],
        clickers=[mails[0].upper()],
        hardBounces=[mails[5]],
        unsubscribed=[mails[2]],
    )
    t = make(fake, tmp_path).pull()
    ev = t.events.sort_values(["event", "contact_id"])
    assert list(zip(ev["event"], ev["contact_id"], strict=True)) == [
        ("bounce", "6"),
        ("click", "1"),
        ("open", "1"),
        ("open", "2"),
        ("open", "3"),
        ("unsubscribe", "3"),
    ]
    assert set(ev["campaign_id"]) == {str(cid)}
    assert (ev["at"] == sent).all()  # exports carry no times: the send date stands in
    assert list(ev["detail"].fillna("")) == ["hard", "", "", "", "", ""]  # as contact_stats
    # one export per kind with a count, none for the empty soft bounces
    assert sorted(k for _, k in fake.sent.exports) == [
        "clickers",
        "hardBounces",
        "openers",
        "unsubscribed",
    ]
    assert not [p for _, p, _ in fake.log if "campaignStats" in p]  # no call per contact
    assert any("dated at each campaign's send date" in n for n in t.notes)


def test_only_campaigns_whose_counters_moved_are_exported_again(fake, tmp_path):
    mails = people(fake, 4)
    a = fake.sent.add("A", NOW - dt.timedelta(days=10), openers=mails[:2])
    b = fake.sent.add("B", NOW - dt.timedelta(days=2), openers=mails[:1])
    first = make(fake, tmp_path).pull()
    assert sorted(fake.sent.exports) == [(a, "openers"), (b, "openers")]
    cursor = first.cursors["events"]
    fake.sent.exports.clear()
    fake.sent.campaign(b).lists["openers"].append(mails[3])  # one more opener of B
    second = make(fake, tmp_path, {"events": cursor}).pull()
    assert fake.sent.exports == [(b, "openers")]  # A did not change: no call for it
    assert set(zip(second.events["campaign_id"], second.events["contact_id"], strict=True)) == {
        (str(b), "1"),
        (str(b), "4"),
    }
    fake.sent.exports.clear()
    make(fake, tmp_path, {"events": second.cursors["events"]}).pull()
    assert fake.sent.exports == []  # nothing moved: only the listing was asked


def test_old_campaigns_outside_the_window_are_not_listed(fake, tmp_path):
    mails = people(fake, 2)
    fake.sent.add("old", NOW - dt.timedelta(days=40), openers=mails)
    new = fake.sent.add("new", NOW - dt.timedelta(days=1), openers=mails[:1])
    t = make(fake, tmp_path, events_days=30).pull()
    assert [c for c, _ in fake.sent.exports] == [new]
    assert set(t.events["campaign_id"]) == {str(new)}


def test_a_spent_budget_exports_the_newest_first_and_says_who_waits(tmp_path):
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=12, other_window=3600)
    with server:
        mails = people(server, 3)
        ids = [
            server.sent.add(f"C{i}", NOW - dt.timedelta(days=9 - i), openers=mails)
            for i in range(5)
        ]
        t = make(server, tmp_path).pull()  # paced fast: the budget is what Brevo says is left
        # 12 an hour: 1 listing, 5 kept for the push, 3 polls: 3 exports, newest first
        assert [c for c, _ in server.sent.exports] == ids[:1:-1]
        waiting = [n for n in t.notes if "wait for the next pull" in n]
        assert waiting and "'C1'" in waiting[0] and "'C0'" in waiting[0]
        counts = json.loads(t.cursors["events"])["campaigns"]
        assert "openers" not in counts[str(ids[0])]  # not recorded: exported next time
        assert counts[str(ids[4])]["openers"] == 3
        assert server.other_limiter.total_429 == 0
        assert not server.violations, server.violations


def test_exports_not_finished_in_time_are_not_recorded(fake, tmp_path):
    mails = people(fake, 2)
    cid = fake.sent.add("slow", NOW - dt.timedelta(days=1), openers=mails)
    fake.sent.polls_to_complete = 10**6
    t = make(fake, tmp_path, events_export_wait=0.0).pull()
    assert t.events.empty
    assert any("not finished by Brevo in time" in n for n in t.notes)
    assert "openers" not in json.loads(t.cursors["events"])["campaigns"][str(cid)]


def test_rows_of_unknown_addresses_are_counted_in_a_note(fake, tmp_path):
    mails = people(fake, 2)
    fake.sent.add("X", NOW - dt.timedelta(days=1), openers=[mails[0], "ghost@example.org"])
    t = make(fake, tmp_path).pull()
    assert list(t.events["contact_id"]) == ["1"]
    assert any("1 export row(s) of 1 address(es) that are no Brevo contact" in n for n in t.notes)


def test_an_incremental_pull_finds_openers_among_unchanged_contacts(fake, tmp_path):
    mails = people(fake, 3)
    fake.sent.add("X", NOW - dt.timedelta(days=1), openers=[mails[2]])
    since = (NOW + dt.timedelta(days=400)).isoformat()  # no contact modified since
    t = make(fake, tmp_path).pull(since)
    assert t.contacts.empty and list(t.events["contact_id"]) == ["3"]


def test_bare_export_urls_and_comma_separated_files(fake, tmp_path):
    mails = people(fake, 1)
    fake.sent.bare_urls = True
    fake.sent.sep = ","
    cid = fake.sent.add("X", NOW - dt.timedelta(days=1), openers=mails)
    t = make(fake, tmp_path).pull()
    assert list(t.events["campaign_id"]) == [str(cid)]
    assert fake.sent.downloads  # fetched from the file host, without the key (fixture)


def test_export_older_than_the_fifty_newest_processes_is_read_by_id(fake, tmp_path):
    mails = people(fake, 1)
    fake.sent.add("X", NOW - dt.timedelta(days=1), openers=mails)
    real_post = fake.sent.post_export

    def post_then_crowd(req):
        reply = real_post(req)
        for _ in range(55):  # the account's other processes (imports) arrive meanwhile
            fake.sent.add_process()
        return reply

    fake._routes = [(m, r, post_then_crowd if h == real_post else h) for m, r, h in fake._routes]
    t = make(fake, tmp_path).pull()
    assert len(t.events) == 1
    assert any(p.startswith("/processes/") for _, p, _ in fake.log)


def test_a_file_without_an_email_column_is_a_bad_answer(fake, tmp_path):
    mails = people(fake, 1)
    cid = fake.sent.add("X", NOW - dt.timedelta(days=1), openers=mails)
    fake.sent.file_override[cid] = b"ID;NAME\n1;Ana\n"
    with pytest.raises(BadAnswer, match=r"campaign \d+ \(openers\) has no e-mail column.*ID"):
        make(fake, tmp_path).pull()


def test_a_campaign_without_counters_is_a_bad_answer_naming_the_field(fake, tmp_path):
    people(fake, 1)
    fake.sent.add("X", NOW - dt.timedelta(days=1))
    real = fake.sent.get_campaigns

    def broken(req):
        reply = real(req)
        for c in reply.body["campaigns"]:
            c["statistics"]["globalStats"]["uniqueViews"] = "12"
        return reply

    fake.check_responses = False  # the answer is off-spec on purpose
    fake._routes = [(m, r, broken if h == real else h) for m, r, h in fake._routes]
    with pytest.raises(BadAnswer, match=r"GET /emailCampaigns.*statistics.globalStats.uniqueViews"):
        make(fake, tmp_path).pull()


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (
            '<a href="https://export-url.com/upload/file-name.csv" target="_blank">f.csv</a>',
            "https://export-url.com/upload/file-name.csv",
        ),
        ("https://exports.brevo.com/a.csv?x=1&y=2", "https://exports.brevo.com/a.csv?x=1&y=2"),
        ("<a href='https://h.example/a.csv?x=1&amp;y=2'>a</a>", "https://h.example/a.csv?x=1&y=2"),
    ],
)
def test_export_url_accepts_the_anchor_of_the_spec_and_a_bare_url(value, url):
    assert export_url(value, source="shop", endpoint="GET /processes") == url


@pytest.mark.parametrize("value", [None, "", "file-name.csv", "<b>done</b>", "ftp://x/a.csv"])
def test_anything_else_as_export_url_is_a_bad_answer(value):
    with pytest.raises(BadAnswer, match="export_url"):
        export_url(value, source="shop", endpoint="GET /processes/7")


def test_export_files_in_their_documented_delimiters_and_encodings():
    for data in (
        b"EMAIL;FIRSTNAME\nA@x.fr;Ana\n",
        b"\xef\xbb\xbfEmail,Name\nA@x.fr,Ana\n",
        b"email\tNAME\nA@x.fr\tJos\xe9\n",
    ):
        assert list(emails_of(data, source="s", what="w")) == ["A@x.fr"]
    assert emails_of(b"", source="s", what="w").empty


def test_a_second_pull_of_the_same_counters_reads_the_kept_files(fake, tmp_path):
    mails = people(fake, 3)
    cid = fake.sent.add("X", NOW - dt.timedelta(days=1), openers=mails[:2], clickers=mails[:1])
    first = make(fake, tmp_path).pull()  # validate
    fake.sent.exports.clear()
    again = make(fake, tmp_path).pull()  # then run, within the hour: no export paid twice
    assert fake.sent.exports == []
    assert again.events.equals(first.events) and len(again.events) == 3
    fake.sent.campaign(cid).lists["openers"].append(mails[2])
    third = make(fake, tmp_path).pull()
    assert fake.sent.exports == [(cid, "openers")]  # only the counter that moved
    assert len(third.events) == 4
    kept = sorted(p.name for p in (tmp_path / ".segmerge" / "cache" / "brevo" / "shop").iterdir())
    assert kept == [f"c{cid}-clickers-1.csv", f"c{cid}-openers-3.csv"]


# -- Brevo's documented answers through the parsers ------------------------------------------


def example(path: str, method: str = "get", status: str = "200") -> dict:
    op = specs.brevo_spec_dict()["paths"][path][method]
    return op["responses"][status]["content"]["application/json"]["examples"]["response"]["value"]


def test_the_documented_campaign_listing_gives_each_counter():
    body = example("/emailCampaigns")
    sent = [c for c in body["campaigns"] if c["status"] == "sent"]  # what status=sent lists
    first = _campaign(sent[0], 0, "shop")
    assert first.id == 12 and first.name == "EN - Sales Summer 2017"
    assert first.counts == {
        "openers": 7779,
        "clickers": 2300,
        "hardBounces": 87,
        "softBounces": 100,
        "unsubscribed": 2,
    }
    # the example has no sentDate (a sent campaign's field): its scheduledAt stands in
    assert first.sent == pd.Timestamp("2017-06-01T12:30:00Z")
    draft = next(c for c in body["campaigns"] if c["status"] == "draft")  # scheduledAt ""
    with pytest.raises(BadAnswer, match=r"campaign #1 \(id 22\) has no valid 'sentDate'"):
        _campaign(draft, 1, "shop")


class Answers:
    """A client that answers each GET from a table, as the documented examples are."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def get(self, path: str, params: object = None) -> object:
        self.asked.append(path)
        return self.answers[path]


def test_the_documented_process_answers_give_the_file_of_a_finished_export():
    listing, one = example("/processes"), example("/processes/{processId}")
    campaign = Campaign(7, "X", pd.Timestamp("2026-01-01", tz="UTC"), {})
    pending = {194: Job(campaign, "openers"), 43: Job(campaign, "clickers")}
    jobs = dict(pending)
    calls = _poll(Answers({"/processes": listing}), pending, "shop")  # type: ignore[arg-type]
    assert calls == 1 and list(pending) == [43]  # 43 is still queued
    assert jobs[194].url == "https://export-url.com/upload/file-name.csv"
    pending = {194: Job(campaign, "openers")}
    crowded = {
        "processes": [{"id": i, "status": "completed", "name": "X"} for i in range(1000, 1050)],
        "count": 51,
    }
    client = Answers({"/processes": crowded, "/processes/194": one})
    assert _poll(client, pending, "shop") == 2 and not pending  # type: ignore[arg-type]
    assert client.asked == ["/processes", "/processes/194"]


def test_a_process_of_an_undocumented_status_is_a_bad_answer():
    campaign = Campaign(7, "X", pd.Timestamp("2026-01-01", tz="UTC"), {})
    answer = {"processes": [{"id": 5, "status": "failed", "name": "X"}], "count": 1}
    with pytest.raises(BadAnswer, match=r"GET /processes: process 5 has status 'failed'"):
        _poll(Answers({"/processes": answer}), {5: Job(campaign, "openers")}, "shop")  # type: ignore[arg-type]


def test_switching_modes_reads_the_other_modes_cursor_as_none(fake, tmp_path):
    mails = people(fake, 2)
    fake.sent.add("X", NOW - dt.timedelta(days=1), openers=mails[:1])
    exports = make(fake, tmp_path).pull()
    stats = make(
        fake, tmp_path, {"events": exports.cursors["events"]}, events="contact_stats"
    ).pull()
    assert stats.cursors["events"][:1] != "{"  # contact_stats keeps a date
    again = make(fake, tmp_path / "other", {"events": stats.cursors["events"]}).pull()
    assert list(again.events["contact_id"]) == ["1"]  # a date means: export every counter


def test_a_full_contacts_pull_costs_no_second_listing_for_unknown_addresses(fake, tmp_path):
    mails = people(fake, 2)
    cid = fake.sent.add("X", NOW - dt.timedelta(days=1), openers=[mails[0], "ghost@example.org"])
    first = make(fake, tmp_path).pull()
    fake.sent.campaign(cid).lists["openers"].append(mails[1])
    before = len(fake.contact_queries)
    t = make(fake, tmp_path, {"events": first.cursors["events"]}).pull()  # contacts in full
    assert len(fake.contact_queries) - before == 1  # the pull's own page, no resolving pass
    assert sorted(t.events["contact_id"]) == ["1", "2"]
