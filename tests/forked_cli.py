"""Real `segmerge` processes to kill -9, forked from one that has already imported the CLI.

Why: the crash tests start a `segmerge run` only to kill it while it sends or
pushes; a fresh interpreter spends about two seconds of CPU importing pandas,
pyarrow, jinja2 and the engine before the first line of the run, which was most
of what these tests cost. A :class:`Forks` is one Python process (started per
test, and waited for, so its CPU and its children's count for that test) that
imports the console script's module and what a run needs, then forks one child
per command. Each child is a real process of its own: it runs ``bot.main()`` as
the console script does, with its own argv, environment, working folder and
ledger connection, and a SIGKILL ends it as abruptly as it ends any process.
Nothing of a run happens before the fork (imports only), so what a child does and
leaves behind is what a fresh ``segmerge run`` does and leaves behind.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from cli import SCRIPT, script_env

#: what a `segmerge run` imports before it pulls anything (bot imports a command's modules lazily)
PRELOAD = ("bot", "segmerge.run.pipeline", "segmerge.run.checks")

_SERVER = r"""
import importlib, json, os, signal, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
for where, value in json.loads(sys.argv[2]).items():
    path, attr = where.rsplit(".", 1)
    owner, rest = None, path.split(".")
    while owner is None:
        try:
            owner = importlib.import_module(".".join(rest))
        except ModuleNotFoundError:
            rest = rest[:-1]
    for name in path.split(".")[len(rest):]:
        owner = getattr(owner, name)
    setattr(owner, attr, value)
import bot
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            out = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.environ.update(req["env"])
            os.chdir(req["cwd"])
            sys.argv = req["argv"]
            try:
                bot.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Child:
    """One forked `segmerge` command: ``poll``/``wait``/``kill`` as on ``subprocess.Popen``."""

    def __init__(self, pid: int, answers: queue.Queue[int]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._answers = answers

    def poll(self) -> int | None:
        if self.returncode is None:
            with suppress(queue.Empty):
                self.returncode = self._answers.get_nowait()
        return self.returncode

    def wait(self, timeout: float = 120) -> int:
        if self.returncode is None:
            self.returncode = self._answers.get(timeout=timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL, unless it has already ended (its parent reaps it only after we read that)."""
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


class Forks:
    """The forking process; use :func:`forks`. One command at a time."""

    def __init__(
        self,
        env: Mapping[str, str],
        log: Path,
        preload: Sequence[str],
        constants: Mapping[str, Any],
    ) -> None:
        self.env = dict(env)
        self.log = log
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, json.dumps(list(preload)), json.dumps(dict(constants))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=script_env(**self.env),
            text=True,
        )
        self._answers: queue.Queue[int] = queue.Queue()
        self._child: Child | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._answers.put(int(line))

    def start(self, *args: str, cwd: Path | None = None) -> Child:
        """``segmerge ARGS`` in a new child; returns once it exists (its pid is known)."""
        assert self._proc.stdin is not None
        request = {
            "argv": [SCRIPT, *args],
            "env": self.env,
            "cwd": str(cwd or Path.cwd()),
            "log": str(self.log),
        }
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        self._child = Child(self._answers.get(timeout=120), self._answers)
        return self._child

    def close(self) -> None:
        """Wait for the forking process; a child left running (a test that failed midway)
        is killed first, so that nothing outlives the test."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=120)
        self._reader.join(timeout=10)


@contextmanager
def forks(
    log: Path,
    preload: Sequence[str] = PRELOAD,
    constants: Mapping[str, Any] | None = None,
    **env: str,
) -> Iterator[Forks]:
    """A :class:`Forks` whose children get ``env`` (over :func:`cli.script_env`) and write
    their stdout and stderr to ``log``; it ends, waited for, with the block. ``constants``
    ("module.NAME" or "module.Class.NAME" -> value) are set in every child, as
    ``monkeypatch.setattr`` would in this process (the size of a run's chunk of letters,
    a destination's batch size)."""
    f = Forks(env, log, preload, constants or {})
    try:
        yield f
    finally:
        f.close()
