"""RFC 5322 messages: text + HTML alternatives, one-click unsubscribe, nothing injectable.

Built on the classic ``email.message.Message`` (compat32), with headers and
bodies encoded here by C-speed codecs (``binascii``): the stdlib's
``EmailMessage`` header registry and compat32's own ``Header`` folding cost
over a millisecond per message, and a run builds one per contact. What the
registry would have checked is checked here instead:

- addresses are validated (one ``@``, no spaces, brackets or line breaks,
  domain in IDNA form); a bad one raises :class:`MessageError` for that
  contact, it never reaches a header;
- a subject or an extra header value holding CR/LF or other control
  characters is flattened to one line, so no header can be injected;
- a display name (often contact data: the To name, a templated From name)
  only ever names: :func:`segmerge.render.senders.display_name` drops the
  quotes, angle brackets and backslashes that could close it and open an
  address, and it is quoted as needed (``"Petit, Carole" <c@x.fr>``), or
  RFC 2047 encoded when it is not ASCII or looks like an encoded word already;
- non-ASCII subjects and names become RFC 2047 encoded words (Q encoding);
  bodies are UTF-8, quoted-printable for mostly-Latin text, else base64;
- ``List-Unsubscribe`` carries the https link (and the mailto, if any) and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058);
- the MIME boundary and the Message-ID derive from the idempotency key, so
  the same action yields the same bytes and a resend is recognisable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from segmerge.errors import DataError
from segmerge.i18n import _
from segmerge.mail.header_value import WORD_ROOM, Value, encoded_words
from segmerge.render.senders import display_name

if TYPE_CHECKING:
    from segmerge.render.rendered import Rendered

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")  # no-break spaces are kept
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_SPACES = re.compile(r"  +")
_NOT_IN_LINK = re.compile(r'[ <>"\r\n\t]')  # one search, not a scan per character
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_URL_SAFE = "!#$%&'()*+/:;=?@[]~-._"

#: headers build_message sets itself; extra_headers may not replace them
RESERVED = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Sender",
        "Return-Path",
    )
)
# A hidden first element: the inbox shows it after the subject. The padding keeps
# clients from filling the rest of the preview with the first words of the body.
PREHEADER = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;mso-hide:all;" aria-hidden="true">{text}'
    + "&#847;&zwnj;&nbsp;" * 30
    + "</div>"
)


class MessageError(DataError):
    """The contact's data cannot make a valid message (an address that is not one)."""


def message_id_for(key: str, domain: str) -> str:
    """The same action always yields the same Message-ID: ``<sha256-prefix@domain>``."""
    host = _domain(domain, "message_id_domain")
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{host}>"


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
    """One contact's message, multipart/alternative (text/plain then text/html).

    Serialise it with ``msg.as_bytes()`` (LF) or with a ``linesep="\\r\\n"`` policy clone.
    """
    args = (to, to_name, from_addr, message_id, unsubscribe_url, unsubscribe_mailto, reply_to)
    headers = _headers(r, *args, date=date, extra_headers=extra_headers)
    msg = Message()
    for header, encoded in headers:  # compat32 keeps objects as given, folds them on output
        encoded.offset = len(header) + 2
    _set_headers(msg, headers)
    msg.attach(_part(r.text, "plain"))
    msg.attach(_part(with_preheader(r.html, r.preheader), "html"))
    return msg


def check_message(  # build_message's arguments
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
) -> None:
    """What :func:`build_message` refuses, refused the same way and in the same order (a
    dry run must refuse every letter a send would), without the MIME message it would
    throw away, nor what cannot fail: the date, the boundary, the folded forms. What
    every letter repeats (sender, names, subjects, the campaign's headers) is checked
    once; a dry run checked each letter's headers in 52 µs, most of its process's time."""
    _message_id(message_id)
    _mailbox_words(from_addr, "from")
    _address(to, "to")
    _name_checked(to_name or "")
    if reply_to:
        _mailbox_words(reply_to, "reply_to")
    _text_words(str(r.subject))
    _link(unsubscribe_url)
    if not unsubscribe_url.isascii():  # only a non-ASCII link can fail to encode
        quote(unsubscribe_url, safe=_URL_SAFE)
    if unsubscribe_mailto:
        _mailto(unsubscribe_mailto)
    for name, value in (extra_headers or {}).items():
        _header_name(name)
        _text_words(str(value))
    r.text.encode("utf-8")
    with_preheader(r.html, r.preheader).encode("utf-8")


