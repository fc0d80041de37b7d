"""tests/cli.py runs `segmerge` in this process as the console script would, and leaves
the process as it found it: the suite's other tests trust both."""

from __future__ import annotations

import os
from pathlib import Path

from cli import segmerge

from segmerge.i18n import lang


def test_a_users_mistake_is_exit_2_on_stderr_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    ran = segmerge("init", str(tmp_path))
    assert ran.returncode == 2
    assert ran.stdout == "" and "not empty" in ran.stderr and "Traceback" not in ran.stderr
    usage = segmerge("run", "--bogus")
    assert usage.returncode == 2 and "--bogus" in usage.stderr


def test_a_command_leaves_no_language_folder_or_environment_behind(tmp_path: Path) -> None:
    before = os.getcwd(), dict(os.environ), lang()
    ran = segmerge("init", str(tmp_path / "shop"), cwd=tmp_path, env={"SEGMERGE_LANG": "fr"})
    assert ran.returncode == 0, ran.output
    assert "Espace de travail créé dans" in ran.stdout  # the command spoke French...
    assert (os.getcwd(), dict(os.environ), lang()) == before  # ...the suite still English
