"""The preview's language: its page templates with gettext, and requests that take turns.

Why a module of its own: :mod:`segmerge.i18n` keeps one language per process, and
the preview's threads serve pages in the workspace's language while the process
(a test run, say) may speak another; :func:`speaking` lends the page's language to
one request at a time. The templates in ``preview_assets/`` get ``_`` and
``ngettext`` from :mod:`jinja2.ext.i18n`, bound to :mod:`segmerge.i18n`: the same
English msgids with ``str.format`` fields as the Python code, their French in
``segmerge/locale/fr/pages.po``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import jinja2

from segmerge import i18n

ASSETS = Path(__file__).with_name("assets")

_SPEAKING = threading.RLock()


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Run a request in the page's language, then give the process its own back.

    The language of :mod:`segmerge.i18n` is per process; requests (the page and its
    letter frame arrive together) take turns so that none renders in another's.
    """
    with _SPEAKING:
        before = i18n.lang()
        i18n.use_locale(language)
        try:
            yield
        finally:
            i18n.use_locale(before)


PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(ASSETS)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
# old-style callables: `_("{n} contacts").format(n=...)` as in Python code (the same msgids,
# str.format fields); the result is a plain str that autoescaping escapes like any value
PAGES.install_gettext_callables(  # type: ignore[attr-defined]
    lambda m: i18n._(m), lambda s, p, n: i18n.ngettext(s, p, n), newstyle=False
)
PAGES.globals.update(number=i18n.number, percent=i18n.percent, label=i18n.label)


def shown_day(as_of: str | None) -> str | None:
    """--as-of as the page's language writes a day ("1er décembre 2026"), else as typed."""
    if not as_of:
        return None
    try:
        return i18n.day(date.fromisoformat(as_of[:10]))
    except ValueError:
        return as_of
