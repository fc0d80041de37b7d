"""The HubSpot connector's push: tags in a checkbox property, static lists, draft e-mails."""

from __future__ import annotations

import pytest

from segmerge.errors import CredentialError
from segmerge.ports.connector import Action
from tests.fakes.hubspot import HubSpotFake, make_connector, populate


@pytest.fixture
def fake():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server
        assert server.violations == [], server.violations


def tag(cid: int, name: str, kind: str = "tag") -> Action:
    return Action(f"run|{cid}|{kind}:{name}", kind, str(cid), {"tag": name})  # type: ignore[arg-type]


def by_key(outcomes) -> dict[str, tuple[str, str]]:
    return {o.key: (o.status, o.detail) for o in outcomes}


def calls(fake: HubSpotFake, method: str, path: str) -> int:
    return sum(1 for m, p, _ in fake.log if m == method and p.rstrip("/") == path)


def test_tags_touch_only_what_is_asked_and_keep_the_marketers_values(fake):
    ids = populate(fake, 15)  # ids[0], ids[7], ids[14] hold "vip;seg:old"
    conn = make_connector(fake)
    conn.pull()
    # the marketer ticks another option between our pull and our push
    fake.add_property("x", "string")
    fake.defs["segmerge_segments"]["options"].append(
        {"label": "newsletter", "value": "newsletter", "hidden": False, "displayOrder": 9}
    )
    fake.touch(ids[7], segmerge_segments="vip;seg:old;newsletter")

    out = by_key(
        conn.push(
            [
                tag(ids[0], "seg:fonceurs"),
                tag(ids[0], "seg:old", "untag"),
                tag(ids[7], "seg:zens"),
                tag(ids[1], "seg:zens"),
                tag(ids[2], "seg:zens", "untag"),
            ]
        )
    )

    assert {s for s, _ in out.values()} == {"done"}
    assert fake.tags_of(ids[0]) == ["vip", "seg:fonceurs"]
    assert fake.tags_of(ids[7]) == ["vip", "seg:old", "newsletter", "seg:zens"]
    assert fake.tags_of(ids[1]) == ["seg:zens"] and fake.tags_of(ids[2]) == []
    assert out[f"run|{ids[2]}|untag:seg:zens"][1] == "already so"
    options = [o["value"] for o in fake.defs["segmerge_segments"]["options"]]
    assert options[:4] == ["vip", "seg:old", "seg:fonceurs", "newsletter"]
    assert "seg:zens" in options  # added before it was used
    assert calls(fake, "POST", "/crm/v3/objects/contacts/batch/update") == 1
    # the same push again changes nothing and writes nothing
    again = by_key(conn.push([tag(ids[0], "seg:fonceurs"), tag(ids[0], "seg:old", "untag")]))
    assert {s for s, _ in again.values()} == {"done"}
    assert calls(fake, "POST", "/crm/v3/objects/contacts/batch/update") == 1


def test_a_missing_tags_property_is_created_as_multiple_checkboxes(fake):
    ids = populate(fake, 3, tag_property=False)
    conn = make_connector(fake, tags_property="my_segments", tags_label="Mes segments")
    assert conn.pull().contacts["tags"].tolist() == [[], [], []]
    out = conn.push([tag(ids[0], "seg:a"), tag(ids[1], "seg:b")])
    assert {o.status for o in out} == {"done"}
    d = fake.defs["my_segments"]
    assert (d["type"], d["fieldType"], d["label"]) == ("enumeration", "checkbox", "Mes segments")
    assert fake.tags_of(ids[0], "my_segments") == ["seg:a"]
    assert conn.pull().contacts.set_index("contact_id").loc[str(ids[1]), "tags"] == ["seg:b"]


def test_a_tags_property_of_another_type_is_a_clear_failure(fake):
    ids = populate(fake, 2)
    fake.add_property("segs", "string")
    out = make_connector(fake, tags_property="segs").push([tag(ids[0], "seg:a")])
    assert out[0].status == "failed" and "not a multiple checkboxes property" in out[0].detail


def test_a_207_is_retried_per_item_then_recorded_per_item(fake):
    ids = populate(fake, 6)
    fake.reject_once.add(str(ids[1]))  # fails in the batch, works alone
    fake.reject_ids.add(str(ids[2]))  # fails every time
    conn = make_connector(fake)
    out = by_key(conn.push([tag(i, "seg:fonceurs") for i in ids[:4]] + [tag(999999, "seg:x")]))
    assert out[f"run|{ids[0]}|tag:seg:fonceurs"][0] == "done"
    assert out[f"run|{ids[1]}|tag:seg:fonceurs"][0] == "done"
    status, why = out[f"run|{ids[2]}|tag:seg:fonceurs"]
    assert status == "failed" and "OBJECT_NOT_FOUND" in why
    assert out["run|999999|tag:seg:x"][0] == "failed"
    assert "seg:fonceurs" in fake.tags_of(ids[1]) and "seg:fonceurs" not in fake.tags_of(ids[2])
    assert calls(fake, "POST", "/crm/v3/objects/contacts/batch/update") == 3  # batch + 2 alone


def test_a_server_down_during_a_push_is_retry_not_failed(fake):
    ids = populate(fake, 2)
    fake.fail_next(503, times=20, path=r"batch/update$")
    conn = make_connector(fake)
    conn.api.backoff = 0.01
    out = conn.push([tag(ids[0], "seg:a"), tag(ids[1], "seg:a")])
    assert [o.status for o in out] == ["retry", "retry"] and "503" in out[0].detail
    assert calls(fake, "POST", "/crm/v3/objects/contacts/batch/update") == 6  # no one-by-one


