"""The rules that keep the layout readable, run with the rest of the suite (and so in CI).

docs/architecture.md describes the packages and their layers; pyproject.toml's
``[tool.importlinter]`` states them as contracts. These tests fail when a change
breaks a layer, adds a cycle between sibling modules, grows a module past what a
reader takes in at once, or brings back a flat module path of Segmerge 0.1.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from importlinter.application import use_cases
from importlinter.configuration import configure

from segmerge.legacy import MOVED

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 12


def _engine_files() -> list[Path]:
    files = sorted((ROOT / "segmerge").rglob("*.py")) + sorted((ROOT / "connectors").rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def _too_long() -> set[str]:
    long = set()
    for path in _engine_files():
        with path.open(encoding="utf-8") as f:
            if sum(1 for _ in f) > MAX_LINES:
                long.add(path.relative_to(ROOT).as_posix())
    return long


def test_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    """Layers, sibling cycles, connectors through segmerge.ports only, the terminal in the CLI only."""
    # In-process, below importlinter.cli, whose entry point reconfigures the process's logging
    # (silencing every logger the other tests read) and prepends the cwd to sys.path.
    configure()
    kept = use_cases.lint_imports(
        config_filename=str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True
    )
    report = capsys.readouterr().out
    assert kept, report


def test_no_module_over_400_lines() -> None:
    assert _too_long() == set()


def test_segmerge_top_level_stays_small() -> None:
    """Everything but the few shared leaves (errors, i18n, redact…) lives in a package."""
    top = sorted(p.name for p in (ROOT / "segmerge").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every dotted module name an import statement may load, with its line."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            # `from segmerge import pipeline` loads the module segmerge.pipeline
            names += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append((node.lineno, node.args[0].value))
    return names


#: text without which no import statement can load an old path: ``segmerge.<old name>``
#: (``import``, ``from … import``, ``import_module``), or ``from segmerge import``
MAY_IMPORT_OLD = re.compile(
    r"\bsegmerge\s*\.\s*(?:"
    + "|".join(re.escape(k.split(".", 1)[1]) for k in sorted(MOVED, key=len, reverse=True))
    + r")\b|\bfrom\s+segmerge\s+import\b"
)


def test_no_old_flat_module_path_is_imported() -> None:
    """The engine, the connectors and bot.py use the packages, never segmerge.legacy's names.

    Only the files whose text may hold such an import are parsed: parsing all of them
    cost more than a second of CPU, for the ten that name an old path or `from segmerge`."""
    sources = [*_engine_files(), ROOT / "bot.py"]
    found = []
    for path in sources:
        if path == ROOT / "segmerge" / "legacy.py":
            continue
        text = path.read_text(encoding="utf-8")
        if not MAY_IMPORT_OLD.search(text):
            continue
        tree = ast.parse(text, filename=str(path))
        for line, name in _imported_names(tree):
            if name in MOVED:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name} -> {MOVED[name]}")
    assert found == []


def test_old_path_check_sees_an_old_import() -> None:
    """The scan above would see each way of importing an old path."""
    ways = [
        "import segmerge.pipeline\n",
        "from segmerge import (\n    render_pool,\n)\n",
        "from segmerge . campaign import run\n",
        "importlib.import_module('segmerge.kpi')\n",
    ]
    assert all(MAY_IMPORT_OLD.search(way) for way in ways)  # the files are parsed
    assert not MAY_IMPORT_OLD.search("from segmerge.run import campaign\n")
    tree = ast.parse("".join(ways))
    seen = {name for _, name in _imported_names(tree)} & MOVED.keys()
    assert seen == {
        "segmerge.pipeline",
        "segmerge.render_pool",
        "segmerge.campaign",
        "segmerge.kpi",
    }
