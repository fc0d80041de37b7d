"""The suite runs the command line in English, and never with the machine's keyring.

Its assertions quote English messages; French output is tested on purpose in
tests/test_language.py (which sets SEGMERGE_LANG itself). A credential a test
stores or looks up must not reach (or come from) the user's real keyring: the
null backend answers "none", as on a server without one. Subprocesses inherit both.

Running the command: :func:`cli.segmerge` (tests/cli.py) runs it in this process;
:data:`cli.SCRIPT` is the console script for the tests that need a real process.
"""

from __future__ import annotations

import compileall
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

if TYPE_CHECKING:
    from forked_cli import ForkServer

os.environ["SEGMERGE_LANG"] = "en"
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"

# a real PostgreSQL for the tests that take the `postgres_server` fixture (tests/postgres.py);
# SEGMERGE_TEST_CPU=FILE: each test's CPU time, children included (tests/cpu_ledger.py);
# the demo workspace made, and its campaign run, once per session (tests/demo_fixtures.py);
# one Chromium for the tests that take the `browser` fixture (tests/browser.py)
pytest_plugins = ["tests.postgres", "tests.cpu_ledger", "tests.demo_fixtures", "tests.browser"]


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """The one process the crash tests fork their `segmerge` runs from (tests/forked_cli.py):
    its imports, about two seconds of CPU, are paid once a session instead of once a test.
    Its CPU, children included, is booked under tests/forked_cli.py (tests/cpu_ledger.py)."""
    from forked_cli import ForkServer

    from tests.cpu_ledger import book, cpu

    server = ForkServer()
    try:
        yield server
    finally:
        start = cpu()
        server.close()  # its CPU and its children's count from here
        book("tests/forked_cli.py::fork_server", "teardown", start)


def pytest_configure(config: pytest.Config) -> None:
    _compile_the_code_once()
    _skip_rewriting_hypothesis(config)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    """Importing every test module makes some 270,000 objects that live as long as the
    session (modules, functions, fixtures, parametrized ids): the cyclic garbage collector
    walked them all again at each of its full passes, about 20 while the modules were
    imported (~4 s of CPU). It is paused while they are imported and makes one full pass
    after; the survivors are frozen (:func:`gc.freeze`) so that the tests' own passes skip
    them, until a run's step ends (segmerge.heap gives every frozen object back then)."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()


def _compile_the_code_once() -> None:
    """With PYTHONDONTWRITEBYTECODE set (as on our CI machines), no process writes the
    bytecode of Segmerge's own modules (an editable install has none), so every
    `segmerge`, `serve`, fork server and render worker the suite starts compiles them
    from source again. Compiled once here, each of them reads the cached bytecode,
    which Python checks against the source's size and time, so an edit is never missed."""
    if not sys.dont_write_bytecode:
        return  # the first process to import a module writes its bytecode
    root = Path(__file__).resolve().parents[1]
    for folder in ("segmerge", "connectors"):
        compileall.compile_dir(root / folder, quiet=2)
    compileall.compile_file(root / "bot.py", quiet=2)


def _skip_rewriting_hypothesis(config: pytest.Config) -> None:
    """Hypothesis ships a pytest plugin, so pytest would rewrite the asserts of its whole
    package (some 75 modules, over a second of CPU at every start) for failure messages
    of Hypothesis's internal checks; the tests' own asserts are rewritten as before."""
    hook = config.pluginmanager.rewrite_hook
    if isinstance(hook, AssertionRewritingHook):
        hook._must_rewrite.discard("hypothesis")
        hook._marked_for_rewrite_cache.clear()
