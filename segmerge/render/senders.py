"""A templated ``from:`` / ``reply_to:``: contact data may name the sender, never address it.

A letter may say ``from: "{{ contact.seller }} de La Boutique <bonjour@example.org>"``
so that each customer sees their own adviser's name. The address is where
replies and bounces go, so it is only ever what the file says: the front
matter's literal ``<address>``, split off when the letters load (a templated
address is refused there, with the file and line). At render time the name is
filled and made harmless by :func:`segmerge.mail.message.display_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from segmerge.errors import TemplateError
from segmerge.mail.message import display_name
from segmerge.render.frontmatter import FrontField

#: ``name <address>`` at the end of a front-matter value; the name may hold Jinja
_NAMED = re.compile(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.DOTALL)
_JINJA = ("{{", "{%", "{#")


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
            f"the address of {key} must be written out, not templated: {f.value!r}",
            file=path,
            line=f.line,
            field=key,
            hint=f'only the name may use contact data, e.g. {key}: "{{{{ contact.seller }}}} '
            '<bonjour@example.org>"',
        )
    return m.group("name"), addr


def sender_text(name: str, address: str) -> str:
    """``"Name" <address>`` with the rendered name made harmless, or the bare address."""
    shown = display_name(name)
    return f'"{shown}" <{address}>' if shown else address
