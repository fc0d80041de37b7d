"""`segmerge serve` as a real process on a demo workspace, and its one-click unsubscribe endpoint.

Serve is forked from the suite's fork server (tests/forked_cli.py); the other commands
run in this process (tests/cli.py). The workspace is the demo cut
to its first contacts (``small_demo``): what serve does to a run is the same for 40
contacts as for 2,250, at a fraction of the CPU. Letters are filled on one core
(tests/demo_fixtures.py ``one_core``: no render worker to start, in serve's runs as in
this process).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli import Ran, segmerge
from forked_cli import PRELOAD, Forks, ForkServer
from workspaces import install_plugin

from segmerge.ledger.health import signing_key
from segmerge.mail.tokens import unsubscribe_token
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import config as wsmod
from tests.demo_fixtures import copy_of, first_contacts, interrupted_after, one_core

#: what `serve` imports beyond a run's core: the fork server has them before the first serve
SERVE_IMPORTS = (*PRELOAD, "segmerge.serve.main", "segmerge.serve.daemon")


def cli(*args: str, check: bool = True) -> Ran:
    """A command other than serve, in this process (tests/cli.py)."""
    p = segmerge(*args)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


class Serve:
    """A real `segmerge serve` process whose stdout and stderr are written to a file.

    Forked from the suite's fork server (tests/forked_cli.py), which has imported the CLI:
    a process of its own (signals, its children, its exit code), without the second of
    imports a fresh interpreter spends before serve's first line."""

    def __init__(self, server: ForkServer, root: Path, *args: str, **env: str) -> None:
        self.err = root.parent / f"serve-{time.monotonic_ns()}.err"
        # serve, and the runs it starts, on one core
        cpus = {min(os.sched_getaffinity(0))}
        cmd = Forks(server, env, self.err, SERVE_IMPORTS, {}, cpus)
        self.proc = cmd.start("serve", "-w", str(root), *args)

    def text(self) -> str:
        return self.err.read_text(encoding="utf-8")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            assert self.proc.poll() is None, f"serve exited early:\n{self.text()}"
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen in:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


SMALL = 40  # contacts: what serve does to a run does not depend on how many it mails


