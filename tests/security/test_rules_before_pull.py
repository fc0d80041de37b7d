"""A broken rule set fails before the source is read: on a platform a pull costs minutes and
API quota, and the fix (a typo at line 5) needs none of it. Every command that reads a rule
set is run in-process on the demo's files source, whose reads are recorded."""

from __future__ import annotations

import shutil

import pytest
from cli import segmerge
from test_bad_rules import AS_OF, RULES
from test_bad_rules import pristine as pristine  # the same club workspace, this module's own

import connectors.files as files
import connectors.files_duckdb_source as files_duckdb_source

COMMANDS = {
    "validate": ["validate", "club"],
    "run": ["run", "club"],
    "preview": ["render", "club", "--contact", "C0001"],
    "segment": ["segment", RULES],
    "explain": ["explain", RULES, "C0001"],
}


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """What the files source was asked for: a pull, a DuckDB plan, or the scan deciding it."""
    seen: list[str] = []

    def recorded(name, original):
        def call(*args, **kwargs):
            seen.append(name)
            return original(*args, **kwargs)

        return call

    monkeypatch.setattr(files.FilesConnector, "pull", recorded("pull", files.FilesConnector.pull))
    execute = files.FilesConnector.execute
    monkeypatch.setattr(files.FilesConnector, "execute", recorded("execute", execute))
    monkeypatch.setattr(
        files_duckdb_source, "decide", recorded("decide", files_duckdb_source.decide)
    )
    return seen


@pytest.mark.parametrize("engine", ["pandas", "auto"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_broken_rule_set_fails_before_the_source_is_read(
    pristine, tmp_path, reads, command, engine
):
    root = tmp_path / "ws"
    shutil.copytree(pristine, root)
    config = root / "segmerge.toml"
    config.write_text(
        config.read_text().replace(
            'on_bad_rows = "skip"', f'on_bad_rows = "skip"\nengine = "{engine}"'
        )
    )
    (root / RULES).write_text(
        "version: 1\nsegments:\n  - name: vip\n    when: orders_count >=\n", encoding="utf-8"
    )
    proc = segmerge(*COMMANDS[command], "--as-of", AS_OF, "-w", str(root), cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{root / RULES}:4:" in proc.stderr and "Traceback" not in proc.stderr
    assert reads == []
    assert not list((root / "outbox").rglob("*.eml"))


def test_a_sound_rule_set_still_reads_the_source_once(pristine, tmp_path, reads):
    """The recorder sees reads: the test above could fail."""
    root = tmp_path / "ws"
    shutil.copytree(pristine, root)
    config = root / "segmerge.toml"
    config.write_text(
        config.read_text().replace(
            'on_bad_rows = "skip"', 'on_bad_rows = "skip"\nengine = "pandas"'
        )
    )
    proc = segmerge("validate", "club", "--as-of", AS_OF, "-w", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert reads == ["pull"]


@pytest.mark.parametrize("command", ["run", "preview"])
def test_a_letter_that_does_not_compile_fails_before_the_source_is_read(
    pristine, tmp_path, reads, command
):
    """A template's syntax needs no data: checked with the rule set, before the pull."""
    root = tmp_path / "ws"
    shutil.copytree(pristine, root)
    config = root / "segmerge.toml"
    engine = 'on_bad_rows = "skip"\nengine = "pandas"'
    config.write_text(config.read_text().replace('on_bad_rows = "skip"', engine))
    letter = root / "templates" / "club" / "_default.html.j2"
    letter.write_text(letter.read_text().replace("{{ unsubscribe_url }}", "{{ unsubscribe_url "))
    proc = segmerge(*COMMANDS[command], "--as-of", AS_OF, "-w", str(root), cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "_default.html.j2" in proc.stderr and "Traceback" not in proc.stderr
    assert reads == []
