"""HubSpot won deals on any pipeline, e-mail events in windows, per-stream progress and
list memberships in large chunks, against the stateful fake on loopback."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from segmerge.errors import BadAnswer
from segmerge.ports.connector import Action
from tests.fakes.hubspot import HubSpotFake, make_connector, populate
from tests.fakes.hubspot_marketing import pipeline


@pytest.fixture
def fake():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server
        assert server.violations == [], server.violations


def calls(fake: HubSpotFake, method: str, path: str) -> int:
    return sum(1 for m, p, _ in fake.log if m == method and p.rstrip("/") == path)


def won(fake: HubSpotFake, **settings: Any) -> set[str]:
    conn = make_connector(fake, events=False, **settings)
    return set(conn.pull().orders["order_id"])


def test_won_deals_on_a_custom_pipeline_count_and_lost_ones_do_not(fake):
    ids = populate(fake, 3)
    fake.pipelines.append(
        pipeline(
            "8823111",
            "Ventes B2B",
            [
                ("8823112", "Devis", "0.5", "false"),
                ("8823113", "Signé", "1.0", "true"),
                ("8823114", "Perdu", "0.0", "true"),
            ],
        )
    )
    signed = fake.add_deal([ids[0]], "300", "2026-05-01T00:00:00Z", "8823113", "8823111")
    lost = fake.add_deal([ids[1]], "50", "2026-05-02T00:00:00Z", "8823114", "8823111")
    default = fake.add_deal([ids[2]], "10", "2026-05-03T00:00:00Z", "closedwon")
    assert won(fake) == {f"{signed}:{ids[0]}", f"{default}:{ids[2]}"}
    assert f"{lost}:{ids[1]}" not in won(fake)
    assert calls(fake, "GET", "/crm/v3/pipelines/deals") == 0  # hs_is_closed_won said it


def test_deals_without_hs_is_closed_won_are_judged_by_their_pipeline_stage(fake):
    ids = populate(fake, 2)
    fake.pipelines.append(
        pipeline(
            "77",
            "Renouvellements",
            [("771", "Renouvelé", "1.0", "true"), ("772", "Résilié", "0.0", "true")],
        )
    )
    kept = fake.add_deal([ids[0]], "99", "2026-06-01T00:00:00Z", "771", "77", closed_won_unset=True)
    fake.add_deal([ids[1]], "99", "2026-06-01T00:00:00Z", "772", "77", closed_won_unset=True)
    assert won(fake) == {f"{kept}:{ids[0]}"}
    assert calls(fake, "GET", "/crm/v3/pipelines/deals") == 1  # read once, only when needed


def test_won_stages_in_the_settings_decide_alone(fake):
    ids = populate(fake, 2)
    a = fake.add_deal([ids[0]], "5", "2026-06-01T00:00:00Z", "contractsent")
    fake.add_deal([ids[1]], "5", "2026-06-01T00:00:00Z", "closedwon")
    assert won(fake, won_stages=["contractsent"]) == {f"{a}:{ids[0]}"}


def test_a_deal_with_more_than_100_contacts_is_an_order_of_each(fake):
    ids = populate(fake, 650)
    big = fake.add_deal(ids, "1000", "2026-04-01T00:00:00Z")
    small = fake.add_deal(ids[:2], "10", "2026-04-02T00:00:00Z")
    orders = make_connector(fake, events=False).pull().orders
    mine = orders[orders["order_id"].str.startswith(f"{big}:")]
    assert sorted(mine["contact_id"].astype(int)) == ids  # 650, not the first 100
    assert (orders["order_id"].str.startswith(f"{small}:")).sum() == 2
    assert fake.association_reads == 2  # 500 + 150, for the big deal only


def test_a_pipeline_stage_without_a_probability_is_a_bad_answer(fake):
    ids = populate(fake, 1)
    fake.pipelines[0]["stages"][0]["metadata"] = {"isClosed": "false", "probability": "high"}
    fake.add_deal([ids[0]], "5", "2026-06-01T00:00:00Z", "closedwon", closed_won_unset=True)
    with pytest.raises(BadAnswer) as err:
        make_connector(fake, events=False).pull()
    text = str(err.value)
    assert "GET /crm/v3/pipelines/deals" in text and "metadata.probability" in text
    fake.violations.clear()


def test_events_are_read_window_by_window_and_matched_to_contacts(fake):
    populate(fake, 3)
    now = dt.datetime.now(dt.UTC)
    for days in (200, 100, 40, 3):
        fake.add_event("OPEN", "ann1@example.org", now - dt.timedelta(days=days))
    fake.add_event("CLICK", "gone@example.org", now - dt.timedelta(days=2))
    tables = make_connector(fake, orders="none", events_days=365, events_window_days=30).pull()
    assert len(tables.events) == 4 and set(tables.events["event"]) == {"open"}
    assert len(fake.event_calls) >= 12  # a year in 30-day windows
    spans = [b - a for a, b in fake.event_calls]
    assert max(spans) < 30 * 86_400_000
    windows = fake.event_calls
    assert all(b + 1 == c for (_, b), (c, _) in zip(windows, windows[1:], strict=False))
    assert any("1 e-mail event(s) of addresses HubSpot has no contact" in n for n in tables.notes)


@pytest.mark.parametrize(
    "event, field",
    [
        ({"type": "OPEN", "recipient": "a@x.org"}, "created"),
        ({"type": "OPEN", "created": 5}, "recipient"),
    ],
)
def test_an_event_without_its_fields_is_a_bad_answer_not_dropped(fake, event, field):
    populate(fake, 1)
    body = {"hasMore": False, "offset": "1", "events": [{"id": "e1", **event}]}
    fake.fail_next(200, path=r"^/email/public/v1/events$", body=body)
    with pytest.raises(BadAnswer) as err:
        make_connector(fake, orders="none").pull()
    assert "GET /email/public/v1/events" in str(err.value) and repr(field) in str(err.value)


def test_each_stream_is_handed_over_as_soon_as_it_is_complete_and_resumes_alone(fake):
    ids = populate(fake, 20)
    fake.add_deal([ids[0]], "10", "2026-04-02T00:00:00Z")
    seen: list[tuple[str, int, str | None]] = []
    conn = make_connector(fake)
    conn.ctx.stream_done = lambda stream, rows, cursor: seen.append((stream, len(rows), cursor))
    fake.scopes.discard("content")  # the events stream fails after contacts and orders
    with pytest.raises(Exception, match="content"):
        conn.pull()
    assert [(s, n) for s, n, _ in seen] == [("contacts", 20), ("orders", 1)]
    contacts_cursor = seen[0][2]
    # the next run resumes contacts from their own cursor, though the pull as a whole failed
    fake.scopes.add("content")
    fake.touch(ids[3], firstname="Zoé")
    later = make_connector(fake)
    later.ctx.cursors = {"contacts": contacts_cursor}
    tables = later.pull()
    assert tables.incremental is True and list(tables.contacts["contact_id"]) == [str(ids[3])]
    assert set(tables.cursors) == {"contacts", "events"}


def test_list_memberships_go_in_one_call_for_a_large_segment(fake):
    ids = populate(fake, 450)
    actions = [
        Action(f"run|{c}|add_to_list:seg:a", "add_to_list", str(c), {"list": "seg:a"}) for c in ids
    ]
    out = make_connector(fake).push(actions)
    assert {o.status for o in out} == {"done"} and fake.list_named("seg:a").members == set(ids)
    path = f"/crm/v3/lists/{fake.list_named('seg:a').id}/memberships/add"
    assert calls(fake, "PUT", path) == 1  # was 5 at 100 ids a call