@pytest.fixture(scope="module")
def small_demo(demo_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with its first contacts only: copy it to change it."""
    return first_contacts(copy_of(demo_pristine, tmp_path_factory.mktemp("small") / "shop"), SMALL)


@pytest.fixture()
def root(small_demo: Path, tmp_path: Path) -> Path:
    return copy_of(small_demo, tmp_path / "shop")


class Servers:
    """The test's serve processes, each killed at its end if still running."""

    def __init__(self, server: ForkServer) -> None:
        self.server = server
        self.started: list[Serve] = []

    def start(self, root: Path, *args: str, **env: str) -> Serve:
        self.started.append(Serve(self.server, root, *args, **env))
        return self.started[-1]


@pytest.fixture()
def servers(fork_server: ForkServer) -> Iterator[Servers]:
    started = Servers(fork_server)
    yield started
    for s in started.started:
        s.kill()


def refused_serve(root: Path) -> Ran:
    """`segmerge serve` in this process, expected to be refused at once."""
    with interrupted_after(60):
        return segmerge("serve", "-w", str(root))


def json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def test_scheduled_runs_logged_failures_survived_then_sigterm_and_one_serve_per_workspace(
    root: Path, servers: Servers
) -> None:
    """One daemon: a campaign that runs, one whose rules are broken, a run's process killed."""
    import psutil

    cli("schedule", "add", "profils", "*/2 * * * * *", "-w", str(root))
    cli("schedule", "add", "rfm", "*/2 * * * * *", "-w", str(root))
    (root / "segrules" / "rfm.yaml").write_text("version: 1\nsegments: [", encoding="utf-8")
    # rfm reads a one-contact source: each of its failed runs pulls next to nothing
    (root / "mini").mkdir()
    (root / "mini" / "contacts.csv").write_text("contact_id,email,subscribed\nc1,a@x.fr,oui\n")
    config = root / "segmerge.toml"
    text = config.read_text(encoding="utf-8")
    assert '[campaigns.rfm]\nsource = "demo"' in text
    text = text.replace('[campaigns.rfm]\nsource = "demo"', '[campaigns.rfm]\nsource = "mini"')
    config.write_text(text + '\n[sources.mini]\nconnector = "files"\npath = "mini"\n')
    log_file = root / "serve.jsonl"
    first = servers.start(root, "--log-file", str(log_file))
    first.wait_for(r"serving .* \(pid \d+\)")
    # a second serve on the same workspace is refused, naming the pid that holds it
    second = refused_serve(root)
    assert second.returncode == 1
    assert f"pid {first.proc.pid}" in second.stderr and "already running" in second.stderr
    assert "Traceback" not in second.stderr
    line = first.wait_for(
        rf"INFO run (profils@\d{{4}}-\d\d-\d\d) done in [\d.]+ s: pulled {SMALL} "
        r"contacts; segments .*send done=(\d+);.*failed 0",
        timeout=90,
    )
    sent = int(line.group(2))
    assert sent > SMALL / 3
    runs = [e for e in json_lines(log_file) if e.get("event") == "run" and "summary" in e]
    assert runs and runs[0]["status"] == "done" and runs[0]["run_id"] == line.group(1)
    assert runs[0]["summary"]["outcome"]["send"]["done"] == sent
    # every second fire of the same day resumes the same run and sends nothing again
    first.wait_for(r"run profils@\S+ done \(resumed\)")
    # a run that fails is logged, and tried again at the next fire
    bad_rules = r"ERROR run rfm@\S+ failed: .*rfm\.yaml.* will retry at the next fire"
    first.wait_for(f"(?s){bad_rules}.*{bad_rules}", timeout=30)
    # a run's process killed as the kernel's OOM killer would: a resumed profils or an rfm
    deadline = time.monotonic() + 30
    killed = False
    while not killed and time.monotonic() < deadline:  # a run leads a process group of its own
        for run_process in psutil.Process(first.proc.pid).children(recursive=True):
            try:
                if _leads(run_process.pid):
                    run_process.kill()
                    killed = True
                    break
            except psutil.NoSuchProcess:  # over already
                continue
        time.sleep(0.02)
    assert killed, "no child process for the run"
    first.wait_for(r"ERROR run \S+@\S+ failed: the run's process died \(exit code -9\)")
    assert first.proc.poll() is None  # the daemon lives on
    errors = [e for e in json_lines(log_file) if e.get("status") == "error"]
    rules = [e for e in errors if "rfm.yaml" in e["error"]]
    assert len(rules) >= 2 and {e["error_type"] for e in rules} == {"RuleError"}
    t0 = time.monotonic()
    assert first.stop(signal.SIGTERM) == 0, first.text()
    # a run in hand stops after its batch, or at once before its first one (a resumed run
    # with nothing left to send has none): none waits to be killed at the grace's end (10 s)
    assert time.monotonic() - t0 < 10
    assert "SIGTERM received" in first.text() and "stopped" in first.text()
    assert "after the stop signal" not in first.text()
    logged = json_lines(log_file)
    assert [e.get("event") for e in logged][-1] == "stop"
    # each line once: a run's process keeps none of serve's own log handlers
    assert len({json.dumps(e, sort_keys=True) for e in logged}) == len(logged)
    assert len(list((root / "outbox").rglob("*.eml"))) == sent
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        assert (
            db.execute("SELECT COUNT(*) FROM actions WHERE status='in_flight'").fetchone()[0] == 0
        )


def test_the_missed_fire_is_caught_up_stopped_mid_run_and_resumed(
    demo_pristine: Path, tmp_path: Path, servers: Servers, plugin_site: Path
) -> None:
    """The run of the missed fire is the one stopped mid-run. (A first start owes no earlier
    fire: test_one_click_unsubscribe; a crashed serve leaves no lock behind:
    tests/security/test_serve_hardening.py.)"""
    from segmerge.serve.cron import ScheduleStore

    # 75 letters, in four batches of 20 (an installed outbox plugin, as 409 letters would be
    # in batches of the outbox's 200): the stop comes while some are left
    root = first_contacts(copy_of(demo_pristine, tmp_path / "shop"), 80)
    install_plugin(plugin_site, "outbox20", OUTBOX20, "outbox20", "outbox20:Outbox20")
    config = root / "segmerge.toml"
    text = config.read_text(encoding="utf-8")
    assert '[destinations.outbox]\nconnector = "outbox"\n' in text
    config.write_text(text.replace('connector = "outbox"\n', 'connector = "outbox20"\n'))
    ws = wsmod.load(root)
    fire = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(ws.tz)
    cli("schedule", "add", "profils", f"{fire.minute} {fire.hour} * * *", "-w", str(root))
    # as if a serve had run until yesterday, then been down over today's fire
    store = ScheduleStore(ws)
    store.cover("profils", fire - timedelta(days=1))
    store.close()
    s = servers.start(root, PYTHONPATH=str(plugin_site))
    s.wait_for(r"profils: the fire of .* was missed or interrupted; running it now")
    run_id = s.wait_for(r"run (profils@\S+) started").group(1)
    assert run_id == f"profils@{fire.date().isoformat()}"  # the missed fire's day
    ledger = root / ".segmerge" / "ledger.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _count(ledger, "status='done'"):
        time.sleep(0.02)  # stop it once sends have begun
    assert s.stop(signal.SIGINT) == 0, s.text()
    assert _count(ledger, "status='in_flight'") == 0  # the batch in hand was recorded
    done_before = _count(ledger, "kind='send' AND status='done'")
    with one_core():
        summary = run(wsmod.load(root), "profils", RunOptions(as_of=run_id.split("@")[1]))
    assert summary.run_id == run_id and summary.failed == 0
    sent = summary.outcome["send"]["done"]
    assert sent >= done_before and len(list((root / "outbox").rglob("*.eml"))) == sent
    stopped_mid_run = "stopped after its current batch" in s.text()
    assert stopped_mid_run or f"run {run_id} done" in s.text()


OUTBOX20 = '''
"""The outbox in batches of 20: a run of a few dozen letters has several."""
from connectors.outbox import OutboxConnector


class Outbox20(OutboxConnector):
    batch_size = 20
'''


def _leads(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _count(ledger: Path, where: str) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM actions WHERE {where}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# one-click unsubscribe -----------------------------------------------------------


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def suppressed(root: Path) -> list[str]:
    p = cli("suppress", "list", "--format", "json", "-w", str(root))
    return [r["address"] for r in json.loads(p.stdout) if "address" in r]  # not contact ids


def test_one_click_unsubscribe(root: Path, servers: Servers) -> None:
    import psutil

    config = root / "segmerge.toml"  # no fire while the endpoint is looked at: no process
    text = config.read_text(encoding="utf-8")
    assert 'schedule = "0 9 * * MON"\n' in text
    config.write_text(text.replace('schedule = "0 9 * * MON"\n', ""), encoding="utf-8")
    # but a fire two minutes ago, daily: a first start owes no earlier fire
    fire = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(wsmod.load(root).tz)
    cli("schedule", "add", "profils", f"{fire.minute} {fire.hour} * * *", "-w", str(root))
    bounced_address = _first_subscriber(root).upper()  # suppressed before the run
    (root / "bounces.csv").write_text(f"email;raison\n{bounced_address};bounce\n", "utf-8")
    cli("suppress", "import", str(root / "bounces.csv"), "-w", str(root))
    ws = wsmod.load(root)
    with one_core():  # the campaign run once: letters sent
        first = run(ws, "profils", RunOptions(as_of="2026-12-01"))
    assert first.failed == 0
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        sent = "kind='send' AND status='done'"
        assert db.execute(f"SELECT COUNT(*) FROM actions WHERE {sent}").fetchone()[0] > SMALL / 3
        contact_id, address, segment = db.execute(
            "SELECT contact_id, target, segment FROM actions WHERE kind='send' AND "
            "status='done' ORDER BY key LIMIT 1"
        ).fetchone()
    key = signing_key(ws.state_dir, create=False)
    assert key is not None
    token = unsubscribe_token(key, contact_id)
    s = servers.start(root, "--unsubscribe-port", "0", "--log-file", str(root / "log.jsonl"))
    port = s.wait_for(r"unsubscribe endpoint on http://127\.0\.0\.1:(\d+)/unsubscribe").group(1)
    s.wait_for(r"serving ")
    assert "running it now" not in s.text()  # nor is a run started (no process, below)
    url = f"http://127.0.0.1:{port}/unsubscribe?token={token}"
    one_click = b"List-Unsubscribe=One-Click"

    # GET (a mail scanner prefetching the link) shows a page with a button, records nothing
    code, page = http("GET", url)
    assert code == 200 and 'method="post"' in page and "Me désabonner" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    # forged tokens: another contact's id with this signature, another workspace's key
    other = unsubscribe_token(key, "not-" + contact_id).split(".")[0]
    forged = [
        f"{other}.{token.split('.')[1]}",
        unsubscribe_token(b"0" * 64, contact_id),
        "garbage",
        contact_id,
    ]
    for bad in forged:
        code, page = http("POST", f"http://127.0.0.1:{port}/unsubscribe?token={bad}", one_click)
        assert code in (400, 403), bad
    code, _ = http("POST", url, b"")  # a POST without the RFC 8058 body is not a one-click
    assert code == 400
    bounced = [bounced_address.lower()]
    assert suppressed(root) == bounced

    code, page = http("POST", url, one_click)
    assert code == 200 and "Désabonnement confirmé" in page
    # then 19 replays (a scanner, a double click, an attacker): no process is started for any
    # (serve's one child is the runs' server, forked as serve started, idle until a fire)
    server = psutil.Process(s.proc.pid)
    before = {p.pid for p in server.children(recursive=True)}
    assert len(before) <= 1
    children = [before]
    for _ in range(19):
        assert http("POST", url, one_click)[0] == 200
        children.append({p.pid for p in server.children(recursive=True)})
    assert children == [before] * 20
    assert sorted(suppressed(root)) == sorted([*bounced, address.lower()])
    # after the answer: the source is told when its connector can (files cannot), and logged
    told = s.wait_for(r"unsubscribed contact (\S+) \(1 address\(es\)\); source: (.*)")
    assert (
        told.group(1) == contact_id
        and told.group(2) == "demo: not told (its connector cannot unsubscribe)"
    )
    assert len(re.findall(r"unsubscribed contact ", s.text())) == 1  # the replays recorded nothing
    with sqlite3.connect(root / ".segmerge" / "unsubscribes.sqlite") as db:
        assert db.execute("SELECT contact_id, addresses FROM unsubscribes").fetchall() == [
            (contact_id, address.lower())
        ]
    assert token not in s.text()  # the token is never logged
    assert s.stop() == 0

    # the next run does not mail that contact (suppressed by id) nor that address
    a_day_on = datetime.now(UTC) + timedelta(days=1)  # past the default daily cap
    with one_core():
        later = run(wsmod.load(root), "profils", RunOptions(as_of="2026-12-07", now=a_day_on))
    assert later.not_mailed.get("unsubscribed (one-click)", 0) >= 1
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        sends = db.execute(
            "SELECT COUNT(*) FROM actions WHERE run_id=? AND kind='send' AND lower(target)=?",
            (later.run_id, address.lower()),
        ).fetchone()[0]
    assert sends == 0
    mailed = list((root / "outbox" / "profils" / later.run_id).glob("*.eml"))
    assert len(mailed) == later.outcome["send"]["done"]
    assert not [p for p in mailed if address.lower() in p.read_text("utf-8", "replace").lower()]


def _first_subscriber(root: Path) -> str:
    """The e-mail of the demo's first contact subscribed to the newsletter."""
    from segmerge.segment.segmentation import open_source, pull

    contacts = pull(open_source(wsmod.load(root), "demo")).contacts
    return str(contacts.loc[contacts["subscribed"] & contacts["email"].notna(), "email"].iloc[0])


# deferred messages: the run is started again when contact pressure allows --------------


def test_a_run_with_deferred_messages_is_started_again(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmerge.run.pipeline as pipeline
    from segmerge.serve.cron import ScheduleStore
    from segmerge.serve.daemon import Daemon, ServeOptions

    calls: list[tuple[str, str | None]] = []
    soon = datetime.now(UTC) + timedelta(seconds=1)

    def fake_run(ws: Any, name: str, opts: RunOptions) -> pipeline.RunSummary:
        # the scheduling is under test here, not the pipeline (tested on its own)
        calls.append((name, opts.as_of))
        s = pipeline.RunSummary(f"{name}@{opts.as_of}", name, str(opts.as_of))
        if len(calls) == 1:
            s.deferred = {"quiet hours or days": 3}
            s.deferred_until = soon.isoformat()
        return s

    monkeypatch.setattr(pipeline, "run", fake_run)
    ws = wsmod.load(root)
    daemon = Daemon(ws, ServeOptions(in_process=True))
    daemon.scheduler.start()
    try:
        assert daemon._execute("profils", "2026-12-02", datetime.now(UTC), "fire")
        store = ScheduleStore(ws)
        assert [(c, d) for c, d, _ in store.reruns()] == [("profils", "2026-12-02")]
        store.close()
        # a daemon started now would arm it again (it survives a restart)
        other = Daemon(ws, ServeOptions(in_process=True))
        other.plan()
        assert other.scheduler.get_job("profils@2026-12-02 rerun") is not None
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop()
    assert calls == [("profils", "2026-12-02"), ("profils", "2026-12-02")]
    store = ScheduleStore(ws)
    assert store.reruns() == []
    store.close()
