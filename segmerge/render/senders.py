"""A templated ``from:`` / ``reply_to:``: contact data may name the sender, never address it.

A letter may say ``from: "{{ contact.seller }} de La Boutique <bonjour@example.org>"``
so that each customer sees their own adviser's name. The address is where
replies and bounces go, so it is only ever what the file says: the front
matter's literal ``<address>``, split off when the letters load (a templated
address is refused there, with the file and line). At render time the name is
filled and made harmless by :func:`display_name`, which mail's headers use for every
name (the To name is contact data too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from segmerge.errors import TemplateError
from segmerge.i18n import _
from segmerge.render.frontmatter import FrontField

#: ``name <address>`` at the end of a front-matter value; the name may hold Jinja
_NAMED = re.compile(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.DOTALL)
_JINJA = ("{{", "{%", "{#")
# what a display name may not hold: line breaks and controls (made spaces), then what
# could end a quoted name or start an address, and invisible direction overrides
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_NAME_DROP = re.compile(r'[<>"\\\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+')
#: a display name is cut to this many characters (a 10 kB "name" is not one)
NAME_MAX = 100


@dataclass(frozen=True)
class Sender:
    """A templated sender: ``name`` is a compiled template (or constant text)."""

    name: Any
    address: str


def split_templated(f: FrontField, path: Path, key: str) -> tuple[str, str]:
    """The name part (Jinja allowed) and the literal address of a templated sender; an
    address part holding Jinja, or no ``<address>`` at all, is a TemplateError."""
    m = _NAMED.match(f.value.strip())
    addr = m.group("addr").strip() if m else ""
    if m is None or any(j in addr for j in _JINJA) or "@" not in parseaddr(f"<{addr}>")[1]:
        raise TemplateError(
            _("the address of {key} must be written out, not templated: {value}").format(
                key=key, value=repr(f.value)
            ),
            file=path,
            line=f.line,
            field=key,
            hint=_(
                'only the name may use contact data, e.g. {key}: "{{{{ contact.seller }}}} '
                '<bonjour@example.org>"'
            ).format(key=key),
        )
    return m.group("name"), addr


def sender_text(name: str, address: str) -> str:
    """``"Name" <address>`` with the rendered name made harmless, or the bare address."""
    shown = display_name(name)
    return f'"{shown}" <{address}>' if shown else address


def display_name(value: str) -> str:
    """A display name that can only name: one line, no quote, angle bracket or backslash
    (what could close a quoted name and add an address), no direction override, at most
    :data:`NAME_MAX` characters. Contact data goes through here before any header."""
    text = str(value)
    if _NAME_CONTROL.search(text):
        text = _NAME_CONTROL.sub(" ", text)
    if _NAME_DROP.search(text):
        text = _NAME_DROP.sub("", text)
    text = re.sub(r"  +", " ", text).strip(" ")
    return text[:NAME_MAX].rstrip(" ") if len(text) > NAME_MAX else text
