"""One language per command: French for a French workspace, English otherwise (issue 16).

Two kinds of checks. The catalogs: every sentence the code passes to ``_()`` or
``ngettext()`` has a French translation with the same ``{fields}`` (else French
output would crash on ``.format``), no sentence is translated two ways, and the
French keeps its typography (U+202F before ``: ; ! ? % €``). The commands: the
demo workspace is walked command by command (and through its error paths) in
process (the demo with half its customers, tests/demo_fixtures.py ``demo_half``: in
French, a tenth of it with its quirks until the session's shared run), once
with ``locale = "fr_FR"`` and once with ``locale = "en_US"``, and a
small stop-word detector fails on an English sentence in the French output (and
on a French one in the English output). User data (segment names and labels,
contact ids, paths, quoted values) is taken out before the words are counted.

``--help`` and click's usage errors are walked too: Typer builds the help from
the code's docstrings at import, so :mod:`segmerge.cli.help` says each text
through the catalogs once the language is known (French in cli_help.po, checked
below for every command and option). ``render`` prints the letter itself (user text) and
``preview``/``serve`` run until stopped: their pages are checked by the page
tests. What is still English in French output is listed in :data:`LEFT`, each
with the module that says it: the test fails when a new English sentence
appears, and when a listed one is gone (so the list only shrinks).
"""

from __future__ import annotations

import ast
import functools
import gc
import re
import string
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from test_cli_e2e import cut  # pytest's own module: its cache
from typer.testing import CliRunner

from segmerge import i18n
from segmerge.i18n import NNBSP, catalog_files
from tests.demo_fixtures import copy_of, one_core

ROOT = Path(__file__).parents[1]
CODE = [
    ROOT / "bot.py",
    *sorted((ROOT / "segmerge").rglob("*.py")),
    *sorted((ROOT / "connectors").rglob("*.py")),
]

# -- the catalogs ------------------------------------------------------------------------


@functools.cache
def _sources() -> tuple[tuple[Path, str, ast.Module, tuple[ast.Call, ...], frozenset[str]], ...]:
    """(path, text, its tree, its ``_()`` and ``ngettext()`` calls, its string constants) of
    every file of :data:`CODE`, parsed and walked once for the module's tests and
    tests/test_language_errors.py. The garbage collector is paused meanwhile: the trees'
    quarter of a million nodes, all kept, made it walk the suite's whole heap every few
    files (two thirds of the CPU)."""
    out = []
    paused = gc.isenabled()
    gc.disable()
    try:
        for path in CODE:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
            calls, strings = _calls_and_strings(tree)
            out.append((path, text, tree, calls, strings))
    finally:
        if paused:
            gc.enable()
    return tuple(out)


def _calls_and_strings(tree: ast.Module) -> tuple[tuple[ast.Call, ...], frozenset[str]]:
    """The ``_()``/``ngettext()`` calls of ``tree`` in the file's order, and its strings:
    one walk on a stack of the nodes' fields, in half the CPU of :func:`ast.walk`'s
    generators (about a million nodes in the engine)."""
    calls, strings = [], set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if type(node) is ast.Constant:
            if isinstance(node.value, str):
                strings.add(node.value)
            continue
        if (
            type(node) is ast.Call
            and isinstance(node.func, ast.Name)
            and node.func.id in ("_", "ngettext")
            and node.args
        ):
            calls.append(node)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return tuple(calls), frozenset(strings)


def _literals() -> Iterator[tuple[str, int, str, str | None]]:
    """(file, line, msgid, plural) of every ``_("...")`` / ``ngettext("...", "...", n)``,
    f-strings included (babel's extractor cannot see inside them; ast can)."""
    for path, _text, _tree, calls, _strings in _sources():
        for node in calls:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                plural = None
                if node.func.id == "ngettext" and isinstance(node.args[1], ast.Constant):
                    plural = str(node.args[1].value)
                yield str(path.relative_to(ROOT)), node.lineno, first.value, plural


