"""Draft marketing e-mails: one per segment, looked up by name first, never sent.

Creating an e-mail is the one call that is not safe to repeat, so it is sent once
(``retry=False``) and, when its answer is lost, the name is looked up again before
anything else happens.
"""

from __future__ import annotations

from typing import Any

from segmerge.connector import Action, Outcome
from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.http import HttpClient

from .hubspot_lists import Lists

EMAILS = "/marketing/v3/emails"


class Drafts:
    """One DRAFT marketing e-mail per campaign name: looked up first, never sent."""

    def __init__(self, client: HttpClient, lists: Lists, template_path: str | None) -> None:
        self.client = client
        self.lists = lists
        self.template_path = template_path

    def find(self, name: str) -> str | None:
        params: dict[str, Any] = {"limit": 100, "archived": "false"}
        for page in self.client.pages_cursor(EMAILS, items_key="results",
                                             next_cursor=_after, params=params):  # fmt: skip
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
                return Outcome(action.key, "done", f"draft e-mail {found} already exists")
            list_id = self.lists.ensure(str(p["list"])) if p.get("list") else None
            body = self._body(p, list_id)
            try:
                answer = self.client.json("POST", EMAILS, json=body, retry=False)
            except CredentialError:
                raise
            except BadAnswer:
                raise
            except ConnectorError as exc:  # lost answer: did it land?
                again = self.find(name)
                if again:
                    return Outcome(action.key, "done", f"draft e-mail {again} created")
                return Outcome(action.key, "retry", exc.message)
        except CredentialError as exc:
            if "403" in exc.message:  # Marketing Hub or the `content` scope is missing
                return Outcome(action.key, "failed", f"{exc.message} ({exc.hint})")
            raise
        except BadAnswer as exc:
            return Outcome(action.key, "failed", exc.message)
        except ConnectorError as exc:
            return Outcome(action.key, "retry", exc.message)
        return Outcome(action.key, "done", f"draft e-mail {answer.get('id')} created")

    def _body(self, p: dict[str, Any], list_id: str | None) -> dict[str, Any]:
        html = str(p.get("html") or "")
        if p.get("preheader"):  # the inbox preview line, hidden in the body
            html = (f'<div style="display:none;max-height:0;overflow:hidden">{p["preheader"]}'
                    f"</div>{html}")  # fmt: skip
        content: dict[str, Any] = {
            "widgets": {"primary_rich_text_module": {"body": {"html": html}, "type": "module",
                                                     "name": "primary_rich_text_module"}},
        }  # fmt: skip
        if p.get("text"):
            content["plainTextVersion"] = str(p["text"])
        if self.template_path:
            content["templatePath"] = self.template_path
        sender: dict[str, Any] = {}
        if p.get("from_name"):
            sender["fromName"] = str(p["from_name"])
        if p.get("reply_to") or p.get("from_email"):
            sender["replyTo"] = str(p.get("reply_to") or p.get("from_email"))
        body: dict[str, Any] = {"name": str(p["name"]), "subject": str(p["subject"]),
                                "state": "DRAFT", "sendOnPublish": False,
                                "content": content}  # fmt: skip
        if sender:
            body["from"] = sender
        if list_id:
            body["to"] = {"contactIlsLists": {"include": [list_id], "exclude": []}}
        return body


def _after(body: Any) -> str | None:
    paging = body.get("paging") if isinstance(body, dict) else None
    nxt = paging.get("next") if isinstance(paging, dict) else None
    return str(nxt["after"]) if isinstance(nxt, dict) and nxt.get("after") else None
