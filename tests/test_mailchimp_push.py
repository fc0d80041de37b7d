"""The Mailchimp connector's pushes (tags = static segments, draft campaigns) and the CLI.

Against the stateful fake over real HTTP; every request is validated against
Mailchimp's OpenAPI spec and the ``fake`` fixture fails a test on any violation.
"""

from __future__ import annotations

import pytest
from test_mailchimp import connect, populate

from segmerge.errors import CredentialError
from segmerge.ports.connector import Action
from tests.cli import Ran, segmerge
from tests.fakes.mailchimp import LIST_ID, MailchimpFake, serving, subscriber_hash
from tests.workspaces import two_segment_workspace

fake = pytest.fixture(serving, name="fake")


def tag(cid: str, name: str, email: str | None = None, kind: str = "tag") -> Action:
    return Action(
        f"run|{cid}|{kind}:{name}",
        kind,
        cid,  # type: ignore[arg-type]
        {"tag": name, "segment": name.removeprefix("seg:"), "email": email},
    )


def draft(name: str = "profils 2026-12-01 · fonceurs", tag_name: str = "seg:fonceurs") -> Action:
    return Action(
        f"run|campaign|{name}",
        "create_campaign",
        None,
        {
            "name": name,
            "segment": "fonceurs",
            "list": tag_name,
            "tag": tag_name,
            "subject": "Bonjour *|FNAME|*",
            "preheader": "Nos nouveautés",
            "html": "<p>Bonjour *|FNAME|*</p><a href='*|UNSUB|*'>stop</a>",
            "text": "Bonjour *|FNAME|*\n*|UNSUB|*",
            "from_email": "boutique@example.org",
            "from_name": "La Boutique",
            "reply_to": None,
        },
    )


def segment_posts(fake: MailchimpFake) -> list[str]:
    return [p for m, p in fake.writes if m == "POST" and p.split("/")[-1].isdigit()]


def test_tags_go_in_batches_of_500_and_only_prefixed_tags_change(fake, tmp_path):
    ids = populate(fake, 1001, tags=["vip", "seg:old"])  # the last add a batch of one
    fake.validate_first = 2  # about batches: each call and answer checked twice, not each page
    conn = connect(fake, tmp_path, orders=False, events=False)
    tables = conn.pull()
    emails = dict(zip(tables.contacts["contact_id"], tables.contacts["email"], strict=True))
    actions = [tag(i, "seg:fonceurs", emails[i]) for i in ids]
    actions += [tag(i, "seg:old", emails[i], "untag") for i in ids[:700]]
    outcomes = conn.push(actions)
    assert len(outcomes) == len(actions) and {o.status for o in outcomes} == {"done"}
    assert {o.key for o in outcomes} == {a.key for a in actions}
    assert len(segment_posts(fake)) == 3 + 2  # ceil(1001/500) adds, ceil(700/500) removes
    assert fake.tags_of(ids[0]) == ["seg:fonceurs", "vip"]
    assert fake.tags_of(ids[900]) == ["seg:fonceurs", "seg:old", "vip"]
    assert fake.segment_named("seg:fonceurs")["type"] == "static"  # a tag is a static segment
    again = conn.push(actions)  # idempotent: a repeat is harmless
    assert {o.status for o in again} == {"done"} and fake.tags_of(ids[0]) == ["seg:fonceurs", "vip"]
    pulled = conn.pull().contacts.set_index("contact_id")
    assert sorted(pulled.loc[ids[0], "tags"]) == ["seg:fonceurs", "vip"]


def test_a_first_run_creates_its_new_tags_at_once_and_each_only_once(fake, tmp_path):
    ids = populate(fake, 30, tags=["seg:zens"])
    conn = connect(fake, tmp_path, orders=False, events=False)
    conn.pull()
    fake.gather_at("POST", "/lists/{id}/segments", 3)  # at once, the three meet at the server
    names = ["seg:zens", "seg:fonceurs", "seg:prudents", "seg:decouvreurs"]
    actions = [tag(i, names[k % 4]) for k, i in enumerate(ids)]
    outcomes = conn.push(actions)
    assert {o.status for o in outcomes} == {"done"}
    created = [p for m, p in fake.writes if m == "POST" and p.endswith("/segments")]
    assert len(created) == 3  # seg:zens existed
    assert fake.endpoint_peak[("POST", "/lists/{id}/segments")] == 3
    assert all(names[k % 4] in fake.tags_of(i) for k, i in enumerate(ids))


