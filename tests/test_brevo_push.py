"""The `brevo` connector as a destination: tags and lists as Brevo lists, draft campaigns,
merge tags, against the spec-checked fake (tests/fakes/brevo.py)."""

from __future__ import annotations

import pytest

from segmerge.ports.connector import Action
from tests.brevo_setup import by_key, make, serve, tag
from tests.fakes.base import Reply
from tests.fakes.brevo import populate


@pytest.fixture
def fake():
    yield from serve()


# -- push ----------------------------------------------------------------------------------


def test_tag_push_creates_folder_and_list_and_keeps_other_lists(fake, tmp_path):
    populate(fake, 400)  # odd ids are in the marketer's "Newsletter" list
    conn = make(fake, tmp_path, events="none", orders=False)
    conn.pull()
    acts = [tag(str(i), "seg:fonceurs") for i in range(1, 401)]
    out = conn.push(acts)
    assert {o.status for o in out} == {"done"} and len(out) == 400
    lid = fake.list_named("seg:fonceurs")
    assert lid is not None and fake.lists[lid]["folderId"] == next(
        i for i, n in fake.folders.items() if n == "Segmerge"
    )
    assert fake.members(lid) == set(range(1, 401))
    assert fake.members(fake.list_named("Newsletter")) == set(range(1, 401, 2))
    calls = [m for m in fake.mutations if m.startswith("add")]
    assert len(calls) == 3  # 150 + 150 + 100
    # untag only touches the Segmerge list, never the marketer's one
    out = conn.push([tag("1", "seg:fonceurs", "untag"), tag("3", "seg:fonceurs", "untag")])
    assert {o.status for o in out} == {"done"}
    assert 1 not in fake.members(lid) and 1 in fake.members(fake.list_named("Newsletter"))
    # a list of the same name outside the Segmerge folder is never touched
    outside = fake.add_list("seg:zens", 1)
    fake.contacts[9].list_ids.append(outside)
    out = conn.push([tag("9", "seg:zens", "untag")])
    assert out[0].status == "done" and "no list" in out[0].detail
    assert 9 in fake.members(outside)
    # pulled tags are the Segmerge folder's lists only
    t = make(fake, tmp_path, events="none", orders=False).pull()
    row = t.contacts.set_index("contact_id").loc["5"]
    assert row["tags"] == ["seg:fonceurs"] and "Newsletter" in row["brevo_lists"]


def test_repeated_tag_and_list_actions_cost_no_call(fake, tmp_path):
    populate(fake, 20, seed_lists=False)
    conn = make(fake, tmp_path, events="none", orders=False)
    conn.pull()
    first = conn.push([tag(str(i), "seg:zens") for i in range(1, 21)])
    n = len(fake.mutations)
    again = conn.push([tag(str(i), "seg:zens", "add_to_list") for i in range(1, 21)])
    assert {o.status for o in first + again} == {"done"}
    assert len(fake.mutations) == n  # known members: no call at all


def test_list_add_with_partial_failure_is_recorded_per_item(fake, tmp_path):
    populate(fake, 30, seed_lists=False)
    folder = fake.add_folder("Segmerge")
    lid = fake.add_list("seg:prudents", folder)
    fake.contacts[2].list_ids.append(lid)  # already in (Brevo calls it a failure)
    fake.fail_list_add = {3}  # refused once, accepted when retried alone? no: always
    conn = make(fake, tmp_path, events="none", orders=False)  # a fresh instance: no pull cache
    acts = [tag(str(i), "seg:prudents", "add_to_list") for i in (1, 2, 3, 4, 999)]
    acts.append(tag("x-7", "seg:prudents", "add_to_list", email="client7@example.org"))
    out = by_key(conn.push(acts))
    assert out["run|1|add_to_list:seg:prudents"].status == "done"
    assert out["run|2|add_to_list:seg:prudents"].status == "done"
    assert "already in" in out["run|2|add_to_list:seg:prudents"].detail
    assert out["run|3|add_to_list:seg:prudents"].status == "failed"
    assert "refused" in out["run|3|add_to_list:seg:prudents"].detail
    assert out["run|999|add_to_list:seg:prudents"].status == "failed"
    assert "no Brevo contact" in out["run|999|add_to_list:seg:prudents"].detail
    assert out["run|x-7|add_to_list:seg:prudents"].status == "done"  # by e-mail
    assert fake.members(lid) == {1, 2, 4, 7}
    # removing: one in, one not in, one unknown
    rm = [tag(str(i), "seg:prudents", "remove_from_list") for i in (1, 5, 998)]
    out = by_key(conn.push(rm))
    assert out["run|1|remove_from_list:seg:prudents"].status == "done"
    assert out["run|5|remove_from_list:seg:prudents"].status == "done"
    assert out["run|998|remove_from_list:seg:prudents"].status == "failed"
    assert 1 not in fake.members(lid)


