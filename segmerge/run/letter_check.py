"""A dry run's check of each letter, done by the process that rendered it.

A dry run proves that each letter could be sent: its message's headers are
checked as a send checks them (:func:`segmerge.mail.message.check_message`).
Done in the process that builds the run, the checks took a fifth of a letter's
time there and every letter had to come back from the render workers, pickled.
:class:`LetterCheck` is a picklable :class:`~segmerge.render.batches.Finish`:
each process that renders a share of a chunk checks it, and sends back only
``None`` (the letter would be sent) or the error line a send would report.

This module is imported by the render workers when they unpickle a check: it
keeps to what a message needs (no pandas, no ledger store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from segmerge.errors import TemplateError
from segmerge.ledger.keys import send_key
from segmerge.mail.message import MessageError, check_message, message_id_for
from segmerge.render.batches import Finish
from segmerge.render.rendered import Rendered

if TYPE_CHECKING:
    from segmerge.mail.tracking_links import Tracker


@dataclass(frozen=True)
class Headers:
    """What every message of a campaign's run carries besides the letter and the contact:
    the one place that turns them into :func:`build_message`'s arguments."""

    campaign: str
    sender: str
    reply_to: str | None
    message_id_domain: str
    unsubscribe_mailto: str | None

    def args(
        self,
        r: Rendered,
        to: str,
        contact: Mapping[str, Any] | None,
        key: str,
        unsubscribe_url: str,
        segment: str,
        variant: str | None,
    ) -> dict[str, Any]:
        headers = {"X-Segmerge-Campaign": self.campaign, "X-Segmerge-Segment": segment}
        if variant:
            headers["X-Segmerge-Variant"] = variant
        return {
            "to": to,
            "to_name": full_name(contact) if contact is not None else None,
            "from_addr": r.from_addr or self.sender,
            "message_id": message_id_for(key, self.message_id_domain),
            "unsubscribe_url": unsubscribe_url,
            "unsubscribe_mailto": self.unsubscribe_mailto,
            "reply_to": r.reply_to or self.reply_to,
            "extra_headers": headers,
        }


def full_name(contact: Mapping[str, Any]) -> str | None:
    """The display name of a message's To: first and last name, when the contact has them."""
    parts = [contact.get("first_name"), contact.get("last_name")]
    words = [str(p) for p in parts if isinstance(p, str) and p]
    return " ".join(words) or None


@dataclass(frozen=True)
class LetterCheck(Finish):
    """A chunk's letters checked as a send checks them (``Sends._build``'s order), one
    row per letter: the contact's id, address, names, link, segment and variant."""

    headers: Headers
    run_id: str
    tracker: Tracker | None
    ids: list[str]
    tos: list[Any]
    first: list[Any]
    last: list[Any]
    urls: list[str]
    segs: list[str]
    variants: list[str | None]

    def part(self, start: int, end: int) -> LetterCheck:
        return replace(
            self,
            ids=self.ids[start:end],
            tos=self.tos[start:end],
            first=self.first[start:end],
            last=self.last[start:end],
            urls=self.urls[start:end],
            segs=self.segs[start:end],
            variants=self.variants[start:end],
        )

    def __call__(self, letters: list[Rendered | TemplateError]) -> list[str | None]:
        """None for a letter a send would send, else ``"<contact id>: <why not>"``."""
        out: list[str | None] = []
        run_id, tracker, args = self.run_id, self.tracker, self.headers.args
        rows = zip(
            letters,
            self.ids,
            self.tos,
            self.first,
            self.last,
            self.urls,
            self.segs,
            self.variants,
            strict=True,
        )
        for r, cid, to, first, last, url, seg, variant in rows:
            try:
                if isinstance(r, TemplateError):
                    raise r
                if tracker is not None:
                    r = tracker.apply(r, run_id, cid, url)
                contact = {"first_name": first, "last_name": last}
                key = send_key(run_id, cid)
                check_message(r, **args(r, str(to), contact, key, url, seg, variant))
            except (TemplateError, MessageError) as exc:
                out.append(f"{cid}: {exc}")
                continue
            out.append(None)
        return out