def test_prepare_creates_a_first_runs_new_tag_so_the_push_only_adds_members(fake, tmp_path):
    """The engine calls prepare() while its ledger writes the plan: the one new tag is
    created then, so the push's first call already adds members; untags and tags that
    exist create nothing, and a second prepare nothing more."""
    ids = populate(fake, 10, tags=["seg:zens"])
    conn = connect(fake, tmp_path, orders=False, events=False)
    conn.pull()
    actions = [tag(i, "seg:fonceurs", f"client{n}@example.org") for n, i in enumerate(ids)]
    actions += [
        tag(ids[0], "seg:zens", "client0@example.org"),
        tag(ids[1], "seg:ghost", "client1@example.org", "untag"),
    ]
    conn.prepare(actions)
    conn.prepare(actions)
    assert [p for m, p in fake.writes] == [f"/lists/{LIST_ID}/segments"]
    assert not any("seg:fonceurs" in fake.tags_of(i) for i in ids)  # created empty
    with pytest.raises(KeyError):
        fake.segment_named("seg:ghost")
    assert {o.status for o in conn.push(actions)} == {"done"}
    assert not [p for m, p in fake.writes[1:] if p.endswith("/segments")]  # no creation
    assert all("seg:fonceurs" in fake.tags_of(i) for i in ids)


def test_untag_of_a_tag_nobody_has_creates_nothing(fake, tmp_path):
    ids = populate(fake, 3)
    outcomes = connect(fake, tmp_path).push(
        [tag(ids[0], "seg:ghost", "client0@example.org", "untag")]
    )
    assert outcomes[0].status == "done" and "nothing to remove" in outcomes[0].detail
    assert fake.writes == []


def test_a_tag_action_without_email_looks_the_member_up(fake, tmp_path):
    ids = populate(fake, 3)
    outcomes = connect(fake, tmp_path).push([tag(ids[2], "seg:zens")])
    assert outcomes[0].status == "done" and fake.tags_of(ids[2]) == ["seg:zens"]
    missing = connect(fake, tmp_path).push([tag("0" * 32, "seg:zens")])
    assert missing[0].status == "failed" and "404" in missing[0].detail


def test_partial_failure_is_retried_one_by_one_then_recorded_per_item(fake, tmp_path):
    ids = populate(fake, 6)
    fake.reject_emails["client1@example.org"] = "This member is cleaned and cannot be tagged"
    fake.batch_only_reject.add("client2@example.org")
    actions = [tag(i, "seg:fonceurs", f"client{n}@example.org") for n, i in enumerate(ids)]
    actions.append(tag(subscriber_hash("gone@example.org"), "seg:fonceurs", "gone@example.org"))
    outcomes = {o.key: o for o in connect(fake, tmp_path).push(actions)}
    assert len(outcomes) == 7
    cleaned = outcomes[actions[1].key]
    assert cleaned.status == "failed" and "cleaned" in cleaned.detail
    assert outcomes[actions[2].key].status == "done"  # fine on its own
    assert "one by one" in outcomes[actions[2].key].detail
    gone = outcomes[actions[6].key]
    assert gone.status == "failed" and "not a member" in gone.detail and "404" in gone.detail
    assert [outcomes[a.key].status for a in (actions[0], *actions[3:6])] == ["done"] * 4
    assert fake.tags_of(ids[2]) == ["seg:fonceurs"] and fake.tags_of(ids[1]) == []


def test_a_batch_failing_after_retries_is_left_for_a_later_run(fake, tmp_path):
    ids = populate(fake, 4)
    conn = connect(fake, tmp_path)
    conn.push([tag(ids[0], "seg:a", "client0@example.org")])  # the segment exists now
    fake.fail_next(503, times=6, path=r"/segments/\d+$", body={"title": "Service Unavailable"})
    outcomes = conn.push([tag(i, "seg:a", f"client{n}@example.org") for n, i in enumerate(ids)])
    assert {o.status for o in outcomes} == {"retry"}
    assert all("503" in o.detail for o in outcomes)
    assert {o.status for o in conn.push([tag(ids[1], "seg:a", "client1@example.org")])} == {"done"}


def test_a_key_revoked_during_a_push_stops_it(fake, tmp_path):
    ids = populate(fake, 3)
    conn = connect(fake, tmp_path)
    conn.check()
    fake.api_key = "revoked-us6"
    with pytest.raises(CredentialError) as info:
        conn.push([tag(ids[0], "seg:a", "client0@example.org")])
    assert "401" in str(info.value)


