"""`segmerge serve` against a stuck campaign: the others fire on time, and nothing outlives serve.

The stuck campaign's source is a real installed connector plugin that, like a
connector wrapping a database client or a tunnel, starts a helper process, then
connects to a server on 127.0.0.1 that accepts and never answers, deaf to
SIGTERM as a C client library can be in its call; a third campaign is stuck the
same way but hears SIGTERM. The quick campaign's source answers at once with
three contacts. Everything runs in the real `segmerge serve` process (its own
process group, as a shell job is); processes are looked at with psutil. A serve refused before it starts runs in this
process (tests/cli.py), the plugin's folder on its import path.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli import segmerge
from workspaces import LETTER, RULES, SEGMERGE, cli_env, install_plugin

from segmerge.serve.lock import LOCK_FILE, serve_lock
from segmerge.workspace import config as wsmod
from tests.demo_fixtures import copy_of, interrupted_after
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake, echo_headers, populate

PLUGIN = '''
"""Two shop APIs as sources: one that answers, one that never does."""
import json, os, signal, socket, subprocess, sys
import pandas as pd
from segmerge.ports.connector import ConnectorSettings, Source
from segmerge.ports.schema import Tables


class Tiny(Source):
    """Three contacts, at once."""

    def pull(self, since=None):
        return Tables(pd.DataFrame({
            "contact_id": ["a", "b", "c"],
            "email": ["a@x.fr", "b@x.fr", "c@x.fr"],
            "first_name": ["Ann", "Bob", "Cy"],
            "subscribed": [True, True, False],
        }))


ENVIRON = ("PYTHONPATH", "PYTHONSAFEPATH", "OPENBLAS_NUM_THREADS", "JE_ARROW_MALLOC_CONF")


class StuckSettings(ConnectorSettings):
    port: int
    pids: str
    deaf: bool = True  # to SIGTERM/SIGINT, as a C client library can be in its call


class Stuck(Source):
    """Starts a helper process, then waits forever for a server that never answers."""

    Settings = StuckSettings

    def pull(self, since=None):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if self.settings.deaf:  # before its pids are told: a signal from then on waits
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        with open(self.settings.pids + ".env", "w") as fh:  # what the run was given
            json.dump({k: os.environ.get(k) for k in ENVIRON}, fh)
        with open(self.settings.pids, "a") as fh:
            fh.write(f"{os.getpid()} {helper.pid}\\n")
        conn = socket.create_connection(("127.0.0.1", self.settings.port))
        conn.recv(1)
        raise AssertionError("the server answered")
'''
STUCK_CRON = "*/3 * * * * *"  # often: its next fires come while it hangs
QUICK_CRON = "0 9 * * MON"  # --run-on-start fires both at once: the other's next fire is far


@pytest.fixture(scope="module")
def base(demo_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace made by `segmerge init` (the suite's, made once), copied by each test."""
    root = copy_of(demo_pristine, tmp_path_factory.mktemp("serve-base") / "shop")
    (root / "segrules" / "simple.yaml").write_text(
        "version: 1\nname: simple\nexclude: not subscribed\nsegments:\n"
        "  - name: zens\n    when: true\n"
    )
    config = root / "segmerge.toml"  # only the campaigns below are scheduled
    text = config.read_text(encoding="utf-8")
    assert 'schedule = "0 9 * * MON"\n' in text
    config.write_text(text.replace('schedule = "0 9 * * MON"\n', ""), encoding="utf-8")
    return root


ECHOING = """
[sources.crm]
connector = "brevo"
base_url = "{url}"
events = "none"
orders = false
contacts_requests_per_second = 200.0
other_requests_per_hour = 360000.0

[campaigns.brevo]
source = "crm"
rules = "segrules/brevo.yaml"
templates = "templates/brevo"
destination = "crm"
tag_prefix = "seg:"
schedule = "0 9 * * MON"
"""


