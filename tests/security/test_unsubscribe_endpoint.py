"""The one-click unsubscribe endpoint under attack: forged, replayed, slow, oversized, flooded.

Each test runs the real endpoint on 127.0.0.1, in this process (the real
`segmerge serve` process, where the process itself is the point, is in
tests/test_serve.py) against a small real workspace (files source, outbox), and checks what matters to the
shop: who is suppressed, who is mailed next, what the platform was told.
The platform is a files source whose connector has an `unsubscribe` method
(a plugin installed as `pip install` would), writing each call to a file.
"""

from __future__ import annotations

import email
import importlib
import select
import socket
import sqlite3
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from workspaces import install_plugin

from segmerge.ledger.health import signing_key
from segmerge.mail.tokens import test_unsubscribe_token, unsubscribe_token
from segmerge.ports.schema import Tables
from segmerge.run.pipeline import RunOptions, run
from segmerge.segment.cache import Snapshot
from segmerge.serve.endpoint.server import UnsubscribeServer
from segmerge.workspace import config as wsmod
from tests.demo_fixtures import copy_of

ONE_CLICK = b"List-Unsubscribe=One-Click"
AS_OF = "2026-12-01"
PLUGIN = '''
"""Files, plus a platform that can be told about unsubscribes (each call: one line in told.txt)."""
from connectors.files import FilesConnector


class TellingFiles(FilesConnector):
    def unsubscribe(self, contact_id, email):
        if (self.ctx.root / "platform-down").exists():
            raise ConnectionError("the platform does not answer")
        with open(self.ctx.root / "told.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{contact_id} {email}\\n")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `telling` connector, importable here as an installed plugin would be."""
    path = tmp_path_factory.mktemp("site")
    install_plugin(path, "telling_segmerge", PLUGIN, "telling", "telling_segmerge:TellingFiles")
    sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    yield path
    sys.path.remove(str(path))


def contacts_csv(root: Path, emails: dict[str, str]) -> None:
    rows = ["contact_id,email,first_name,subscribed"]
    rows += [f"{cid},{addr},Prénom {cid},oui" for cid, addr in emails.items()]
    (root / "data" / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def make_shop(root: Path) -> wsmod.Workspace:
    """Five subscribed contacts on the `telling` source, one campaign to the outbox."""
    (root / "data").mkdir(parents=True)
    contacts_csv(root, {f"c{i}": f"c{i}@exemple.fr" for i in range(1, 6)})
    (root / "segrules").mkdir()
    (root / "segrules" / "a.yaml").write_text(
        "version: 1\nname: a\nexclude: not subscribed\nsegments:\n  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    tpl = root / "templates" / "a"
    tpl.mkdir(parents=True)
    (tpl / "_default.html.j2").write_text(
        '---\nsubject: "Bonjour"\n---\n<p>Bonjour {{ contact.first_name }}</p>'
        "<a href='{{ unsubscribe_url }}'>stop</a>\n",
        encoding="utf-8",
    )
    (root / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?token={token}"
        [sources.boutique]
        connector = "telling"
        path = "data"
        [destinations.outbox]
        connector = "outbox"
        path = "outbox"
        [campaigns.a]
        source = "boutique"
        rules = "segrules/a.yaml"
        destination = "outbox"
        """),
        encoding="utf-8",
    )
    return wsmod.load(root)


@pytest.fixture
def ws(tmp_path: Path, site: Path) -> wsmod.Workspace:
    """The shop before any run: no key, no send."""
    return make_shop(tmp_path)


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Path:
    """The shop after its campaign's run of AS_OF (c1..c5 mailed once): copy it to change it."""
    root = tmp_path_factory.mktemp("ran") / "shop"
    run(make_shop(root), "a", RunOptions(as_of=AS_OF))
    return root


@pytest.fixture
def ran(ran_once: Path, tmp_path: Path) -> wsmod.Workspace:
    """This test's copy of the shop after its first run (one run a module, not a test)."""
    return wsmod.load(copy_of(ran_once, tmp_path / "shop"))


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., UnsubscribeServer]]:
    """Start in-process endpoints on a free port, on the test's shop (``ran`` if it asks
    for it, else ``ws``); all stopped at the end."""
    ws = request.getfixturevalue("ran" if "ran" in request.fixturenames else "ws")
    started: list[UnsubscribeServer] = []

    def start(**kw: Any) -> UnsubscribeServer:
        s = UnsubscribeServer(ws, "127.0.0.1", 0, **kw)
        s.start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def mailed(ws: wsmod.Workspace) -> list[str]:
    """The To address of every letter in the outbox, since the start."""
    return sorted(
        parseaddr(str(email.message_from_bytes(p.read_bytes())["To"]))[1]
        for p in (ws.root / "outbox").rglob("*.eml")
    )


def key(ws: wsmod.Workspace) -> bytes:
    k = signing_key(ws.state_dir, create=False)
    assert k is not None
    return k


def http(
    s: UnsubscribeServer, method: str, token: str, body: bytes | None = None
) -> tuple[int, str, Any]:
    url = f"http://127.0.0.1:{s.port}/unsubscribe?token={token}"
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8"), e.headers


def raw(s: UnsubscribeServer, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` as is; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=timeout) as c:
        c.sendall(data)
        return read_all(c)


def read_all(c: socket.socket) -> bytes:
    out = b""
    while chunk := c.recv(65536):
        out += chunk
    return out


def state(ws: wsmod.Workspace) -> dict[str, Any]:
    """What the workspace has recorded: suppressed addresses and ids, audit rows, told calls."""
    out: dict[str, Any] = {"addresses": set(), "ids": set(), "audit": [], "told": []}
    ledger = ws.state_dir / "ledger.sqlite"
    if ledger.exists():
        with sqlite3.connect(ledger) as db:
            out["addresses"] = {r[0] for r in db.execute("SELECT address FROM suppressions")}
            out["ids"] = {r[0] for r in db.execute("SELECT contact_id FROM suppressed_contacts")}
    audit = ws.state_dir / "unsubscribes.sqlite"
    if audit.exists():
        with sqlite3.connect(audit) as db:
            out["audit"] = db.execute(
                "SELECT contact_id, addresses, told, source FROM unsubscribes"
            ).fetchall()
    told = ws.root / "told.txt"
    out["told"] = told.read_text(encoding="utf-8").splitlines() if told.exists() else []
    return out


def wait_until(check: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not reached within {timeout} s: {what}")


# forged and test tokens -------------------------------------------------------------


def test_forged_tokens_get_403_and_nothing_is_recorded(ran, serve):
    ws = ran  # mailed on AS_OF
    s = serve()
    good = unsubscribe_token(key(ws), "c1")
    other = unsubscribe_token(key(ws), "c2").split(".")[0]
    forged = [
        f"{other}.{good.split('.')[1]}",  # another contact with c1's signature
        unsubscribe_token(b"0" * 64, "c1"),  # another workspace's key
        "garbage",
        "c1",
        good[:-2],
        good + "x" * 600,  # last: non-ASCII
        good.split(".")[0] + ".%C3%A9",
    ]
    for bad in forged:
        code, page, _ = http(s, "POST", bad, ONE_CLICK)
        assert code == 403 and "rien n'a été enregistré" in page, bad
        assert http(s, "GET", bad)[0] == 403
    assert state(ws) == {"addresses": set(), "ids": set(), "audit": [], "told": []}


def test_a_test_send_token_is_accepted_and_never_unsubscribes_anyone(ran, serve):
    ws = ran  # mailed on AS_OF
    s = serve()
    token = test_unsubscribe_token(key(ws), "c1@exemple.fr")  # the seed is also a customer
    code, page, _ = http(s, "POST", token, ONE_CLICK)
    assert code == 200 and "Message de test" in page and "rien n'a été enregistré" in page
    assert "<h1>Message de test</h1>" in http(s, "GET", token)[1]
    assert state(ws) == {"addresses": set(), "ids": set(), "audit": [], "told": []}


def test_the_key_is_read_again_when_its_file_changes(ws, serve):
    s = serve()  # `serve` started before the first run made the key
    assert http(s, "GET", unsubscribe_token(b"f" * 64, "c1"))[0] == 403
    assert http(s, "GET", unsubscribe_token(signing_key(ws.state_dir, create=True), "c1"))[0] == 200


# a valid unsubscribe ------------------------------------------------------------------


def pulled_copy(ws: wsmod.Workspace, emails: dict[str, str]) -> None:
    """The source's last pulled copy in `.segmerge/snapshots/`, as an API source keeps it."""
    tables = Tables(
        pd.DataFrame({"contact_id": list(emails), "email": list(emails.values())}),
        pd.DataFrame({"order_id": [], "contact_id": []}),
        pd.DataFrame({"contact_id": [], "event": [], "at": []}),
    )
    tables.cursor = "2026-12-01T00:00:00Z"
    Snapshot(ws.state_dir, "boutique").save(tables, "fp")


def test_a_valid_post_suppresses_the_id_and_every_known_address(ran, serve):
    ws = ran  # c1 was mailed at c1@exemple.fr
    pulled_copy(ws, {"c1": "C1.Nouveau@EXEMPLE.fr", "c2": "c2@exemple.fr"})
    s = serve()
    code, page, _ = http(s, "POST", unsubscribe_token(key(ws), "c1"), ONE_CLICK)
    assert code == 200 and "Désabonnement confirmé" in page
    # recorded before the answer: no waiting here
    got = state(ws)
    assert got["ids"] == {"c1"}
    assert got["addresses"] == {"c1@exemple.fr", "c1.nouveau@exemple.fr"}
    assert [a[:2] for a in got["audit"]] == [("c1", "c1.nouveau@exemple.fr,c1@exemple.fr")]
    # then the platform is told, once per address, and the audit row says so
    wait_until(lambda: state(ws)["audit"][0][2] == "yes", what="platform told")
    assert sorted(state(ws)["told"]) == ["c1 c1.nouveau@exemple.fr", "c1 c1@exemple.fr"]


def test_an_unsubscribe_is_kept_when_the_ledger_has_no_send_for_the_contact(ws, serve):
    signing_key(ws.state_dir, create=True)  # links were sent; the ledger was moved since
    pulled_copy(ws, {"c3": "c3@exemple.fr", "c4": "c4@exemple.fr"})
    s = serve()
    assert http(s, "POST", unsubscribe_token(key(ws), "c3"), ONE_CLICK)[0] == 200
    assert state(ws)["ids"] == {"c3"} and state(ws)["addresses"] == {"c3@exemple.fr"}
    # a contact known nowhere is still suppressed by id
    assert http(s, "POST", unsubscribe_token(key(ws), "c9"), ONE_CLICK)[0] == 200
    assert state(ws)["ids"] == {"c3", "c9"} and state(ws)["addresses"] == {"c3@exemple.fr"}


def test_a_contact_who_unsubscribed_then_changed_address_is_not_mailed(ran, serve):
    ws = ran  # mailed on AS_OF
    s = serve()
    assert http(s, "POST", unsubscribe_token(key(ws), "c2"), ONE_CLICK)[0] == 200
    s.stop()
    # the CRM changes c2's address; the next run must still leave c2 alone
    contacts_csv(
        ws.root, {**{f"c{i}": f"c{i}@exemple.fr" for i in range(1, 6)}, "c2": "c2.pro@ailleurs.fr"}
    )
    week_later = datetime.now(UTC) + timedelta(days=7)  # past the one-a-day default cap
    later = run(wsmod.load(ws.root), "a", RunOptions(as_of="2026-12-08", now=week_later))
    assert later.outcome["send"]["done"] == 4
    assert "c2.pro@ailleurs.fr" not in mailed(ws)
    assert mailed(ws).count("c2@exemple.fr") == 1  # the first run's letter only


# replays and the platform queue ------------------------------------------------------


def test_a_platform_that_is_down_is_told_after_a_restart(ran, serve):
    ws = ran  # mailed on AS_OF
    (ws.root / "platform-down").touch()
    s = serve(retry_base=3600)  # the first attempt fails; the retry is far away
    assert http(s, "POST", unsubscribe_token(key(ws), "c4"), ONE_CLICK)[0] == 200
    wait_until(lambda: "attempt 1" in state(ws)["audit"][0][3], what="first attempt failed")
    assert state(ws)["audit"][0][2] == "pending" and state(ws)["told"] == []
    assert state(ws)["ids"] == {"c4"}  # the person is protected meanwhile
    s.stop()
    (ws.root / "platform-down").unlink()
    with sqlite3.connect(ws.state_dir / "unsubscribes.sqlite") as db:  # the retry is due now
        db.execute("UPDATE pending_notifications SET next_at = 0")
    serve()  # a new `serve` picks the pending row up
    wait_until(lambda: state(ws)["audit"][0][2] == "yes", what="told after restart")
    assert state(ws)["told"] == ["c4 c4@exemple.fr"] and len(state(ws)["audit"]) == 1


def test_twenty_replays_are_recorded_once_and_the_platform_told_once(ran, serve):
    """Twenty POSTs of one link (a mail scanner, a double click, an attacker replaying it):
    one suppression, one audit row, one call to the platform. That they start no process
    in the real `segmerge serve` is checked in tests/test_serve.py (test_one_click_unsubscribe)."""
    ws = ran  # mailed on AS_OF
    s = serve()
    token = unsubscribe_token(key(ws), "c5")
    for _ in range(20):
        assert http(s, "POST", token, ONE_CLICK)[0] == 200
    wait_until(
        lambda: state(ws)["audit"] and state(ws)["audit"][0][2] == "yes", 30, "platform told"
    )
    got = state(ws)
    assert len(got["audit"]) == 1 and got["told"] == ["c5 c5@exemple.fr"]
    assert got["ids"] == {"c5"} and got["addresses"] == {"c5@exemple.fr"}


# the network: slow, oversized, too many -----------------------------------------------


def test_a_slowloris_connection_is_cut_off_while_others_are_served(ws, serve):
    signing_key(ws.state_dir, create=True)
    s = serve(read_timeout=1.5)
    slow = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    stop = threading.Event()

    def drip() -> None:  # about 27 s for the whole request, if it were let through
        try:
            for byte in b"GET /unsubscribe?token=x HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * 70:
                slow.sendall(bytes([byte]))
                if stop.wait(0.25):
                    return
        except OSError:
            pass

    opened = time.monotonic()
    threading.Thread(target=drip, daemon=True).start()
    # meanwhile a person's click is answered, while the slow connection is still open
    assert http(s, "GET", unsubscribe_token(key(ws), "c1"))[0] == 200
    assert select.select([slow], [], [], 0)[0] == [] or time.monotonic() - opened > 1.5
    got = read_all(slow)  # returns when the server closes the connection
    lasted = time.monotonic() - opened
    stop.set()
    slow.close()
    assert got.startswith(b"HTTP/1.1 408 ") and 1.4 < lasted < 6


def test_connections_beyond_the_cap_get_503_and_service_resumes(ws, serve):
    signing_key(ws.state_dir, create=True)
    s = serve(max_connections=8, read_timeout=30)
    idle = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(8)]
    wait_until(lambda: len(s.conns) == 8, what="idle connections accepted")
    token = unsubscribe_token(key(ws), "c1")
    t0 = time.monotonic()
    code, _, headers = http(s, "GET", token)
    assert code == 503 and headers["Retry-After"] and time.monotonic() - t0 < 10  # not a hang
    for c in idle:
        c.close()
    wait_until(lambda: not s.conns, what="idle connections closed")
    assert http(s, "GET", token)[0] == 200


def test_oversized_requests_and_other_methods_are_refused_and_record_nothing(ran, serve):
    ws = ran  # mailed on AS_OF
    s = serve()
    token = unsubscribe_token(key(ws), "c1")
    line = f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: a\r\n".encode()
    big_body = ONE_CLICK + b"&x=" + b"a" * 10_000
    answers = {
        "body": raw(s, line + f"Content-Length: {len(big_body)}\r\n\r\n".encode() + big_body),
        "claimed": raw(s, line + b"Content-Length: 99999999999\r\n\r\n"),
        "headers": raw(s, line + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n"),
        "many": raw(s, line + b"X-A: b\r\n" * 2000 + b"\r\n"),
        "chunked": raw(
            s, line + b"Transfer-Encoding: chunked\r\n\r\n1a\r\n" + ONE_CLICK + b"\r\n0\r\n\r\n"
        ),
        "two lengths": raw(
            s, line + b"Content-Length: 26\r\nContent-Length: 0\r\n\r\n" + ONE_CLICK
        ),
        "PUT": raw(s, line.replace(b"POST", b"PUT") + b"Content-Length: 26\r\n\r\n" + ONE_CLICK),
        "DELETE": raw(s, line.replace(b"POST", b"DELETE") + b"\r\n"),
    }
    status = {k: v.split(b"\r\n", 1)[0].decode() for k, v in answers.items()}
    assert status == {
        "body": "HTTP/1.1 413 Request Entity Too Large",
        "claimed": "HTTP/1.1 400 Bad Request",
        "headers": "HTTP/1.1 431 Request Header Fields Too Large",
        "many": "HTTP/1.1 431 Request Header Fields Too Large",
        "chunked": "HTTP/1.1 411 Length Required",
        "two lengths": "HTTP/1.1 400 Bad Request",
        "PUT": "HTTP/1.1 405 Method Not Allowed",
        "DELETE": "HTTP/1.1 405 Method Not Allowed",
    }
    assert b"Allow: GET, POST, HEAD" in answers["PUT"]
    assert state(ws)["ids"] == set() and state(ws)["audit"] == []
    assert http(s, "HEAD", token)[:2] == (200, "")  # HEAD is served, without a body
    # and the same unsubscribe, well formed, still works
    assert http(s, "POST", token, ONE_CLICK)[0] == 200 and state(ws)["ids"] == {"c1"}