def test_kinds_mailchimp_does_not_do_are_failed_not_raised(fake, tmp_path):
    action = Action("k", "add_to_list", "x", {"list": "seg:a"})  # type: ignore[arg-type]
    outcome = connect(fake, tmp_path).push([action])[0]
    assert outcome.status == "failed" and "static segment" in outcome.detail


# -- draft campaigns ---------------------------------------------------------------------------


def test_draft_campaign_created_once_even_when_repeated(fake, tmp_path):
    populate(fake, 3)
    conn = connect(fake, tmp_path)
    first = conn.push([draft()])
    assert first[0].status == "done" and "not sent" in first[0].detail
    assert len(fake.campaigns) == 1
    ((cid, camp),) = fake.campaigns.items()
    assert camp["status"] == "save" and camp["type"] == "regular"
    assert camp["settings"]["title"] == "profils 2026-12-01 · fonceurs"
    assert camp["settings"]["subject_line"] == "Bonjour *|FNAME|*"
    assert camp["settings"]["preview_text"] == "Nos nouveautés"
    assert camp["settings"]["reply_to"] == "boutique@example.org"
    segment = fake.segment_named("seg:fonceurs")
    assert camp["recipients"] == {
        "list_id": LIST_ID,
        "segment_opts": {"saved_segment_id": segment["id"]},
    }
    assert fake.contents[cid]["html"].startswith("<p>Bonjour *|FNAME|*")
    assert "*|UNSUB|*" in fake.contents[cid]["plain_text"]
    again = conn.push([draft()])
    other = connect(fake, tmp_path).push([draft()])  # a new run, a new connector
    assert again[0].status == other[0].status == "done" and len(fake.campaigns) == 1


def test_draft_whose_answer_is_lost_is_found_by_title(fake, tmp_path):
    fake.lose_campaign_answers = 1
    outcome = connect(fake, tmp_path).push([draft()])[0]
    assert outcome.status == "done" and len(fake.campaigns) == 1
    (cid,) = fake.campaigns
    assert fake.contents[cid]["html"]  # the content was put on the draft that was found


def test_draft_without_content_is_completed_on_the_next_run(fake, tmp_path):
    fake.fail_next(503, times=6, path="/content$", body={"title": "Service Unavailable"})
    first = connect(fake, tmp_path).push([draft()])[0]
    assert first.status == "retry" and len(fake.campaigns) == 1
    second = connect(fake, tmp_path).push([draft()])[0]
    assert second.status == "done" and len(fake.campaigns) == 1
    assert fake.contents[next(iter(fake.campaigns))]["html"]


def test_merge_tags(fake, tmp_path):
    fake.add_merge_field("CODE_POSTAL", "Code postal", "zip")
    populate(fake, 2)
    conn = connect(fake, tmp_path, orders=False, events=False)
    conn.pull()
    assert conn.merge_tag("first_name") == "*|FNAME|*"
    assert conn.merge_tag("last_name") == "*|LNAME|*"
    assert conn.merge_tag("email") == "*|EMAIL|*"
    assert conn.merge_tag("code_postal") == "*|CODE_POSTAL|*"
    assert conn.merge_tag("unsubscribe_url") == "*|UNSUB|*"
    assert conn.merge_tag("orders_count") is None  # a Segmerge metric has no merge tag


# -- the CLI end to end --------------------------------------------------------------------


