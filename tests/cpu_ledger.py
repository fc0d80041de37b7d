"""Where the suite's CPU goes: each test's user + system time, its own and its children's.

Why: the suite's budget is CPU (300 s on the CI machine), and wall time hides it both
ways: a test waiting on a server costs no CPU, a test spawning `segmerge` processes
costs much more than its wall time says on a loaded machine. With
``SEGMERGE_TEST_CPU=FILE`` set, one line per test phase is appended to FILE
(``seconds<TAB>nodeid<TAB>phase``); children count once they have been waited for,
which every test of ours does before it ends. Sort it: ``sort -rn FILE | head``.

What is spent outside the tests is written too, under the node id ``<session>``:
``startup`` (from the interpreter's start to this plugin's import), ``collection``
(importing every test module), ``finish`` (pytest's end of session: its temporary
directories of older runs are removed then) and ``total``, the process's CPU when
pytest unconfigures, children included.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

_OUT = os.environ.get("SEGMERGE_TEST_CPU")


def cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _write(seconds: float, nodeid: str, phase: str) -> None:
    if _OUT:
        with open(_OUT, "a", encoding="utf-8") as fh:
            fh.write(f"{seconds:.2f}\t{nodeid}\t{phase}\n")


#: CPU booked under another node id while a phase ran (see :func:`book`)
_ELSEWHERE = [0.0]


def book(nodeid: str, phase: str, start: float) -> None:
    """Book the CPU spent since ``start`` (a :func:`cpu` reading) under ``nodeid`` and
    leave it out of the test phase it happened in. Why: a process shared by several
    tests (tests/forked_cli.py's fork server) counts, children included, only once it
    is waited for, at the session's end, inside the last test's teardown."""
    seconds = cpu() - start
    _ELSEWHERE[0] += seconds
    _write(seconds, nodeid, phase)


def _measured(item: pytest.Item, phase: str) -> Iterator[None]:
    start, elsewhere = cpu(), _ELSEWHERE[0]
    yield
    _write(cpu() - start - (_ELSEWHERE[0] - elsewhere), item.nodeid, phase)


_write(cpu(), "<session>", "startup")


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    start = cpu()
    try:
        return (yield)
    finally:
        _write(cpu() - start, "<session>", "collection")


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    start = cpu()
    try:
        return (yield)
    finally:
        _write(cpu() - start, "<session>", "finish")


def pytest_unconfigure(config: pytest.Config) -> None:
    _write(cpu(), "<session>", "total")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item, "setup")
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item, "call")
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item, "teardown")
    return None
