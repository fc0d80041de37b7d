"""A run hands its render workers only the contact columns the letters can read.

Making a record of every column and metric of each contact cost more than rendering
its letter; the letters must not change, and a template that uses ``contact`` whole
must still see every column.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_render import CTX, load


def fields(tmp_path: Path, files: dict[str, str]) -> set[str] | None:
    return load(tmp_path, files).contact_fields()


def test_fields_are_read_from_every_file_of_a_letter(tmp_path: Path) -> None:
    files = {
        "s.html.j2": (
            '---\nsubject: "{{ contact.first_name }}"\nfrom: "{{ contact.ville }} <a@b.fr>"\n---\n'
            '{% extends "_layout.html.j2" %}{% block body %}{{ contact["revenue"] }}{% endblock %}'
        ),
        "_layout.html.j2": "<p>{% block body %}{% endblock %}{% include '_foot.html.j2' %}</p>",
        "_foot.html.j2": "{{ contact.email | default('') }}",
        "s.txt.j2": "{{ contact.last_name }}",
    }
    assert fields(tmp_path, files) == {
        "contact_id",  # a failed letter names its contact
        "first_name",
        "ville",
        "revenue",
        "email",
        "last_name",
    }


@pytest.mark.parametrize(
    "body",
    [
        "{{ contact }}",
        "{% for k in contact %}{{ k }}{% endfor %}",
        "{% macro m(c) %}{{ c.first_name }}{% endmacro %}{{ m(contact) }}",
        "{{ contact | attr('first_name') }}",
        "{% set k = 'ville' %}{{ contact[k] }}",
        "{% set c = contact %}{{ c.ville }}",
    ],
)
def test_a_template_using_the_whole_contact_gets_every_column(tmp_path: Path, body: str) -> None:
    files = {"s.html.j2": f'---\nsubject: "Bonjour"\n---\n{{{{ contact.email }}}}{body}'}
    assert fields(tmp_path, files) is None


def test_the_letter_is_the_same_from_the_columns_it_reads(tmp_path: Path) -> None:
    files = {
        "s.html.j2": '---\nsubject: "{{ contact.first_name }}"\n---\n<p>{{ contact.ville }}</p>'
    }
    ts = load(tmp_path, files)
    contact = {
        "contact_id": "C1",
        "first_name": "Léa",
        "ville": "Lyon",
        "revenue": 3.5,
        "tags": "x",
    }
    read = ts.contact_fields()
    assert read is not None
    narrow = {k: v for k, v in contact.items() if k in read}
    assert narrow == {"contact_id": "C1", "first_name": "Léa", "ville": "Lyon"}
    assert ts.render("s", narrow, CTX) == ts.render("s", contact, CTX)
