"""The issue's proof: SIGKILL during SMTP sends, again and again, and nobody gets a letter twice.

A campaign of 220 letters goes to a real SMTP server (aiosmtpd) that lives in
this test process, so it outlives every killed ``segmerge run`` (a real process,
forked by tests/forked_cli.py). Each run is killed with SIGKILL at a point the
server chooses, then started again; a last run completes.

Where the kills land. From the ledger's side a letter is planned, in flight
(marked before the relay sees it) or recorded, so a kill can find the run in
one of these states, and each is hit on purpose, the server holding the
sender there until the test has killed it:

- ``rcpt``: the letter is in flight and the server is answering its RCPT TO:
  nothing can have been delivered (the first letter of the first run, on a
  fresh connection, and a later one on a connection in use);
- ``body``: the whole body has reached the server, which has not queued it:
  the sender cannot know, and the letter was not delivered;
- ``queued``: the server queued the letter and holds its 250: delivered, and
  the ledger still says in flight. This is why "uncertain" exists; it is hit
  on the first letter of a resumed run and on a later one;
- ``between``: the previous letter is recorded done and the throttle holds the
  next one back (the run is throttled to 4 a second for this kill): nothing
  in flight;
- ``chunks``: the killed runs render and plan their letters a hundred at a time
  (``CHUNK``, 4,000 in real runs): every letter of the first chunk recorded,
  the next chunk being rendered and not yet planned, nothing in flight.

The 24 kills at random moments this replaces landed in these same states (a
random moment while sending is one of them, or in the ledger's own commit,
which SQLite makes atomic); here every kill lands where it is meant to, and
the ledger read right after each kill proves it (in flight: exactly the held
letter, and it reached the server only in ``queued``). Every run after the
first resumes a run that was killed, with letters uncertain from before.

What must hold:
- every letter the ledger calls done reached the server exactly once;
- the letters in flight at the kills, and only those, are ``uncertain``: each
  reached the server at most once, only *before* it was marked uncertain
  (later runs never resend it), and ``segmerge history --uncertain`` lists them;
- ``segmerge run --resend-uncertain`` then sends those, and only those, again;
- unsubscribed contacts never receive anything.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli import Ran
from cli import segmerge as run_cli
from forked_cli import PRELOAD, Child, forks
from smtp_server import SmtpServer, make_workspace

from segmerge.mail.message import message_id_for

AS_OF = "2026-12-01"
RUN = f"lettre@{AS_OF}"
CONTACTS = 230
UNSUBSCRIBED_EVERY = 23  # 10 contacts who must never be mailed
#: (where the server holds the sender, which letter of that run); see the docstring
KILLS = [
    ("rcpt", 1),
    ("queued", 1),
    ("body", 2),
    ("between", 2),
    ("queued", 3),
    ("chunks", 1),
    ("rcpt", 4),
]
#: the killed runs' chunk of letters (segmerge.run.sends.CHUNK), so that one can end mid-run
CHUNK = 100
FAST, SLOW = "rate_per_second = 300.0", "rate_per_second = 4.0"
#: what a run through this workspace imports beyond a run's core (tests/forked_cli.py)
IMPORTS = (*PRELOAD, "connectors.smtp", "connectors.files", "duckdb", "keyring")


class Gate:
    """The server's handler, with one step of one letter held until the test says so.

    ``arm(point, nth)``: at ``point`` ("rcpt", "body" or "queued") of the ``nth``
    letter from now, ``reached`` is set and the server waits for ``release``.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.point: str | None = None
        self.left = 0
        self.reached = threading.Event()
        self.release = threading.Event()

    def arm(self, point: str, nth: int) -> None:
        self.point, self.left = point, nth
        self.reached.clear()
        self.release.clear()

    async def _hold(self, point: str) -> None:
        if self.point != point:
            return
        self.left -= 1
        if self.left:
            return
        self.point = None
        self.reached.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait)

    async def handle_RCPT(self, *args: Any) -> str:
        await self._hold("rcpt")
        return await self.inner.handle_RCPT(*args)

    async def handle_DATA(self, *args: Any) -> str:
        await self._hold("body")
        reply = await self.inner.handle_DATA(*args)  # queued from here on
        await self._hold("queued")
        return reply


def segmerge(root: Path, *args: str) -> Ran:
    """A command after the kills, in this process (tests/cli.py): only the killed runs
    need processes of their own."""
    return run_cli(*args, "-w", str(root))


def ledger(root: Path) -> dict[str, dict]:
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {r["key"]: dict(r) for r in db.execute("SELECT * FROM actions WHERE kind='send'")}


def waiting(root: Path) -> tuple[int, int] | None:
    """The letters the ledger has in flight now, and whether any is planned (0 or 1);
    None when it cannot be read at this instant."""
    query = (
        "SELECT COALESCE(SUM(status='in_flight'), 0), COALESCE(MAX(status='planned'), 0) "
        "FROM actions WHERE kind='send'"
    )
    ledger = root / ".segmerge" / "ledger.sqlite"
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            row = db.execute(query).fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0]), int(row[1])