def _entries() -> list[tuple[str, object]]:
    """(file name, babel Message) of every French entry, in every catalog file."""
    found = []
    for path in catalog_files("fr"):
        with path.open("rb") as fh:
            found += [(path.name, m) for m in read_po(fh, locale="fr") if m.id]
    return found


def test_every_sentence_in_the_code_has_its_french_translation():
    catalog = i18n.read_catalogs("fr")
    missing = []
    for file, line, msgid, plural in _literals():
        msg = catalog.get(msgid)
        strings = (
            () if msg is None else (msg.string if isinstance(msg.string, tuple) else (msg.string,))
        )
        if not strings or not all(strings) or (msg is not None and msg.fuzzy):
            missing.append(f"{file}:{line}: {msgid!r}")
        elif plural is not None and not isinstance(msg.string, tuple):
            missing.append(f"{file}:{line}: {msgid!r} needs its plural forms")
    assert not missing, "add to segmerge/locale/fr/<yours>.po:\n" + "\n".join(missing)


def test_every_command_and_option_has_its_french_help():
    import typer

    import bot
    from segmerge.cli.help import help_texts

    catalog = i18n.read_catalogs("fr")
    missing = sorted({t for t in help_texts(typer.main.get_command(bot.app)) if not catalog.get(t)})
    assert not missing, "add to segmerge/locale/fr/cli_help.po:\n" + "\n".join(map(repr, missing))


def test_every_french_entry_is_still_said_somewhere():
    """A catalog entry no code says any more is dead weight that hides the live ones (and
    a sentence reworded in the code but not in the catalog falls back to English). Used:
    a string of the code (every ``_()`` and ``ngettext()`` argument is one, as is a key
    translated with ``_(key)``; babel's extractor finds none that ast does not), a quoted
    text of the page templates or of code (SQL, inline Jinja), or a command's help."""
    import typer

    import bot
    from segmerge.cli.help import help_texts

    said = set(help_texts(typer.main.get_command(bot.app)))
    quoted = []
    for _path, text, _tree, _calls, strings in _sources():
        quoted.append(text)
        said |= strings
    assets = ROOT / "segmerge" / "preview" / "assets"
    quoted += [p.read_text(encoding="utf-8") for p in sorted(assets.glob("*")) if p.is_file()]
    everything = "\n".join(quoted)
    stale = []
    for file, msg in _entries():
        msgid = msg.id[0] if isinstance(msg.id, tuple) else msg.id
        if isinstance(msgid, tuple):
            msgid = msgid[0]
        if msgid in said or f'"{msgid}"' in everything or f"'{msgid}'" in everything:
            continue
        stale.append(f"{file}: {msgid!r}")
    assert not stale, "no code says these any more:\n" + "\n".join(stale)


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def test_each_translation_has_the_fields_of_its_sentence_and_one_meaning():
    seen: dict[str, tuple[str, object]] = {}
    wrong = []
    for file, msg in _entries():
        forms = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        want = set().union(*(_fields(i) for i in ids))
        for form in forms:
            if form and _fields(form) - want:
                wrong.append(f"{file}: {ids[0]!r} -> {form!r} has unknown fields")
        key = ids[0]
        if key in seen and seen[key][1] != msg.string:
            wrong.append(
                f"{key!r} is {seen[key][1]!r} in {seen[key][0]} but {msg.string!r} in {file}"
            )
        seen.setdefault(key, (file, msg.string))
    assert not wrong, "\n".join(wrong)


#: a French sign that takes a narrow no-break space before it, not preceded by one
#: (a colon only when it ends a label: "attention : ..." but not "10:30" or "http://")
BAD_SPACING = re.compile(r"(?<!\u202f)(?:[;!?%€]|:(?=\s|$))")


def test_french_translations_keep_french_typography():
    wrong = []
    for file, msg in _entries():
        for form in msg.string if isinstance(msg.string, tuple) else (msg.string,):
            # markup, fields, code in backticks and options are not prose
            prose = re.sub(r"`[^`]*`|\{[^}]*\}|\[/?[a-z ]*\]|--[\w-]+|https?://\S+", "", form)
            if BAD_SPACING.search(prose) or re.search(r"\d[.,]0\b\s*%", prose):
                wrong.append(f"{file}: {form!r}")
    assert not wrong, "U+202F before : ; ! ? % € in French:\n" + "\n".join(wrong)


