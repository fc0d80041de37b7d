"""Benchmark: the one-click unsubscribe endpoint of a real `segmerge serve` under load.

Usage: .venv/bin/python benchmarks/unsubscribe_load.py [--clients 200] [--duration 10]
       [--think 0] [--slow 300] [--slow-for 8] [--posts 50]

Scaffolds the demo workspace in a temporary folder, starts the real
`segmerge serve --unsubscribe-port 0` process, and drives it from this
process over loopback (asyncio, one TCP connection per request, as mail
clients and scanners do), bounded in count and time:

1. load: ``--clients`` concurrent clients for ``--duration`` seconds, half
   fetching the confirmation page of a valid token (GET, expects 200), half
   posting forged tokens (POST, expects 403); each client sends its next
   request when it has its answer (plus ``--think`` seconds). Prints p50, p95,
   p99 and max latency per kind, the request rate, errors (a wrong status, a
   reset, a timeout) and the server's RSS before, at the peak and after;
2. unsubscribes: ``--posts`` distinct valid POSTs, then 20 replays of one
   token: latencies, the server's RSS and the most child processes it had at
   any moment (the old endpoint started one ~130 MB process per POST);
3. slowloris: ``--slow`` connections sending one byte a second for
   ``--slow-for`` seconds while a probe client fetches the confirmation page
   sequentially: how long the slow connections were kept open (the read
   timeout cuts them) and the probe's latencies.

A benchmark, not a test: the figures depend on the machine (and on what
else runs on it); the run fails only if the server dies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEGMERGE = str(Path(sys.executable).parent / "segmerge")
ENV = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
ONE_CLICK = b"List-Unsubscribe=One-Click"

#: issue 13: the endpoint answers within 100 ms at p95 under 200 concurrent clients
TARGET_P95_MS = 100


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def line(self, name: str) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"{name:<22} no answer; errors {self.errors}"
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        ms = [x * 1000 for x in (q[49], q[94], q[98], lat[-1])]
        return (
            f"{name:<22} {len(lat):>6} answers  p50 {ms[0]:6.1f} ms  p95 {ms[1]:6.1f} ms  "
            f"p99 {ms[2]:6.1f} ms  max {ms[3]:7.1f} ms  errors {sum(self.errors.values())}"
            + (f" {self.errors}" if self.errors else "")
        )


class _Exchange(asyncio.Protocol):
    """One request written on connect; the whole answer, until the server closes."""

    def __init__(self, data: bytes, done: asyncio.Future[bytes]) -> None:
        self.data, self.done, self.buf = data, done, bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.data)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(bytes(self.buf))
            else:
                self.done.set_exception(exc)


async def request(
    port: int,
    method: str,
    token: str,
    body: bytes,
    expect: int,
    tally: Tally,
    timeout: float = 10.0,
) -> None:
    """Protocol-level (not streams): the load generator must leave the CPU to the server."""
    start = time.perf_counter()
    data = (
        f"{method} /unsubscribe?token={token} HTTP/1.1\r\nHost: shop.example\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: _Exchange(data, done), "127.0.0.1", port
            )
            answer = await done
    except (OSError, TimeoutError) as exc:
        tally.error(type(exc).__name__)
        return
    finally:
        if transport is not None:
            transport.close()
    status = answer[9:12].decode("latin-1", "replace")
    if status != str(expect):
        tally.error(f"status {status or 'none'}")
        return
    tally.latencies.append(time.perf_counter() - start)


def raw_request(method: str, token: str) -> tuple[bytes, int]:
    body, expect = (ONE_CLICK, 403) if method == "POST" else (b"", 200)
    head = (
        f"{method} /unsubscribe?token={token} HTTP/1.1\r\nHost: shop.example\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body, expect


class Client:
    """One client of the load phase: a request, its answer, the next request."""

    __slots__ = ("buf", "expect", "i", "requests", "sock", "start", "tally", "wait_until")

    def __init__(self, requests: list[tuple[bytes, int]], tally: Tally) -> None:
        self.requests, self.tally, self.i = requests, tally, 0
        self.sock: socket.socket | None = None
        self.buf, self.start, self.expect, self.wait_until = bytearray(), 0.0, 0, 0.0


def drive(port: int, clients: list[Client], until: float, think: float) -> None:
    """Every client in one selectors loop (not asyncio: the load generator shares the
    machine's two cores with the server, and must leave it as much CPU as it can)."""
    sel = selectors.DefaultSelector()
    waiting: list[Client] = []

    def send(c: Client) -> None:
        data, c.expect = c.requests[c.i % len(c.requests)]
        c.i += 1
        c.buf = bytearray()
        c.start = time.perf_counter()
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setblocking(False)
        c.sock.connect_ex(("127.0.0.1", port))
        sel.register(c.sock, selectors.EVENT_WRITE, (c, data))

    def finish(c: Client, error: str | None) -> None:
        assert c.sock is not None
        sel.unregister(c.sock)
        c.sock.close()
        if error is None:
            status = bytes(c.buf[9:12]).decode("latin-1", "replace")
            if status == str(c.expect):
                c.tally.latencies.append(time.perf_counter() - c.start)
            else:
                c.tally.error(f"status {status or 'none'}")
        else:
            c.tally.error(error)
        if time.monotonic() < until:
            if think:
                c.wait_until = time.monotonic() + think
                waiting.append(c)
            else:
                send(c)

    for c in clients:
        send(c)
    while sel.get_map() or waiting:
        for key, mask in sel.select(0.01):
            c, data = key.data
            assert c.sock is not None
            try:
                if mask & selectors.EVENT_WRITE:
                    c.sock.send(data)
                    sel.modify(c.sock, selectors.EVENT_READ, (c, data))
                elif chunk := c.sock.recv(65536):
                    c.buf += chunk
                else:
                    finish(c, None)
            except OSError as exc:
                finish(c, type(exc).__name__)
        now = time.monotonic()
        for c in [c for c in waiting if c.wait_until <= now]:
            waiting.remove(c)
            send(c)
        for c in [k.data[0] for k in sel.get_map().values()]:
            if time.perf_counter() - c.start > 10:
                finish(c, "timeout")


class RssSampler(threading.Thread):
    """The server's RSS and child processes, sampled every 50 ms."""

    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.children, self.done = proc, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                self.children = max(self.children, len(self.proc.children(recursive=True)))
            except psutil.Error:
                return
            self.done.wait(0.05)


async def to_coroutine(fn: Any, *args: Any) -> None:
    fn(*args)


def cpu_share(before: object, after: object, seconds: float) -> str:
    used = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system"))
    return f"{used:.1f} s ({100 * used / seconds:.0f} % of a core)"


def mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def load(port: int, args: argparse.Namespace, good: list[str], forged: list[str]) -> None:
    gets, posts = Tally(), Tally()
    half = args.clients // 2
    get_reqs = [raw_request("GET", t) for t in good]
    post_reqs = [raw_request("POST", t) for t in forged]
    clients = [Client(get_reqs[i::half], gets) for i in range(half)]
    clients += [Client(post_reqs[i::half], posts) for i in range(args.clients - half)]
    t0 = time.monotonic()
    drive(port, clients, t0 + args.duration, args.think)
    took = time.monotonic() - t0
    total = len(gets.latencies) + len(posts.latencies)
    print(
        f"load: {args.clients} clients for {args.duration:.0f} s, think {args.think} s: "
        f"{total / took:.0f} answers/s"
    )
    print("  " + gets.line("valid GET (200)"))
    print("  " + posts.line("forged POST (403)"))
    both = Tally(gets.latencies + posts.latencies, {**gets.errors, **posts.errors})
    print("  " + both.line("all"))
    lat = sorted(both.latencies)
    p95 = statistics.quantiles(lat, n=100, method="inclusive")[94] * 1000 if len(lat) > 1 else None
    met = p95 is not None and p95 <= TARGET_P95_MS and not both.errors
    print(
        f"  target (p95 <= {TARGET_P95_MS} ms, no error, {args.clients} clients): "
        f"{'met' if met else 'NOT met'}"
    )


async def unsubscribes(port: int, args: argparse.Namespace, valid: list[str]) -> None:
    first, replays = Tally(), Tally()
    for token in valid[: args.posts]:
        await request(port, "POST", token, ONE_CLICK, 200, first)
    for _ in range(20):
        await request(port, "POST", valid[0], ONE_CLICK, 200, replays)
    print("  " + first.line(f"{args.posts} valid POSTs"))
    print("  " + replays.line("20 replays"))


async def slowloris(port: int, args: argparse.Namespace, good: list[str]) -> None:
    kept: list[float] = []

    async def drip() -> None:
        start = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        request = (
            b"GET /unsubscribe?token=" + good[0].encode() + b" HTTP/1.1\r\nX-Pad: " + b"a" * 64
        )
        try:
            for byte in request:
                if time.monotonic() - start > args.slow_for or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                try:
                    await asyncio.wait_for(reader.read(1024), 1.0)  # answer or EOF: cut off
                    break
                except TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            kept.append(time.monotonic() - start)
            writer.close()

    probe = Tally()

    async def probing() -> None:
        await asyncio.sleep(0.5)
        end = time.monotonic() + args.slow_for - 1
        while time.monotonic() < end:
            await request(port, "GET", good[1], b"", 200, probe)
            await asyncio.sleep(0.05)

    await asyncio.gather(*[drip() for _ in range(args.slow)], probing())
    lasted = sorted(kept)
    print(
        f"slowloris: {args.slow} connections at 1 byte/s: kept open median "
        f"{statistics.median(lasted):.1f} s, max {lasted[-1]:.1f} s"
    )
    print("  " + probe.line("valid GET meanwhile"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--think", type=float, default=0.0)
    ap.add_argument("--posts", type=int, default=50)
    ap.add_argument("--slow", type=int, default=300)
    ap.add_argument("--slow-for", type=float, default=8.0)
    args = ap.parse_args()

    from segmerge.mail.tokens import signing_key, unsubscribe_token

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shop"
        subprocess.run([SEGMERGE, "init", str(root)], check=True, capture_output=True, env=ENV)
        key = signing_key(root / ".segmerge", create=True)
        assert key is not None
        good = [unsubscribe_token(key, f"{i:05d}") for i in range(1, 1001)]
        other = b"x" * 64
        forged = [unsubscribe_token(other, f"{i:05d}") for i in range(1, 1001)]
        valid = [unsubscribe_token(key, f"{i:05d}") for i in range(1001, 1001 + args.posts)]
        err = Path(tmp) / "serve.err"
        with err.open("w") as fh:
            proc = subprocess.Popen(
                [SEGMERGE, "serve", "-w", str(root), "--unsubscribe-port", "0"],
                stdout=subprocess.DEVNULL,
                stderr=fh,
                env=ENV,
            )
        try:
            deadline = time.monotonic() + 60
            while not (
                m := re.search(
                    r"unsubscribe endpoint on http://127\.0\.0\.1:(\d+)/", err.read_text()
                )
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"serve did not start:\n{err.read_text()}")
                time.sleep(0.05)
            port = int(m[1])
            server = psutil.Process(proc.pid)
            print(
                f"serve pid {proc.pid}, RSS at start {mb(server.memory_info().rss)}, "
                f"{os.cpu_count()} CPUs"
            )
            for name, phase in (
                ("load", lambda: to_coroutine(load, port, args, good, forged)),
                ("unsubscribes", lambda: unsubscribes(port, args, valid)),
                ("slowloris", lambda: slowloris(port, args, good)),
            ):
                sampler = RssSampler(server)
                sampler.start()
                cpu0, own0, t0 = server.cpu_times(), psutil.Process().cpu_times(), time.monotonic()
                asyncio.run(phase())
                cpu1, own1, took = (
                    server.cpu_times(),
                    psutil.Process().cpu_times(),
                    time.monotonic() - t0,
                )
                sampler.done.set()
                sampler.join()
                if proc.poll() is not None:
                    sys.exit(f"serve died during {name}:\n{err.read_text()}")
                print(
                    f"  server RSS: peak {mb(sampler.peak)}, now "
                    f"{mb(server.memory_info().rss)}; child processes at most "
                    f"{sampler.children}; CPU: server {cpu_share(cpu0, cpu1, took)}, "
                    f"load generator {cpu_share(own0, own1, took)}"
                )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
