"""Templates: sandbox, escaping, strict variables, front matter, French formatting."""

from __future__ import annotations

import email
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from segmerge.errors import TemplateError
from segmerge.message import build_message, message_id_for
from segmerge.render import RenderContext, TemplateSet

CTX = RenderContext(campaign={"name": "c"}, today=date(2026, 3, 3),
                    unsubscribe_url="https://x.fr/u?token=T")  # fmt: skip
KNOWN = {"contact_id", "first_name", "revenue", "last_order_at", "email", "city"}


def load(tmp_path: Path, files: dict[str, str], segments=(("s", "S"),)) -> TemplateSet:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return TemplateSet.load(tmp_path, list(segments), tz=ZoneInfo("Europe/Paris"),
                            known_columns=KNOWN)  # fmt: skip


def test_front_matter_subject_and_french_formatting(tmp_path):
    ts = load(tmp_path, {"s.html.j2": "---\nsubject: \"{{ contact.first_name }}, bonjour\"\n---\n"
                         "<p>{{ contact.revenue|money }} {{ contact.last_order_at|date }}</p>"})
    r = ts.render("s", {"contact_id": "1", "first_name": "Zoé", "revenue": 1234.5,
                        "last_order_at": pd.Timestamp("2026-03-02 23:30", tz="UTC")}, CTX)  # fmt: skip
    assert r.subject == "Zoé, bonjour"
    assert "1\u202f234,50\xa0€" in r.html or "1\xa0234,50\xa0€" in r.html
    assert "3 mars 2026" in r.html  # 23:30 UTC is already 3 March in Paris
    assert "1" in r.text and "<p>" not in r.text


def test_html_is_escaped_but_text_and_subject_are_not(tmp_path):
    ts = load(tmp_path, {"s.html.j2": "---\nsubject: \"{{ contact.first_name }}\"\n---\n<p>{{ contact.first_name }}</p>",
                         "s.txt.j2": "{{ contact.first_name }}"})
    r = ts.render("s", {"contact_id": "1", "first_name": "<script>x</script>"}, CTX)
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html
    assert r.text == "<script>x</script>" and r.subject == "<script>x</script>"


@pytest.mark.parametrize("expr", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ contact.__class__ }}",
    "{% set x = [].append(1) %}",
    "{{ ().__class__.__base__.__subclasses__() }}",
])  # fmt: skip
def test_sandbox_escapes_are_refused(tmp_path, expr):
    with pytest.raises(TemplateError):
        ts = load(tmp_path, {"s.html.j2": "---\nsubject: x\n---\n" + expr})
        ts.render("s", {"contact_id": "1"}, CTX)


def test_typo_is_caught_at_load_with_line_and_suggestion(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": "---\nsubject: x\n---\n<p>a</p>\n{{ contact.frist_name }}"})
    assert e.value.line == 5 and "first_name" in (e.value.hint or "")
    assert e.value.file.endswith("s.html.j2")


def test_unknown_top_level_variable(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": "---\nsubject: x\n---\n{{ contcat.city }}"})
    assert "contcat" in str(e.value) and "contact" in (e.value.hint or "")


def test_empty_value_skips_the_contact_but_default_works(tmp_path):
    ts = load(tmp_path, {"s.html.j2": "---\nsubject: x\n---\n\n{{ contact.city }}\n",
                         "_default.html.j2": "---\nsubject: y\n---\n{{ contact.city|default('?') }}"},
              segments=(("s", "S"), ("t", "T")))  # fmt: skip
    with pytest.raises(TemplateError) as e:
        ts.render("s", {"contact_id": "7", "city": None}, CTX)
    assert "contact 7" in str(e.value) and "city" in str(e.value) and e.value.line == 5
    assert ts.render("t", {"contact_id": "7", "city": float("nan")}, CTX).html == "?"


def test_missing_template_and_bad_front_matter(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {}, segments=(("s", "S"),))
    assert "s.html.j2" in str(e.value)
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": "---\nsubject: x\nsubjet: y\n---\n"})
    assert e.value.line == 3 and e.value.field == "subjet"


def test_message_structure_headers_and_determinism(tmp_path):
    ts = load(tmp_path, {"s.html.j2": "---\nsubject: \"Été {{ contact.first_name }}\"\npreheader: coucou\n---\n<html><body><p>x</p></body></html>"})
    r = ts.render("s", {"contact_id": "1", "first_name": "Zoé"}, CTX)
    msg = build_message(r, to="z@x.fr", to_name="Zoé Dupont", from_addr="Boutique <b@x.fr>",
                        message_id=message_id_for("k", "x.fr"), unsubscribe_url=CTX.unsubscribe_url,
                        unsubscribe_mailto="u@x.fr")  # fmt: skip
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Été Zoé"
    assert parsed["To"].addresses[0].display_name == "Zoé Dupont"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<https://x.fr/u?token=T>" in parsed["List-Unsubscribe"] and "mailto:u@x.fr" in parsed["List-Unsubscribe"]
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "coucou" in parsed.get_body(("html",)).get_content()
    assert message_id_for("k", "x.fr") == message_id_for("k", "x.fr") != message_id_for("j", "x.fr")


def test_header_injection_is_refused(tmp_path):
    ts = load(tmp_path, {"s.html.j2": "---\nsubject: x\n---\n<p>x</p>"})
    r = ts.render("s", {"contact_id": "1"}, CTX)
    with pytest.raises(TemplateError):
        build_message(r, to="a@x.fr\r\nBcc: evil@x.fr", to_name=None, from_addr="b@x.fr",
                      message_id="<1@x>", unsubscribe_url="https://u")  # fmt: skip
