"""Front-matter values become header text: one line, and a templated sender only names.

A subject, a preheader or a sender's name may come from contact data; a line
break in it would start a header of its own. Apart from the templates so that a
header's rules are read in one place.
"""

from __future__ import annotations

import re
from typing import Any

from segmerge.render.front import Front
from segmerge.render.senders import Sender, sender_text

# control characters and Unicode line breaks; no-break spaces are kept ("20\xa0€")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r"  +")


def one_line(text: str) -> str:
    """Headers are one line: newlines and control characters cannot reach them."""
    # a templated value starts with the newlines that keep its lines the file's:
    # spaces here, stripped below, and for most subjects the only thing to flatten
    text = text.lstrip("\n")
    if text.isprintable() and "  " not in text:  # most subjects: nothing to flatten
        return text.strip(" ")
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" ")


def front_value(v: Front | str | None, variables: dict[str, Any]) -> str:
    """A front-matter value for this contact; constants were made one line at load."""
    if v is None or isinstance(v, str):
        return v or ""
    return one_line(v.render(variables))


def mailbox(v: Sender | str | None, variables: dict[str, Any]) -> str | None:
    """This contact's sender: a constant as written, a templated one's name filled in."""
    if isinstance(v, Sender):
        return sender_text(front_value(v.name, variables), v.address)
    return v or None
