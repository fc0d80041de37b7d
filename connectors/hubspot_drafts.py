"""Draft marketing e-mails: one per segment, looked up by name first, never sent.

A draft is only done when a marketer can open it: after creating it, the e-mail is
read back (``GET /marketing/v3/emails/{id}``) and its rich-text module must hold
the letter; otherwise the outcome is failed with the reason, never done. A draft
found by name without a body (an earlier attempt HubSpot emptied) gets the letter
again before it counts.

Creating (or cloning) an e-mail is the one call that is not safe to repeat, so it is
sent once (``retry=False``) and, when its answer is lost, the name is looked up again
before anything else happens.

Sender fields are ``PublicEmailFromDetails`` of HubSpot/hubspot-api-python@a2a528a9
(hubspot/marketing/emails/models/public_email_from_details.py): ``replyTo`` is "the
from address and reply to email address (if no customReplyTo defined) recipients will
see", ``customReplyTo`` "the reply to recipients will see", ``fromName`` the name.
"""

from __future__ import annotations

from typing import Any

from segmerge.ports import (
    Action,
    BadAnswer,
    ConnectorError,
    CredentialError,
    HttpClient,
    Outcome,
    _,
    create_once,
)

from . import hubspot_email_content as mail
from .hubspot_lists import Lists

EMAILS = "/marketing/v3/emails"