# -- the formatters ----------------------------------------------------------------------


@pytest.fixture()
def french() -> Iterator[None]:
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


def test_french_numbers_percents_money_and_days(french):
    assert i18n.number(1234567) == f"1{NNBSP}234{NNBSP}567"
    assert i18n.percent(0.1) == f"10{NNBSP}%"  # never "10.0 %" nor "10,0 %"
    assert i18n.percent(0.125) == f"12,5{NNBSP}%"
    assert i18n.money(1234.5) == f"1{NNBSP}234,50{NNBSP}€"
    assert i18n.day(date(2026, 12, 1)) == "1er décembre 2026"
    assert i18n.day(date(2026, 12, 2), with_year=False) == "2 décembre"
    assert i18n.label("conseil") == f"conseil{NNBSP}:"
    # French plurals by French rule (0 and 1 singular), from the catalogs' own Plural-Forms
    forms = [i18n.ngettext("{n} day", "{n} days", n) for n in (0, 1, 2, 5)]
    assert forms == ["{n} jour", "{n} jour", "{n} jours", "{n} jours"]


def test_english_numbers_percents_money_and_days():
    i18n.use_locale("en_US")
    assert (i18n.number(1234567), i18n.percent(0.1), i18n.percent(0.125)) == (
        "1,234,567",
        "10%",
        "12.5%",
    )
    assert i18n.money(1234.5) == "€1,234.50"
    assert i18n.day(date(2026, 12, 1)) == "December 1, 2026"
    assert i18n._("error") == "error"


def test_the_language_follows_the_workspace_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGMERGE_LANG")
    (tmp_path / "segmerge.toml").write_text('locale = "en_GB"\n[campaigns.x]\nbroken =', "utf-8")
    assert i18n.use_workspace_language(tmp_path) == "en"  # read even when the rest is broken
    (tmp_path / "segmerge.toml").write_text('timezone = "Europe/Paris"\n', "utf-8")
    assert i18n.use_workspace_language(tmp_path) == "fr"  # Segmerge's default locale
    (tmp_path / "segmerge.toml").unlink()
    for env, want in (
        ({"LANG": "fr_CA.UTF-8"}, "fr"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_ALL": "de_DE", "LANG": "fr_FR"}, "en"),
        ({}, "fr"),
    ):
        assert i18n.language_of(i18n.env_locale(env)) == want, env
    monkeypatch.setenv("SEGMERGE_LANG", "en")
    (tmp_path / "segmerge.toml").write_text('locale = "fr_FR"\n', "utf-8")
    assert i18n.use_workspace_language(tmp_path) == "en"
    i18n.use_locale("en")


# -- the commands ------------------------------------------------------------------------

#: English words no French sentence uses, and French words no English sentence uses
#: (whole words, lower case; ambiguous ones such as "on", "a", "as", "en" are left out)
ENGLISH = frozenset(
    [
        "the",
        "and",
        "is",
        "are",
        "not",
        "of",
        "with",
        "from",
        "this",
        "that",
        "was",
        "were",
        "has",
        "have",
        "be",
        "been",
        "for",
        "by",
        "into",
        "than",
        "when",
        "which",
        "would",
        "could",
        "should",
        "every",
        "each",
        "there",
        "their",
        "its",
        "yet",
        "only",
        "no",
        "none",
        "nothing",
        "here",
        "what",
        "rows",
        "skipped",
        "cannot",
        "must",
        "should",
        "will",
        "found",
        "missing",
    ]
)
FRENCH = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "est",
        "une",
        "pas",
        "pour",
        "avec",
        "dans",
        "aucun",
        "aucune",
        "sont",
        "aux",
        "depuis",
        "sur",
        "ou",
        "et",
        "rien",
        "lignes",
        "écrites",
        "déjà",
    ]
)


