"""The `smtp` destination: each message handed to an SMTP relay, at most once.

A send cannot be undone, so the destination is *not idempotent*: the ledger
marks each batch in flight before :meth:`SmtpConnector.push` and records the
outcomes after; a process killed in between leaves those messages
``uncertain``, and only ``segmerge run --resend-uncertain`` sends them again.
``batch_size`` (default 1) is therefore also the most messages a crash can
leave uncertain; the ledger's two commits per message cost about 0.1 ms,
which a relay's four round trips dwarf (see benchmarks/send.py).

What each answer means (smtp_session.py draws the line between "nothing can
have been delivered" and "the body has left"):

- 250 at the end of DATA -> done, with the server's answer (its queue id);
- 4xx anywhere -> tried again within the push (twice, after ``retry_delay``
  then twice that), then ``retry``: it goes back to planned and the next
  run tries again;
- 5xx -> failed, with the server's code and reason; a refused recipient
  fails that message only;
- connection lost before the body -> reconnect once and go on; lost after
  it -> uncertain.

The connection opens lazily, is reused across messages, batches and push()
calls (``max_per_connection`` bounds it), and is closed politely by close().
A throttle (smtp_throttle.py) spaces messages to ``rate_per_second`` and
``rate_per_hour``; it waits, it never drops. The password comes from the
workspace's secret store (`segmerge auth set NAME`) and is never shown.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from collections.abc import Sequence
from email.message import Message
from email.utils import parseaddr
from typing import Any, ClassVar, cast

from pydantic import Field

from segmerge.ports import (
    Action,
    ConfigError,
    ConnectorContext,
    ConnectorError,
    ConnectorSettings,
    CredentialError,
    Destination,
    Outcome,
    OutcomeStatus,
    _,
)

from . import smtp_session as session
from . import smtp_throttle

RETRIES_4XX = 2


class SmtpSettings(ConnectorSettings):
    host: str = Field(min_length=1)
    #: default 465 with ssl = true, else 587 (submission)
    port: int | None = Field(default=None, ge=1, le=65535)
    #: default: on, unless ssl = true
    starttls: bool | None = None
    ssl: bool = False
    username: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    rate_per_second: float | None = Field(default=None, gt=0)
    rate_per_hour: int | None = Field(default=None, gt=0)
    max_per_connection: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=1, ge=1, le=1000)
    #: the envelope sender (MAIL FROM), where bounces go; default: the From address
    envelope_from: str | None = None
    #: seconds before the first in-push retry of a 4xx (doubled for the second)
    retry_delay: float = Field(default=1.0, ge=0, le=60)
    #: a PEM file of the CA (or self-signed certificate) to trust instead of the system's
    ca_file: str | None = None


class SmtpConnector(Destination):
    Settings = SmtpSettings
    description = "sends each message through an SMTP relay (STARTTLS or SSL, login, throttle)"
    accepts: ClassVar[frozenset[str]] = frozenset({"send"})
    idempotent: ClassVar[bool] = False

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        s = self.settings
        assert isinstance(s, SmtpSettings)
        self.s = s
        if s.ssl and s.starttls:
            raise ConfigError(
                _("ssl and starttls cannot both be on"),
                file=ctx.config_file,
                field=f"{ctx.name}.ssl",
                hint=_(
                    "ssl = true is TLS from the first byte (usually port 465); starttls "
                    "= true upgrades a plain connection (usually port 587)"
                ),
            )
        self.starttls = (not s.ssl) if s.starttls is None else s.starttls
        self.port = s.port or (465 if s.ssl else 587)
        self.address = f"{s.host}:{self.port}"
        self.needs_secret = s.username is not None  # type: ignore[misc]
        self.batch_size = s.batch_size  # also the most messages a crash leaves uncertain
        self.throttle = smtp_throttle.shared(
            (s.host, self.port, s.username), s.rate_per_second, s.rate_per_hour
        )
        self._conn: smtplib.SMTP | None = None
        self._on_conn = 0  # messages handed over on the current connection
        self._broken: ConnectorError | None = None
        self._password: str | None = None
        self._reserved = False  # a throttle slot taken by wait_ready() for the next message
        self.connections = 0  # opened so far (for tests and the benchmark)

    # the Destination interface ----------------------------------------------------

    def check(self) -> list[str]:
        """Connect, EHLO, STARTTLS, LOGIN, QUIT: proves settings and login, sends nothing."""
        conn = self._open()
        session.quit_politely(conn)
        how = "SSL" if self.s.ssl else "STARTTLS" if self.starttls else "no TLS"
        who = f", logged in as {self.s.username}" if self.s.username else ""
        notes = [f"{self.name}: SMTP server {self.address} answers ({how}{who})"]
        if self.s.username and how == "no TLS":
            said = _("{source}: the password travels unencrypted (starttls = false)")
            notes.append(said.format(source=self.name))
        return notes

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        """Send each message once; raises only if no message of this batch could be handed over."""
        if self._broken is not None:
            raise self._broken
        outcomes: dict[str, Outcome] = {}
        pending = list(actions)
        for attempt in range(RETRIES_4XX + 1):
            if attempt:
                time.sleep(self.s.retry_delay * 2 ** (attempt - 1))
            again: list[Action] = []
            for i, action in enumerate(pending):
                try:
                    outcome = self._send(action)
                except ConnectorError as exc:
                    if not any(o.status in ("done", "uncertain") for o in outcomes.values()):
                        raise
                    # some of this batch went: keep their outcomes, stop here
                    self._broken = exc
                    for rest in pending[i:] + again:
                        outcomes[rest.key] = Outcome(rest.key, "retry", exc.message)
                    return list(outcomes.values())
                outcomes[action.key] = outcome
                if outcome.status == "retry":
                    again.append(action)
            pending = again
            if not pending:
                break
        return [outcomes[a.key] for a in actions]

    def wait_ready(self, count: int) -> None:
        """Wait for the throttle *before* the pipeline marks a batch in flight.

        A pipeline that calls this keeps a long throttle wait (an hourly limit
        reached) out of the in-flight window, so a kill during it leaves
        nothing uncertain. Without it the wait happens inside push(): correct,
        only more cautious.
        """
        if count and self.throttle.active and not self._reserved:
            self.throttle.wait()
            self._reserved = True

    def close(self) -> None:
        if self._conn is not None:
            session.quit_politely(self._conn)
            self._conn = None

    # one message -----------------------------------------------------------------

    def _send(self, action: Action) -> Outcome:
        key = action.key
        problem = _invalid(action)
        if problem:
            return Outcome(key, "failed", problem)
        msg = action.message
        assert msg is not None
        sender = self.s.envelope_from or parseaddr(str(msg["From"]))[1]
        recipient = str(action.payload.get("to") or parseaddr(str(msg["To"]))[1])
        if not sender or not recipient:
            return Outcome(key, "failed", "no envelope sender or recipient address")
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        if self._reserved:
            self._reserved = False
        else:
            self.throttle.wait()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                reply = session.transfer(conn, sender, recipient, data)
            except session.Lost as lost:
                self._conn = None
                if lost.handed_over:
                    why = (
                        f"{self.address}: connection lost after the message was handed "
                        f"over ({lost.reason}); it may have been delivered"
                    )
                    return Outcome(key, cast(OutcomeStatus, "uncertain"), why)
                if attempt == 1:
                    continue  # nothing was delivered: reconnect once, transparently
                return Outcome(key, "retry", f"{self.address}: connection lost ({lost.reason})")
            self._on_conn += 1
            if self._conn is not None and self._conn.sock is None:
                self._conn = None  # a 421 closed it
            return _outcome(key, reply)
        raise AssertionError("unreachable")

    # the connection --------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        limit = self.s.max_per_connection
        if self._conn is not None and limit and self._on_conn >= limit:
            session.quit_politely(self._conn)
            self._conn = None
        if self._conn is None:
            self._conn = self._open()
            self._on_conn = 0
        return self._conn

    def _open(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS, LOGIN; every failure becomes one clear error."""
        s, where = self.s, self.address
        context = session.tls_context(self._ca_file()) if (s.ssl or self.starttls) else None
        conn: smtplib.SMTP | None = None
        try:
            conn = session.connect(
                s.host, self.port, implicit_tls=s.ssl, timeout=s.timeout, context=context
            )
            if self.starttls:
                if not conn.has_extn("starttls"):
                    raise ConnectorError(
                        _("the SMTP server {server} does not offer STARTTLS").format(server=where),
                        file=self.ctx.config_file,
                        field=f"{self.name}.starttls",
                        hint=_(
                            "use ssl = true if it speaks TLS from the first byte (port 465); "
                            "starttls = false only for a relay on a trusted network"
                        ),
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                conn.login(s.username, self._secret())
        except ConnectorError:
            _close(conn)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _close(conn)
            raise CredentialError(
                _("the SMTP server {server} refused the login of {user} ({answer})").format(
                    server=where,
                    user=s.username,
                    answer=f"{exc.smtp_code} {self._scrub(exc.smtp_error)}",
                ),
                field=f"destinations.{self.name}",
                hint=_("store the right password with `segmerge auth set {name}`").format(
                    name=self.name
                ),
            ) from None
        except smtplib.SMTPNotSupportedError:
            _close(conn)
            raise ConnectorError(
                _("the SMTP server {server} offers no login (AUTH) on this connection").format(
                    server=where
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.username",
                hint=_("many relays offer it only after STARTTLS; or remove username"),
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            _close(conn)
            raise ConnectorError(
                _("TLS with the SMTP server {server} failed: {problem}").format(
                    server=where, problem=getattr(exc, "reason", None) or exc
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.{'ssl' if s.ssl else 'starttls'}",
                hint=_('a private relay\'s certificate can be trusted with ca_file = "cert.pem"'),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            _close(conn)
            raise ConnectorError(
                _("cannot reach the SMTP server {server}: {problem}").format(
                    server=where, problem=self._scrub(_reason(exc))
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.host",
                hint=_("check host and port, and that the relay accepts connections from here"),
            ) from None
        self.connections += 1
        return conn

    def _secret(self) -> str:
        if self._password is None:
            self._password = self.ctx.secret()
        if not self._password:
            raise CredentialError(
                _("destination {name} has a username but no password").format(name=self.name),
                field=f"destinations.{self.name}",
                hint=_(
                    "store it with `segmerge auth set {name}` (or set the environment "
                    "variable the docs name)"
                ).format(name=self.name),
            )
        return self._password

    def _ca_file(self) -> str | None:
        return str(self.ctx.path(self.s.ca_file)) if self.s.ca_file else None

    def _scrub(self, text: Any) -> str:
        """A server's words, without the password should it ever echo it."""
        out = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if self._password:
            out = out.replace(self._password, "***")
        return " ".join(out.split())


def _outcome(key: str, reply: session.Reply) -> Outcome:
    if reply.ok and reply.phase == "end of DATA":
        return Outcome(key, "done", str(reply))
    if reply.temporary:
        return Outcome(key, "retry", f"{reply} ({reply.phase})")
    return Outcome(key, "failed", f"{reply} ({reply.phase})")


def _invalid(action: Action) -> str | None:
    if action.kind != "send":
        return f"the smtp destination only sends messages, it cannot {action.kind}"
    if not isinstance(action.message, Message):
        return "no message to send"
    if action.message["Message-ID"] is None:
        return "the message has no Message-ID"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"{exc.smtp_code} {words}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()