class Drafts:
    """One DRAFT marketing e-mail per campaign name: looked up first, never sent."""

    def __init__(
        self,
        client: HttpClient,
        lists: Lists,
        template_path: str | None,
        template_id: str | None = None,
    ) -> None:
        self.client = client
        self.lists = lists
        self.template_path = template_path
        #: a marketer's e-mail to clone (its design kept, its rich text replaced)
        self.template_id = template_id

    def find(self, name: str) -> str | None:
        params: dict[str, Any] = {"limit": 100, "archived": "false"}
        for page in self.client.pages_cursor(
            EMAILS, items_key="results", next_cursor=_after, params=params
        ):
            for item in page:
                if isinstance(item, dict) and item.get("name") == name:
                    return str(item.get("id"))
        return None

    def push(self, action: Action) -> Outcome:
        p = action.payload
        name = str(p.get("name") or "")
        if not name or not p.get("subject"):
            return Outcome(action.key, "failed", "the campaign has no name or no subject")
        try:
            found = self.find(name)
            if found:
                return self._settle(action.key, found, p, "already exists")
            list_id = self.lists.ensure(str(p["list"])) if p.get("list") else None
            eid = create_once(
                lambda: self._make(name, p, list_id), lambda: self._landed(name, p, list_id)
            )
            return self._settle(action.key, eid, p, "created")
        except CredentialError as exc:
            if exc.status == 403:  # Marketing Hub or the `content` scope is missing
                return Outcome(action.key, "failed", f"{exc.message} ({exc.hint})")
            raise
        except BadAnswer as exc:
            return Outcome(action.key, "failed", exc.message)
        except ConnectorError as exc:
            return Outcome(action.key, "retry", exc.message)

    def _landed(self, name: str, p: dict[str, Any], list_id: str | None) -> str | None:
        """The draft whose creation lost its answer, if it landed (None: retry next run)."""
        eid = self.find(name)
        if eid and self.template_id:  # the clone landed, but was never made this campaign's
            self._dress(eid, name, p, list_id, self._read(eid))
        return eid or None

    # making the draft ------------------------------------------------------------
    def _make(self, name: str, p: dict[str, Any], list_id: str | None) -> str:
        """Create (or clone and address) the draft; its id."""
        if self.template_id:
            answer = self.client.json(
                "POST",
                f"{EMAILS}/clone",
                retry=False,
                json={"id": self.template_id, "cloneName": name},
            )
            eid = _id_of(answer, f"POST {EMAILS}/clone", self.client.source)
            self._dress(eid, name, p, list_id, answer)
            return eid
        create = {
            "name": name,
            **self._fields(p, list_id),
            "content": mail.new_content(
                str(p.get("html") or ""), _text(p), _preheader(p), self.template_path
            ),
        }
        answer = self.client.json("POST", EMAILS, json=create, retry=False)
        return _id_of(answer, f"POST {EMAILS}", self.client.source)

    def _dress(
        self, eid: str, name: str, p: dict[str, Any], list_id: str | None, clone: Any
    ) -> None:
        """A fresh clone of the template becomes this campaign's draft: its name, subject,
        sender, list, and the letter in its rich-text module."""
        update = self._fields(p, list_id)
        update["name"] = name  # a clone may keep a suffix; the name is how we find it
        content = self._letter(clone, p)
        if content is not None:  # else the read-back says the template cannot hold it
            update["content"] = content
        self.client.json("PATCH", f"{EMAILS}/{eid}", json=update)

    def _fields(self, p: dict[str, Any], list_id: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": str(p["subject"]),
            "state": "DRAFT",
            "sendOnPublish": False,
        }
        sender: dict[str, Any] = {}
        if p.get("from_name"):
            sender["fromName"] = str(p["from_name"])
        if p.get("from_email"):
            sender["replyTo"] = str(p["from_email"])
        if p.get("reply_to") and p.get("reply_to") != p.get("from_email"):
            sender["customReplyTo"] = str(p["reply_to"])
        if sender:
            out["from"] = sender
        if list_id:
            out["to"] = {"contactIlsLists": {"include": [list_id], "exclude": []}}
        return out

    # checking it --------------------------------------------------------------------
    def _settle(self, key: str, eid: str, p: dict[str, Any], how: str) -> Outcome:
        """Done only when HubSpot shows the letter in the draft; one repair, then failed."""
        html = str(p.get("html") or "")
        email = self._read(eid)
        if mail.holds_letter(email, html):
            return Outcome(key, "done", f"draft e-mail {eid} {how}", eid)
        content = self._letter(email, p)
        if content is None:
            return Outcome(
                key,
                "failed",
                f"draft e-mail {eid} {how}, but its template has no "
                "rich-text module to hold the letter (choose another "
                "email_template_id)",
            )
        self.client.json("PATCH", f"{EMAILS}/{eid}", json={"content": content})
        if mail.holds_letter(self._read(eid), html):
            return Outcome(key, "done", f"draft e-mail {eid} {how} (its body set again)", eid)
        return Outcome(
            key,
            "failed",
            f"draft e-mail {eid} {how}, but HubSpot does not show the "
            "letter in it: content.widgets holds no rich-text module placed in "
            "content.flexAreas with the letter (check email_template_path, or delete "
            "the draft in HubSpot)",
        )

    def _read(self, eid: str) -> dict[str, Any]:
        path = f"{EMAILS}/{eid}"
        email = self.client.json("GET", path)
        if not isinstance(email, dict) or not isinstance(email.get("content"), dict):
            raise BadAnswer(
                _(
                    "{source}: GET {emails}/{{emailId}}: e-mail {eid} has no 'content' object"
                ).format(source=self.client.source, emails=EMAILS, eid=eid),
                field=self.client.source,
            )
        return email

    def _letter(self, email: Any, p: dict[str, Any]) -> dict[str, Any] | None:
        """The ``content`` that puts the letter in this e-mail (None: it has no place for it)."""
        html = str(p.get("html") or "")
        if self.template_id:
            content = email.get("content") if isinstance(email, dict) else None
            if not isinstance(content, dict):
                return None
            return mail.with_letter(content, html, _text(p), _preheader(p))
        return mail.new_content(html, _text(p), _preheader(p), self.template_path)


def _text(p: dict[str, Any]) -> str | None:
    return str(p["text"]) if p.get("text") else None


def _preheader(p: dict[str, Any]) -> str | None:
    return str(p["preheader"]) if p.get("preheader") else None


def _id_of(answer: Any, endpoint: str, source: str) -> str:
    eid = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(eid, str | int) or isinstance(eid, bool) or str(eid) == "":
        raise BadAnswer(
            _("{source}: {endpoint} answered without the e-mail's 'id' ({eid!r})").format(
                source=source, endpoint=endpoint, eid=eid
            ),
            field=source,
        )
    return str(eid)


def _after(body: Any) -> str | None:
    paging = body.get("paging") if isinstance(body, dict) else None
    nxt = paging.get("next") if isinstance(paging, dict) else None
    return str(nxt["after"]) if isinstance(nxt, dict) and nxt.get("after") else None
