"""The French a command prints is the catalogs' French, read without babel.

Every French command (`--help` included) compiles the catalogs; segmerge.i18n reads
the PO files itself because babel's reader cost most of a French `--help`. What a
user could notice if the two readings differed: a sentence left in English, a
fuzzy (unreviewed) translation shown, the wrong plural. So the fast reading must
give exactly the catalog babel's reader and msgfmt's rules give, on the real
catalogs and on the PO forms they may grow into.
"""

from __future__ import annotations

import gettext
import io
import textwrap

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from segmerge import i18n

HEADER = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"
"""

EDGES = HEADER + textwrap.dedent(
    """
        #: a.py
        msgid "plain"
        msgstr "simple"

        #, fuzzy
        msgid "unreviewed"
        msgstr "pas relu"

        msgid "untranslated"
        msgstr ""

        msgid ""
        "a long sentence "
        "on two lines with \\"quotes\\"\\n"
        msgstr ""
        "une longue phrase "
        "sur deux lignes avec « guillemets »\\n"
        msgid "no blank line before"
        msgstr "pas de ligne vide avant"

        msgctxt "menu"
        msgid "Open"
        msgstr "Ouvrir"

        #, python-format
        msgid "{n} contact"
        msgid_plural "{n} contacts"
        msgstr[0] "{n} contact"
        msgstr[1] "{n} contacts"

        #~ msgid "obsolete"
        #~ msgstr "obsolète"
        """
)

LATER = (
    HEADER
    + """
msgid "plain"
msgstr "autre"

msgid "unreviewed"
msgstr "relu plus tard"

msgid "only here"
msgstr "seulement ici"
"""
)


def babel_reading(texts: list[str]) -> gettext.GNUTranslations:
    """What segmerge.i18n did before: babel's reader, merged as read_catalogs() merges."""
    merged = Catalog(locale="fr", domain="segmerge")
    for text in texts:
        part = read_po(io.BytesIO(text.encode("utf-8")), locale="fr", domain="segmerge")
        if not len(merged):
            merged.mime_headers = part.mime_headers
        for msg in part:
            if msg.id and msg.id not in merged:
                merged.add(msg.id, msg.string, flags=msg.flags, context=msg.context)
    buf = io.BytesIO()
    write_mo(buf, merged)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def same(texts: list[str]) -> tuple[gettext.GNUTranslations, gettext.GNUTranslations]:
    fast, slow = i18n.compile_po(texts), babel_reading(texts)
    assert fast._catalog == {k: v for k, v in slow._catalog.items() if k != ""}  # type: ignore[attr-defined]
    assert [fast.plural(n) for n in range(5)] == [slow.plural(n) for n in range(5)]  # type: ignore[attr-defined]
    return fast, slow


def test_the_real_catalogs_read_alike():
    fast, _ = same([p.read_text(encoding="utf-8") for p in i18n.catalog_files("fr")])
    assert len(fast._catalog) > 1000  # type: ignore[attr-defined]


def test_fuzzy_empty_obsolete_multiline_context_and_plural_entries_read_alike():
    fast, _ = same([EDGES, LATER])
    assert fast.gettext("plain") == "simple"  # the first file wins
    assert fast.gettext("unreviewed") == "unreviewed"  # fuzzy: shown in English, as msgfmt
    assert fast.gettext("untranslated") == "untranslated"
    assert fast.gettext("only here") == "seulement ici"
    assert fast.gettext("obsolete") == "obsolete"
    assert fast.pgettext("menu", "Open") == "Ouvrir" and fast.gettext("Open") == "Open"
    long = 'a long sentence on two lines with "quotes"\n'
    assert fast.gettext(long) == "une longue phrase sur deux lignes avec « guillemets »\n"
    assert fast.gettext("no blank line before") == "pas de ligne vide avant"
    assert [fast.ngettext("{n} contact", "{n} contacts", n) for n in (0, 1, 2)] == [
        "{n} contact",
        "{n} contact",
        "{n} contacts",
    ]
