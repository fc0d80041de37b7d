"""Every command documents itself with an example, and the README names only real commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cli import SCRIPT, segmerge

COMMANDS = [
    "init",
    "validate",
    "segment",
    "explain",
    "render",
    "run",
    "history",
    "connectors",
    "auth",
    "suppress",
]


def _help(*args: str) -> str:
    proc = segmerge(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_top_level_help_lists_every_command():
    """The installed console script itself, once in the suite: the other commands' tests
    run its entry point in this process (tests/cli.py)."""
    proc = subprocess.run(
        [SCRIPT, "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for cmd in COMMANDS:
        assert re.search(rf"\b{cmd}\b", text), cmd


def test_each_command_has_an_example_and_workspace_option():
    for cmd in ["validate", "segment", "explain", "render", "run", "history"]:
        text = _help(cmd)
        assert "Example" in text, cmd
        assert "--workspace" in text, cmd


def test_readme_commands_exist():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    used = set(re.findall(r"^segmerge (\w[\w-]*)", readme, flags=re.M))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)


def test_unknown_option_is_usage_error_exit_2():
    proc = segmerge("run", "--bogus")
    assert proc.returncode == 2 and "--bogus" in proc.stderr