def test_a_batch_refused_whole_is_retried_one_by_one(fake):
    ids = populate(fake, 4)
    conn = make_connector(fake)
    conn.push([tag(ids[1], "seg:b")])  # seg:b becomes an option, and the connector knows it
    options = fake.defs["segmerge_segments"]["options"]
    options[:] = [o for o in options if o["value"] != "seg:b"]  # a marketer deletes it
    out = by_key(conn.push([tag(ids[2], "seg:fonceurs"), tag(ids[3], "seg:b")]))
    assert out[f"run|{ids[2]}|tag:seg:fonceurs"][0] == "done"
    status, why = out[f"run|{ids[3]}|tag:seg:b"]
    assert status == "failed" and "400" in why and "allowed options" in why


def test_a_revoked_token_during_a_push_raises(fake):
    ids = populate(fake, 2)
    conn = make_connector(fake)
    conn.pull()
    fake.expired = True
    with pytest.raises(CredentialError):
        conn.push([tag(ids[0], "seg:a")])


def lst(cid: int, name: str, kind: str = "add_to_list") -> Action:
    return Action(
        f"run|{cid}|{kind}:{name}",
        kind,
        str(cid),  # type: ignore[arg-type]
        {"list": name, "segment": name.split(":")[-1]},
    )


def test_lists_are_found_or_created_once_and_failures_are_per_item(fake):
    ids = populate(fake, 5)
    conn = make_connector(fake)
    out = by_key(
        conn.push(
            [
                lst(ids[0], "seg:fonceurs"),
                lst(ids[1], "seg:fonceurs"),
                lst(424242, "seg:fonceurs"),
                lst(ids[2], "seg:zens"),
            ]
        )
    )
    fonceurs = fake.list_named("seg:fonceurs")
    assert fonceurs is not None and fonceurs.processing == "MANUAL"
    assert fonceurs.members == {ids[0], ids[1]} and fake.list_named("seg:zens").members == {ids[2]}
    status, why = out["run|424242|add_to_list:seg:fonceurs"]
    assert status == "failed" and "no contact 424242" in why
    assert out[f"run|{ids[0]}|add_to_list:seg:fonceurs"][0] == "done"
    # a new connector (a new run) finds the lists by name: none is created twice
    other = make_connector(fake)
    out2 = by_key(
        other.push(
            [
                lst(ids[3], "seg:fonceurs"),
                lst(ids[0], "seg:fonceurs", "remove_from_list"),
                lst(ids[4], "seg:nobody", "remove_from_list"),
            ]
        )
    )
    assert {s for s, _ in out2.values()} == {"done"}
    assert len(fake.lists) == 2 and fonceurs.members == {ids[1], ids[3]}
    assert fake.list_named("seg:nobody") is None


def campaign(name: str = "profils 2026-12-01 · fonceurs") -> Action:
    return Action(
        f"run|-|create_campaign:{name}",
        "create_campaign",
        None,
        {
            "name": name,
            "segment": "fonceurs",
            "list": "seg:fonceurs",
            "tag": "seg:fonceurs",
            "subject": "Pour vous, {{ contact.firstname }}",
            "preheader": "Nos nouveautés",
            "html": "<p>Bonjour {{ contact.firstname }}</p><a href='{{ unsubscribe_link }}'>x</a>",
            "text": "Bonjour {{ contact.firstname }}",
            "from_email": "shop@example.org",
            "from_name": "La Boutique",
            "reply_to": "reply@example.org",
        },
    )


def test_a_lost_create_answer_is_looked_up_not_repeated(fake):
    populate(fake, 2)
    fake.lose_email_answers = 1  # created, but the answer never comes back
    out = make_connector(fake).push([campaign()])
    assert out[0].status == "done" and len(fake.emails) == 1
    assert calls(fake, "POST", "/marketing/v3/emails") == 1  # never sent blindly twice


def test_a_create_that_did_not_land_is_retry(fake):
    populate(fake, 2)
    conn = make_connector(fake)
    conn.push([lst(1001, "seg:fonceurs")])  # the list exists; the next calls are the e-mail's
    fake.fail_next(200, path=r"^/marketing/v3/emails$", body={"results": [], "total": 0})
    fake.fail_next(503, path=r"^/marketing/v3/emails$")  # the POST
    out = conn.push([campaign()])
    assert out[0].status == "retry" and "503" in out[0].detail and not fake.emails
    assert conn.push([campaign()])[0].status == "done" and len(fake.emails) == 1


def test_without_marketing_hub_the_draft_fails_and_tags_still_go(fake):
    ids = populate(fake, 2)
    fake.scopes.discard("content")
    out = by_key(make_connector(fake).push([campaign(), tag(ids[0], "seg:fonceurs")]))
    status, why = out["run|-|create_campaign:profils 2026-12-01 · fonceurs"]
    assert status == "failed" and "403" in why and "content" in why
    assert out[f"run|{ids[0]}|tag:seg:fonceurs"][0] == "done"


def test_unknown_action_kinds_fail_cleanly(fake):
    out = make_connector(fake).push([Action("k", "send", "1", {})])
    assert out[0].status == "failed" and "cannot send" in out[0].detail
