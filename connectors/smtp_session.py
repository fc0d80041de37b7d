"""One SMTP connection of the smtp destination: open it, and hand one message over.

Kept apart from the connector so that the rules of a single transaction are
in one place, and above all the one that makes exactly-once possible:
*where* a failure happens decides what it means.

- Before the message body is handed over (connect, MAIL FROM, RCPT TO, the
  DATA command itself), nothing can have been delivered: a lost connection
  is reconnected and the message tried again, a 4xx is a retry, a 5xx a
  failure.
- Once the body's first byte has left, the server may deliver the message
  even if its answer never arrives: a lost connection or a timeout there
  makes the message *uncertain*, and it is never sent again implicitly.

``smtplib.SMTP.sendmail`` hides that boundary, so the transaction is spelled
out with ``mail()``, ``rcpt()``, ``docmd("DATA")`` and ``send()``.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Literal

Phase = Literal["MAIL FROM", "RCPT TO", "DATA", "end of DATA"]
_DOTS = re.compile(rb"(?m)^\.")


class Lost(Exception):
    """The connection broke; ``handed_over`` says whether the body had started to go."""

    def __init__(self, reason: str, *, handed_over: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handed_over = handed_over


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    phase: Phase

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trusted CAs, or only ``ca_file`` (a private relay's own certificate)."""
    return ssl.create_default_context(cafile=ca_file)


def connect(
    host: str, port: int, *, implicit_tls: bool, timeout: float, context: ssl.SSLContext | None
) -> smtplib.SMTP:
    """TCP (or TLS from the first byte) and EHLO; errors are the caller's to explain."""
    conn: smtplib.SMTP
    if implicit_tls:
        conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    try:
        code, text = conn.ehlo()
        if code != 250:
            code, text = conn.helo()
            if code != 250:
                raise smtplib.SMTPHeloError(code, text)
    except BaseException:
        conn.close()
        raise
    return conn


def transfer(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> Reply:
    """One message, one recipient. Raises :class:`Lost`; returns the deciding reply."""
    try:
        code, text = conn.mail(sender)
        if code != 250:
            return _refused(conn, Reply(code, _text(text), "MAIL FROM"))
        code, text = conn.rcpt(recipient)
        if code not in (250, 251):
            return _refused(conn, Reply(code, _text(text), "RCPT TO"))
        code, text = conn.docmd("DATA")
        if code != 354:
            return _refused(conn, Reply(code, _text(text), "DATA"))
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _close(conn)
        raise Lost(_why(exc), handed_over=False) from None
    body = _DOTS.sub(b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    try:
        conn.send(body + b".\r\n")
        code, text = conn.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _close(conn)
        raise Lost(_why(exc), handed_over=True) from None
    return Reply(code, _text(text), "end of DATA")


def quit_politely(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        _close(conn)


def _refused(conn: smtplib.SMTP, reply: Reply) -> Reply:
    """Reset the transaction so that the next message starts clean (a 421 closes it)."""
    if reply.code == 421:
        _close(conn)
        return reply
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        _close(conn)
    return reply


def _close(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
