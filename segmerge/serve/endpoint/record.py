"""What a one-click unsubscribe checks and records, before the person gets the answer.

The token check is on the path of every request, forged ones included, so it
costs an HMAC and a ``stat``: the key is read once and again only when its
file changes (restored from a backup, say), never a database.

A valid unsubscribe is recorded by contact id (the run blocks that id
whatever address the contact has later) and by every address known for the
contact, all in the one normal form of :mod:`segmerge.ports.addresses`:

- the addresses the ledger sent to (the token came in one of those letters);
- the contact's address in each source's last pulled copy
  (``.segmerge/snapshots/<source>/contacts.pkl``), which still knows the
  contact when the ledger was moved or rebuilt.

Both are committed (``synchronous=FULL``) before the answer: an
acknowledged unsubscribe survives a crash or a power cut. A replay of an
unsubscribe already recorded writes nothing and queues nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segmerge.errors import SegmergeError
from segmerge.ledger.health import signing_key
from segmerge.ledger.store import Ledger
from segmerge.mail import unsubscribe_queue as queue
from segmerge.mail.tokens import KEY_FILE, verify_test_token, verify_token
from segmerge.ports.addresses import normalised_or_none
from segmerge.workspace.config import Workspace

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("segmerge.unsubscribe")
MAX_TOKEN = 512  # characters; ours are under 100: longer is not worth an HMAC
REASON = "one-click unsubscribe"


@dataclass
class Recorded:
    contact_id: str
    addresses: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    replay: bool = False


class KeyCache:
    """The signing key, re-read only when its file changes (inode, size or mtime)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = str(state_dir / KEY_FILE)  # a str: a Path per request costs more than stat
        self._stamp: tuple[int, int, int] | None = None
        self._key: bytes | None = None

    def get(self) -> bytes | None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._key = None, None
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            try:
                key = signing_key(self.state_dir, create=False)
            except (OSError, SegmergeError) as exc:  # unreadable or garbled: every token fails
                log.error("the signing key cannot be read: %s", exc)
                key = None
            self._stamp, self._key = stamp, key or None
        return self._key


class SnapshotAddresses:
    """contact id -> address in each source's last pulled copy, loaded once per file change."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "snapshots"
        self._cache: dict[str, tuple[tuple[int, int, int], pd.Series]] = {}

    def lookup(self, contact_id: str) -> list[tuple[str, str]]:
        """(address, source) for every snapshot that knows this contact id."""
        found: list[tuple[str, str]] = []
        try:
            folders = sorted(p for p in self.dir.iterdir() if not p.name.startswith("."))
        except OSError:
            return found
        for folder in folders:
            emails = self._emails(folder.name, folder / "contacts.pkl")
            if emails is not None and contact_id in emails.index:
                value = emails.loc[contact_id]
                if isinstance(value, str) and value:
                    found.append((value, folder.name))
        return found

    def _emails(self, source: str, path: Path) -> pd.Series | None:
        try:
            st = path.stat()
        except OSError:
            self._cache.pop(source, None)
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(source)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        import pandas as pd  # only once a valid unsubscribe needs it

        try:
            contacts = pd.read_pickle(path)  # our own cache file, written by a pull
            ids = contacts["contact_id"].astype("string")
            emails = pd.Series(contacts["email"].astype("string").to_numpy(), index=ids)
            emails = emails[emails.index.notna() & emails.notna()]
            emails = emails[~emails.index.duplicated(keep="last")].astype(object)
        except Exception as exc:  # a damaged cache: the ledger and the id still protect
            log.warning("snapshot of %s not readable for unsubscribes: %s", source, exc)
            emails = pd.Series([], dtype=object)
        self._cache[source] = (stamp, emails)
        return emails


class Recorder:
    """Token checks and recording for one workspace; safe to call from several threads."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.keys = KeyCache(ws.state_dir)
        self.snapshots = SnapshotAddresses(ws.state_dir)
        self.lock = threading.Lock()  # one unsubscribe recorded at a time

    def check(self, token: str) -> tuple[str, str | None]:
        """("contact", id), ("test", seed address) or ("forged", None): an HMAC, no I/O."""
        key = self.keys.get()
        if key is None or len(token) > MAX_TOKEN or not token.isascii():
            return "forged", None  # (hmac.compare_digest raises on non-ASCII text)
        contact_id = verify_token(key, token)
        if contact_id is not None:
            return "contact", contact_id
        seed = verify_test_token(key, token)
        return ("test", seed) if seed is not None else ("forged", None)

    def record(self, contact_id: str) -> Recorded:
        """Suppress the contact by id and by every known address, then queue the platform call.

        The ledger is written first, then the audit row: a crash in between
        leaves no audit row, so the person's retry records it again."""
        with self.lock, queue.connect(self.ws.state_dir) as audit:
            if queue.already_recorded(audit, contact_id) and self._suppressed(contact_id):
                return Recorded(contact_id, replay=True)
            with Ledger(self.ws.ledger_path, durable=True) as ledger:
                rec = self._known(ledger, contact_id)
                reason = f"{REASON} (contact {contact_id})"
                ledger.suppress_contacts([(contact_id, REASON)])
                ledger.suppress([(a, reason) for a in rec.addresses])
            queue.record(audit, contact_id, rec.addresses, rec.sources, time.time())
        if not rec.sources:
            data = {
                "event": "unsubscribe",
                "contact_id": contact_id,
                "addresses": len(rec.addresses),
                "source": "no source",
            }
            log.info(
                "unsubscribed contact %s (%d address(es)); source: no source",
                contact_id,
                len(rec.addresses),
                extra={"data": data},
            )
        return rec

    def _suppressed(self, contact_id: str) -> bool:
        """Is the contact id on the ledger's list (read only: a replay must write nothing)?"""
        ledger = Ledger.reader(self.ws.ledger_path)
        if ledger is None:
            return False
        with ledger:
            return ledger.is_suppressed_contact(contact_id)

    def _known(self, ledger: Ledger, contact_id: str) -> Recorded:
        """Every address known for the contact (normalised) and the sources to tell."""
        campaigns = self.ws.config.campaigns
        pairs = [
            (t, campaigns[c].source if c in campaigns else "")
            for t, c in ledger.addresses_sent_to(contact_id)
        ]
        pairs += self.snapshots.lookup(contact_id)
        addresses = {a for a in (normalised_or_none(t) for t, _ in pairs) if a}
        sources = {s for _, s in pairs if s and s in self.ws.config.sources}
        if not addresses:
            log.warning(
                "contact %s unsubscribed: no address known for them (no send in the "
                "ledger, no pulled copy); suppressed by id only",
                contact_id,
            )
        return Recorded(contact_id, sorted(addresses), sorted(sources))
