"""The demo workspace built once per test session, and copied by each test that changes it.

Why: `segmerge init` is cheap, but a run of the demo's `profils` campaign fills and
writes two thousand letters, the costliest thing a test does, and the CLI, language
and serve tests each ran their own. :func:`demo_ran` runs it once; a test that changes a workspace works on its
own copy (:func:`copy_of`), never on the shared one.

:func:`demo_half` is the demo with half its customers (1,125: still past a thousand, so
French and English thousands separators show): every command reads and segments half
the rows, and the shared run fills half the letters (1,044), while the demo's quirks stay
(both orders with an impossible date, the blank lines, unsubscribed and address-less
customers). The CLI and
language tests walk it and :func:`demo_ran` runs it; :func:`demo_pristine` stays whole
for the tests that check the demo's own letters and figures.

:func:`one_core` runs a command as on a one-core machine: a batch of letters over
``segmerge.render.pool.PARALLEL_MIN`` makes the render pool spawn worker interpreters
(imports and templates loaded again in each), which only pays off on a big base, and
the demo stays under it only while the threshold does; the CLI tests assert what the
run did, and tests/test_render_pool_run.py tests the workers.

:func:`plugin_site` puts a folder on this process's import path, so that a plugin
installed there (tests/workspaces.py ``install_plugin``) is found through
importlib.metadata by a command run in this process, as ``PYTHONPATH`` does for a
real one.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest loads this module: collection stays light
    import pandas as pd

    from tests.cli import Ran

#: the day the shared run is made for
AS_OF = "2026-12-01"
#: a command's environment in which the workspace's locale chooses the language
LANG_UNSET: dict[str, str | None] = {"SEGMERGE_LANG": None}


@contextmanager
def one_core() -> Iterator[None]:
    """This thread, and the processes it starts meanwhile, on one core (see above)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def copy_of(source: Path, target: Path) -> Path:
    """A copy of the workspace ``source`` at ``target``, for a test to change."""
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def demo_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`segmerge init`'s demo workspace, as made: copy it before changing it."""
    from tests.cli import segmerge

    root = tmp_path_factory.mktemp("demo") / "boutique"
    segmerge("init", str(root), check=True)
    return root


#: the demo's exports: (separator, column of the customer number) in each
EXPORTS = {"contacts.csv": (b";", 0), "orders.csv": (b";", 1), "events.csv": (b",", 0)}
#: the last digits of the customer numbers :func:`halve` keeps: the two orders with an
#: impossible date are customers 01963's and 01310's
KEPT = b"03579"
#: the customers :func:`demo_half` keeps
HALF_CONTACTS = 1125


def halve(root: Path) -> Path:
    """The demo workspace at ``root`` keeps the customers whose number ends in a digit of
    :data:`KEPT`, with their orders and events; blank lines stay, and every file keeps its
    encoding, separator and line ends."""
    for name, (sep, column) in EXPORTS.items():
        path = root / "examples" / "demo" / name
        raw = path.read_bytes()
        eol = b"\r\n" if b"\r\n" in raw else b"\n"
        head, *lines = raw.split(eol)
        kept = [x for x in lines if not x.strip() or x.split(sep)[column].strip()[-1:] in KEPT]
        assert 0 < len(kept) < len(lines), name
        path.write_bytes(eol.join([head, *kept]))
    return root


def first_contacts(root: Path, contacts: int) -> Path:
    """The demo workspace at ``root`` keeps its first ``contacts`` contacts, their orders
    and events (for tests whose point does not depend on the shop's size)."""
    data = root / "examples" / "demo"
    rows = (data / "contacts.csv").read_bytes().split(b"\r\n")
    ids = {row.split(b";")[0] for row in rows[1 : contacts + 1]}
    (data / "contacts.csv").write_bytes(b"\r\n".join([*rows[: contacts + 1], b""]))
    for name, sep, col in (("orders.csv", b";", 1), ("events.csv", b",", 0)):
        raw = (data / name).read_bytes()
        eol = b"\r\n" if b"\r\n" in raw else b"\n"
        head, *lines = raw.split(eol)
        kept = [ln for ln in lines if ln and ln.split(sep)[col] in ids]
        (data / name).write_bytes(eol.join([head, *kept, b""]))
    return root


@pytest.fixture(scope="session")
def demo_half(demo_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with half its customers (:func:`halve`): copy it before changing it."""
    return halve(copy_of(demo_pristine, tmp_path_factory.mktemp("demo-half") / "boutique"))


@dataclass(frozen=True)
class DemoRun:
    """The halved demo (:func:`demo_half`) after `suppress import` of one bounced address,
    then `run profils`."""

    root: Path
    #: the contacts as the engine read them before the run (tags included)
    before: pd.DataFrame
    #: the address suppressed before the run (a subscribed contact's, in upper case)
    suppressed: str
    #: `segmerge run profils -w ROOT --as-of AS_OF`, said in the workspace's language as a
    #: user of the demo reads it: French, its locale (tests/test_language.py checks it)
    ran: Ran


@pytest.fixture(scope="session")
def demo_ran(demo_half: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The halved demo's `profils` campaign run once for :data:`AS_OF`, one address
    suppressed beforehand: read it, or copy it (:func:`copy_of`) before changing it."""
    from segmerge.segment.segmentation import open_source, pull
    from segmerge.workspace import config as workspace
    from tests.cli import segmerge

    root = copy_of(demo_half, tmp_path_factory.mktemp("demo-ran") / "boutique")
    before = pull(open_source(workspace.load(root), "demo")).contacts
    target = str(before.loc[before["subscribed"] & before["email"].notna(), "email"].iloc[0])
    (root / "bounces.csv").write_text(f"email;raison\n{target.upper()};bounce\n", encoding="utf-8")
    segmerge("suppress", "import", str(root / "bounces.csv"), "-w", str(root), check=True)
    with one_core():  # the suite's SEGMERGE_LANG=en set aside: the workspace chooses
        ran = segmerge("run", "profils", "-w", str(root), "--as-of", AS_OF, env=LANG_UNSET)
    return DemoRun(root, before, target, ran)


@contextmanager
def interrupted_after(seconds: float) -> Iterator[None]:
    """For a command run in this process that must end by itself (`serve` refused before it
    starts): were it to serve instead, SIGINT after ``seconds`` stops it (serve then exits
    0, which the test refuses) rather than leaving the suite waiting forever."""
    guard = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    guard.start()
    try:
        yield
    finally:
        guard.cancel()


@pytest.fixture()
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder on this process's import path; what is imported from it is
    forgotten after the test, as it would be with the process."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))  # and importlib's caches invalidated
    yield site
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(site)):
            del sys.modules[name]
