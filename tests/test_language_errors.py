"""Every error a French user can meet reads in French (issue 16, "every error in one language").

tests/test_language.py walks the demo, which never meets most errors: a bad rule set, a
broken template, an unknown source. Here a scan of the code fails on any ``X(...)`` (raised,
or made and returned to be raised) of a :class:`segmerge.errors.SegmergeError` (or a
subclass, the connectors' own too, and the errors whose words become one) whose
message or ``hint=`` is an English literal or f-string the catalogs can never translate; a
``_()``/``ngettext()`` call (with ``.format()``) or a variable passes. Then a few
representative errors are read through the CLI in a French workspace.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_language import ENGLISH, _invoke, _sources, stop_words  # pytest's own module: its cache

import segmerge.errors
from segmerge import i18n
from segmerge.i18n import NNBSP

ROOT = Path(__file__).parents[1]

# -- the scan ----------------------------------------------------------------------------


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


#: not SegmergeErrors, but their message becomes one word for word (a rule set's RuleError,
#: a template's TemplateError), so they are written in the user's language too
CARRIERS = {"ExprError", "FilterError", "MissingValue", "RenderLimit"}


def _error_names(trees: dict[Path, ast.Module]) -> set[str]:
    """segmerge.errors' classes, then every class anywhere that derives from one, by name."""
    names = CARRIERS | {
        name
        for name, obj in vars(segmerge.errors).items()
        if inspect.isclass(obj) and issubclass(obj, segmerge.errors.SegmergeError)
    }
    classes = [
        (node.name, {_base_name(b) for b in node.bases})
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]
    grew = True
    while grew:
        grew = False
        for name, bases in classes:
            if name not in names and bases & names:
                names.add(name)
                grew = True
    return names


def _untranslated(node: ast.expr | None) -> bool:
    """A sentence no catalog can translate: a literal, an f-string, or one built from them."""
    if node is None:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(node.value.strip())
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):  # "a" + b, "%s" % x
        return _untranslated(node.left) or _untranslated(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format" and _untranslated(node.func.value)  # "{x}".format()
    return False


def untranslated_errors() -> list[str]:
    """file:line of each SegmergeError made with an English literal message or hint."""
    trees = {
        path: tree for path, _text, tree, _calls, _strings in _sources()
    }  # parsed once for both files
    errors = _error_names(trees)
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):  # raised, or made and returned to be raised
                continue
            call = node
            if _base_name(call.func) not in errors:
                continue
            what = []
            if call.args and _untranslated(call.args[0]):
                what.append("message")
            hint = next((k.value for k in call.keywords if k.arg == "hint"), None)
            if hint is None and _base_name(call.func) == "ExprError" and len(call.args) > 2:
                hint = call.args[2]  # ExprError(message, offset, hint)
            if _untranslated(hint):
                what.append("hint")
            if what:
                rel = path.relative_to(ROOT)
                found.append(f"{rel}:{node.lineno}: {_base_name(call.func)} ({', '.join(what)})")
    return sorted(found)


def test_every_error_a_user_can_meet_goes_through_the_catalogs():
    found = untranslated_errors()
    assert not found, f"{len(found)} errors still speak English only:\n" + "\n".join(found)


def test_the_scan_sees_literals_and_f_strings_but_not_translated_sentences():
    """The scan itself can fail: an English literal is caught, ``_()`` is not."""
    tree = ast.parse(
        "raise ConfigError('bad', hint=f'fix {x}')\n"
        "raise ConfigError(_('bad {x}').format(x=1), hint=_('fix'))\n"
        "raise ConfigError(message)\n"
        "raise ConfigError('bad {x}'.format(x=1))\n"
    )
    raises = [n.exc for n in ast.walk(tree) if isinstance(n, ast.Raise)]
    assert isinstance(raises[0], ast.Call) and isinstance(raises[3], ast.Call)
    flagged = [
        _untranslated(c.args[0] if c.args else None)
        or _untranslated(next((k.value for k in c.keywords if k.arg == "hint"), None))
        for c in raises
        if isinstance(c, ast.Call)
    ]
    assert flagged == [True, False, False, True]


# -- read through the CLI in a French workspace ------------------------------------------


@pytest.fixture(scope="module")
def boutique(tmp_path_factory) -> Iterator[Path]:
    """The demo workspace (locale fr_FR), the workspace choosing the language as for a user."""
    mp = pytest.MonkeyPatch()
    mp.delenv("SEGMERGE_LANG")
    ws = tmp_path_factory.mktemp("fr") / "boutique"
    try:
        code, text = _invoke(["init", str(ws)], ws.parent)
        assert code == 0, text
        yield ws
    finally:
        mp.undo()
        i18n.use_locale("en")


def _french(code: int, text: str) -> str:
    """The error, checked to be one in plain French: exit 2, no traceback, no English word."""
    assert code == 2, text
    assert "Traceback" not in text
    assert stop_words(text, ENGLISH, []) == [], text
    return text


def test_a_rule_set_expression_error_reads_in_french(boutique):
    rules = boutique / "segrules" / "mauvaise.yaml"
    rules.write_text(
        "version: 1\nname: mauvaise\nsegments:\n  - name: vieux\n"
        "    when: date('2026-13-01') < today()\n",
        encoding="utf-8",
    )
    text = _french(*_invoke(["segment", "segrules/mauvaise.yaml"], boutique))
    assert f"mauvaise.yaml:5:16: segment 'vieux', condition `when`{NNBSP}: " in text
    assert f"date invalide '2026-13-01'{NNBSP}; un vrai jour est attendu" in text


def test_a_template_error_reads_in_french_with_its_hint(boutique):
    letter = boutique / "templates" / "profils-vpc" / "decouvreurs.html.j2"
    good = letter.read_text(encoding="utf-8")
    letter.write_text(good.replace("{{ contact.first_name", "{{ contcat.first_name", 1), "utf-8")
    try:
        text = _french(*_invoke(["validate", "profils", "--as-of", "2026-12-01"], boutique))
    finally:
        letter.write_text(good, encoding="utf-8")
    assert f"decouvreurs.html.j2:2: contcat{NNBSP}: variable inconnue 'contcat'" in text
    assert f"conseil{NNBSP}: vouliez-vous dire 'contact'{NNBSP}? un gabarit voit{NNBSP}: " in text


def test_an_unknown_source_in_segmerge_toml_reads_in_french(boutique):
    toml = boutique / "segmerge.toml"
    good = toml.read_text(encoding="utf-8")
    toml.write_text(
        good.replace('[campaigns.rfm]\nsource = "demo"', '[campaigns.rfm]\nsource = "demos"')
    )
    try:
        text = _french(*_invoke(["validate", "rfm"], boutique))
    finally:
        toml.write_text(good, encoding="utf-8")
    assert f"campaigns.rfm.source{NNBSP}: source inconnue 'demos' (sources{NNBSP}: demo)" in text
