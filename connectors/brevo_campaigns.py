"""Draft e-mail campaigns in Brevo, one per segment, created at most once.

``POST /emailCampaigns`` without ``scheduledAt`` leaves the campaign a draft that a
marketer reviews and sends from Brevo. Creating is not idempotent on Brevo's side, so
the call is never retried blindly: drafts are looked up by name first
(``GET /emailCampaigns?status=draft``), and again after a failed or lost answer.
These endpoints fall under Brevo's "all other endpoints" limit (100 requests an
hour on the general tier), so the draft listing is read once per connector.
"""

from __future__ import annotations

from typing import Any

from segmerge.ports import Action, ConnectorError, CredentialError, HttpClient, Outcome

from .brevo_lists import ListBook, created_id, named_items

PAGE = 100  # GET /emailCampaigns: `limit` maximum


class Drafts:
    def __init__(self, client: HttpClient, lists: ListBook, source: str) -> None:
        self.client = client
        self.lists = lists
        self.source = source
        self.by_name: dict[str, int] | None = None

    def find(self, name: str, fresh: bool = False) -> int | None:
        if self.by_name is None or fresh:
            found: dict[str, int] = {}
            params = {"status": "draft", "excludeHtmlContent": "true", "limit": PAGE}
            offset = 0
            while True:
                body = self.client.get("/emailCampaigns", {**params, "offset": offset})
                page, count = named_items(
                    body, "campaigns", "GET /emailCampaigns", self.source, offset
                )
                for c in page:
                    found.setdefault(c["name"], c["id"])
                offset += len(page)
                if len(page) < PAGE or offset >= count:
                    break
            self.by_name = found
        return self.by_name.get(name)

    def create(self, action: Action) -> Outcome:
        p = action.payload
        name = p.get("name")
        if not isinstance(name, str) or not name:
            return Outcome(action.key, "failed", "the campaign has no name")
        if not p.get("from_email"):
            return Outcome(action.key, "failed", "no sender address (from_email) for the draft")
        try:
            existing = self.find(name)
            if existing is not None:
                return Outcome(
                    action.key, "done", f"draft {existing} already exists", str(existing)
                )
            list_name = p.get("list") or p.get("tag")
            lid = self.lists.list_id(str(list_name), create=True) if list_name else None
        except CredentialError:
            raise
        except ConnectorError as exc:
            return Outcome(action.key, "retry", exc.message)
        body = self._body(p, lid)
        try:
            answer = self.client.json("POST", "/emailCampaigns", json=body, ok=(201,), retry=False)
        except CredentialError:
            raise
        except ConnectorError as exc:
            try:  # the answer may have been lost after Brevo created it
                existing = self.find(name, fresh=True)
            except ConnectorError:
                existing = None
            if existing is not None:
                return Outcome(action.key, "done", f"draft {existing} created", str(existing))
            refused = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            status = "failed" if refused else "retry"
            return Outcome(action.key, status, exc.message)  # type: ignore[arg-type]
        cid = created_id(answer, "POST /emailCampaigns", self.source)
        if self.by_name is not None:
            self.by_name[name] = cid
        return Outcome(action.key, "done", f"draft {cid} created for list {list_name!r}", str(cid))

    @staticmethod
    def _body(p: dict[str, Any], list_id: int | None) -> dict[str, Any]:
        sender: dict[str, Any] = {"email": p["from_email"]}
        if p.get("from_name"):
            sender["name"] = p["from_name"]
        body: dict[str, Any] = {
            "name": p["name"],
            "subject": p.get("subject") or p["name"],
            "sender": sender,
            "htmlContent": p.get("html") or "",
            "tag": "segmerge",
        }
        if p.get("preheader"):
            body["previewText"] = p["preheader"]
        if p.get("reply_to"):
            body["replyTo"] = p["reply_to"]
        if list_id is not None:
            body["recipients"] = {"listIds": [list_id]}
        return body
