"""RFC 5322 messages: multipart text + HTML, deterministic Message-ID, one-click unsubscribe."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from html import escape

from .errors import TemplateError
from .render import Rendered

PREHEADER = (
    '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">'
    "{text}</div>"
)


def message_id_for(key: str, domain: str) -> str:
    """The same action always yields the same Message-ID, so a resend is recognisable."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _clean(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise TemplateError(f"{what} contains a line break (header injection refused)")
    return value


def build_message(
    r: Rendered,
    *,
    to: str,
    to_name: str | None,
    from_addr: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
    reply_to: str | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Message:
    """Build with the classic `email.mime` API: ~20x faster than EmailMessage's header registry.

    Non-ASCII display names and subjects are RFC 2047-encoded by `Header`.
    """
    html = r.html
    if r.preheader:
        hidden = PREHEADER.format(text=escape(r.preheader))
        html = html.replace("<body>", "<body>" + hidden, 1) if "<body>" in html else hidden + html
    msg = MIMEMultipart("alternative")
    msg["From"] = _address(*parseaddr(_clean(from_addr, "from")))
    msg["To"] = _address(_clean(to_name or "", "name"), _clean(to, "to"))
    if reply_to:
        msg["Reply-To"] = _address(*parseaddr(_clean(reply_to, "reply_to")))
    msg["Subject"] = Header(_clean(r.subject, "subject"), "utf-8").encode()
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id
    targets = [f"<{unsubscribe_url}>"]
    if unsubscribe_mailto:
        targets.append(f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>")
    msg["List-Unsubscribe"] = ", ".join(targets)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for k, v in (extra_headers or {}).items():
        msg[k] = _clean(v, k)
    msg.attach(MIMEText(r.text, "plain", "utf-8"))
    msg.attach(MIMEText(html, "html", "utf-8"))
    return msg


def _address(name: str, addr: str) -> str:
    if not name:
        return addr
    if name.isascii():
        return formataddr((name, addr))
    return f"{Header(name, 'utf-8').encode()} <{addr}>"
