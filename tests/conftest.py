"""The suite runs the command line in English, and never with the machine's keyring.

Its assertions quote English messages; French output is tested on purpose in
tests/test_language.py (which sets SEGMERGE_LANG itself). A credential a test
stores or looks up must not reach (or come from) the user's real keyring: the
null backend answers "none", as on a server without one. Subprocesses inherit both.

Running the command: :func:`cli.segmerge` (tests/cli.py) runs it in this process;
:data:`cli.SCRIPT` is the console script for the tests that need a real process.
"""

import os

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

os.environ["SEGMERGE_LANG"] = "en"
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"

# a real PostgreSQL for the tests that take the `postgres_server` fixture (tests/postgres.py);
# SEGMERGE_TEST_CPU=FILE: each test's CPU time, children included (tests/cpu_ledger.py);
# the demo workspace made, and its campaign run, once per session (tests/demo_fixtures.py);
# one Chromium for the tests that take the `browser` fixture (tests/browser.py)
pytest_plugins = ["tests.postgres", "tests.cpu_ledger", "tests.demo_fixtures", "tests.browser"]


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis ships a pytest plugin, so pytest would rewrite the asserts of its whole
    package (some 75 modules, over a second of CPU at every start) for failure messages
    of Hypothesis's internal checks; the tests' own asserts are rewritten as before."""
    hook = config.pluginmanager.rewrite_hook
    if isinstance(hook, AssertionRewritingHook):
        hook._must_rewrite.discard("hypothesis")
        hook._marked_for_rewrite_cache.clear()
