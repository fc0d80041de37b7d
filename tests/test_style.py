"""The code's own rules, run by the README's test command so CI holds them: the formatter
owns the layout, the linter finds slips, and the engine type-checks."""

from __future__ import annotations

import subprocess
import sys
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
    done = _tool("mypy", "segmerge")
    assert done.returncode == 0, done.stdout + done.stderr


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
