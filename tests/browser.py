"""One headless Chromium (Debian's, driven by Playwright) for the whole test session.

Why one: starting Playwright's driver and Chromium, then stopping them, costs about two
seconds of CPU; the preview's browser tests and the phone-layout tests each started
their own. And one page: each new context costs Chromium a renderer process and about
half a second of CPU, so the tests whose pages need no context option of their own take
the ``page`` fixture, the session's page (in French, as the test workspaces are), blank
and without cookies at each test's start; each test sets its viewport. The pages of one
test and the next come from different servers (other ports, other origins): no storage
or cache passes between them (the page without scripts turns them off in this page, as
a context's option would: tests/test_preview_browser.py). A test that needs another
context opens it with ``browser.new_page(...)`` and closes it.

Nothing is imported or started until a test asks for the ``browser`` fixture: a run
that selects no browser test never loads Playwright. Skipped, with the reason, when
Chromium or Playwright is missing (``tests/browser_setup.sh`` installs Chromium). Which
flags: :mod:`segmerge.preview.chromium`, shared with the screenshots of docs/preview.md.
Which Chromium: ``SEGMERGE_CHROMIUM`` if set, else Debian's headless shell when it is
installed (package chromium-headless-shell, which tests/browser_setup.sh installs too),
else the screenshots' Chromium. The shell is the same Blink, layout, fonts and version,
without the browser's windows, address bar and tabs, all of which a headless browser
still builds: both browser test files took about a quarter less CPU (37.0 -> 27.7 s,
whole process tree, under load 10), the same pages passing the same checks.

Playwright's sync API runs its event loop in a greenlet of the main thread and leaves
that loop marked as the thread's running loop between calls; a test run in between
that calls ``asyncio.run()`` would be refused. The loop is marked running only while a
browser test runs (:func:`browser`), and handed back to Playwright before the next.

Two flags more than the screenshots': Chromium 156 builds the address bar's suggestion
popup as two web pages (``chrome://omnibox-popup.top-chrome``), a renderer process each,
started with every new context and left running; headless, nobody sees them, and they
cost about as much CPU as the test's own page (~1 s a context). ``--disable-features``
is read once, the last one wins: ours carries Playwright's own list too.

Chromium's zygotes, which start its renderers and GPU process and wait for them, outlive
the browser process by a moment: orphans, adopted by init, so that their CPU (every
page's rendering) was counted by nobody. While Chromium closes, this process adopts the
orphans (Linux's ``PR_SET_CHILD_SUBREAPER``) and waits for exactly those
(:func:`reaping_orphans`): the closing test's CPU includes the whole browser's.

Chromium is stopped as soon as the session's last browser test ends, not at the end of
the session: idle, with no page open, it still spends about 7 ms of CPU a second
(timers of its own), minutes of it over the rest of the suite; and its CPU, counted
when its process is waited for, is then charged to that test rather than to the
suite's last one.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import select
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from segmerge.preview import chromium

#: Debian's ``chromium-headless-shell`` (see the module's docstring)
HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"


def executable() -> str:
    if not os.environ.get("SEGMERGE_CHROMIUM") and Path(HEADLESS_SHELL).is_file():
        return HEADLESS_SHELL
    return chromium.executable()


CHROMIUM = executable()

#: Chromium features no test page needs (see the module's docstring)
UNUSED_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")


def disabled_features(driver_cli: str) -> str:
    """One ``--disable-features`` with Playwright's list (read from its driver's code, which
    passes it before our arguments) and :data:`UNUSED_FEATURES`."""
    bundle = Path(driver_cli).parent / "lib" / "coreBundle.js"
    found = re.search(r"disabledFeatures = \[(.*?)\]", bundle.read_text(encoding="utf-8"), re.S)
    code = re.sub(r"//[^\n]*", "", found.group(1)) if found else ""
    theirs = re.findall(r'"([^"]+)"', code)
    return "--disable-features=" + ",".join([*theirs, *UNUSED_FEATURES])


#: the node id of the session's last test that takes the ``browser`` fixture
_LAST_BROWSER_TEST: list[str] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    users = [
        item.nodeid for item in session.items if "browser" in getattr(item, "fixturenames", ())
    ]
    _LAST_BROWSER_TEST[:] = users[-1:]


PR_SET_CHILD_SUBREAPER = 36


def _my_children() -> set[int]:
    mine, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    if f.read().rpartition(")")[2].split()[1] == mine:
                        found.add(int(entry))
            except (OSError, IndexError):
                continue
    return found


@contextmanager
def reaping_orphans(limit: float = 30.0) -> Iterator[None]:
    """What the block's processes leave behind when they end is adopted and waited for
    (its CPU counted here) before the block returns; only those: a child this process
    had before is left to its owner. Linux only (elsewhere, nothing is adopted)."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None
    if prctl is None or prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield
        return
    before = _my_children()
    try:
        yield
        deadline = time.monotonic() + limit
        while adopted := _my_children() - before:  # a zygote's orphans come after it ends
            for pid in adopted:
                fd = os.pidfd_open(pid)
                try:  # woken when it ends; the limit only guards against a hang
                    select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                finally:
                    os.close(fd)
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    before.add(pid)  # still running after the limit: not ours to wait for
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class Chromium:
    """The running browser, and the event loop Playwright drives it from."""

    def __init__(self, browser: Any, loop: asyncio.AbstractEventLoop | None, stop: Any) -> None:
        self.browser = browser
        self.loop = loop
        self._stop = stop
        self.closed = False

    @contextmanager
    def driving(self) -> Iterator[Any]:
        """The browser, for Playwright calls made outside a test's ``browser`` fixture (a
        module's fixture setting up or closing a page it shares)."""
        asyncio._set_running_loop(self.loop)
        try:
            yield self.browser
        finally:
            asyncio._set_running_loop(None)

    def close(self) -> None:
        """Chromium, its zygotes' processes and Playwright's driver stopped and waited for;
        once."""
        if self.closed:
            return
        self.closed = True
        asyncio._set_running_loop(self.loop)
        with reaping_orphans():
            try:
                self.browser.close()
            finally:
                self._stop()