def test_cli_run_end_to_end(fake, tmp_path):
    for i in range(60):
        fake.add_member(
            f"client{i}@example.org",
            f"P{i}",
            f"N{i}",
            status="unsubscribed" if i % 10 == 9 else "subscribed",
            tags=["vip"] if i % 3 == 0 else [],
        )
    root = tmp_path / "ws"
    env = {"SEGMERGE_NEWS_TOKEN": fake.api_key}
    two_segment_workspace(
        root,
        env,
        "mc",
        "tags contains 'vip'",
        f"""
        [sources.news]
        connector = "mailchimp"
        list_id = "{LIST_ID}"
        base_url = "{fake.url}"
        retry_backoff = 0.01

        [campaigns.mc]
        source = "news"
        rules = "segrules/mc.yaml"
        templates = "templates/mc"
        destination = "news"
        tag_prefix = "seg:"
        """,
    )

    def run(*args: str) -> Ran:
        return segmerge(*args, "-w", str(root), env=env)

    check = run("validate", "mc")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "account ok" in check.stdout + check.stderr
    dry = run("run", "mc", "--as-of", "2026-12-01", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert fake.writes == [] and not fake.campaigns  # a dry run writes nothing
    proc = run("run", "mc", "--as-of", "2026-12-01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subscribed = {m for m, v in fake.members.items() if v["status"] == "subscribed"}
    vip = {m for m in subscribed if "vip" in fake.tags_of(m)}
    assert vip and all("seg:vip" in fake.tags_of(m) for m in vip)
    assert all("seg:autres" in fake.tags_of(m) for m in subscribed - vip)
    assert all("vip" in fake.tags_of(m) for m in vip)  # the marketer's own tag is kept
    titles = {c["settings"]["title"].split(" · ")[-1] for c in fake.campaigns.values()}
    assert titles == {"vip", "autres"}
    assert all("*|FNAME|*" in fake.contents[c]["html"] for c in fake.campaigns)
    n = len(fake.writes)
    again = run("run", "mc", "--as-of", "2026-12-01")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(fake.writes) == n  # the same run again repeats nothing
    fake.queries.clear()
    leaver = next(iter(vip))
    fake.touch(leaver, status="unsubscribed")
    nxt = run("run", "mc", "--as-of", "2026-12-02")
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    members = [q for m, p, q in fake.queries if m == "GET" and p.endswith("/members")]
    assert members and all("since_last_changed" in q for q in members)  # incremental
    assert "seg:vip" not in fake.tags_of(leaver) and "vip" in fake.tags_of(leaver)


def test_a_tag_deleted_since_the_pull_is_found_again(fake, tmp_path):
    ids = populate(fake, 3, tags=["seg:a"])
    conn = connect(fake, tmp_path, orders=False, events=False)
    conn.pull()  # remembers the tag's segment id
    old = fake.segment_named("seg:a")["id"]
    del fake.segments[old]  # the marketer deleted the tag
    for segs in fake.member_segments.values():
        segs.discard(old)
    outcomes = conn.push([tag(i, "seg:a", f"client{n}@example.org") for n, i in enumerate(ids)])
    assert {o.status for o in outcomes} == {"done"}
    assert fake.segment_named("seg:a")["id"] != old
    assert all(fake.tags_of(i) == ["seg:a"] for i in ids)


def test_random_5xx_and_a_timeout_lose_nothing(tmp_path):
    """15 % of requests answer 503 and one member page says nothing until the client,
    having timed out, asks it again: nothing is lost, nothing is recorded as done that
    was not done. The stalled page costs the client's timeout, not a guessed delay; the
    fake validates only the first answers of each endpoint, so that on a loaded machine
    its own work on 1,000-member pages stays far below the 2 s timeout. Two pages of
    members and four calls of tags; the fake's seed puts 503s among the first of these
    few requests (its default one drew none before the 26th)."""
    fake = MailchimpFake(validate_first=2, seed=9).start()
    try:
        ids = populate(fake, 1600)
        fake.random_5xx = 0.15
        fake.stall_until_retried("/members$")
        conn = connect(fake, tmp_path, orders=False, events=False, timeout=2.0)
        tables = conn.pull()
        assert set(tables.contacts["contact_id"]) == set(ids)
        assert fake.stalls_retried == 1  # the client timed out and asked again
        pairs = zip(tables.contacts["contact_id"], tables.contacts["email"], strict=True)
        outcomes = conn.push([tag(i, "seg:a", e) for i, e in pairs])
        done = {o.key for o in outcomes if o.status == "done"}
        assert len(outcomes) == 1600 and all(o.status in ("done", "retry") for o in outcomes)
        tagged = {m for m in ids if "seg:a" in fake.tags_of(m)}
        assert {f"run|{m}|tag:seg:a" for m in tagged} >= done  # nothing done that was not done
        assert len(named_segments(fake, "seg:a")) <= 1  # never created twice
        assert conn.api.client.stats.retries >= 1
        assert sum(status == 503 for _, _, status in fake.log) >= 2  # the faults happened
        conn.close()
    finally:
        fake.stop()
    assert not fake.violations, fake.violations[:3]


def named_segments(fake: MailchimpFake, name: str) -> list[int]:
    return [sid for sid, s in fake.segments.items() if s["name"] == name]