@pytest.fixture()
def echoing() -> Iterator[BrevoFake]:
    """A platform (the Brevo fake) that answers every write with a 401 quoting its key."""
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=1000, other_window=1.0)
    server.check_auth = echo_headers  # type: ignore[method-assign]
    server.start()
    populate(server, 12)
    yield server
    server.stop()


def assert_hidden(text: str) -> None:
    """The key, and the encodings it could leak in, are nowhere in ``text``."""
    for form in (KEY, base64.b64encode(KEY.encode()).decode(), KEY[8:]):
        assert form not in text, f"{form!r} leaked"


@pytest.fixture()
def silent_server() -> Iterator[socket.socket]:
    """A server on 127.0.0.1 that accepts connections (the backlog does) and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield srv
    srv.close()


class Shop:
    """A copy of the base workspace with a stuck campaign (`bloquee`), deaf to SIGTERM, a
    quick one (`petite`) and one stuck in a read that SIGTERM interrupts (`attente`)."""

    def __init__(self, base: Path, tmp: Path, port: int, site: Path) -> None:
        self.root = tmp / "shop"
        shutil.copytree(base, self.root)
        install_plugin(site, "shops_segmerge", PLUGIN, "tiny", "shops_segmerge:Tiny")
        info = site / "shops_segmerge-0.1.dist-info" / "entry_points.txt"
        info.write_text(info.read_text() + "stuck = shops_segmerge:Stuck\n")
        self.env = cli_env(PYTHONPATH=str(site))
        self.pids = tmp / "stuck-pids.txt"
        self.hearing = tmp / "hearing-pids.txt"  # attente's
        self.log = tmp / "serve.jsonl"
        self.err = tmp / "serve.err"
        campaign = textwrap.dedent("""
            [campaigns.{name}]
            source = "{source}"
            rules = "segrules/simple.yaml"
            templates = "templates/profils-vpc"
            destination = "outbox"
            push_tags = false
            schedule = "{cron}"
            """)
        with (self.root / "segmerge.toml").open("a") as fh:
            fh.write(
                textwrap.dedent(f"""
                [sources.stuck]
                connector = "stuck"
                port = {port}
                pids = "{self.pids}"

                [sources.tiny]
                connector = "tiny"

                [sources.hearing]
                connector = "stuck"
                port = {port}
                pids = "{self.hearing}"
                deaf = false
                """)
            )
            # the stuck campaign first: a one-worker daemon would take it first and block
            fh.write(campaign.format(name="bloquee", source="stuck", cron=STUCK_CRON))
            fh.write(campaign.format(name="petite", source="tiny", cron=QUICK_CRON))
            fh.write(campaign.format(name="attente", source="hearing", cron=QUICK_CRON))
        self.proc: subprocess.Popen[bytes] | None = None

    def add_echoing_platform(self, url: str) -> None:
        """A campaign `brevo` on a platform that echoes its key in every refusal: the key,
        given in the environment, must never reach serve's log."""
        (self.root / "segrules" / "brevo.yaml").write_text(
            RULES.format(name="brevo", vip_when="vip == true")
        )
        (self.root / "templates" / "brevo").mkdir()
        (self.root / "templates" / "brevo" / "_default.html.j2").write_text(LETTER)
        with (self.root / "segmerge.toml").open("a") as fh:
            fh.write(ECHOING.format(url=url))
        self.env["SEGMERGE_CRM_TOKEN"] = KEY

    def serve(self, *args: str) -> subprocess.Popen[bytes]:
        # started from a folder with a `segmerge` package of its own (a checkout of another
        # version): serve, and every process its runs are started from, import their own
        decoy = self.root.parent / "elsewhere" / "segmerge"
        decoy.mkdir(parents=True, exist_ok=True)
        (decoy / "__init__.py").write_text("raise SystemExit('the wrong segmerge')\n")
        with self.err.open("wb") as fh:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    SEGMERGE,
                    "serve",
                    "-w",
                    str(self.root),
                    "--log-file",
                    str(self.log),
                    "--run-on-start",
                    *args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=fh,
                env=self.env,
                process_group=0,
                cwd=decoy.parent,
            )
        return self.proc

    def text(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(ln) for ln in lines if ln.endswith("}")]

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            assert self.proc is not None and self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen in:\n{self.text()}")

    def stuck_processes(
        self, timeout: float = 60, runs: int = 1, pids: Path | None = None
    ) -> tuple[int, int]:
        """(the stuck run's process, the helper it started), once the source of the
        ``runs``-th stuck run hangs (of `bloquee`, or of the campaign writing ``pids``)."""
        pids = pids or self.pids
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = pids.read_text() if pids.exists() else ""
            if text.endswith("\n") and text.count("\n") >= runs:
                run, helper = text.split()[-2:]  # the latest run
                return int(run), int(helper)
            assert self.proc is not None and self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError(f"the stuck source never started:\n{self.text()}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture()
def shop(
    base: Path, tmp_path: Path, silent_server: socket.socket, plugin_site: Path
) -> Iterator[Shop]:
    """The plugin is installed in ``plugin_site``: on serve's PYTHONPATH, and on this
    process's import path for the commands run here."""
    s = Shop(base, tmp_path, silent_server.getsockname()[1], plugin_site)
    yield s
    s.close()


def alive(pids: set[int]) -> list[psutil.Process]:
    """The processes among `pids` still running (a zombie has ended: only its status is left)."""
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def in_groups(groups: set[int]) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) in groups and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return out


