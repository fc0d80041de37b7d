"""What rendering takes and gives: one run's context and one contact's letter.

Apart from :mod:`segmerge.render.templates` so that the pool rendering many
letters (:mod:`segmerge.render.pool`) and the mail built from a letter
(:mod:`segmerge.mail.message`) name them without importing the templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class RenderContext:
    """What every letter of one run shares; ``unsubscribe_url`` is this contact's link."""

    campaign: Mapping[str, Any]
    today: date
    unsubscribe_url: str


@dataclass(frozen=True)
class Rendered:
    """One contact's letter, ready for :func:`segmerge.mail.message.build_message`."""

    subject: str
    preheader: str  # "" when the template has none
    html: str
    text: str
    from_addr: str | None  # None: the campaign's sender
    reply_to: str | None
    template: str  # the .html.j2 file used
