"""Credentials never leak: malformed ones are refused by name, echoed ones are hidden.

The platform is the Brevo fake on 127.0.0.1, made to answer every write with a
401 whose body echoes the request's headers (some real APIs and most proxies do);
the commands run through the CLI's entry point in this process (the serve log's
check is in tests/security/test_serve_hardening.py, on a serve already running).
What must hold: the key is nowhere a person or a file can see it (stdout, stderr,
the traceback, the serve log, the ledger's bytes), while the error still says what
happened and where.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import keyring
import keyring.backend
import pytest
from cli import Ran
from cli import segmerge as run_cli
from workspaces import LETTER, RULES, install_plugin

from segmerge import redact
from segmerge.errors import ConfigError, CredentialError
from segmerge.ports.http import HttpClient
from segmerge.workspace import secrets
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake, echo_headers, populate

CAMPAIGN = """
    [sources.shop]
    connector = "brevo"
    base_url = "{url}"
    events = "none"
    orders = false
    contacts_requests_per_second = 200.0
    other_requests_per_hour = 360000.0

    [campaigns.brevo]
    source = "shop"
    rules = "segrules/brevo.yaml"
    templates = "templates/brevo"
    destination = "shop"
    tag_prefix = "seg:"
    schedule = "0 9 * * MON"
    """


@pytest.fixture(autouse=True)
def _forget_secrets() -> Any:
    """Secrets registered in this process by a test are not hidden from the next ones."""
    yield
    redact.clear()


@pytest.fixture
def fake() -> Any:
    server = BrevoFake(specs.brevo(), contacts_limit=1000, other_limit=1000, other_window=1.0)
    server.check_auth = echo_headers  # type: ignore[method-assign]
    server.start()
    populate(server, 12)
    yield server
    server.stop()


HEAD = """\
timezone = "Europe/Paris"
[mail]
from = "Shop <shop@example.org>"
unsubscribe_url = "https://example.org/u?token={token}"
[destinations.outbox]
connector = "outbox"
path = "outbox"
"""


def workspace(root: Path, name: str, vip_when: str, config: str) -> Path:
    """A shop with campaign ``name``: rule set, letter and ``config`` (written, not `init`:
    spawning `segmerge init` for each test costs more than the test)."""
    (root / "segrules").mkdir(parents=True)
    (root / "templates" / name).mkdir(parents=True)
    (root / "segmerge.toml").write_text(HEAD + textwrap.dedent(config))
    (root / "segrules" / f"{name}.yaml").write_text(RULES.format(name=name, vip_when=vip_when))
    (root / "templates" / name / "_default.html.j2").write_text(LETTER)
    return root


@pytest.fixture
def ws(tmp_path: Path, fake: BrevoFake) -> Path:
    return workspace(tmp_path / "shop", "brevo", "vip == true", CAMPAIGN.format(url=fake.url))


def segmerge(root: Path, *args: str, token: str = KEY) -> Ran:
    """The command in this process (tests/cli.py): its streams pass through the same
    redaction as the console script's; the plugin test below keeps a real process."""
    return run_cli(*args, "-w", str(root), env={"SEGMERGE_SHOP_TOKEN": token})


def forms(secret: str) -> list[str]:
    """The secret and the encodings it could leak in."""
    return [secret, base64.b64encode(secret.encode()).decode(), secret[8:]]


def assert_hidden(text: str | bytes, secret: str = KEY) -> None:
    for f in forms(secret):
        needle = f.encode() if isinstance(text, bytes) else f
        assert needle not in text, f"{f!r} leaked"


# -- malformed credentials ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (KEY + "\n", "ends with a space or a line break"),
        (" " + KEY, "starts with a space or a line break"),
        (KEY[:10] + "é€" + KEY[10:], "non-ASCII character (character 11)"),
        (KEY[:10] + "\r\nX-Evil: 1" + KEY[10:], "line break (character 11)"),
    ],
)
def test_a_malformed_token_is_exit_2_naming_the_variable_never_the_value(
    ws: Path, fake: BrevoFake, value: str, what: str
) -> None:
    p = segmerge(ws, "validate", "brevo", token=value)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert "SEGMERGE_SHOP_TOKEN" in out and what in out and "internal error" not in out
    assert_hidden(out, value.strip())
    assert fake.log == []  # nothing was sent with it


