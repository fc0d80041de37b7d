"""Benchmark: 20,000 messages to a loopback SMTP sink, by the connector alone and by a full run.

Usage: .venv/bin/python benchmarks/send.py [--messages 20000] [--no-reuse 2000]

The sink is aiosmtpd in its own process (tests/smtp_server.py), so that the
server and the sender each have a core of this 2-core machine. Figures:

1. the smtp connector alone, one connection reused for every message
   (target: >= 500 messages per second);
2. the same with a new connection per message (``max_per_connection = 1``),
   on fewer messages, for reference;
3. a full ``segmerge run`` (pull, segment, render, then the ledger's intent
   and outcome around every push) on a synthetic workspace of as many
   contacts; its send phase minus the connector's own time, per message, is
   the ledger's overhead. Run with batch_size 1 (the default: at most one
   message uncertain after a crash) and 50 (fewer ledger commits).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from smtp_server import make_workspace  # noqa: E402

from connectors.smtp import SmtpConnector  # noqa: E402
from segmerge.mail.message import build_message, message_id_for  # noqa: E402
from segmerge.ports.connector import Action, ConnectorContext  # noqa: E402
from segmerge.render.templates import Rendered  # noqa: E402
from segmerge.run.pipeline import RunOptions, run  # noqa: E402
from segmerge.workspace import secrets  # noqa: E402
from segmerge.workspace.config import load  # noqa: E402


class Sink:
    """The SMTP sink subprocess: a port, and how many messages it has queued."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "smtp_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[1])

    def ask(self, word: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self) -> int:
        return int(self.ask("count"))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def messages(n: int, tag: str) -> list[Action]:
    """Messages shaped like a run's (multipart, unsubscribe headers), built beforehand."""
    html = "<p>Bonjour Prénom,</p><p>" + "Voici la lettre de la semaine. " * 20 + "</p>"
    r = Rendered(
        "Bonjour Prénom",
        "",
        html,
        "Bonjour Prénom,\n\nVoici la lettre.",
        None,
        None,
        "_default.html.j2",
    )
    out = []
    for i in range(n):
        key = f"bench-{tag}|c{i}|send"
        to = f"user{i}@example.org"
        msg: Message = build_message(
            r,
            to=to,
            to_name=f"Prénom{i} Nom{i}",
            from_addr="La Boutique <bonjour@boutique.example>",
            message_id=message_id_for(key, "boutique.example"),
            unsubscribe_url=f"https://boutique.example/u?token=t{i}",
        )
        out.append(Action(key, "send", f"c{i}", {"to": to}, msg))
    return out


def connector_rate(sink: Sink, actions: list[Action], **settings: object) -> tuple[float, int]:
    base = {"host": "127.0.0.1", "port": sink.port, "starttls": False} | settings
    tmp = Path(tempfile.gettempdir())
    conn = SmtpConnector(ConnectorContext("relay", base, tmp, tmp / "segmerge.toml"))
    before = sink.count()
    t0 = time.perf_counter()
    for a in actions:  # one push per message, as the pipeline does with batch_size 1
        [outcome] = conn.push([a])
        assert outcome.status == "done", outcome
    conn.close()
    elapsed = time.perf_counter() - t0
    assert sink.count() - before == len(actions)
    return elapsed, conn.connections


def pipeline_send_time(sink: Sink, n: int, batch_size: int) -> tuple[float, float, float]:
    """A full run in-process; returns (whole run, send phase, time inside push()) in seconds."""
    secrets.keyring.get_password = lambda *a: None  # type: ignore[assignment]
    marks: dict[str, float] = {"push": 0.0}
    real_push = SmtpConnector.push

    def timed_push(self: SmtpConnector, actions: list[Action]) -> list:
        t = time.perf_counter()
        try:
            return real_push(self, actions)
        finally:
            marks["push"] += time.perf_counter() - t

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "send":
            marks.setdefault("start", time.perf_counter())
            if done == total:
                marks["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws", n, None, port=sink.port, batch_size=batch_size)
        before = sink.count()
        t0 = time.perf_counter()
        SmtpConnector.push = timed_push  # type: ignore[method-assign]
        try:
            summary = run(load(ws), "lettre", RunOptions(as_of="2026-12-01", progress=progress))
        finally:
            SmtpConnector.push = real_push  # type: ignore[method-assign]
        whole = time.perf_counter() - t0
        assert summary.outcome["send"] == {"done": n}, summary.outcome
        assert sink.count() - before == n
    return whole, marks["end"] - marks["start"], marks["push"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--no-reuse", type=int, default=2_000, help="messages sent without reuse")
    args = ap.parse_args()
    n = args.messages
    sink = Sink()
    try:
        print(f"building {n:,} messages...", flush=True)
        acts = messages(n, "reuse")
        raw, conns = connector_rate(sink, acts)
        print(
            f"connector, connection reused:   {n / raw:8.0f} messages/s "
            f"({n:,} in {raw:.1f} s, {conns} connection(s); target >= 500/s)",
            flush=True,
        )
        m = min(args.no_reuse, n)
        fresh, conns = connector_rate(sink, messages(m, "fresh"), max_per_connection=1)
        print(
            f"connector, new connection each: {m / fresh:8.0f} messages/s "
            f"({m:,} in {fresh:.1f} s, {conns} connections)",
            flush=True,
        )
        for batch in (1, 50):
            whole, send, pushing = pipeline_send_time(sink, n, batch)
            print(
                f"full run, batch_size {batch:>2}:       {n / send:8.0f} messages/s in the send "
                f"phase ({send:.1f} s; whole run {whole:.1f} s)",
                flush=True,
            )
            print(
                f"  ledger overhead per message: {(send - pushing) / n * 1e6:.0f} us "
                f"(send phase minus the time inside push()); {(send - raw) / n * 1e6:.0f} us "
                "against the connector-alone run above (noisier: two runs)",
                flush=True,
            )
    finally:
        sink.close()


if __name__ == "__main__":
    main()