@lru_cache(maxsize=4096)
def _name_checked(to_name: str) -> None:
    """A To name encodes (the address does not change that), checked once per name."""
    _named(display_name(to_name), "a@example.org")


def _message_id(message_id: str) -> None:
    if not _MESSAGE_ID.fullmatch(message_id or ""):
        raise MessageError(
            _("invalid Message-ID {value}").format(value=repr(message_id)), field="message_id"
        )


@lru_cache(maxsize=256)
def _header_name(name: str) -> None:
    """An extra header's name, checked once per run (a bad one raises each time)."""
    if not _HEADER_NAME.match(name) or name.lower() in RESERVED:
        raise MessageError(
            _("extra header {name} is not allowed").format(name=repr(name)),
            field="extra_headers",
        )


def _headers(  # build_message's arguments, in its order
    r: Rendered,
    to: str,
    to_name: str | None,
    from_addr: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
    reply_to: str | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> list[tuple[str, Value]]:
    """The message's headers, each checked and encoded (see the module's docstring)."""
    _message_id(message_id)
    when = date or datetime.now(UTC)
    headers: list[tuple[str, Value]] = [
        ("From", _mailbox(from_addr, "from")),
        ("To", _named(display_name(to_name or ""), _address(to, "to"))),
    ]
    if reply_to:
        headers.append(("Reply-To", _mailbox(reply_to, "reply_to")))
    headers += [
        ("Subject", _text(r.subject)),
        ("Date", Value(format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC)))),
        ("Message-ID", Value(message_id)),
        ("List-Unsubscribe", _unsubscribe(unsubscribe_url, unsubscribe_mailto)),
        ("List-Unsubscribe-Post", Value("List-Unsubscribe=One-Click")),
    ]
    for name, value in (extra_headers or {}).items():
        _header_name(name)
        headers.append((name, _text(value)))
    boundary = "=_" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:28]
    headers.append(("MIME-Version", Value("1.0")))
    headers.append(("Content-Type", Value(f'multipart/alternative; boundary="{boundary}"')))
    return headers


def with_preheader(html: str, preheader: str) -> str:
    """The preheader as a hidden first element of the body (or of the document)."""
    if not preheader:
        return html
    hidden = PREHEADER.format(text=escape(_one_line(preheader), quote=False))
    m = _BODY_TAG.search(html)
    return html[: m.end()] + hidden + html[m.end() :] if m else hidden + html


def _text(value: str) -> Value:
    """Unstructured text, one line; encoded when not ASCII, or when a word is too long to
    fold (a 10 kB word would make a line the SMTP server refuses)."""
    return Value(*_text_words(str(value)))


@lru_cache(maxsize=4096)
def _text_words(value: str) -> tuple[str, list[str]]:
    """What :func:`_text` shows and folds, kept for the values every letter of a run
    repeats (the campaign's headers, a subject without a first name); never mutated."""
    line = _one_line(value)
    if line.isascii() and (len(line) <= WORD_ROOM or max(map(len, line.split(" "))) <= 76):
        return line, line.split(" ")
    return line, encoded_words(line)


def _named(name: str, addr: str) -> Value:
    """``Name <addr>``: an ASCII name quoted as needed (``"Petit, Carole"``), any other one
    RFC 2047 encoded, and so is one holding ``=?`` (an encoded word of its own would
    be decoded by the reader into whatever it says)."""
    if not name:
        return Value(addr)
    if name.isascii() and "=?" not in name:
        return Value(formataddr((name, addr)))
    return Value(f"{name} <{addr}>", [*encoded_words(name), f"<{addr}>"])


