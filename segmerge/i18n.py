"""One language per command: French for a French workspace, English otherwise.

Why: a marketer reads every line the tool prints and acts on it; half-English,
half-French output (or "10.0 %") reads as a foreign tool. Sentences live in
gettext catalogs (read with babel), never as French strings scattered in code.

How the language is chosen
    The CLI calls :func:`use_locale` once per command: first from the workspace's
    ``locale`` setting (``ws.config.locale``, ``locale = "fr_FR"`` at the top of
    segmerge.toml, French by default), read with :func:`peek_locale` *before* the
    workspace is validated, so an error in segmerge.toml itself is already in the
    workspace's language. With no readable segmerge.toml, :func:`env_locale` follows
    gettext's variables ($LANGUAGE, $LC_ALL, $LC_MESSAGES, $LANG): ``fr*`` is French,
    ``C``/``POSIX`` or any other language is English, and nothing set at all is French
    (Segmerge's default locale is fr_FR). ``$SEGMERGE_LANG`` (``fr``/``en``) overrides
    the workspace for the command line; the test suite sets ``SEGMERGE_LANG=en``
    (tests/conftest.py) so its English assertions hold, and a test of French output
    sets it to ``fr`` (``monkeypatch.setenv``) or calls ``use_locale("fr_FR")`` and
    restores ``use_locale("en")`` after. Library code never chooses: outside the CLI
    the language is English until someone calls :func:`use_locale`. The choice is
    per process (a render worker process speaks English).

    Where: before click parses anything, from the command line's ``-w``, else the
    workspace at ``.``/``$SEGMERGE_WORKSPACE``, else the environment
    (:mod:`segmerge.cli.help`, which then says ``--help`` and click's usage errors
    in that language); every command's ``--workspace`` option chooses again as it is
    parsed (segmerge/cli/options.py), and ``init`` once the new workspace exists.

How to write a sentence (every helper)
    ``from segmerge.i18n import _, ngettext`` then
    ``_("{n} rows written to {path}").format(n=..., path=...)``: the msgid is the
    English sentence with *named* ``str.format`` fields (never an f-string inside
    ``_()``: the catalog could not find it). Plurals: ``ngettext("{n} contact",
    "{n} contacts", n).format(n=number(n))``. A sentence built at import time
    (a module constant, a Typer help) is not translated: call ``_()`` where the
    text is printed or raised. Numbers, percents, money and days go through the
    formatters below, never ``f"{x:.1f} %"``.

Where the French goes
    Catalogs are ``segmerge/locale/fr/*.po`` (standard PO files, UTF-8), all read and
    merged at the first French lookup. Each helper adds ITS OWN file named after its
    topic (``kpi.po``, ``tracking.po``...) so no two people edit one file; the CLI
    and errors are in ``cli.po`` (X4's). An entry::

        #: segmerge/segment/rows.py
        msgid "{n} rows written to {path}"
        msgstr "{n} lignes écrites dans {path}"

    French typography in msgstr: a narrow no-break space U+202F (write it as the
    character itself) before ``:`` ``;`` ``!`` ``?`` ``%`` ``€``, guillemets
    « like this » with U+202F inside. tests/test_language.py extracts every ``_()``
    / ``ngettext()`` literal from the code and fails when one has no French entry,
    when a msgid is in two files with two translations, or when a French sentence
    lacks its U+202F; it also walks the demo's commands in both languages and fails
    on a sentence of the other one. A missing entry at run time falls back to the
    English msgid. Connectors may not import this module: they call ``_`` and
    ``ngettext`` from :mod:`segmerge.ports` (French in ``connectors.po``).
"""

from __future__ import annotations

import gettext
import os
import re
import tomllib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

# babel is imported where it is used: every `segmerge` command imports this module, and an
# English command that prints no number (or `--help`) should not pay for babel's catalogs

#: narrow no-break space: French puts it before : ; ! ? % € and inside « »
NNBSP = "\u202f"

_STATE = {"lang": "en"}


def language_of(locale: str | None) -> str:
    """ "fr" for any French locale (fr, fr_FR, fr-CA, fr_BE.UTF-8), else "en"."""
    if locale and locale.strip().lower().replace("-", "_").split("_")[0].split(".")[0] == "fr":
        return "fr"
    return "en"


