"""Pushing tags and draft campaigns to one Mailchimp audience.

A Mailchimp tag *is* a static segment of the audience (``GET
/lists/{id}/segments?type=static`` lists the tags): so tagging 500 contacts is
one ``POST /lists/{id}/segments/{segment_id}`` with ``members_to_add`` (or
``members_to_remove``), at most 500 e-mails per field, and the same segment is
what a draft campaign targets (``segment_opts.saved_segment_id``). Segmerge only
ever adds or removes the one tag an action names; it never rewrites a member's
tag set, so the marketer's own tags are untouched.

Mailchimp answers 200 even when some e-mails were not handled and lists them
in ``errors``: those actions are retried one by one through the member's own
tags endpoint (``POST /lists/{id}/members/{hash}/tags``) and what still fails is
recorded as failed with Mailchimp's reason. A call that fails as a whole after
the HTTP layer's retries (5xx, timeouts) leaves its actions as ``retry``.

A tag's creation is never retried blindly (``mailchimp_tags``): a lost answer is
followed by a lookup by name, so a tag is never created twice.

Draft campaigns are looked up by title before being created (and again when
the creating call's answer was lost), so a repeat never creates a second one;
they are never sent or scheduled.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from segmerge.ports import (
    Action,
    BadAnswer,
    ConnectorError,
    CredentialError,
    Outcome,
    OutcomeStatus,
    SegmergeError,
    _,
    batched,
    create_once,
    failure_status,
)

from .mailchimp_api import Api, Listing, Page, fields, subscriber_hash
from .mailchimp_shapes import check
from .mailchimp_tags import Segments

MAX_MEMBERS = 500  # per members_to_add / members_to_remove


@dataclass
class Chunk:
    segment_id: int
    tag: str
    add: bool
    actions: list[tuple[Action, str]]  # (action, e-mail)


class EmailBook:
    """contact_id -> e-mail address, for tag actions that do not carry their e-mail.

    A run's actions carry it, so the book is only a fallback; the pull hands it
    its columns and the dict is built on the first lookup that needs it, not at
    the end of every pull (100,000 members took 25 ms there, with all ten
    connections idle). Shared by the push's batch threads.
    """

    def __init__(self) -> None:
        self._known: dict[str, str] = {}
        self._columns: list[tuple[pd.Series, pd.Series]] = []  # (ids, e-mails) to index
        self._lock = threading.Lock()

    def add_columns(self, ids: pd.Series, emails: pd.Series) -> None:
        with self._lock:
            self._columns.append((ids, emails))

    def get(self, contact_id: str) -> str | None:
        if contact_id not in self._known and self._columns:
            with self._lock:
                for ids, emails in self._columns:
                    self._known.update(zip(ids.tolist(), emails.tolist(), strict=True))
                self._columns.clear()
        email = self._known.get(contact_id)
        return email if isinstance(email, str) else None

    def __setitem__(self, contact_id: str, email: str) -> None:
        self._known[contact_id] = email


class Pusher:
    def __init__(self, api: Api, list_id: str, source: str, emails: EmailBook) -> None:
        self.api = api
        self.list_id = list_id
        self.source = source
        self.emails = emails  # contact_id -> e-mail, from the last pull
        self.tags_book = Segments(api, list_id, source)
        self._titles: dict[str, str] | None = None

    # -- segments (= tags) ---------------------------------------------------------------

    def segment_listing(self) -> Listing:
        return self.tags_book.listing()

    def remember_segments(self, pages: list[Page]) -> None:
        self.tags_book.remember(pages)

    def segments(self, *, reload: bool = False) -> dict[str, int]:
        return self.tags_book.known(reload=reload)

    def create_missing(self, tags: Sequence[str], *, even_one: bool = False) -> None:
        """Create the tags that do not exist yet all at once. Without ``even_one``, a
        single missing tag is left to :meth:`segment_id`, which creates it where it is
        needed."""
        missing = [t for t in dict.fromkeys(tags) if t not in self.segments()]
        if len(missing) >= (1 if even_one else 2):
            self.tags_book.create(missing)

    def segment_id(self, tag: str, *, create: bool) -> int | None:
        return self.tags_book.id_of(tag, create=create)

    def _not_created(self, tag: str) -> tuple[OutcomeStatus, str]:
        """(outcome status, detail) of an action whose tag could not be created."""
        why = self.tags_book.refused.get(tag)
        if why is None:
            return "retry", f"tag {tag!r} could not be created"
        return ("retry" if why.transient else "failed"), f"tag {tag!r} not created: {why.reason}"

    # -- tags ----------------------------------------------------------------------------

    def tags(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        ready: list[tuple[Action, str]] = []
        unknown: list[Action] = []
        for a in actions:
            tag = a.payload.get("tag")
            if not isinstance(tag, str) or not tag.strip():
                outcomes.append(Outcome(a.key, "failed", "the action names no tag"))
                continue
            email = a.payload.get("email") or self.emails.get(str(a.contact_id))
            if email:
                ready.append((a, str(email)))
            elif a.contact_id:
                unknown.append(a)
            else:
                outcomes.append(Outcome(a.key, "failed", "the action names no contact"))
        for a, found in zip(unknown, self.api.map(self._email_of, unknown), strict=True):
            if isinstance(found, str):
                ready.append((a, found))
            else:
                outcomes.append(self._outcome_for_error(a, found))
        chunks, early = self._chunks(ready)
        outcomes.extend(early)
        failed: list[tuple[Action, str, str]] = []  # (action, email, reason)
        for chunk, result in zip(chunks, self.api.map(self._send_chunk, chunks), strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, BadAnswer):  # refused as a whole: try one by one
                    failed.extend((a, e, reason(result)) for a, e in chunk.actions)
                else:
                    outcomes.extend(
                        Outcome(a.key, "retry", reason(result)) for a, _ in chunk.actions
                    )
                continue
            verb = "added" if chunk.add else "removed"
            for a, e in chunk.actions:
                if e.lower() in result:
                    failed.append((a, e, result[e.lower()]))
                else:
                    outcomes.append(Outcome(a.key, "done", f"tag {chunk.tag!r} {verb}"))
        outcomes.extend(self._one_by_one(failed))
        return outcomes

    def _email_of(self, action: Action) -> str:
        body = self.api.get(
            f"/lists/{self.list_id}/members/{action.contact_id}", {"fields": "email_address"}
        )
        email = body.get("email_address") if isinstance(body, dict) else None
        if not isinstance(email, str):
            raise BadAnswer(
                _("{source}: member {contact_id} has no e-mail address").format(
                    source=self.source, contact_id=action.contact_id
                )
            )
        self.emails[str(action.contact_id)] = email
        return email

    def _chunks(self, ready: list[tuple[Action, str]]) -> tuple[list[Chunk], list[Outcome]]:
        groups: dict[tuple[str, bool], list[tuple[Action, str]]] = {}
        for a, email in ready:
            groups.setdefault((a.payload["tag"], a.kind == "tag"), []).append((a, email))
        chunks: list[Chunk] = []
        early: list[Outcome] = []
        self.create_missing([tag for tag, add in groups if add])
        for (tag, add), items in groups.items():
            try:
                sid = self.segment_id(tag, create=add)
            except CredentialError:
                raise
            except ConnectorError as exc:
                early.extend(Outcome(a.key, "retry", reason(exc)) for a, _ in items)
                continue
            if sid is None and add:
                status, detail = self._not_created(tag)
                early.extend(Outcome(a.key, status, detail) for a, _ in items)
                continue
            if sid is None:
                early.extend(
                    Outcome(a.key, "done", f"tag {tag!r} does not exist, nothing to remove")
                    for a, _ in items
                )
                continue
            chunks.extend(Chunk(sid, tag, add, part) for part in batched(items, MAX_MEMBERS))
        return chunks, early

    def _send_chunk(self, chunk: Chunk) -> dict[str, str]:
        """One batch call; returns e-mail (lower-cased) -> Mailchimp's error for the failures.

        A 404 means the tag was deleted since it was looked up: it is looked up (and, to
        add, created) again, once."""
        emails = [e for _, e in chunk.actions]
        body = {"members_to_add" if chunk.add else "members_to_remove": emails}
        try:
            answer = self.api.json(
                "POST", f"/lists/{self.list_id}/segments/{chunk.segment_id}", json=body
            )
        except BadAnswer as exc:
            if exc.status != 404:  # the status, not the (translated) text
                raise
            with self.tags_book.lock:
                self.tags_book.forget(chunk.tag, chunk.segment_id)
                sid = self.segment_id(chunk.tag, create=chunk.add)
            if sid is None:  # removing a tag that no longer exists: nothing to do
                return {}
            answer = self.api.json("POST", f"/lists/{self.list_id}/segments/{sid}", json=body)
        errors: dict[str, str] = {}
        listed = answer.get("errors") if isinstance(answer, dict) else None
        for err in listed if isinstance(listed, list) else []:
            if not isinstance(err, dict):
                continue
            for e in err.get("email_addresses") or []:
                errors[str(e).lower()] = str(err.get("error") or "rejected by Mailchimp")
        return errors

    def _one_by_one(self, failed: list[tuple[Action, str, str]]) -> list[Outcome]:
        """Each e-mail the batch could not handle, once more through the member's tags."""
        results = self.api.map(self._tag_member, failed)
        out: list[Outcome] = []
        for (a, _unused, first), result in zip(failed, results, strict=True):
            if isinstance(result, BaseException):
                out.append(self._outcome_for_error(a, result, first))
            else:
                verb = "added" if a.kind == "tag" else "removed"
                out.append(Outcome(a.key, "done", f"tag {a.payload['tag']!r} {verb} (one by one)"))
        return out

    def _tag_member(self, item: tuple[Action, str, str]) -> None:
        a, email, _ = item
        status = "active" if a.kind == "tag" else "inactive"
        self.api.request(
            "POST",
            f"/lists/{self.list_id}/members/{subscriber_hash(email)}/tags",
            json={"tags": [{"name": a.payload["tag"], "status": status}]},
            ok=(200, 204),
        )

    def _outcome_for_error(self, a: Action, exc: BaseException, first: str = "") -> Outcome:
        detail = f"{first}; one by one: {reason(exc)}" if first else reason(exc)
        transient = isinstance(exc, ConnectorError) and not isinstance(exc, BadAnswer)
        return Outcome(a.key, "retry" if transient else "failed", detail)

    # -- draft campaigns -------------------------------------------------------------------

    def campaigns(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes = []
        self._titles = None
        for a in actions:
            try:
                outcomes.append(self._campaign(a))
            except CredentialError:
                raise
            except ConnectorError as exc:
                outcomes.append(Outcome(a.key, failure_status(exc), reason(exc)))
        return outcomes

    def find_campaign(self, title: str, *, reload: bool = False) -> str | None:
        """The id of this audience's campaign with that title, whatever its status: a draft
        the marketer has since scheduled or sent must not be created again. The titles are
        read once per push (and again after a lost answer)."""
        if self._titles is None or reload:
            listing = Listing(
                "/campaigns",
                "campaigns",
                {"list_id": self.list_id, "fields": fields("campaigns", ("id", "settings.title"))},
            )
            titles: dict[str, str] = {}
            for page in self.api.collect([listing]):
                check(page, self.source)
                for c in page.items:
                    if isinstance(c, dict) and isinstance(c.get("settings"), dict):
                        titles.setdefault(str(c["settings"].get("title")), str(c.get("id")))
            self._titles = titles
        return self._titles.get(title)

    def _campaign(self, a: Action) -> Outcome:
        p = a.payload
        missing = [k for k in ("name", "subject", "html") if not p.get(k)]
        if missing:
            return Outcome(a.key, "failed", f"the campaign action lacks {', '.join(missing)}")
        title = str(p["name"])
        existing = self.find_campaign(title)
        if existing is not None:
            content = self.api.get(f"/campaigns/{existing}/content", {"fields": "html"})
            if isinstance(content, dict) and content.get("html"):
                return Outcome(a.key, "done", f"draft campaign {existing} already exists", existing)
            self._content(existing, p)
            return Outcome(
                a.key, "done", f"draft campaign {existing} completed (content)", existing
            )
        tag = p.get("tag") or p.get("list")
        segment = self.segment_id(str(tag), create=True) if tag else None
        if tag and segment is None:
            status, detail = self._not_created(str(tag))
            return Outcome(a.key, status, detail)

        def create() -> str | None:
            body = self._campaign_body(p, segment)
            created = self.api.json("POST", "/campaigns", json=body, retry=False)
            return str(created["id"]) if isinstance(created, dict) and "id" in created else None

        # the answer may be lost while the draft exists: look again
        cid = create_once(create, lambda: self.find_campaign(title, reload=True))
        if cid is None:
            raise BadAnswer(
                _("{source}: POST /campaigns answered without an id").format(source=self.source)
            )
        if self._titles is not None:
            self._titles[title] = cid
        self._content(cid, p)
        return Outcome(a.key, "done", f"draft campaign {cid} created (not sent)", cid)

    def _campaign_body(self, p: dict[str, Any], segment: int | None) -> dict[str, Any]:
        recipients: dict[str, Any] = {"list_id": self.list_id}
        if segment is not None:
            recipients["segment_opts"] = {"saved_segment_id": segment}
        settings = {"title": str(p["name"]), "subject_line": str(p["subject"])}
        if p.get("preheader"):
            settings["preview_text"] = str(p["preheader"])
        if p.get("from_name"):
            settings["from_name"] = str(p["from_name"])
        reply_to = p.get("reply_to") or p.get("from_email")  # Mailchimp's from address
        if reply_to:
            settings["reply_to"] = str(reply_to)
        return {"type": "regular", "recipients": recipients, "settings": settings}

    def _content(self, cid: str, p: dict[str, Any]) -> None:
        body = {"html": str(p["html"])}
        if p.get("text"):
            body["plain_text"] = str(p["text"])
        self.api.request("PUT", f"/campaigns/{cid}/content", json=body, ok=(200,))


def reason(exc: BaseException) -> str:
    """An error as an outcome's detail: the message alone (it already names the source)."""
    return exc.message if isinstance(exc, SegmergeError) else f"{type(exc).__name__}: {exc}"