def wait_gone(pids: set[int], groups: set[int], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = alive(pids) + in_groups(groups)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


def test_a_stuck_campaign_never_delays_another_is_stopped_at_its_max_run_time_and_at_sigterm(
    shop: Shop, echoing: BrevoFake
) -> None:
    """One serve for both ends of a stuck run: its max run time, then serve's SIGTERM; and
    a platform's refusal that quotes the key, kept out of serve's log."""
    shop.add_echoing_platform(echoing.url)
    proc = shop.serve("--max-run-time", "bloquee=12s", "--stop-grace", "1s")
    run, helper = shop.stuck_processes()
    assert len(alive({run, helper})) == 2  # hung in its source, with its helper process
    killed = r"ERROR run bloquee@\S+ failed: stopped by SIGKILL after its max run time of 12 s"
    before = len(re.findall(killed, shop.text()))  # on a loaded machine, one may have come
    # the stuck one's next fire is not started on top of it, and the log says why
    shop.wait_for(
        r"WARNING run bloquee@\S+ not started \(fire of [^)]+\): bloquee@\S+ is "
        r"still running \(for \d+ s; its max run time is 12 s\)"
    )
    # the quick campaign, fired at the same instant, started on time and completes
    shop.wait_for(r"INFO run petite@\S+ done in")
    start = next(
        e for e in shop.events() if e.get("event") == "run_start" and e["campaign"] == "petite"
    )
    late = datetime.fromisoformat(start["ts"]) - datetime.fromisoformat(start["scheduled_for"])
    assert late.total_seconds() < 2.5, late
    mailed = sorted(p.name for p in (shop.root / "outbox" / "petite").rglob("*.eml"))
    assert mailed == ["a-zens.eml", "b-zens.eml"]  # c is not subscribed
    shop.wait_for(r"ERROR run brevo@\S+ failed: .*credential was refused")
    # at its max run time: SIGTERM (ignored by a blocked read), then SIGKILL to its group
    shop.wait_for((killed + r" \(serve --max-run-time\)(?s:.*)") * (before + 1), timeout=30)
    assert not wait_gone({run, helper}, {run}, timeout=5)
    failed = [e for e in shop.events() if e.get("status") == "error"]
    assert {e["campaign"] for e in failed} == {"bloquee", "brevo"}
    stuck = [e for e in failed if e["campaign"] == "bloquee"]
    assert {e["error_type"] for e in stuck} == {"timeout"}
    assert 12 <= stuck[-1]["duration_s"] < 20
    assert proc.poll() is None  # serve lives on
    assert "Traceback" not in shop.text()

    # its next fire hangs again: SIGTERM stops serve within seconds, and no process is left
    runs = len(shop.pids.read_text().splitlines())
    run, helper = shop.stuck_processes(runs=runs + 1)
    hearing, its_helper = shop.stuck_processes(pids=shop.hearing)  # attente, since the start
    ours = descendants(proc.pid) | {run, helper, hearing, its_helper}
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, shop.text()
    took = time.monotonic() - t0
    assert took < 1 + 3, took  # the grace period, then SIGKILL, then exit
    assert not wait_gone(ours, {proc.pid, run, hearing}, timeout=3)
    text = shop.text()
    assert "SIGTERM received: no new run" in text
    assert re.search(
        r"run bloquee@\S+ killed 1 s after the stop signal \(shutdown\); the next "
        r"start resumes it",
        text,
    ), text
    # a run that hears SIGTERM before its first batch stops at once: nothing was in flight
    assert re.search(
        r"run attente@\S+ stopped before its first batch \(shutdown\); the next start "
        r"resumes it",
        text,
    ), text
    assert re.search(r"INFO stopped after \d+ run\(s\); 2 interrupted", text), text
    assert shop.events()[-1]["event"] == "stop"
    # the platform's refusal is logged, what it quoted of the key is not
    logged = shop.log.read_text(encoding="utf-8")
    assert "credential was refused" in logged and any(
        method != "GET" and status == 401 for method, _, status in echoing.log
    )
    for line in logged.splitlines():
        json.loads(line)  # the JSON lines stay JSON
    assert_hidden(logged)
    assert_hidden(text)


def test_serve_killed_outright_takes_its_runs_with_it(shop: Shop) -> None:
    proc = shop.serve()
    run, helper = shop.stuck_processes()
    deadline = time.monotonic() + 10
    ours = descendants(proc.pid) | {run, helper}
    while len(ours) < 3 and time.monotonic() < deadline:  # the guard may still be forking
        time.sleep(0.05)
        ours |= descendants(proc.pid)
    # the run is a fork of serve's own fork (no fresh interpreter imported the engine again)
    assert psutil.Process(run).parent().parent().pid == proc.pid
    assert psutil.Process(run).parent().cmdline() == psutil.Process(proc.pid).cmdline()
    proc.kill()  # SIGKILL to serve alone: no handler, no cleanup of its own
    proc.wait()
    # its lock went with it (no run holds it): the file is left, and the next serve may start
    assert (shop.root / ".segmerge" / LOCK_FILE).exists()
    with serve_lock(wsmod.load(shop.root)):
        pass
    # the run dies with its parent (PR_SET_PDEATHSIG), its group with it (the guard)
    assert not wait_gone(ours, {run}, timeout=5)
    # the run had serve's environment: nothing serve set to start it stays
    given = json.loads(shop.pids.with_name(shop.pids.name + ".env").read_text())
    assert given == {k: shop.env.get(k) for k in given}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-run-time", "nope=5m"], "names no campaign of this workspace: 'nope'"),
        (["--max-run-time", "-1"], "--max-run-time expects a duration"),
        (["--stop-grace", "soon"], "--stop-grace expects a duration"),
    ],
)
def test_a_bad_time_limit_is_a_usage_error_before_anything_runs(
    shop: Shop, args: list[str], says: str
) -> None:
    with interrupted_after(60):
        p = segmerge("serve", "-w", str(shop.root), "--run-on-start", *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert says in p.stderr and "Traceback" not in p.stderr
    assert not shop.pids.exists()  # nothing was run
