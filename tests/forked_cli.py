"""Real `segmerge` processes to kill -9, forked from one that has already imported the CLI.

Why: the crash tests start a `segmerge run` only to kill it while it sends or
pushes; a fresh interpreter spends about two seconds of CPU importing pandas,
pyarrow, jinja2 and the engine before the first line of the run, which was most
of what these tests cost. A :class:`ForkServer` is one Python process (started
once a session by the ``fork_server`` fixture of tests/conftest.py, and waited
for at its end, so its CPU and its children's count for the suite) that imports
the console script's module and what a run needs, then forks one child per
command. Each child is a real process of its own: it sets its constants, its
whole environment, working folder and argv, then runs ``bot.main()`` as the
console script does, with its own ledger connection, and a SIGKILL ends it as
abruptly as it ends any process. Nothing of a run happens before the fork
(imports only), so what a child does and leaves behind is what a fresh
``segmerge run`` does and leaves behind, whichever test's children came before.

The serve tests (tests/test_serve.py) fork their `segmerge serve` the same way: a
child's ``PYTHONPATH`` (a plugin's folder) goes on its import path as a fresh
interpreter's would, and ``cpus`` pins it (and what it starts) to those cores.

Its CPU reaches the suite's count when the server is waited for, at the end of
the session; tests/cpu_ledger.py books it under ``tests/forked_cli.py::fork_server``
(not on the teardown of whichever test came last).
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
import bot


def set_constants(constants):
    for where, value in constants.items():
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


for line in sys.stdin:
    req = json.loads(line)
    for name in req["preload"]:  # once: the next test's children find them imported
        importlib.import_module(name)
    # the log exists once the test knows the child's pid: it may read it at once
    out = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.environ.clear()
            os.environ.update(req["env"])
            # its PYTHONPATH on the import path, as a fresh interpreter puts it (a plugin's
            # folder: its entry points are found through importlib.metadata)
            extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            sys.path[1:1] = [p for p in extra if p not in sys.path]
            importlib.invalidate_caches()
            if req["cpus"]:
                os.sched_setaffinity(0, req["cpus"])
            os.chdir(req["cwd"])
            set_constants(req["constants"])
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
    os.close(out)
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


class ForkServer:
    """The forking process, shared by the session's crash tests; one command at a time."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=script_env(),
            text=True,
        )
        self.answers: queue.Queue[int] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.answers.put(int(line))

    def fork(self, request: Mapping[str, Any]) -> Child:
        """Send one command; returns once its child exists (its pid is known)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return Child(self.answers.get(timeout=120), self.answers)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=120)
        self._reader.join(timeout=10)


class Forks:
    """One test's commands on the shared :class:`ForkServer`; use :func:`forks`."""

    def __init__(
        self,
        server: ForkServer,
        env: Mapping[str, str],
        log: Path,
        preload: Sequence[str],
        constants: Mapping[str, Any],
        cpus: set[int] | None = None,
    ) -> None:
        self.server = server
        self.cpus = sorted(cpus) if cpus else []
        self.env = script_env(**env)
        self.log = log
        self.preload = list(preload)
        self.constants = dict(constants)
        self._child: Child | None = None

    def start(self, *args: str, cwd: Path | None = None) -> Child:
        """``segmerge ARGS`` in a new child; returns once it exists (its pid is known)."""
        request = {
            "argv": [SCRIPT, *args],
            "env": self.env,
            "cwd": str(cwd or Path.cwd()),
            "log": str(self.log),
            "preload": self.preload,
            "constants": self.constants,
            "cpus": self.cpus,
        }
        self._child = self.server.fork(request)
        return self._child

    def close(self) -> None:
        """A child left running (a test that failed midway) is killed and waited for, so
        that nothing outlives the test and the next test reads its own children's ends."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()


@contextmanager
def forks(
    server: ForkServer,
    log: Path,
    preload: Sequence[str] = PRELOAD,
    constants: Mapping[str, Any] | None = None,
    **env: str,
) -> Iterator[Forks]:
    """:class:`Forks` on ``server`` (the ``fork_server`` fixture) whose children get ``env``
    (over :func:`cli.script_env`, read now) and write their stdout and stderr to ``log``;
    ``preload`` is imported by the server before the first of them. ``constants``
    ("module.NAME" or "module.Class.NAME" -> value) are set in every child, as
    ``monkeypatch.setattr`` would in this process (the size of a run's chunk of letters,
    a destination's batch size)."""
    f = Forks(server, env, log, preload, constants or {})
    try:
        yield f
    finally:
        f.close()