def _data_phrases(ws: Path) -> list[str]:
    """What the demo's own files say (segment names, labels, conditions): user data."""
    import yaml

    phrases = []
    for rules in (ws / "segrules").glob("*.yaml"):
        doc = yaml.safe_load(rules.read_text(encoding="utf-8"))
        phrases += [str(doc.get("exclude") or ""), str(doc.get("name") or "")]
        for s in doc.get("segments", []):
            phrases += [str(s.get(k) or "") for k in ("name", "label", "when")]
    return sorted({p for p in phrases if p}, key=len, reverse=True)


def stop_words(text: str, words: frozenset[str], data: list[str]) -> list[str]:
    """The lines of ``text`` holding one of ``words`` once user data, paths, identifiers,
    code and quoted values are taken out."""
    found = []
    for line in text.splitlines():
        prose = line.split("→")[0] if "→" in line else line  # explain: condition → value
        if "→" in line and re.match(r"^[\s│├└─]*", prose):
            prose = ""  # a condition of the rule set and its value: the user's own words
        for phrase in data:
            prose = prose.replace(phrase, " ")
        prose = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"|«[^»]*»|--[\w-]+|\S*[/\\@_=<>]\S*", " ", prose)
        hits = [w for w in re.findall(r"[^\W\d_]+", prose.lower()) if w in words]
        if hits:
            found.append(f"{line.strip()}    <- {', '.join(sorted(set(hits)))}")
    return found


def _invoke(args: list[str], cwd: Path, tree: Any = None) -> tuple[int, str]:
    """One `segmerge` command in process, through the same error printer as the real one;
    ``tree``: the app's click command, built once for a walk (as a process builds it once)
    rather than for each command."""
    import os

    import typer

    import bot
    from segmerge.cli.errors import run_cli

    app = tree if tree is not None else typer.main.get_command(bot.app)

    runner = CliRunner()
    old = Path.cwd()
    with runner.isolation() as (_stdout, _stderr, both):
        os.chdir(cwd)
        code = 0
        try:
            run_cli(lambda: app(args, prog_name="segmerge"))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.chdir(old)
        text = both.getvalue().decode()
    return code, text


#: (name, argv, expected exit code): each command of the demo, then its error paths
WALK = [
    ("segment", ["segment", "segrules/profils-vpc.yaml"], 0),
    ("segment csv", ["segment", "segrules/profils-vpc.yaml", "--format", "xml"], 2),
    ("explain", ["explain", "segrules/profils-vpc.yaml", "00045"], 0),
    ("rule typo", ["segment", "segrules/typo.yaml"], 2),
    ("run --dry-run", ["run", "profils", "--dry-run", "--as-of", "2026-12-01"], 0),
    ("validate", ["validate", "profils", "--as-of", "2026-12-01"], 0),
    ("report", ["report", "segrules/profils-vpc.yaml", "--as-of", "2026-12-01"], 0),
    ("history", ["history"], 0),
    ("run", ["run", "profils", "--as-of", "2026-12-01"], 0),
    ("kpi", ["kpi", "profils"], 0),
    ("history of a run", ["history", "profils@2026-12-01"], 0),
    ("test-send", ["test-send", "profils", "--to", "moi@example.org", "--as-of", "2026-12-01"], 0),
    ("run no campaign", ["run"], 2),
    ("connectors", ["connectors"], 0),
    ("suppress add", ["suppress", "add", "bounce@example.org"], 0),
    ("suppress add again", ["suppress", "add", "bounce@example.org"], 0),
    ("suppress list", ["suppress", "list"], 0),
    ("schedule add", ["schedule", "add", "profils", "0 9 * * MON"], 0),
    ("schedule list", ["schedule", "list"], 0),
    ("schedule remove", ["schedule", "remove", "profils"], 0),
    ("schedule remove toml", ["schedule", "remove", "profils"], 2),
    ("serve bad duration", ["serve", "--stop-grace", "soon"], 2),
    ("doctor", ["doctor"], 0),
    ("init not empty", ["init", "."], 2),
    ("init bad preset", ["init", "new", "--preset", "nope"], 2),
    ("help", ["--help"], 0),
    ("run --help", ["run", "--help"], 0),
    ("report --help", ["report", "--help"], 0),
    ("no such command", ["rn"], 2),
    ("no such option", ["run", "--nope"], 2),
    ("missing argument", ["explain"], 2),
    ("missing option", ["test-send", "profils"], 2),
    ("extra argument", ["segment", "a", "b"], 2),
    ("option needs a value", ["run", "--as-of"], 2),
    ("bad day", ["run", "profils", "--as-of", "31/31/2026"], 2),
]


