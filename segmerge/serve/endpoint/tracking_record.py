"""What a tracked click or open checks and records before its answer, and what it filters.

A hit is written to the ledger (``synchronous=FULL``) before the redirect or the
pixel goes out: a person who reached the shop's page was counted. A hit that
cannot be recorded gets a "try again" page (503), never an uncounted redirect.

Machines follow links too: mail security gateways open every link of a message
on arrival, and link checkers send ``HEAD``. Their hits are recorded, with the
reason in ``filtered``, and left out of the KPIs (docs/tracking.md):

- a ``HEAD`` request (a person's browser sends ``GET``);
- no ``User-Agent``, or one of a known scanner or HTTP library (:data:`SCANNERS`);
- a hit ``[tracking] min_delay`` seconds or less after the letter was delivered
  (recorded sent in the ledger): no person reads that fast, a gateway does;
- clicks on ``burst_links`` different links of one letter (or on every link of a
  letter with fewer, from two) within ``burst_seconds``: all of them are set aside.

A person's later hit on a link a scanner hit first counts, from the person's time.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from segmerge.ledger.store import Ledger
from segmerge.mail.tracking_tokens import CLICK, Hit, read_token, tracking_key
from segmerge.serve.endpoint.record import KeyCache
from segmerge.workspace.config import Workspace

log = logging.getLogger("segmerge.tracking")

#: user agents of mail security scanners, link previewers and HTTP libraries (a person's
#: mail client or browser never says these); matched case-insensitively anywhere
SCANNERS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "forcepoint",
    "fireeye",
    "trendmicro",
    "sophos",
    "cisco",
    "ironport",
    "zscaler",
    "safelinks",
    "microsoft office protection",
    "ms-office",
    "bingpreview",
    "slurp",
    "bot",
    "spider",
    "crawler",
    "preview",
    "scanner",
    "python-",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "httpclient",
    "headless",
)
_SCANNER = re.compile("|".join(re.escape(s) for s in SCANNERS), re.IGNORECASE)
Clock = Callable[[], datetime]


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds")


class TrackRecorder:
    """Token checks and recording of opens and clicks; safe to call from several threads."""

    def __init__(self, ws: Workspace, clock: Clock | None = None) -> None:
        self.ws = ws
        self.keys = KeyCache(ws.state_dir)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self._derived: tuple[bytes, bytes] | None = None
        self.lock = threading.Lock()  # one hit written at a time: the burst rule reads back
        self._local = threading.local()  # each disk thread's ledger (sqlite3: one per thread)

    def check(self, token: str) -> Hit | None:
        """The hit a token stands for, or None (forged, or no key): an HMAC, no I/O."""
        key = self.keys.get()
        if key is None:
            return None
        if self._derived is None or self._derived[0] != key:
            self._derived = (key, tracking_key(key))
        return read_token(self._derived[1], token)

    def record(self, hit: Hit, method: str, agent: str) -> str:
        """Write the hit (filtered or not) before its answer; returns why it was set aside."""
        now = self.clock()
        settings = self.ws.config.tracking
        event = "click" if hit.kind == CLICK else "open"
        with self.lock:
            ledger = self._ledger()
            why = self._filtered(ledger, hit, method, agent, now, settings.min_delay)
            burst = None
            n = min(settings.burst_links, hit.links)
            if hit.kind == CLICK and not why and n >= 2:
                burst = (_iso(now - timedelta(seconds=settings.burst_seconds)), n)
            ledger.track(hit.run_id, hit.contact_id, event, hit.url, _iso(now), why, agent, burst)
        return why

    def _ledger(self) -> Ledger:
        """This thread's open ledger, opened again when its file changed (restored, say):
        opening one per click cost more than the click's write and fsync."""
        st = os.stat(self.ws.ledger_path)
        stamp = (st.st_dev, st.st_ino)
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == stamp:
            return held[1]
        if held is not None:
            held[1].close()
        ledger = Ledger(self.ws.ledger_path, durable=True)  # on disk before the answer
        self._local.held = (stamp, ledger)
        return ledger

    def _filtered(
        self, ledger: Ledger, hit: Hit, method: str, agent: str, now: datetime, min_delay: float
    ) -> str:
        if method == "HEAD":
            return "HEAD request"
        if not agent.strip():
            return "no user agent"
        if m := _SCANNER.search(agent):
            return f"scanner user agent ({m.group(0).lower()})"
        sent = ledger.delivered_at(hit.run_id, hit.contact_id)
        if sent is not None:
            delay = (now - datetime.fromisoformat(sent)).total_seconds()
            if delay <= min_delay:
                return f"within {min_delay:g} s of delivery"
        return ""