def _mailbox(value: str, field: str) -> Value:
    """'Name <addr>' or 'addr', validated and re-encoded."""
    return Value(*_mailbox_words(value, field))


@lru_cache(maxsize=256)
def _mailbox_words(value: str, field: str) -> tuple[str, list[str]]:
    """A sender, parsed and checked once per run, not once per letter (parseaddr alone
    cost more than a Jinja letter); a bad one raises again each time (not cached)."""
    if any(ch in value for ch in "\r\n\0"):
        raise MessageError(
            _("{field} contains a line break: {value}").format(field=field, value=repr(value)),
            field=field,
        )
    name, addr = parseaddr(value)
    if not addr:
        raise MessageError(
            _("{field} {value} is not an e-mail address").format(field=field, value=repr(value)),
            field=field,
        )
    named = _named(display_name(name), _address(addr, field))
    return named.shown, named.words


def _address(value: str, field: str) -> str:
    """A bare address, checked: ASCII local part, domain in IDNA form."""
    addr = str(value).strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not _LOCAL.match(local) or ".." in local:
        raise MessageError(
            _("{field} address {value} is not valid").format(field=field, value=repr(value)),
            field=field,
        )
    return f"{local}@{_domain(domain, field, shown=value)}"


def _domain(domain: str, field: str, shown: str | None = None) -> str:
    host = _idna(domain)
    if not host:
        raise MessageError(
            _("{field}: {value} has no valid domain").format(
                field=field, value=shown or repr(domain)
            ),
            field=field,
        )
    return host


@lru_cache(maxsize=4096)
def _idna(domain: str) -> str:
    """The domain in IDNA form, "" if it is not a valid one: few domains for many letters."""
    try:
        host = domain.strip().encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    return host if _DOMAIN.match(host) else ""


def _unsubscribe(url: str, mailto: str | None) -> Value:
    _link(url)
    targets = [f"<{quote(url, safe=_URL_SAFE)}>"]  # commas and non-ASCII percent-encoded
    if mailto:
        targets.append(_mailto(mailto))
    return Value(", ".join(targets), targets, sep=", ")


def _link(url: str) -> None:
    if not url.startswith("https://") or _NOT_IN_LINK.search(url):
        raise MessageError(
            _("unsubscribe link {url} must be an https:// URL without spaces (RFC 8058)").format(
                url=repr(url)
            ),
            field="unsubscribe_url",
        )


@lru_cache(maxsize=64)
def _mailto(mailto: str) -> str:
    """The unsubscribe mailto, the same for every letter of a run: checked once."""
    address, _sep, query = mailto.removeprefix("mailto:").partition("?")
    params = quote(query, safe="=&") if query else "subject=unsubscribe"
    return f"<mailto:{_address(address, 'unsubscribe_mailto')}?{params}>"


def _one_line(value: str) -> str:
    text = str(value)
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" ") if "  " in text else text.strip(" ")


def _set_headers(msg: Message, headers: list[tuple[str, Value]]) -> None:
    """What ``msg[name] = value`` does for each header under compat32 (its
    ``header_store_parse`` keeps the pair as given, and it limits no header's count),
    without a policy lookup per header: fifteen per letter, a million letters."""
    assert msg.policy is compat32 and not msg.keys()
    msg._headers = list(headers)  # type: ignore[attr-defined]


_PART_TYPE = {s: Value(f'text/{s}; charset="utf-8"') for s in ("plain", "html")}
_QP, _B64 = Value("quoted-printable"), Value("base64")


def _part(body: str, subtype: str) -> Message:
    data = (body if body.endswith("\n") else body + "\n").encode("utf-8")
    part = Message()
    if (len(data) - len(body)) * 8 < len(data):  # mostly ASCII: readable quoted-printable
        _set_headers(
            part, [("Content-Type", _PART_TYPE[subtype]), ("Content-Transfer-Encoding", _QP)]
        )
        part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    else:
        _set_headers(
            part, [("Content-Type", _PART_TYPE[subtype]), ("Content-Transfer-Encoding", _B64)]
        )
        part.set_payload(base64.encodebytes(data).decode("ascii"))
    return part
