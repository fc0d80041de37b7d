"""HubSpot draft e-mails a marketer can open: the editor's structure, the right sender
fields, and a read-back that never calls an empty draft done."""

from __future__ import annotations

import copy

import pytest
from test_hubspot_push import calls, campaign

from tests.fakes.hubspot import HubSpotFake, make_connector, populate


@pytest.fixture
def fake():
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as server:
        yield server
        assert server.violations == [], server.violations


def placed(content: dict) -> list[str]:
    """Widget ids the editor shows, in order (the flexAreas columns)."""
    return [
        w
        for area in content["flexAreas"].values()
        for s in area["sections"]
        for c in s["columns"]
        for w in c["widgets"]
    ]


def test_a_draft_is_built_as_the_editor_shows_it_and_created_once(fake):
    populate(fake, 2)
    first = make_connector(fake).push([campaign()])
    assert first[0].status == "done" and "created" in first[0].detail
    again = make_connector(fake).push([campaign()])
    assert again[0].status == "done" and "already exists" in again[0].detail
    assert len(fake.emails) == 1
    email = next(iter(fake.emails.values()))
    assert email["state"] == "DRAFT" and email["sendOnPublish"] is False
    target = fake.list_named("seg:fonceurs")
    assert email["to"]["contactIlsLists"]["include"] == [str(target.id)]
    # From is the shop's address (replyTo), replies go to reply_to (customReplyTo)
    assert email["from"] == {
        "fromName": "La Boutique",
        "replyTo": "shop@example.org",
        "customReplyTo": "reply@example.org",
    }
    content = email["content"]
    shown = [content["widgets"][w] for w in placed(content)]
    assert [w["body"]["path"] for w in shown] == ["@hubspot/rich_text", "@hubspot/email_footer"]
    assert "<p>Bonjour {{ contact.firstname }}</p>" in shown[0]["body"]["html"]
    assert content["widgets"]["preview_text"]["body"]["value"] == "Nos nouveautés"
    assert content["plainTextVersion"] == "Bonjour {{ contact.firstname }}"
    # each push read the draft back before calling it done
    assert calls(fake, "GET", f"/marketing/v3/emails/{email['id']}") == 2


def test_the_reply_to_is_left_out_when_it_is_the_from_address(fake):
    populate(fake, 1)
    letter = campaign()
    letter.payload["reply_to"] = "shop@example.org"
    assert make_connector(fake).push([letter])[0].status == "done"
    sender = next(iter(fake.emails.values()))["from"]
    assert sender == {"fromName": "La Boutique", "replyTo": "shop@example.org"}


def test_a_whole_html_document_goes_in_as_its_body(fake):
    letter = campaign()
    letter.payload["html"] = (
        "<!doctype html><html><head><title>x</title></head>"
        "<body style='margin:0'><h1>Salut</h1></body></html>"
    )
    assert make_connector(fake).push([letter])[0].status == "done"
    widgets = next(iter(fake.emails.values()))["content"]["widgets"]
    assert widgets["module-0-1-1"]["body"]["html"] == "<h1>Salut</h1>"


def test_a_draft_hubspot_keeps_empty_is_failed_never_done_and_mended_later(fake):
    fake.drop_email_widgets = True  # HubSpot drops the widgets it was sent
    out = make_connector(fake).push([campaign()])
    status, why = out[0].status, out[0].detail
    assert status == "failed" and "does not show the letter" in why and "flexAreas" in why
    again = make_connector(fake).push([campaign()])
    assert again[0].status == "failed" and len(fake.emails) == 1  # never done, never twice
    fake.drop_email_widgets = False  # the next run can write it: the same draft is mended
    mended = make_connector(fake).push([campaign()])
    assert mended[0].status == "done" and "body set again" in mended[0].detail
    email = next(iter(fake.emails.values()))
    assert "Bonjour" in email["content"]["widgets"]["module-0-1-1"]["body"]["html"]


def template_email(fake: HubSpotFake, *, rich: bool = True) -> str:
    """A marketer's designed e-mail: a logo, a rich-text block, the footer, brand styles."""
    widgets = {
        "logo": {
            "id": "logo",
            "name": "logo",
            "order": 1,
            "type": "module",
            "module_id": 1,
            "body": {"path": "@hubspot/image_email", "img": {"src": "https://x/l.png"}},
        },
        "module-1": {
            "id": "module-1",
            "name": "module-1",
            "order": 2,
            "type": "module",
            "module_id": 1155639,
            "body": {"path": "@hubspot/rich_text", "html": "<p>Texte modèle</p>"},
        },
        "footer": {
            "id": "footer",
            "name": "footer",
            "order": 3,
            "type": "module",
            "module_id": 2869621,
            "body": {"path": "@hubspot/email_footer"},
        },
    }
    if not rich:
        del widgets["module-1"]
    columns = [{"id": f"c{n}", "widgets": [w], "width": 12} for n, w in enumerate(widgets)]
    content = {
        "templatePath": "@hubspot/email/dnd/welcome.html",
        "styleSettings": {"backgroundColor": "#EAF0F6"},
        "flexAreas": {"main": {"sections": [{"id": "s", "columns": columns}]}},
        "widgets": widgets,
    }
    return str(fake._store_email({"name": "Modèle newsletter", "content": content})["id"])


def test_a_template_email_is_cloned_with_its_design_and_the_letter_in_its_rich_text(fake):
    populate(fake, 1)
    tid = template_email(fake)
    before = copy.deepcopy(fake.emails[tid])
    out = make_connector(fake, email_template_id=tid).push([campaign()])
    assert out[0].status == "done"
    assert fake.emails[tid] == before  # the marketer's template is untouched
    draft = next(e for e in fake.emails.values() if e["id"] != tid)
    assert draft["name"] == "profils 2026-12-01 · fonceurs" and draft["state"] == "DRAFT"
    content = draft["content"]
    assert content["styleSettings"] == {"backgroundColor": "#EAF0F6"}
    assert "Bonjour {{ contact.firstname }}" in content["widgets"]["module-1"]["body"]["html"]
    assert content["widgets"]["logo"] == before["content"]["widgets"]["logo"]
    assert draft["subject"] == "Pour vous, {{ contact.firstname }}"
    assert draft["from"]["replyTo"] == "shop@example.org"
    assert calls(fake, "POST", "/marketing/v3/emails/clone") == 1


def test_a_template_without_rich_text_is_a_clear_failure(fake):
    tid = template_email(fake, rich=False)
    out = make_connector(fake, email_template_id=tid).push([campaign()])
    assert out[0].status == "failed" and "no rich-text module" in out[0].detail


def test_a_lost_clone_answer_is_looked_up_not_repeated(fake):
    tid = template_email(fake)
    fake.lose_email_answers = 1
    out = make_connector(fake, email_template_id=tid).push([campaign()])
    assert out[0].status == "done" and len(fake.emails) == 2
    assert calls(fake, "POST", "/marketing/v3/emails/clone") == 1
    draft = next(e for e in fake.emails.values() if e["id"] != tid)
    assert draft["subject"] == "Pour vous, {{ contact.firstname }}"  # dressed all the same
    assert "Bonjour" in draft["content"]["widgets"]["module-1"]["body"]["html"]