def test_a_malformed_token_in_dotenv_names_its_line(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("SEGMERGE_SHOP_TOKEN", raising=False)
    (tmp_path / ".env").write_text(f'# keys\nOTHER=1\nSEGMERGE_SHOP_TOKEN=" {KEY}"\n')
    with pytest.raises(ConfigError) as info:
        secrets.lookup("shop", tmp_path)
    text = str(info.value)
    assert info.value.exit_code == 2 and info.value.line == 3
    assert f"{tmp_path / '.env'}:3:" in text and "starts with a space" in text
    assert_hidden(text)


def test_auth_set_refuses_a_pasted_newline_before_storing() -> None:
    with pytest.raises(ConfigError) as info:
        secrets.store("shop", KEY + "\n")
    assert "nothing was stored" in str(info.value)
    assert_hidden(str(info.value))


# -- echoed credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("traceback", [False, True])
def test_an_echoed_key_is_hidden_from_output_traceback_and_ledger(
    ws: Path, fake: BrevoFake, traceback: bool
) -> None:
    flag = ["--traceback"] if traceback else []
    p = run_cli(
        *flag,
        "run",
        "brevo",
        "-w",
        str(ws),
        "--as-of",
        "2026-12-01",
        env={"SEGMERGE_SHOP_TOKEN": KEY},
    )
    assert any(status == 401 and method != "GET" for method, _, status in fake.log)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert "credential was refused" in out and redact.MARK in out  # what happened, shown
    assert_hidden(out)
    assert ("Traceback (most recent call last)" in p.stderr) is traceback
    for f in (ws / ".segmerge").rglob("*"):
        if f.is_file():
            assert_hidden(f.read_bytes())
    history = segmerge(ws, "history", "brevo@2026-12-01", "--format", "json")
    assert "credential was refused" in history.stdout, history.stdout + history.stderr
    assert_hidden(history.stdout + history.stderr)


class _Echo(BaseHTTPRequestHandler):
    """Answers 401 with every request header in a JSON body, and in a URL-quoted query."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        auth = self.headers.get("Authorization", "")
        body = json.dumps(
            {
                "detail": f"bad header {auth}",
                "headers": dict(self.headers),
                "retry": f"https://x/?auth={quote(auth, safe='')}",
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_basic_auth_forms_are_hidden_in_an_http_error() -> None:
    """Mailchimp-style Basic auth: the echoed header is base64("user:key"), hidden too."""
    secret = "0123456789abcdef0123456789abcdef-us6"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        client = HttpClient(
            "mc",
            f"http://127.0.0.1:{server.server_address[1]}",
            auth=("segmerge", secret),
            max_retries=0,
        )
        with pytest.raises(CredentialError) as info:
            client.get("/account")
    finally:
        server.shutdown()
        server.server_close()
    text = str(info.value)
    basic = base64.b64encode(f"segmerge:{secret}".encode()).decode()
    assert "answered 401" in text and "bad header Basic " + redact.MARK in text
    for leaked in (secret, basic, quote(basic, safe="")):
        assert leaked not in text


# -- credential files others can read -------------------------------------------------------


def test_a_dotenv_others_can_read_gets_a_warning_with_the_chmod(ws: Path) -> None:
    dotenv = ws / ".env"
    dotenv.write_text(f"SEGMERGE_SHOP_TOKEN={KEY}\n")
    dotenv.chmod(0o644)
    p = run_cli("validate", "brevo", "-w", str(ws), env={"SEGMERGE_SHOP_TOKEN": None})
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{dotenv} holds credentials" in p.stderr and f"chmod 600 {dotenv}" in p.stderr
    assert_hidden(p.stdout + p.stderr)
    dotenv.chmod(0o600)
    assert secrets.exposure_warnings(ws) == []


class FileKeyring(keyring.backend.KeyringBackend):
    """A keyring that keeps its secrets in a file, as keyrings.alt's fallbacks do."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file_path = str(path)

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError


def test_a_keyring_file_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    store = tmp_path / "keyring_pass.cfg"
    store.write_text("[segmerge]\nshop = secret\n")
    store.chmod(0o604)
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring(store))
    try:
        notes = secrets.exposure_warnings(tmp_path)
    finally:
        keyring.set_keyring(previous)
    assert len(notes) == 1 and f"chmod 600 {store}" in notes[0] and "mode 604" in notes[0]


# -- a bug's exception quoting the header ---------------------------------------------------

LEAKY = '''
import pandas as pd
from segmerge.ports.connector import Source


class Leaky(Source):
    """Fails like a client library that quotes the header it could not send."""

    needs_secret = True

    def pull(self, since=None):
        raise ValueError(f"Invalid header value b'Bearer {self.ctx.secret()}'")
'''


@pytest.mark.parametrize("traceback", [False, True])
def test_an_internal_error_quoting_the_header_is_redacted(
    tmp_path: Path, traceback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin is installed on this process's path (its entry point is read from
    there at each command) and forgotten after the test."""
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "leaky_segmerge", LEAKY, "leaky", "leaky_segmerge:Leaky")
    monkeypatch.syspath_prepend(str(site))
    root = tmp_path / "ws"
    workspace(
        root,
        "leak",
        "true",
        """
        [sources.shop]
        connector = "leaky"

        [campaigns.leak]
        source = "shop"
        rules = "segrules/leak.yaml"
        templates = "templates/leak"
        destination = "outbox"
        """,
    )
    flag = ["--traceback"] if traceback else []
    p = run_cli(
        *flag, "run", "leak", "-w", str(root), "--dry-run", env={"SEGMERGE_SHOP_TOKEN": KEY}
    )
    sys.modules.pop("leaky_segmerge", None)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"Invalid header value b'Bearer {redact.MARK}'" in out
    assert ("Traceback (most recent call last)" in out) is traceback
    assert_hidden(out)


def test_a_log_line_with_the_key_in_its_arguments_and_traceback_is_redacted() -> None:
    """What the serve log's handlers do with a connector's own log call."""
    redact.add(KEY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    redact.install([handler])
    log = logging.getLogger("segmerge.test-redact")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"refused: api-key={KEY}")
        except RuntimeError:
            log.exception("call with %s failed", {"api-key": KEY})
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "call with {'api-key': '***redacted***'} failed" in text and "RuntimeError" in text
    assert_hidden(text)
