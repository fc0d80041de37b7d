"""Templates: sandbox, escaping, strict variables, front matter, French formatting, batches."""

from __future__ import annotations

import copy
import functools
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from babel import Locale
from babel.numbers import format_currency, get_currency_precision
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from segmerge.errors import TemplateError
from segmerge.render.env import fast_escape
from segmerge.render.filters import make_filters
from segmerge.render.templates import RenderContext, Rendered, TemplateSecurityError, TemplateSet

PARIS = ZoneInfo("Europe/Paris")
CTX = RenderContext(
    campaign={"name": "profils", "id": "profils"},
    today=date(2026, 3, 3),
    unsubscribe_url="https://boutique.fr/u?token=T",
)
KNOWN = {
    "contact_id",
    "first_name",
    "last_name",
    "revenue",
    "last_order_at",
    "email",
    "ville",
    "tags",
    "items",
    "ratio",
}


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def load(folder: Path, files: dict[str, str], segments=(("s", "Le segment"),), known=KNOWN):
    write(folder, files)
    return TemplateSet.load(folder, list(segments), tz=PARIS, known_columns=known)


def letter(body: str, subject: str = "Bonjour") -> dict[str, str]:
    return {"s.html.j2": f'---\nsubject: "{subject}"\n---\n{body}'}


# -- French formatting ----------------------------------------------------------------------


def test_locale_filters_give_the_exact_french_strings(tmp_path):
    body = (
        "{{ contact.revenue|money }}|{{ contact.revenue|number }}|{{ 1234.5|number(2) }}|"
        "{{ 2.675|money }}|{{ 1234.5|money(decimals=0) }}|{{ contact.ratio|percent }}|"
        "{{ contact.ratio|percent(1) }}|{{ contact.last_order_at|date }}|"
        "{{ contact.last_order_at|date('short') }}|{{ contact.last_order_at|datetime }}|"
        "{{ today|date('EEEE d MMMM') }}|{{ contact.first_name|capitalize_name }}"
    )
    ts = load(tmp_path, letter(body))
    contact = {
        "contact_id": "1",
        "first_name": "jean-pierre de la TOUR",
        "revenue": 1234.5,
        "ratio": 0.125,
        "last_order_at": pd.Timestamp("2026-03-02 23:30", tz="UTC"),
    }
    parts = ts.render("s", contact, CTX).html.split("|")
    assert parts == [
        "1\u202f234,50\xa0€",  # babel's narrow no-break space for thousands, no-break before €
        "1\u202f234,5",
        "1\u202f234,50",
        "2,68\xa0€",  # half-up on the digits shown, not on the binary float
        "1\u202f235\xa0€",
        "13\xa0%",
        "12,5\xa0%",
        "3 mars 2026",  # 23:30 UTC on 2 March is already 3 March in Paris
        "03/03/2026",
        "3 mars 2026, 00:30",
        "mardi 3 mars",
        "Jean-Pierre de la Tour",
    ]


def test_a_filter_given_the_wrong_kind_of_value_names_the_contact_and_line(tmp_path):
    ts = load(tmp_path, letter("<p>x</p>\n{{ contact.ville|money }}"))
    with pytest.raises(TemplateError) as e:
        ts.render("s", {"contact_id": "9", "ville": "Lyon"}, CTX)
    assert (
        e.value.line == 5
        and "contact 9" in str(e.value)
        and "money expects a number" in str(e.value)
    )


# -- escaping and the sandbox ---------------------------------------------------------------


def test_html_is_escaped_but_the_text_part_and_subject_are_not(tmp_path):
    ts = load(
        tmp_path,
        {
            "s.html.j2": '---\nsubject: "{{ contact.first_name }}"\n---\n'
            "<p>{{ contact.first_name }}</p>",
            "s.txt.j2": "Bonjour {{ contact.first_name }}",
        },
    )
    r = ts.render("s", {"contact_id": "1", "first_name": "<script>x</script>"}, CTX)
    assert r.html == "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    assert r.text == "Bonjour <script>x</script>"
    assert r.subject == "<script>x</script>"


@pytest.mark.parametrize(
    "expr",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ contact.__dict__ }}",
        "{{ contact['_secret'] }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
    ],
)
def test_python_internals_are_refused_when_the_set_is_loaded(tmp_path, expr):
    with pytest.raises(TemplateSecurityError) as e:
        load(tmp_path, letter(f"<p>ok</p>\n{expr}"))
    assert e.value.line == 5 and e.value.file.endswith("s.html.j2")