@pytest.fixture(scope="session")
def chromium_session() -> Iterator[Chromium]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (run tests/browser_setup.sh)")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        from playwright._impl._driver import compute_driver_executable

        args = [*chromium.ARGS, disabled_features(str(compute_driver_executable()[1]))]
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        except Exception as exc:  # noqa: BLE001 - a browser that cannot start is a skip
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {exc}")
        running = Chromium(b, asyncio._get_running_loop(), p.stop)
        asyncio._set_running_loop(None)  # until a test takes the browser
        try:
            yield running
        finally:
            running.close()


@pytest.fixture()
def browser(chromium_session: Chromium, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's Chromium, for this test: open pages with ``browser.new_page()``
    (each in a new context) and close them."""
    assert not chromium_session.closed, "Chromium was stopped after the last browser test"
    asyncio._set_running_loop(chromium_session.loop)
    try:
        yield chromium_session.browser
    finally:
        if request.node.nodeid in _LAST_BROWSER_TEST:
            chromium_session.close()
        asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def _session_page(chromium_session: Chromium) -> Any:
    with chromium_session.driving() as browser:
        return browser.new_page(locale="fr-FR")  # closed with Chromium


@pytest.fixture()
def page(browser: Any, _session_page: Any) -> Any:
    """The session's one page, blank (``about:blank``), its context without cookies."""
    _session_page.goto("about:blank")
    _session_page.context.clear_cookies()
    return _session_page


def expect(target: Any, message: str | None = None) -> Any:
    """Playwright's ``expect`` (it waits for the page's state, never on a fixed delay),
    imported on first use."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target, message)