def use_locale(locale: str | None) -> str:
    """Speak the language of ``locale`` from now on in this process; returns "fr" or "en"."""
    _STATE["lang"] = language_of(locale)
    return _STATE["lang"]


def lang() -> str:
    """The language in use: "fr" or "en"."""
    return _STATE["lang"]


def is_french() -> bool:
    return _STATE["lang"] == "fr"


def env_locale(environ: dict[str, str] | None = None) -> str:
    """The locale gettext's variables ask for, "fr_FR" when none is set (Segmerge's default)."""
    env = os.environ if environ is None else environ
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "").strip()
        if value:
            return value.split(":")[0]  # $LANGUAGE is a priority list
    return "fr_FR"


def peek_locale(root: str | Path) -> str | None:
    """The ``locale`` a workspace asks for, read before the workspace is validated.

    ``fr_FR`` (the default) when segmerge.toml parses without one; None when there is no
    readable segmerge.toml, so the caller falls back to :func:`env_locale`.
    """
    try:
        data = tomllib.loads((Path(root) / "segmerge.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return None
    value = data.get("locale", "fr_FR")
    return value if isinstance(value, str) else None


def use_workspace_language(root: str | Path | None) -> str:
    """Choose the command's language: $SEGMERGE_LANG, else the workspace at ``root``, else
    the environment."""
    forced = os.environ.get("SEGMERGE_LANG", "").strip()
    if forced:
        return use_locale(forced)
    peeked = peek_locale(root) if root is not None else None
    return use_locale(peeked if peeked is not None else env_locale())


# catalogs --------------------------------------------------------------------------


def catalog_files(language: str = "fr") -> list[Path]:
    """The PO files of one language, in a stable order."""
    from importlib.resources import files

    folder = files("segmerge") / "locale" / language
    if not folder.is_dir():
        return []
    return sorted(
        (Path(str(p)) for p in folder.iterdir() if p.name.endswith(".po")), key=lambda p: p.name
    )


def read_catalogs(language: str = "fr") -> Catalog:
    """Every PO file of ``language`` merged into one babel Catalog (later files cannot
    silently override: tests/test_language.py refuses a msgid translated twice)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    merged = Catalog(locale=language, domain="segmerge")
    for path in catalog_files(language):
        with path.open("rb") as fh:
            part = read_po(fh, locale=language, domain="segmerge")
        if not len(merged):  # the PO header's Plural-Forms (fr: 2 forms), not CLDR's 3
            merged.mime_headers = part.mime_headers
        for msg in part:
            if msg.id and msg.id not in merged:
                merged.add(msg.id, msg.string, locations=msg.locations, flags=msg.flags)
    return merged


class _Compiled(gettext.GNUTranslations):
    """A GNU catalog made from :func:`_po_entries` rather than read from a .mo file."""

    def __init__(self, entries: dict[Any, str], plural_forms: str) -> None:
        gettext.NullTranslations.__init__(self)
        self._catalog = entries
        expr = plural_forms.partition("plural=")[2].strip().rstrip(";")
        self.plural = gettext.c2py(expr or "n != 1")


_PO_LINE = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')
_PO_ESCAPE = re.compile(r"\\(.)")
_PO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _po_text(quoted: str) -> str:
    return _PO_ESCAPE.sub(lambda m: _PO_ESCAPES.get(m.group(1), m.group(0)), quoted[1:-1])


def _po_entries(text: str) -> Iterator[tuple[dict[str, Any], bool]]:
    """Each entry of a PO file's text: its fields (msgstr[N] under ``("msgstr", N)``) and
    whether it is fuzzy. Obsolete (``#~``) entries and other comments are skipped."""
    fields: dict[Any, str] = {}
    fuzzy = False
    key: Any = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith('"') and key is not None:
            fields[key] += _po_text(line)
            continue
        m = _PO_LINE.match(line)
        if m is None:  # a blank line or a comment ends the entry before it
            if "msgid" in fields and len(fields) > 1:
                yield fields, fuzzy
                fields, fuzzy = {}, False
            key = None
            fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
            continue
        word = m.group(1)
        if word in ("msgctxt", "msgid") and "msgid" in fields:  # entries with no blank between
            yield fields, fuzzy
            fields, fuzzy = {}, False
        key = ("msgstr", int(m.group(2))) if m.group(2) is not None else word
        fields[key] = _po_text(m.group(3))
    if "msgid" in fields:
        yield fields, fuzzy


@cache
def _translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog, built in memory once per process (no .mo file to keep in sync).

    Read here rather than with babel's PO reader (:func:`read_catalogs`, for the tests and
    tools): every French command pays for this, `--help` included, and babel took several
    times as long. Same rules as there: a msgid's first translation wins, fuzzy and
    untranslated entries are left out (as msgfmt does), Plural-Forms comes from the first
    file's header.
    """
    if language == "en":
        return gettext.NullTranslations()
    return compile_po(p.read_text(encoding="utf-8") for p in catalog_files(language))


def compile_po(texts: Iterable[str]) -> gettext.GNUTranslations:
    """PO files' texts merged into one GNU catalog, in order (see :func:`_translations`)."""
    entries: dict[Any, str] = {}
    seen: set[str] = set()  # a msgid's first entry wins, even one left out (fuzzy, empty)
    plural_forms = ""
    for text in texts:
        for fields, fuzzy in _po_entries(text):
            msgid = fields["msgid"]
            if not msgid:
                header = fields.get("msgstr", "")
                if not plural_forms:
                    plural_forms = next(
                        (h for h in header.splitlines() if h.startswith("Plural-Forms:")), ""
                    )
                continue
            if "msgctxt" in fields:
                msgid = f"{fields['msgctxt']}\x04{msgid}"
            forms = sorted((k[1], v) for k, v in fields.items() if isinstance(k, tuple))
            if msgid in seen:
                continue
            seen.add(msgid)
            if fuzzy:
                continue
            if "msgid_plural" in fields and forms and any(v for _, v in forms):
                entries.update({(msgid, n): v for n, v in forms})
            elif fields.get("msgstr"):
                entries[msgid] = fields["msgstr"]
    return _Compiled(entries, plural_forms)


def _(message: str) -> str:
    """``message`` (an English msgid) in the command's language."""
    return _translations(_STATE["lang"]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural sentence for ``n``, by the language's own rule (French: n > 1)."""
    return _translations(_STATE["lang"]).ngettext(singular, plural, n)


# typography -------------------------------------------------------------------------


def _babel_locale() -> str:
    return "fr_FR" if is_french() else "en_US"


def label(text: str) -> str:
    """``text`` followed by its colon: "erreur :" (with U+202F) in French, "error:" in English."""
    return f"{text}{NNBSP}:" if is_french() else f"{text}:"


def number(value: int | float | Decimal, digits: int = 0) -> str:
    """A count or a measure with thousands separators: "12 345" / "12,345", "3,5" / "3.5".

    ``digits`` is the most decimals shown; trailing zeros are dropped (no "10,0").
    """
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
    return str(format_decimal(value, format=pattern, locale=_babel_locale()))


def percent(ratio: float, digits: int = 1) -> str:
    """A share of 1 as a percent: "12,5 %" (U+202F) / "12.5%", never "10.0 %" (shows "10 %")."""
    shown = number(100 * float(ratio), digits)
    return f"{shown}{NNBSP}%" if is_french() else f"{shown}%"


def percent_of(part: int | float, whole: int | float, digits: int = 1) -> str:
    """``part`` as a percent of ``whole`` ("0 %" when ``whole`` is 0)."""
    return percent(part / whole if whole else 0.0, digits)


def money(amount: int | float | Decimal, currency: str = "EUR") -> str:
    """An amount in its currency: "1 234,50 €" (U+202F before €) / "€1,234.50"."""
    from babel.numbers import format_currency

    text = str(format_currency(amount, currency, locale=_babel_locale()))
    return text.replace("\xa0", NNBSP) if is_french() else text


def day(value: date | datetime, with_year: bool = True) -> str:
    """A calendar day in words: "1er décembre 2026" / "December 1, 2026"."""
    from babel.dates import format_date

    if isinstance(value, datetime):
        value = value.date()
    if is_french():
        first = "1er" if value.day == 1 else str(value.day)
        return f"{first} {format_date(value, 'MMMM' + (' y' if with_year else ''), locale='fr')}"
    return str(format_date(value, "MMMM d" + (", y" if with_year else ""), locale="en_US"))
