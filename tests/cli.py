"""The `segmerge` command run inside the test process, as the console script runs it.

Why: each `segmerge` subprocess imports pandas, jinja2, babel and the engine again,
about a second of CPU before the command even starts; the suite spawned hundreds.
:func:`segmerge` goes through ``bot.main`` (the console script's entry point), so
a test still sees what a user sees: the exit code (2 for a user's mistake, 1 for a
failed run or a bug), stdout and stderr apart, redaction of both, and no traceback
unless ``--traceback``. What ``main`` changes in the process for one command is put
back after it: the streams, ``sys.argv``, the environment, the working folder, the
command's language, the secrets it registered for redaction, the exception hook
Typer installs and the root logger's handlers.

Keep a real process (:data:`SCRIPT`) where the process is the point: kill -9 and
resume, ``serve`` and its children, signals, the console script itself, a fresh
interpreter's imports or environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from segmerge import redact
from segmerge.i18n import lang, use_locale

#: the installed console script, for the tests that need a real `segmerge` process
SCRIPT = str(Path(sys.executable).parent / "segmerge")

#: never the machine's keyring (tests/conftest.py sets it for the whole run too)
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def script_env(**extra: str) -> dict[str, str]:
    """The environment of a real `segmerge` process: no keyring, wide tables, ``extra``."""
    return {**os.environ, **NO_KEYRING, "COLUMNS": "200", **extra}


@dataclass(frozen=True)
class Ran:
    """A finished command, named like ``subprocess.CompletedProcess`` so tests read the same."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    #: stdout and stderr interleaved as a terminal shows them
    output: str

    @property
    def exit_code(self) -> int:
        """As Typer's ``Result`` names it, for tests written against ``CliRunner``."""
        return self.returncode


def segmerge(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
    check: bool = False,
) -> Ran:
    """``segmerge ARGS`` in this process. ``env`` adds to (None: removes from) the
    environment, over ``COLUMNS=200``; ``check`` fails the test on a non-zero exit."""
    import bot  # the CLI's import is the test's, not conftest's: collection stays light

    before = _Process()
    runner = CliRunner()
    code = 0
    try:
        with runner.isolation(input=input, env={"COLUMNS": "200", **(env or {})}) as streams:
            sys.argv = [SCRIPT, *args]
            if cwd is not None:
                os.chdir(cwd)
            redact.clear()  # a fresh process knows no secret yet
            try:
                bot.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            stdout, stderr, output = (s.getvalue().decode("utf-8", "replace") for s in streams)
    finally:
        before.restore()
    ran = Ran(args, code, stdout, stderr, output)
    if check and code != 0:
        raise AssertionError(f"segmerge {' '.join(args)}: exit {code}\n{ran.stdout}\n{ran.stderr}")
    return ran


class _Process:
    """What one command may change in the process, saved before it and put back after."""

    def __init__(self) -> None:
        self.argv = sys.argv[:]
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.lang = lang()
        self.excepthook = sys.excepthook
        self.handlers = logging.root.handlers[:]
        self.level = logging.root.level

    def restore(self) -> None:
        sys.argv = self.argv
        if dict(os.environ) != self.environ:  # nothing sets one today; a leak would be silent
            os.environ.clear()
            os.environ.update(self.environ)
        os.chdir(self.cwd)
        use_locale(self.lang)
        redact.clear()  # the command's secrets die with it, as with its process
        sys.excepthook = self.excepthook
        logging.root.handlers[:] = self.handlers
        logging.root.setLevel(self.level)