def _walk(
    ws: Path, locale: str, mp: pytest.MonkeyPatch, ran: Path | None = None, run: Any = None
) -> dict[str, tuple[int, str]]:
    """Every command of :data:`WALK` in a workspace whose locale is ``locale``; then, with no
    workspace at all, the environment's language (``$LANG`` the same as the workspace).
    With ``ran`` and ``run``: ``run`` is the output of the walk's `run` (the session's
    shared run, tests/demo_fixtures.py), and the commands after it go on in ``ran``, a
    copy of the workspace it ran in."""
    texts = {root: _set_locale(root, locale) for root in {ws, ran or ws}}
    import bot

    tree = bot._tree()  # the process's one tree, as `segmerge` runs it: French help, then English
    seen: dict[str, tuple[int, str]] = {}
    here = ws
    for name, argv, _ in WALK:
        if name == "run" and run is not None and ran is not None:
            seen[name], here = (run.returncode, run.output), ran
            continue
        seen[name] = _invoke(argv, here, tree)
    mp.setenv("LANG", f"{locale}.UTF-8")
    seen["no workspace"] = _invoke(["doctor"], here / "segrules", tree)
    toml, text = here / "segmerge.toml", texts[here]
    toml.write_text(text.replace("[campaigns.", "[campaigns.broken]\nsource = 1\n\n[campaigns.", 1))
    seen["broken segmerge.toml"] = _invoke(["doctor"], here, tree)
    toml.write_text(text, encoding="utf-8")
    return seen


def _set_locale(ws: Path, locale: str) -> str:
    """Set ``locale`` in the workspace's segmerge.toml; its text."""
    toml = ws / "segmerge.toml"
    text = re.sub(r'(?m)^locale = ".*"$', f'locale = "{locale}"', toml.read_text(encoding="utf-8"))
    toml.write_text(text, encoding="utf-8")
    return text


TYPO = "version: 1\nname: typo\nsegments:\n  - name: vieux\n    when: agee > 60\n"


@pytest.fixture(scope="module")
def demo(demo_half, tmp_path_factory) -> Path:
    """The French walk's workspace before its run: the demo with half its customers
    (tests/demo_fixtures.py) cut to a tenth with its quirks (tests/test_cli_e2e.py
    ``cut``). Its commands say the same sentences about fewer rows; what only the whole
    half shows (a thousand contacts, addresses bounced or shared) the run's table says."""
    ws = cut(copy_of(demo_half, tmp_path_factory.mktemp("demo") / "boutique"), 110)
    (ws / "segrules" / "typo.yaml").write_text(TYPO, "utf-8")
    return ws


@pytest.fixture(scope="module")
def walked(demo, demo_ran, tmp_path_factory) -> Iterator[dict[str, dict[str, tuple[int, str]]]]:
    """The French walk up to `run` in ``demo``; its `run` is the session's shared run of the
    demo (made in French, the demo's locale) and it goes on in a copy of that workspace,
    where the English walk follows, as both did in one workspace (the run done)."""
    ran = copy_of(demo_ran.root, tmp_path_factory.mktemp("ran") / "boutique")
    (ran / "segrules" / "typo.yaml").write_text(TYPO, "utf-8")
    mp = pytest.MonkeyPatch()
    mp.delenv("SEGMERGE_LANG")  # the workspace chooses, as for a user
    mp.setenv("COLUMNS", "200")
    try:
        with one_core():  # no render worker to start for the demo's letters
            fr = _walk(demo, "fr_FR", mp, ran, demo_ran.ran)
            walks = {"fr": fr, "en": _walk(ran, "en_US", mp)}
        yield walks
    finally:
        mp.undo()
        i18n.use_locale("en")


