"""RFC 5322 messages: multipart text + HTML, deterministic Message-ID, one-click unsubscribe."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
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
    msg["Subject"] = encode_words(_clean(r.subject, "subject"))
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
    return f"{encode_words(name)} <{addr}>"


def encode_words(text: str) -> str:
    """RFC 2047 base64 encoded-words of at most 75 characters, split on character boundaries.

    Written by hand because `email.header.Header` costs milliseconds per message.
    """
    if text.isascii():
        return text
    words: list[str] = []
    chunk = ""
    for ch in text:
        if len((chunk + ch).encode()) > 45:
            words.append(chunk)
            chunk = ""
        chunk += ch
    words.append(chunk)
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words
    ).replace("\r\n", "\n")
