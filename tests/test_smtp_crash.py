"""The issue's proof: SIGKILL during SMTP sends, again and again, and nobody gets a letter twice.

A campaign of 2,200 letters goes to a real SMTP server (aiosmtpd) that lives
in this test process, so it outlives every killed ``segmerge run`` subprocess. Each
run is killed with SIGKILL at a seeded random moment, most of them while
messages are going out, then started again; a last run completes. The server
counts every message by its Message-ID, which derives from the ledger key.

What must hold:
- every letter the ledger calls done reached the server exactly once;
- a letter in flight at a kill is ``uncertain``: it reached the server at most
  once, only *before* it was marked uncertain (later runs never resend it),
  and ``segmerge history --uncertain`` lists it;
- ``segmerge run --resend-uncertain`` then sends those, and only those, again;
- unsubscribed contacts never receive anything.

The server answers each message 2 ms after queueing it and the relay is
throttled to 300 messages a second: kills land before a message, while its
body is on the wire, and after the server queued it but before the ledger
heard back, which is the case that makes "uncertain" necessary.
"""

from __future__ import annotations

import csv
import io
import random
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from cli import SCRIPT, Ran, script_env
from cli import segmerge as run_cli
from smtp_server import SmtpServer, make_workspace

from segmerge.mail.message import message_id_for

AS_OF = "2026-12-01"
RUN = f"lettre@{AS_OF}"
CONTACTS = 2300
UNSUBSCRIBED_EVERY = 23  # 100 contacts who must never be mailed
WANTED_KILLS = 24
ENV = script_env()


def segmerge(root: Path, *args: str) -> Ran:
    """A command after the kills, in this process (tests/cli.py): only the killed runs
    need processes of their own."""
    return run_cli(*args, "-w", str(root))


def ledger(root: Path) -> dict[str, dict]:
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {r["key"]: dict(r) for r in db.execute("SELECT * FROM actions WHERE kind='send'")}


def when(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.timeout(300)
def test_sigkill_while_sending_never_sends_a_letter_twice(tmp_path):
    rng = random.Random(20261201)
    with SmtpServer(keep_data=False) as srv:
        root = make_workspace(
            tmp_path / "ws",
            CONTACTS,
            srv,
            unsubscribed_every=UNSUBSCRIBED_EVERY,
            rate_per_second=300,
        )
        srv.behaviour.data_delay = 0.002
        mailable = CONTACTS - len(range(0, CONTACTS, UNSUBSCRIBED_EVERY))
        cmd = [SCRIPT, "run", "lettre", "-w", str(root), "--as-of", AS_OF]
        landed = early = generation = 0
        while landed < WANTED_KILLS and srv.count() < 0.85 * mailable and generation < 90:
            generation += 1
            srv.tag = generation
            base = srv.count()
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
            )
            started = time.monotonic()
            if generation % 4 == 0:  # a moment counted from the start: maybe before any send
                deadline = started + rng.uniform(0.8, 1.8)
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
            else:  # a moment counted from the first message of this run
                while proc.poll() is None and srv.count() == base:
                    assert time.monotonic() - started < 60, "the run never started sending"
                    time.sleep(0.001)
                time.sleep(rng.uniform(0.005, 0.25))
            if proc.poll() is None:
                sending = srv.count() > base
                proc.send_signal(signal.SIGKILL)
                landed += sending
                early += not sending
            proc.wait()
        assert landed >= 20, f"only {landed} kills landed while sending: the test proves nothing"

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
        for key in done:
            assert len(arrivals.get(mid[key], [])) == 1, (key, arrivals.get(mid[key]))
        delivered_uncertain = 0
        for key in uncertain:
            got = arrivals.get(mid[key], [])
            assert len(got) <= 1, (key, got)
            marked = when(rows[key]["updated_at"])
            assert all(t < marked + 0.01 for t in got), "an uncertain letter was resent"
            delivered_uncertain += len(got)
        assert 0 < len(uncertain) <= landed + early  # at most one per kill (batch_size = 1)

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
        f"\n{generation} runs, {landed} kills while sending, {early} before; "
        f"{len(uncertain)} uncertain ({delivered_uncertain} had arrived)"
    )