@pytest.mark.parametrize(
    "expr",
    [
        "{% set x = [].append %}",  # the immutable sandbox refuses even to fetch the method
        "{{ contact.tags.append('evil') }}",
        "{% set a = '__cla' ~ 'ss__' %}{{ ''[a] }}",  # built at run time, refused at run time
        "{{ contact.tags.pop() }}",
    ],
)
def test_run_time_escapes_fail_for_the_contact_and_change_nothing(tmp_path, expr):
    ts = load(tmp_path, letter(expr))
    tags = ["vip"]
    with pytest.raises(TemplateSecurityError) as e:
        ts.render("s", {"contact_id": "1", "tags": tags}, CTX)
    assert "not allowed" in str(e.value)
    assert tags == ["vip"]


def test_a_column_named_like_a_dict_method_is_the_column(tmp_path):
    ts = load(tmp_path, letter("{{ contact.items }}"))
    assert ts.render("s", {"contact_id": "1", "items": 3}, CTX).html == "3"


def test_a_line_break_in_a_value_never_reaches_the_subject(tmp_path):
    ts = load(tmp_path, letter("x", subject="{{ contact.first_name }}, bonjour"))
    r = ts.render("s", {"contact_id": "1", "first_name": "Zoé\r\nBcc: evil@x.fr"}, CTX)
    assert r.subject == "Zoé Bcc: evil@x.fr, bonjour"


# -- strict variables -----------------------------------------------------------------------


def test_a_typo_fails_at_load_with_file_line_and_suggestion(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, letter("<p>a</p>\n<p>{{ contact.frist_name }}</p>"))
    assert e.value.line == 5 and e.value.file == str(tmp_path / "s.html.j2")
    assert e.value.field == "contact.frist_name" and "first_name" in (e.value.hint or "")


def test_a_typo_behind_a_default_is_still_a_typo_but_an_optional_column_is_allowed(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, letter("{{ contact.frist_name | default('Madame, Monsieur') }}"))
    assert "first_name" in (e.value.hint or "")
    ts = load(
        tmp_path,
        letter("{% if contact.civilite is defined %}{{ contact.civilite }}{% else %}-{% endif %}"),
    )
    assert ts.render("s", {"contact_id": "1"}, CTX).html == "-"


def test_an_unknown_top_level_name_fails_at_load(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, letter("\n{{ contcat.ville }}"))
    assert e.value.line == 5 and e.value.field == "contcat" and "'contact'" in (e.value.hint or "")


