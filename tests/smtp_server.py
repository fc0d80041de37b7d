"""A real SMTP server on loopback for the smtp destination's tests and benchmark.

``SmtpServer`` runs aiosmtpd in a thread of the calling process, on 127.0.0.1
and a free port, so it outlives the ``segmerge`` subprocesses a test kills and
restarts. It records every accepted message (its Message-ID, envelope, the
session it came in, the server-side time and a ``tag`` the test sets), counts
sessions, and can be told to answer 4xx or 5xx for chosen recipients, to
require a login, or to speak TLS (STARTTLS or implicit) with a self-signed
certificate made at test time.

``make_workspace`` writes a small synthetic workspace (N subscribed contacts,
one segment, one short template) whose campaign sends through this server.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's chatter about test logins


@dataclass
class Received:
    message_id: str
    mail_from: str
    rcpt_tos: list[str]
    at: float
    session: int
    tag: Any
    data: bytes = b""

    def headers(self) -> Any:
        return _HEADERS.parsebytes(self.data)


@dataclass
class Behaviour:
    """What the server answers; change it between runs (it is read on every command)."""

    #: address (lower case) -> full reply to its RCPT TO, e.g. "450 4.2.1 mailbox busy"
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    #: address -> how many RCPT TO still get "451 try again" before it is accepted
    flaky: dict[str, int] = field(default_factory=dict)
    #: seconds between queueing a message and answering the end of DATA
    data_delay: float = 0.0
    #: addresses whose message is queued, then the connection dropped without an answer
    hangup_after: set[str] = field(default_factory=set)
    #: keep the message bodies (the benchmark's sink does not)
    keep_data: bool = True


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, srv: Any, session: Any, envelope: Any, address: str, options: Any):
        b = self.server.behaviour
        low = address.lower()
        self.server.rcpts.append(low)
        if b.flaky.get(low, 0) > 0:
            b.flaky[low] -= 1
            return "451 4.7.1 try again later"
        if low in b.rcpt_replies:
            return b.rcpt_replies[low]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:
        b = self.server.behaviour
        data = envelope.original_content or envelope.content or b""
        mid = _message_id(data)
        reply = self.server._store(mid, envelope, getattr(srv, "_segmerge_session", 0), data)
        if b.data_delay:  # queued, but the answer is late: what a client sees as "uncertain"
            await asyncio.sleep(b.data_delay)
        if {a.lower() for a in envelope.rcpt_tos} & b.hangup_after:
            srv.transport.abort()  # queued, and the answer never leaves
        return reply


def _message_id(data: bytes) -> str:
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)]
    for line in head.split(b"\r\n"):
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode("ascii", "replace")
    return ""


class _CountingSMTP(SMTP):
    """Numbers each TCP session (a STARTTLS upgrade is the same session)."""

    def connection_made(self, transport: Any) -> None:
        if self.transport is None:
            self._segmerge_session = self._segmerge_owner._new_session()
        super().connection_made(transport)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # "AUTH without TLS": on loopback, on purpose
            warnings.simplefilter("ignore")
            smtp = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp._segmerge_owner = self.owner
        return smtp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``with SmtpServer() as srv: ...`` or start()/stop()."""

    def __init__(
        self,
        *,
        login: tuple[str, str] | None = None,
        tls: str | None = None,  # None, "starttls" or "implicit"
        cert_dir: Path | None = None,
        keep_data: bool = True,
        idle_timeout: float = 300,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.behaviour = Behaviour(keep_data=keep_data)
        self.tag: Any = None
        self.login = login
        self.auth_attempts: list[str] = []  # logins tried (never the passwords)
        self.rcpts: list[str] = []  # every RCPT TO, accepted or not, in order
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._sessions = 0
        self.cert_file: Path | None = None
        kwargs: dict[str, Any] = {
            "server_hostname": "segmerge-test",
            "ready_timeout": 10,
            "timeout": idle_timeout,
        }
        if tls:
            if cert_dir is None:
                raise ValueError("TLS needs a cert_dir")
            self.cert_file, key_file = self_signed_cert(cert_dir)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert_file, key_file)
            if tls == "starttls":
                kwargs.update(tls_context=ctx, require_starttls=True)
            else:
                kwargs.update(ssl_context=ctx)
        if login:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=bool(tls),
            )
        with warnings.catch_warnings():  # "AUTH without TLS": on loopback, on purpose
            warnings.simplefilter("ignore")
            self.controller = _Controller(
                self, _Handler(self), hostname=self.host, port=self.port, **kwargs
            )

    # lifecycle --------------------------------------------------------------

    def start(self) -> SmtpServer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.controller.start()
        # the controller's own readiness probe opened a session: do not count it
        with self._lock:
            self._sessions = 0
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # what the server saw ------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def sessions(self) -> int:
        with self._lock:
            return self._sessions

    def count(self) -> int:
        with self._lock:
            return len(self._messages)

    def by_message_id(self) -> Counter[str]:
        return Counter(m.message_id for m in self.messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._sessions = 0

    # internals ----------------------------------------------------------------

    def _new_session(self) -> int:
        with self._lock:
            self._sessions += 1
            return self._sessions

    def _store(self, mid: str, envelope: Any, session: int, data: bytes) -> str:
        with self._lock:
            n = len(self._messages) + 1
            keep = data if self.behaviour.keep_data else b""
            self._messages.append(
                Received(
                    mid,
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    time.time(),
                    session,
                    self.tag,
                    keep,
                )
            )
        return f"250 2.0.0 Ok: queued as Q{n:06d}"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.login is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        self.auth_attempts.append(user)
        ok = (user, auth_data.password.decode("utf-8", "replace")) == self.login
        return AuthResult(success=ok, handled=False)


# TLS ---------------------------------------------------------------------------


def tls_available() -> bool:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return shutil.which("openssl") is not None
    return True


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made now (cryptography or openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    try:
        _cert_with_cryptography(cert, key)
    except ImportError:
        openssl = shutil.which("openssl")
        if not openssl:
            raise RuntimeError("neither the cryptography package nor openssl") from None
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def _cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# a synthetic workspace -------------------------------------------------------------


TEMPLATE = """---
subject: "Bonjour {{ contact.first_name }}"
---
<p>Bonjour {{ contact.first_name }},</p>
<p>Voici la lettre de la semaine.</p>
<p><a href="{{ unsubscribe_url }}">Se désabonner</a></p>
"""

RULES = """version: 1
name: tous
mode: first
exclude: not subscribed or email is null
segments:
  - name: tous
    label: Tout le monde
    when: true
"""


def make_workspace(
    root: Path,
    contacts: int,
    server: SmtpServer | None,
    *,
    unsubscribed_every: int = 0,
    push_tags: bool = False,
    **smtp_settings: Any,
) -> Path:
    """A workspace whose campaign `lettre` mails `contacts` people through `server`.

    Contact i has id ``c{i:05d}`` and address ``user{i}@example.org``; every
    ``unsubscribed_every``-th one is not subscribed (and must never be mailed).
    """
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "segrules").mkdir(exist_ok=True)
    (root / "templates" / "tous").mkdir(parents=True, exist_ok=True)
    lines = ["contact_id,email,first_name,last_name,subscribed"]
    for i in range(contacts):
        sub = "false" if unsubscribed_every and i % unsubscribed_every == 0 else "true"
        lines.append(f"c{i:05d},user{i}@example.org,Prénom{i},Nom{i},{sub}")
    (root / "data" / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "segrules" / "tous.yaml").write_text(RULES, encoding="utf-8")
    (root / "templates" / "tous" / "_default.html.j2").write_text(TEMPLATE, encoding="utf-8")
    settings = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "starttls": False,
    } | smtp_settings
    dest = "\n".join(f"{k} = {_toml(v)}" for k, v in settings.items())
    (root / "segmerge.toml").write_text(
        f"""timezone = "Europe/Paris"
locale = "fr_FR"

[mail]
from = "La Boutique <bonjour@boutique.example>"
unsubscribe_url = "https://boutique.example/desabonnement?token={{token}}"
message_id_domain = "boutique.example"

[sources.base]
connector = "files"
path = "data"

[destinations.relay]
connector = "smtp"
{dest}

[campaigns.lettre]
source = "base"
rules = "segrules/tous.yaml"
templates = "templates/tous"
destination = "relay"
push_tags = {_toml(push_tags)}
""",
        encoding="utf-8",
    )
    return root


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serve_stdin() -> None:
    """`python tests/smtp_server.py`: a sink in its own process (the benchmark's second core).

    Prints ``ready PORT``; answers ``count`` and ``sessions`` on stdin; exits on EOF.
    """
    import sys

    with SmtpServer(keep_data=False) as srv:
        print(f"ready {srv.port}", flush=True)
        for line in sys.stdin:
            word = line.strip()
            if word == "count":
                print(srv.count(), flush=True)
            elif word == "sessions":
                print(srv.sessions, flush=True)
            elif word == "clear":
                srv.clear()
                print("ok", flush=True)


if __name__ == "__main__":
    _serve_stdin()
