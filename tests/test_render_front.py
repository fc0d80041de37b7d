"""A subject that reads only some columns is rendered once per distinct value, never wrong.

Letters of a run share few first names; segmerge.render.front remembers a subject's
text by the values it reads. What a reader of the letters must not see: a subject
of another contact, a number printed as another type would print, a subject that
depends on something not in the key, or one contact's error hidden by another's
success.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_render import CTX, letter, load  # pytest's own module, not a second copy

from segmerge.errors import TemplateError
from segmerge.render.templates import RenderContext


def _subjects(ts, contacts, ctx=CTX):
    return [ts.render("s", c, ctx).subject for c in contacts]


def test_a_remembered_subject_is_each_contacts_own(tmp_path):
    ts = load(
        tmp_path,
        letter(
            "x", subject="{{ contact.first_name | default('Bonjour') }}, {{ contact.revenue }} €"
        ),
    )
    contacts = [
        {"contact_id": "1", "first_name": "Zoé", "revenue": 1},
        {"contact_id": "2", "first_name": "Zoé", "revenue": 1.0},
        {"contact_id": "3", "first_name": "Zoé", "revenue": True},
        {"contact_id": "4", "revenue": 1},
        {"contact_id": "5", "first_name": None, "revenue": 1},
        {"contact_id": "6", "first_name": "Zoé", "revenue": 1},
    ]
    twice = _subjects(ts, contacts) + _subjects(ts, contacts)
    assert twice[:6] == [
        "Zoé, 1 €",
        "Zoé, 1.0 €",
        "Zoé, True €",
        "Bonjour, 1 €",
        "Bonjour, 1 €",
        "Zoé, 1 €",
    ]
    assert twice[6:] == twice[:6]


def test_a_subject_reading_the_date_or_the_campaign_follows_them(tmp_path):
    ts = load(
        tmp_path,
        letter("x", subject="{{ contact.first_name }} {{ today.year }} {{ campaign.name }}"),
    )
    c = {"contact_id": "1", "first_name": "Zoé"}
    other = RenderContext({"name": "soldes"}, date(2027, 1, 2), CTX.unsubscribe_url)
    assert _subjects(ts, [c], CTX) + _subjects(ts, [c], other) == [
        "Zoé 2026 profils",
        "Zoé 2027 soldes",
    ]


def test_a_contact_whose_subject_fails_gets_its_error_after_one_that_filled_it(tmp_path):
    ts = load(tmp_path, letter("x", subject="{{ contact.first_name }}, bonjour"))
    assert _subjects(ts, [{"contact_id": "1", "first_name": "Zoé"}]) == ["Zoé, bonjour"]
    for _ in range(2):
        with pytest.raises(TemplateError) as e:
            ts.render("s", {"contact_id": "2"}, CTX)
        assert e.value.field == "contact.first_name"


def test_only_values_whose_text_follows_from_what_they_read_are_remembered(tmp_path):
    from segmerge.render.compiled import parse
    from segmerge.render.front import reads

    ts = load(tmp_path, letter("x"))
    env = ts._env

    def read(source):
        return reads(parse(env, source, None, "s.html.j2"))

    assert read("{{ contact.first_name | default('x') | upper }} {{ contact['ville'] }}") == (
        ("first_name", "ville"),
        False,
        False,
    )
    assert read("{% if contact.revenue > 10 %}{{ segment.label }}{% endif %}") == (
        ("revenue",),
        True,
        False,
    )
    for source in (
        "{{ contact }}",  # contact whole
        "{{ contact.items | first }}",  # an unlisted filter
        "{{ campaign.name }}",
        "{{ unsubscribe_url }}",
        "{% for x in range(3) %}{{ x }}{% endfor %}",
        "{% set n = contact.first_name %}{{ n }}",
        "{{ contact[contact.first_name] }}",
        "{{ contact.first_name.upper() }}",
        "{{ lipsum(1) }}",
    ):
        assert read(source) is None, source