def test_an_unknown_name_in_the_subject_fails_at_load_on_its_line(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": '---\npreheader: x\nsubject: "{{ client.prenom }}"\n---\n'})
    assert e.value.line == 3 and e.value.field == "client"


@pytest.mark.parametrize("empty", [None, float("nan"), pd.NA, pd.NaT, np.float64("nan")])
def test_an_empty_value_fails_that_contact_only(tmp_path, empty):
    ts = load(tmp_path, letter("<p>\n{{ contact.ville }}</p>"))
    with pytest.raises(TemplateError) as e:
        ts.render("s", {"contact_id": "7", "ville": empty}, CTX)
    assert e.value.field == "contact.ville" and e.value.line == 5
    assert "contact 7" in str(e.value) and "no value for 'ville'" in str(e.value)
    assert ts.render("s", {"contact_id": "8", "ville": "Lyon"}, CTX).html == "<p>\nLyon</p>"


def test_default_and_is_defined_handle_empty_values(tmp_path):
    ts = load(
        tmp_path,
        letter(
            "{{ contact.first_name | default('Madame, Monsieur') }}/"
            "{% if contact.ville is defined %}{{ contact.ville }}{% else %}?{% endif %}"
        ),
    )
    r = ts.render("s", {"contact_id": "1", "first_name": None, "ville": float("nan")}, CTX)
    assert r.html == "Madame, Monsieur/?"


def test_an_empty_value_in_a_layout_is_reported_in_the_layout_file(tmp_path):
    ts = load(
        tmp_path,
        {
            "_layout.html.j2": "<html><body>\n{% block contenu %}{% endblock %}\n"
            "<p>{{ contact.ville }}</p></body></html>",
            "s.html.j2": '---\nsubject: "x"\n---\n{% extends "_layout.html.j2" %}'
            "{% block contenu %}ok{% endblock %}",
        },
    )
    with pytest.raises(TemplateError) as e:
        ts.render("s", {"contact_id": "1", "ville": None}, CTX)
    assert e.value.file == str(tmp_path / "_layout.html.j2") and e.value.line == 3


# -- files, fallbacks and front matter ------------------------------------------------------


def test_default_template_and_text_twin_fallbacks(tmp_path):
    ts = load(
        tmp_path,
        {
            "s.html.j2": '---\nsubject: "S {{ segment.label }}"\n---\n<p>s</p>',
            "_default.html.j2": '---\nsubject: "D {{ segment.name }}"\n---\n<p>d</p>',
            "_default.txt.j2": "texte {{ segment.name }}",
        },
        segments=(("s", "Le S"), ("t", "Le T")),
    )
    s, t = ts.render("s", {"contact_id": "1"}, CTX), ts.render("t", {"contact_id": "1"}, CTX)
    assert (s.subject, s.text, s.template) == ("S Le S", "texte s", str(tmp_path / "s.html.j2"))
    assert (t.subject, t.text, t.html) == ("D t", "texte t", "<p>d</p>")
    assert ts.template_for("t") == str(tmp_path / "_default.html.j2")


def test_a_segment_without_template_is_an_error_naming_it_and_the_folder(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, letter("x"), segments=(("s", "S"), ("zens", "Les zens")))
    assert e.value.field == "zens" and str(tmp_path) in str(e.value)
    assert "zens.html.j2" in (e.value.hint or "")


def test_front_matter_values(tmp_path):
    ts = load(
        tmp_path,
        {
            "s.html.j2": "---\nsubject: 2026\npreheader: 'Vu : {{ today|date }}'\n"
            'from: "Claire <claire@boutique.fr>"\nreply_to: aide@boutique.fr\n---\nx'
        },
    )
    r = ts.render("s", {"contact_id": "1"}, CTX)
    assert (r.subject, r.preheader) == ("2026", "Vu : 3 mars 2026")
    assert (r.from_addr, r.reply_to) == ("Claire <claire@boutique.fr>", "aide@boutique.fr")
    plain = load(tmp_path / "b", letter("x"))
    assert plain.render("s", {"contact_id": "1"}, CTX).from_addr is None


@pytest.mark.parametrize(
    ("front", "line", "needle"),
    [
        ("subject: x\nsubjet: y\n", 3, "unknown front-matter key 'subjet'"),
        ("preheader: y\n", 1, "needs a `subject:`"),
        ("subject: x\nsubject: y\n", 3, "given twice"),
        ("subject: [a, b]\n", 2, "expects a text"),
        ("subject: x\nfrom: pas une adresse\n", 3, "not an e-mail address"),
        ("subject: {{ contact.first_name }}, bonjour\n", 2, "not valid YAML"),
    ],
)
def test_front_matter_errors_name_the_line(tmp_path, front, line, needle):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": f"---\n{front}---\n<p>x</p>"})
    assert needle in str(e.value) and e.value.line == line, str(e.value)


def test_unclosed_front_matter_and_front_matter_in_the_text_twin(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, {"s.html.j2": "---\nsubject: x\n<p>x</p>"})
    assert "never closed" in str(e.value)
    with pytest.raises(TemplateError) as e:
        load(tmp_path / "b", {**letter("x"), "s.txt.j2": "---\nsubject: y\n---\ntexte"})
    assert e.value.file.endswith("s.txt.j2")


def test_a_syntax_error_names_file_and_line(tmp_path):
    with pytest.raises(TemplateError) as e:
        load(tmp_path, letter("<p>\n{% if contact.ville %}oui\n</p>"))
    assert e.value.file == str(tmp_path / "s.html.j2") and e.value.line == 5  # the open `if`


def test_layouts_come_from_the_folder_then_the_shared_folder(tmp_path):
    write(tmp_path / "_shared", {"_base.html.j2": "<b>{% block c %}{% endblock %}</b>"})
    ts = load(
        tmp_path / "rfm",
        {
            "s.html.j2": '---\nsubject: x\n---\n{% extends "_base.html.j2" %}'
            "{% block c %}{{ segment.name }}{% endblock %}"
        },
    )
    assert ts.render("s", {"contact_id": "1"}, CTX).html == "<b>s</b>"
    with pytest.raises(TemplateError) as e:
        load(tmp_path / "x", letter('{% include "../_shared/_base.html.j2" %}'))
    assert "not found" in str(e.value)


# -- the derived text part ------------------------------------------------------------------


def test_the_text_part_is_derived_from_the_html(tmp_path):
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        '<div style="display: none">caché</div>'
        "<h1>Bonjour   Zoé</h1><p>Ligne 1<br>Ligne 2</p>"
        '<p>Voir <a href="https://b.fr/n">nos nouveautés</a> ou https://b.fr</p>'
        "<ul><li>un</li><li>deux</li></ul><script>alert(1)</script>"
        '<p><a href="{{ unsubscribe_url }}">Se désinscrire</a> &amp; merci</p></body></html>'
    )
    ts = load(tmp_path, letter(html))
    assert ts.render("s", {"contact_id": "1"}, CTX).text == (
        "Bonjour Zoé\n\nLigne 1\nLigne 2\n\nVoir nos nouveautés (https://b.fr/n) ou https://b.fr"
        "\n\n- un\n- deux\n\nSe désinscrire (https://boutique.fr/u?token=T) & merci"
    )


