"""The headless Chromium that photographs and tests the preview: which binary, which flags.

Why here: the browser tests (tests/browser.py) and the screenshots of docs/preview.md
(docs/make_screenshots.py) drive the same browser on the same pages; one place says how,
so a flag that changes what a page looks like changes both. Segmerge itself never starts
a browser; nothing here imports Playwright (the caller passes its ``p.chromium``).

Why Debian's binary and not its ``/usr/bin/chromium``: that script runs a shell, greps
``/proc/cpuinfo`` and sources ``/etc/chromium.d`` before each start, and adds flags we
undo (GPU rasterization, remote extensions, an extensions folder to load).

The flags cut Chromium's own work that no page of ours needs: no GPU process doing
software GL (``--disable-gpu``), no component updates, sync, background networking,
QUIC or first-run UI; and no renderer process of its own for each sandboxed letter frame
(``--disable-site-isolation-trials``: a page with its letter took three processes, and
four letters cost about 15 % more CPU). The frame's sandbox and the letter's CSP, which the
tests check, are the same in one process. What stays real is what the tests measure:
layout, fonts, CSS, scripts, sandboxed frames and screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

#: Debian's binary, its launcher script, then whatever ``chromium`` the PATH has
_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")

ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-site-isolation-trials",
)


def executable() -> str:
    """``SEGMERGE_CHROMIUM`` if set, else the first Chromium found (a path that may not exist:
    the caller says what to install)."""
    chosen = os.environ.get("SEGMERGE_CHROMIUM")
    if chosen:
        return chosen
    for path in _CANDIDATES:
        if Path(path).is_file():
            return path
    return shutil.which("chromium") or _CANDIDATES[0]


def launch(chromium: Any, path: str | None = None) -> Any:
    """Chromium started headless by Playwright's ``p.chromium`` (its Browser)."""
    return chromium.launch(executable_path=path or executable(), headless=True, args=list(ARGS))