#: English still printed in French output, each with the module that says it (connectors
#: say their notes through segmerge.ports' `_`, French in connectors.po)
LEFT: dict[str, list[tuple[str, str]]] = {"fr": [], "en": []}
#: contact data the demo's commands print (a region's name in report's mixes)
DATA = ["Grand Est"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_no_sentence_of_the_other_language_in_any_command(walked, demo, lang):
    words = ENGLISH if lang == "fr" else FRENCH
    data = _data_phrases(demo) + DATA
    left = [fragment for fragment, _ in LEFT[lang]]
    wrong, used = [], set()
    for name, (_code, text) in walked[lang].items():
        for line in stop_words(text, words, data):
            known = [f for f in left if f in line]
            used.update(known)
            if not known:
                wrong.append(f"{name}: {line}")
    assert not wrong, f"not in {lang}:\n" + "\n".join(wrong)
    assert used == set(left), f"translated now, take out of LEFT: {set(left) - used}"


def test_every_command_ends_the_same_way_in_both_languages(walked):
    expected = {name: code for name, _, code in WALK} | {
        "no workspace": 2,
        "broken segmerge.toml": 2,
    }
    for lang in ("fr", "en"):
        got = {name: code for name, (code, _) in walked[lang].items()}
        assert got == expected, lang


def test_french_output_is_set_the_french_way(walked):
    fr, en = walked["fr"], walked["en"]
    _, segment = fr["segment"]
    assert re.search(r"\d contacts au \d+(er)? [a-zéû]+ \d{4}\n", segment)  # the day in words
    assert re.search(rf"\d,\d{NNBSP}%", segment) and not re.search(r"\d\.\d\s?%", segment)
    _, ran = fr["run"]  # the halved demo's run: a thousand contacts read
    assert re.search(rf"contacts\s+│\s+1{NNBSP}125 │", ran), ran
    _, missing = fr["no workspace"]
    assert f"erreur{NNBSP}: pas de segmerge.toml dans" in missing
    assert f"conseil{NNBSP}: lancez `segmerge init DOSSIER`" in missing
    _, broken = fr["broken segmerge.toml"]  # chosen before the workspace is validated
    assert f"campaigns.broken.source{NNBSP}: attendu{NNBSP}: du texte" in broken
    _, dry = fr["run --dry-run"]
    assert "[à blanc] profils@2026-12-01" in dry and f"ferait{NNBSP}: envoi" in dry
    assert "error: no segmerge.toml in" in en["no workspace"][1]
    assert "1,125 contacts, as of " in en["segment"][1]
    assert "would do: send" in en["run --dry-run"][1]


def test_a_french_workspace_pulling_a_platform_reads_the_connector_s_notes_in_french(tmp_path):
    """A Brevo pull against the loopback fake: the notes the connector makes (how much it
    read, what it left out) are French for a French workspace, with French numbers."""
    from tests.brevo_setup import make, serve

    for fake in serve():
        fake.add_contact("ana@example.org", attributes={"PRENOM": "Ana"})
        base = {
            "createdAt": "2026-11-20T10:00:00.000Z",
            "updatedAt": "2026-11-20T10:00:00.000Z",
            "status": "completed",
            "products": [{"productId": "P1", "quantity": 1, "price": 5}],
        }
        fake.orders = [{**base, "id": "X", "amount": 5, "email": "nobody@example.org"}]
        i18n.use_locale("fr_FR")
        try:
            notes = make(fake, tmp_path, events="none").pull().notes
        finally:
            i18n.use_locale("en")
        text = "\n".join(notes)
        assert "lecture complète, 1 contact(s)" in text, text
        assert "1 commande(s) dont l'acheteur n'est pas un contact Brevo écartée(s)" in text
        assert not stop_words(text, ENGLISH, []), text
