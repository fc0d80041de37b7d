"""The text part reads the HTML as the standard library's parser does, only faster.

`html_to_text` reads the HTML our templates produce with one pass of its own and
leaves anything unusual to the stdlib parser; a reader of the text part must not
be able to tell which one read a letter. Hypothesis builds HTML from pieces both
tidy and broken (stray ``<``, quoted ``>``, unclosed comments, script holding
tags, entities, self-closed tags, hidden blocks) and compares the two readings.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segmerge.render.textpart import _fast, _planned, html_to_text, parsed_by_stdlib

TIDY = [
    # markup as our templates write it
    "<p>",
    "</p>",
    '<p style="margin:0 0 16px 0;">',
    "<div>",
    "</div>",
    '<div style="display: none">',
    '<div style="DISPLAY:NONE;color:red">',
    "<span hidden>",
    '<span aria-hidden="true">',
    "</span>",
    "<br>",
    "<br/>",
    "<br />",
    "<BR>",
    "<p/>",
    '<a href="https://b.fr/x">',
    '<a href="mailto:a@b.fr">',
    '<a href="#top">',
    "<a href='javascript:x()'>",
    "<a href=https://b.fr/y>",
    '<a href="https://b.fr/?a=1&amp;b=2">',
    '<a href="">',
    # a contact's own link (read without the patterns), and near misses
    '<a href="https://b.fr/u?t=QzAw.x">',
    '<a href="https://b.fr/a b">',
    '<a href="https://b.fr/\tb">',
    '<a href="https://b.fr/\'">',
    '<a href="x" >',
    "<a name=x>",
    "</a>",
    '<img src="x.png" alt="Logo &amp; co">',
    '<img alt="">',
    "<img alt=photo/>",
    "<ul>",
    "</ul>",
    "<li>",
    "</li>",
    "<pre>",
    "</pre>",
    '<table role="presentation" width="100%"><tr><td class="c" nowrap>',
    "</td></tr></table>",
    "<h1>",
    "</h1>",
    "<title>T</title>",
    "<style>p{color:red}</style>",
    "<style>a<b></p></style >",
    "<script>if (a<b) {x='</div>'}</script>",
    "<SCRIPT type=text/javascript>1</SCRIPT>",
    "<!-- a comment -->",
    "<!--[if mso]><table><tr><td><![endif]-->",
    "<!DOCTYPE html>",
    "<!doctype html>",
    '<meta charset="utf-8">',
    # text
    "Bonjour",
    "Zoé",
    " ",
    "\n",
    "  \t ",
    "a  b",
    "a\r\nb\x0bc\x0c",
    "\u2028\x85",
    "\xa0",
    "100\u202f%",
    "&amp;",
    "&eacute;",
    "&#233;",
    "&#x41;",
    "&notit;",
    "& ",
    "AT&T",
    ">",
]
# text a letter's shape leaves to its words: any of these in place of any other
WORDS = ["Bonjour", "Zoé", " ", "\n", "https://b.fr/u?t=QzAw.x", "https://b.fr/x/", "&amp;", "\xa0"]
BROKEN = [  # what only the stdlib parser reads
    "<",
    "a < b",
    "< p>",
    '<a title="x>y">',
    "</ p>",
    "</>",
    "<?php x ?>",
    "<![CDATA[x]]>",
    "<!x>",
    "<!--",
    "<p",
    '<a href="x"title="y">',
    "<td a=>",
    "<p\x0b>",
    "</div\xa0>",
    "<a b==c>",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TIDY), max_size=40))
def test_the_fast_reading_of_tidy_html_is_the_stdlib_parsers(pieces):
    html = "".join(pieces)
    assert _fast(html) == parsed_by_stdlib(html)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TIDY + BROKEN), max_size=40))
def test_any_html_reads_as_the_stdlib_parser_reads_it(pieces):
    html = "".join(pieces)
    assert html_to_text(html) == parsed_by_stdlib(html)


def test_a_letter_as_our_templates_write_it_takes_the_fast_path():
    html = (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>T</title>'
        "<style>p{color:red}</style></head><body>"
        "<!--[if mso]><table><tr><td><![endif]-->"
        '<div style="display:none">caché</div><h1>Bonjour Zoé</h1>'
        '<p>Voir <a href="https://b.fr/n?a=1&amp;b=2">nos nouveautés</a></p>'
        "<ul><li>un</li><li>deux</li></ul><p>À bientôt,<br>Claire</p></body></html>"
    )
    want = (
        "Bonjour Zoé\n\nVoir nos nouveautés (https://b.fr/n?a=1&b=2)\n\n- un\n- deux\n\n"
        "À bientôt,\nClaire"
    )
    assert _fast(html) == want
    assert html_to_text(html) == parsed_by_stdlib(html) == want


def test_markup_only_the_stdlib_reads_is_left_to_it():
    html = '<p>a < b</p><p><a title="x>y" href="https://b.fr">lien</a></p>'
    assert _fast(html) is None
    assert html_to_text(html) == "a < b\n\nlien (https://b.fr)"


def test_a_letter_over_64_kib_is_read_in_chunks_by_the_stdlib_parser():
    ticks: list[int] = []
    html = "<p>" + "mot " * 40_000 + "</p>"
    text = html_to_text(html, check=lambda: ticks.append(1))
    assert text == ("mot " * 40_000).strip()
    assert len(ticks) == 3  # the letter's clock ran between the chunks


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(TIDY), max_size=30),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=30),
)
def test_a_letter_shaped_like_one_read_before_reads_as_the_stdlib_reads_it(pieces, words):
    """The second letter of a shape replays the first one's plan with its own words
    and its own link (the address as its words, blank words, another address)."""
    first = "".join(pieces)
    html_to_text(first)  # its markup and shape are read once
    own = iter(words * 31)
    second = "".join(next(own) if p in WORDS else p for p in pieces)
    assert html_to_text(second) == parsed_by_stdlib(second)


def test_letters_of_one_template_take_the_planned_reading():
    letters = [
        f'<p>Bonjour {name},</p>\n<p><a href="https://b.fr/u?t={n}">{label}</a></p>'
        for n, (name, label) in enumerate(
            [("Zoé", "Se désabonner"), ("Léa", "https://b.fr/u?t=1"), ("Max", "x")]
        )
    ]
    html_to_text(letters[0])
    for html in letters:
        assert _planned(html) == parsed_by_stdlib(html)
    assert _planned(letters[1]) == "Bonjour Léa,\n\nhttps://b.fr/u?t=1"