def when(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait_for(child: Child, event: threading.Event, what: str) -> None:
    deadline = time.monotonic() + 120
    while not event.wait(0.05):
        assert child.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"the run never reached {what}"


def kill(root: Path, srv: SmtpServer, gate: Gate, child: Child, point: str, nth: int) -> None:
    """SIGKILL ``child`` at ``point`` of its letter ``nth`` (counted by the server since it
    started; the gate is armed already)."""
    if point not in ("between", "chunks"):
        wait_for(child, gate.reached, point)
        child.kill()
        return
    # "between": letter nth recorded done, the next one not yet in flight (the throttle
    # spaces them by 250 ms, and the next one's RCPT is held should the run get there all
    # the same); "chunks": the whole chunk recorded, the next one not yet planned.
    deadline = time.monotonic() + 120
    while srv.count() < nth or waiting(root) != (0, 0 if point == "chunks" else 1):
        if gate.reached.is_set():
            break  # the test was too slow: the ledger read after the kill tells
        assert child.poll() is None, "the run ended before the gap between letters"
        assert time.monotonic() < deadline, "the run never reached the gap between letters"
        time.sleep(0.005)
    child.kill()


def landed(root: Path, srv: SmtpServer, point: str) -> tuple[str, list[str]]:
    """Where a kill landed, as the ledger and the server tell it: the window, and the
    letters the ledger still has in flight."""
    rows = ledger(root).values()
    flying = [r["key"] for r in rows if r["status"] == "in_flight"]
    if not flying:  # the letters of the chunk still to go are planned; the next chunk's not
        return ("between" if any(r["status"] == "planned" for r in rows) else "chunks"), flying
    assert len(flying) == 1, flying  # batch_size = 1: one letter at a time
    got = srv.by_message_id()[message_id_for(flying[0], "boutique.example")]
    if got:
        return "queued", flying
    return (point if point in ("rcpt", "body") else "rcpt"), flying


@pytest.mark.timeout(300)
def test_sigkill_while_sending_never_sends_a_letter_twice(fork_server, tmp_path):
    srv = SmtpServer(keep_data=False)
    gate = Gate(srv.controller.handler)
    srv.controller.handler = gate
    chunk = {"segmerge.run.sends.CHUNK": CHUNK}
    with srv, forks(fork_server, tmp_path / "runs.log", IMPORTS, chunk) as runs:
        root = make_workspace(
            tmp_path / "ws",
            CONTACTS,
            srv,
            unsubscribed_every=UNSUBSCRIBED_EVERY,
            rate_per_second=300.0,
        )
        config = root / "segmerge.toml"
        mailable = CONTACTS - len(range(0, CONTACTS, UNSUBSCRIBED_EVERY))
        held: list[str] = []  # the letters in flight at the kills
        windows: list[str] = []
        try:
            for point, nth in KILLS:
                for _attempt in range(3):  # a gap between letters or chunks can be missed
                    base = srv.count()
                    srv.tag = f"{point} {nth}"
                    slow = point == "between"
                    config.write_text(config.read_text().replace(FAST, SLOW if slow else FAST))
                    gate.arm("rcpt" if slow else point, nth + 1 if slow else nth)
                    child = runs.start("run", "lettre", "-w", str(root), "--as-of", AS_OF)
                    kill(root, srv, gate, child, point, base + nth)
                    assert child.wait() == -9
                    gate.release.set()
                    config.write_text(config.read_text().replace(SLOW, FAST))
                    window, flying = landed(root, srv, point)
                    windows.append(window)
                    held.extend(flying)
                    if window == point:
                        break
        finally:
            gate.release.set()  # a server thread waiting on it would outlive the test
            gate.arm("", 0)
        assert set(windows) == {p for p, _ in KILLS}, windows

        srv.tag = "final"
        final = segmerge(root, "run", "lettre", "--as-of", AS_OF)
        assert final.returncode in (0, 1), final.stdout + final.stderr
        assert "Traceback" not in final.stderr
        rows = ledger(root)
        statuses = {r["status"] for r in rows.values()}
        assert statuses <= {"done", "uncertain"}, statuses
        assert len(rows) == mailable
        assert not [r for r in rows.values() if int(r["contact_id"][1:]) % UNSUBSCRIBED_EVERY == 0]

        mid = {key: message_id_for(key, "boutique.example") for key in rows}
        arrivals: dict[str, list[float]] = {}
        for m in srv.messages:
            arrivals.setdefault(m.message_id, []).append(m.at)
        assert set(arrivals) <= set(mid.values()), "a message nobody should have received"
        done = [k for k, r in rows.items() if r["status"] == "done"]
        uncertain = [k for k, r in rows.items() if r["status"] == "uncertain"]
        assert sorted(uncertain) == sorted(held)  # those in flight at a kill, and only those
        for key in done:
            assert len(arrivals.get(mid[key], [])) == 1, (key, arrivals.get(mid[key]))
        delivered_uncertain = 0
        for key in uncertain:
            got = arrivals.get(mid[key], [])
            assert len(got) <= 1, (key, got)
            marked = when(rows[key]["updated_at"])
            assert all(t < marked + 0.01 for t in got), "an uncertain letter was resent"
            delivered_uncertain += len(got)
        assert delivered_uncertain == windows.count("queued")

        hist = segmerge(root, "history", RUN, "--uncertain", "--csv")
        assert hist.returncode == 0, hist.stderr
        listed = {r["key"] for r in csv.DictReader(io.StringIO(hist.stdout))}
        assert listed == set(uncertain)

        before = srv.count()
        srv.tag = "resend"
        resend = segmerge(root, "run", "lettre", "--as-of", AS_OF, "--resend-uncertain")
        assert resend.returncode == 0, resend.stdout + resend.stderr
        assert {r["status"] for r in ledger(root).values()} == {"done"}
        resent = [m.message_id for m in srv.messages[before:]]
        assert sorted(resent) == sorted(mid[k] for k in uncertain)  # those, and only those
        counts = srv.by_message_id()
        assert all(counts[mid[k]] == 1 for k in done)
        assert all(counts[mid[k]] in (1, 2) for k in uncertain)
        assert srv.count() == mailable + delivered_uncertain

        again = segmerge(root, "run", "lettre", "--as-of", AS_OF)
        assert again.returncode == 0 and srv.count() == mailable + delivered_uncertain
    print(
        f"\nkills landed: {windows}; {len(uncertain)} uncertain ({delivered_uncertain} had arrived)"
    )