# -- many at once ---------------------------------------------------------------------------


def _batch_set(tmp_path: Path) -> TemplateSet:
    return load(
        tmp_path,
        {
            "a.html.j2": '---\nsubject: "A {{ contact.first_name }}"\n---\n<a href="{{ unsubscribe_url }}">u</a>',
            "b.html.j2": '---\nsubject: "B"\n---\n{{ contact.ville }}',
        },
        segments=(("a", "A"), ("b", "B")),
    )


def test_render_many_keeps_order_errors_in_place_and_per_contact_links(tmp_path):
    ts = _batch_set(tmp_path)
    items = [
        ("a", {"contact_id": "1", "first_name": "Léa"}, "https://b.fr/u?t=1"),
        ("b", {"contact_id": "2", "ville": None}, "https://b.fr/u?t=2"),
        ("a", {"contact_id": "3", "first_name": "Max"}),
    ]
    out = ts.render_many(items, CTX, workers=1)
    assert isinstance(out[0], Rendered) and out[0].subject == "A Léa"
    assert 'href="https://b.fr/u?t=1"' in out[0].html
    assert isinstance(out[1], TemplateError) and out[1].field == "contact.ville"
    assert isinstance(out[2], Rendered) and 'href="https://boutique.fr/u?token=T"' in out[2].html
    per_contact = ts.render_many(items[:1], lambda c: CTX)
    assert isinstance(per_contact[0], Rendered) and per_contact[0].subject == "A Léa"


def test_render_many_in_worker_processes_gives_the_same_results(tmp_path):
    ts = _batch_set(tmp_path)
    items = [
        (
            "a" if i % 3 else "b",
            {"contact_id": str(i), "first_name": f"P{i}", "ville": None if i % 7 == 0 else "Lyon"},
            f"https://b.fr/u?t={i}",
        )
        for i in range(60)
    ]
    serial = ts.render_many(items, CTX, workers=1)
    parallel = ts.render_many(items, CTX, workers=2)
    assert [type(x) for x in parallel] == [type(x) for x in serial]
    assert [x for x in parallel if isinstance(x, Rendered)] == [
        x for x in serial if isinstance(x, Rendered)
    ]
    errors = [(e.field, e.line, e.file) for e in parallel if isinstance(e, TemplateError)]
    assert errors == [(e.field, e.line, e.file) for e in serial if isinstance(e, TemplateError)]
    assert len(errors) == sum(1 for i in range(60) if i % 3 == 0 and i % 7 == 0)


# -- the fast money formatter is Babel's twin ------------------------------------------------


@functools.cache
def _money(locale: str, currency: str):
    return make_filters(locale, PARIS, currency)["money"]


@settings(max_examples=300, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False),
    locale=st.sampled_from(["fr_FR", "en_US", "nl_NL", "de_DE", "de_CH", "hi_IN"]),
    currency=st.sampled_from(["EUR", "USD", "JPY"]),
    decimals=st.sampled_from([None, 0, 1, 2]),
)
def test_money_says_exactly_what_babel_says(amount, locale, currency, decimals):
    money = _money(locale, currency)
    digits = get_currency_precision(currency) if decimals is None else decimals
    rounded = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    pattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    expected = format_currency(
        rounded, currency, format=pattern, locale=locale, currency_digits=False
    )
    assert money(amount, decimals=decimals) == expected


@pytest.mark.parametrize("name", ["../secret", "_layout", "a/b", ""])
def test_a_segment_name_cannot_reach_outside_the_folder_or_a_partial(tmp_path, name):
    with pytest.raises(TemplateError) as e:
        load(tmp_path / "t", letter("x"), segments=((name, "X"),))
    assert "cannot name a template file" in str(e.value)


class _Html:
    def __html__(self):
        return "<b>sûr</b>"


@pytest.mark.parametrize(
    "value",
    [
        "<a href='x'>&\"</a>",
        "",
        "été",
        Markup("<i>ok</i>"),
        42,
        -1,
        3.5,
        None,
        True,
        _Html(),
        ["<x>"],
    ],
)
def test_the_fast_escape_is_markupsafe_escape(value):
    assert fast_escape(value) == escape(value)
    assert type(fast_escape(value)) is Markup
