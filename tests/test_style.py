"""The code's own rules, run by the README's test command so CI holds them: the formatter
owns the layout, the linter finds slips, and the engine type-checks."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_the_formatter_has_nothing_to_change() -> None:
    done = _tool("ruff", "format", "--check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_finds_nothing() -> None:
    done = _tool("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_engine_type_checks() -> None:
    """`mypy segmerge`, as a developer runs it: its cache is the clone's .mypy_cache,
    which makes the next run (the suite's or the developer's) take a second."""
    done = _tool("mypy", "segmerge")
    assert done.returncode == 0, done.stdout + done.stderr


def _skipped_by_mypy() -> set[str]:
    """The packages pyproject.toml tells mypy not to analyse (``follow_imports = skip``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {
        module.removesuffix(".*")
        for override in config["tool"]["mypy"].get("overrides", [])
        if override.get("follow_imports") == "skip"
        for module in override["module"]
    }


def test_mypy_skips_only_libraries_the_engine_does_not_import() -> None:
    """A library mypy skips is Any to its importers: were segmerge to import one, its
    calls would go unchecked. Those skipped are reached only through other libraries."""
    skipped = _skipped_by_mypy()
    assert skipped  # the check reads the configuration
    # a regular expression, not ast: parsing the engine costs half a second of CPU
    importing = re.compile(
        r"^\s*(?:import|from)\s+(?:" + "|".join(map(re.escape, sorted(skipped))) + r")\b",
        re.M,
    )
    found = [
        f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
        for path in sorted((ROOT / "segmerge").rglob("*.py"))
        for m in importing.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
    assert importing.search("x = 1\nfrom PIL import Image\n")  # the pattern sees one


def test_no_formatter_escape_hatch_is_left() -> None:
    """The formatter's skip and off comments hand the layout back to hands: none are left."""
    marker = "# fmt" + ": "
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("segmerge", "connectors", "tests", "benchmarks", "examples", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if marker + "skip" in line or marker + "off" in line
    ] + [
        f"bot.py:{n}"
        for n, line in enumerate((ROOT / "bot.py").read_text(encoding="utf-8").splitlines(), 1)
        if marker + "skip" in line or marker + "off" in line
    ]
    assert not found, found
