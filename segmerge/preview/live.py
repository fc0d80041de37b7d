"""The preview's workspace, reloaded when its files change, and the campaigns it opened.

A thread polls the mtimes of ``segmerge.toml``, ``segrules/`` and
``templates/`` (no dependency, works on every file system, a few dozen files
stat'ed twice a second); a change bumps a version that the page polls and
reloads on, and drops the opened campaigns, which are opened again, with the
same code as a run (:func:`segmerge.run.campaign.open_campaign`), on the next
request; the campaigns on one source share one pull of it, as in `validate`. A
broken rule or template is an error shown in the page.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from segmerge import i18n
from segmerge.ledger.store import Ledger
from segmerge.mail.consent import not_mailable
from segmerge.preview.pages import error_info
from segmerge.preview.view import CampaignView
from segmerge.run.campaign import open_campaign
from segmerge.segment.segmentation import as_of_instant
from segmerge.workspace import config as wsmod

log = logging.getLogger("segmerge.preview")


def _suppressed(ws: wsmod.Workspace) -> tuple[set[str], set[str]]:
    """The suppressed addresses and the contacts unsubscribed by id, read only: the
    preview never creates or migrates the ledger."""
    ledger = Ledger.reader(ws.ledger_path, timeout=2)
    if ledger is None:
        return set(), set()
    with ledger:
        return ledger.suppressed_addresses(), ledger.suppressed_contact_ids()


class Preview:
    """The state behind the pages: the workspace, its campaigns, and a version to reload on."""

    def __init__(self, root: Path, *, as_of: str | None = None, only: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.as_of = as_of
        self.only = only
        self.boot = uuid.uuid4().hex[:8]
        self.version = 0
        self._lock = threading.RLock()
        self._ws: wsmod.Workspace | None = None
        self._ws_error: dict[str, Any] | None = None
        self._camps: dict[str, CampaignView] = {}
        self._pulled: dict[str, Any] = {}  # a source's tables, pulled once for its campaigns
        self._lang: str | None = None
        self._extra: list[Path] = []  # the campaigns' own paths, as the last workspace said

    @property
    def tag(self) -> str:
        return f"{self.boot}-{self.version}"

    def invalidate(self) -> None:
        with self._lock:
            self.version += 1
            self._ws, self._ws_error, self._camps, self._lang = None, None, {}, None
            self._pulled = {}

    def language(self) -> str:
        """The pages' language: the workspace's ``locale`` (read even when segmerge.toml
        does not validate), else the environment's; "fr" or "en"."""
        with self._lock:
            if self._lang is None:
                self._lang = i18n.language_of(i18n.peek_locale(self.root) or i18n.env_locale())
            return self._lang

    def workspace(self) -> tuple[wsmod.Workspace | None, dict[str, Any] | None]:
        with self._lock:
            if self._ws is None and self._ws_error is None:
                try:
                    self._ws = wsmod.load(self.root)
                    as_of_instant(self._ws, self.as_of)  # a bad --as-of is a page error too
                except Exception as exc:  # noqa: BLE001 - shown in the page
                    self._ws, self._ws_error = None, error_info(exc, self.root)
            return self._ws, self._ws_error

    def names(self) -> list[str]:
        ws, _ = self.workspace()
        if ws is None:
            return []
        return [n for n in ws.config.campaigns if self.only in (None, n)]

    def campaign(self, name: str) -> CampaignView | None:
        """The campaign, opened on first use; None when the workspace has no such campaign."""
        with self._lock:
            ws, _ = self.workspace()
            if ws is None or name not in self.names():
                return None
            if name not in self._camps:
                view = CampaignView(name)
                try:
                    view.camp = open_campaign(ws, name, as_of=self.as_of, pulled=self._pulled)
                    view.camp.close()  # connectors are done: the page only reads what was pulled
                    seg = view.camp.seg
                    view.reasons = not_mailable(
                        seg.frame,
                        seg.tables.events,
                        *_suppressed(ws),
                    )
                except Exception as exc:  # noqa: BLE001 - shown in the page
                    view.camp, view.error = None, error_info(exc, self.root)
                self._camps[name] = view
            return self._camps[name]

    def watched(self) -> list[Path]:
        """The workspace's files and folders, and each campaign's rule set and letters as
        the last workspace that loaded names them: dropping the workspace on a change must
        not change what is watched (it read as another change: the page reloaded two or
        three times after its first load, each time opening its campaigns again)."""
        paths = [self.root / wsmod.CONFIG_NAME, self.root / "segrules", self.root / "templates"]
        ws = self._ws
        if ws is not None:
            extra: list[Path] = []
            for c in ws.config.campaigns.values():
                folder = ws.templates_dir(c)
                extra += [ws.path(c.rules), folder, folder.parent / "_shared"]
            self._extra = extra
        return list(dict.fromkeys(paths + self._extra))


def signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """(file, mtime, size) of every file under the paths, once each (a campaign's folder
    is usually under ``templates/``): what changes when one is saved."""
    out: dict[str, tuple[str, int, int]] = {}
    for p in paths:
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in files:
            name = str(f)
            if name in out:
                continue
            try:
                st = f.stat()
            except OSError:
                continue
            out[name] = (name, st.st_mtime_ns, st.st_size)
    return tuple(sorted(out.values()))


class Watcher(threading.Thread):
    """Polls the watched files; a change invalidates the preview (the page then reloads)."""

    def __init__(self, preview: Preview, interval: float = 0.5) -> None:
        super().__init__(name="segmerge-preview-watch", daemon=True)
        self.preview = preview
        self.interval = interval
        self.stopped = threading.Event()
        preview.workspace()  # its campaigns' paths are watched from the start
        self._last = signature(preview.watched())

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.check()

    def check(self) -> bool:
        """Whether a watched file changed since the last look (the preview is then dropped)."""
        now = signature(self.preview.watched())
        if now == self._last:
            return False
        self._last = now
        log.info("preview: files changed, reloading")
        self.preview.invalidate()
        return True