def test_many_failures_are_checked_against_the_list_members(fake, tmp_path):
    populate(fake, 200, seed_lists=False)
    folder = fake.add_folder("Segmerge")
    lid = fake.add_list("seg:zens", folder)
    for i in range(1, 161):
        fake.contacts[i].list_ids.append(lid)
    conn = make(fake, tmp_path, events="none", orders=False)
    out = conn.push([tag(str(i), "seg:zens") for i in range(1, 201)])
    assert {o.status for o in out} == {"done"}
    assert fake.members(lid) == set(range(1, 201))
    reads = [p for m, p, s in fake.log if p == f"/contacts/lists/{lid}/contacts"]
    assert reads and not [
        p for m, p, s in fake.log if p.startswith("/contacts/") and p[10:].isdigit()
    ]


def test_5xx_during_push_is_retried_then_recorded_as_retry(fake, tmp_path):
    populate(fake, 5, seed_lists=False)
    conn = make(fake, tmp_path, events="none", orders=False)
    conn.pull()
    conn.push([tag("1", "seg:a")])  # creates folder and list
    fake.fail_next(503, times=1, path="/contacts/add$")
    out = conn.push([tag("2", "seg:a")])
    assert out[0].status == "done"
    fake.fail_next(503, times=50, path="/contacts/add$")
    conn.contacts_client.max_retries = 1  # as `max_retries = 1` in the settings would
    out = conn.push([tag("3", "seg:a")])
    assert out[0].status == "retry" and "503" in out[0].detail


def draft(name: str = "profils 2026-12-01 · fonceurs") -> Action:
    return Action(
        "run|-|create_campaign:fonceurs",
        "create_campaign",
        None,
        {
            "name": name,
            "segment": "fonceurs",
            "list": "seg:fonceurs",
            "tag": "seg:fonceurs",
            "subject": "Bonjour {{ contact.FIRSTNAME }}",
            "preheader": "Nos nouveautés",
            "html": "<p>Bonjour {{ contact.FIRSTNAME }}</p><a href='{{ unsubscribe }}'>x</a>",
            "text": "Bonjour",
            "from_email": "bonjour@boutique.example",
            "from_name": "La Boutique",
            "reply_to": "sav@boutique.example",
        },
    )


def test_draft_campaign_created_once_even_when_repeated(fake, tmp_path):
    conn = make(fake, tmp_path)
    first = conn.push([draft()])
    assert first[0].status == "done"
    assert len(fake.campaigns) == 1
    camp = fake.campaigns[1]
    assert camp["status"] == "draft" and "scheduledAt" not in camp
    assert camp["recipients"]["listIds"] == [fake.list_named("seg:fonceurs")]
    assert camp["sender"] == {"email": "bonjour@boutique.example", "name": "La Boutique"}
    assert camp["previewText"] == "Nos nouveautés"
    again = make(fake, tmp_path).push([draft()])  # a new run: looked up by name
    assert again[0].status == "done" and "already exists" in again[0].detail
    assert len(fake.campaigns) == 1


def test_draft_whose_answer_is_lost_is_found_by_name(fake, tmp_path):
    conn = make(fake, tmp_path)
    conn.drafts.find("nothing")  # the listing is read once
    original = fake.post_campaign

    def lost(req):
        original(req)
        return Reply(502, {"message": "gw"})

    fake._routes = [(m, r, lost if h == original else h) for m, r, h in fake._routes]
    out = conn.push([draft()])
    assert out[0].status == "done" and len(fake.campaigns) == 1


def test_merge_tags(fake, tmp_path):
    fake.add_contact("a@example.org", attributes={"PRENOM": "Ana", "CODE_POSTAL": "69001"})
    conn = make(fake, tmp_path, events="none", orders=False)
    assert conn.merge_tag("first_name") == "{{ contact.FIRSTNAME }}"
    conn.pull()
    assert conn.merge_tag("first_name") == "{{ contact.PRENOM }}"
    assert conn.merge_tag("code_postal") == "{{ contact.CODE_POSTAL }}"
    assert conn.merge_tag("unsubscribe_url") == "{{ unsubscribe }}"
    assert conn.merge_tag("orders_count") is None


def test_list_creation_whose_answer_is_lost_creates_one_list(fake, tmp_path):
    populate(fake, 3, seed_lists=False)
    fake.add_folder("Segmerge")
    original = fake.post_list

    def lost(req):
        original(req)
        return Reply(503, {"message": "gateway"})

    fake._routes = [(m, r, lost if h == original else h) for m, r, h in fake._routes]
    out = make(fake, tmp_path, events="none", orders=False).push([tag("1", "seg:vip")])
    assert out[0].status == "done"
    assert [x["name"] for x in fake.lists.values()] == ["seg:vip"]
    assert fake.members(fake.list_named("seg:vip")) == {1}
