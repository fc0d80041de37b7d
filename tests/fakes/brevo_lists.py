"""The Brevo fake's folders, lists (and their members) and draft campaigns: the endpoints
a push uses. A mixin of :class:`~tests.fakes.brevo.BrevoFake`, which holds the state."""

from __future__ import annotations

from typing import Any

from .base import Reply, Request
from .brevo_dates import stamp


class BrevoLists:
    def get_folders(self, req: Request) -> Reply:
        paging = self._paging(req, 50, 10)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        rows = [self._folder_json(i) for i in sorted(self.folders)]
        return Reply(200, {"folders": rows[offset : offset + limit], "count": len(rows)})

    def _folder_json(self, fid: int) -> dict[str, Any]:
        return {
            "id": fid,
            "name": self.folders[fid],
            "totalBlacklisted": 0,
            "totalSubscribers": 0,
            "uniqueSubscribers": 0,
        }

    def post_folder(self, req: Request) -> Reply:
        name = (req.json or {}).get("name")
        if not name:
            return Reply(400, {"code": "missing_parameter", "message": "name is missing"})
        self.mutations.append(f"folder {name}")
        return Reply(201, {"id": self.add_folder(name)})

    def _list_json(self, lid: int, with_folder: bool = True) -> dict[str, Any]:
        x = self.lists[lid]
        n = len(self.members(lid))
        body = {
            "id": lid,
            "name": x["name"],
            "totalBlacklisted": 0,
            "totalSubscribers": n,
            "uniqueSubscribers": n,
        }
        if with_folder:
            body["folderId"] = x["folderId"]
        return body

    def get_lists(self, req: Request) -> Reply:
        paging = self._paging(req, 50, 10)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        ids = sorted(self.lists, reverse=req.arg("sort", "desc") == "desc")
        rows = [self._list_json(i) for i in ids[offset : offset + limit]]
        return Reply(200, {"lists": rows, "count": len(ids)})

    def get_folder_lists(self, req: Request) -> Reply:
        fid = int(req.groups["folderId"])
        if fid not in self.folders:
            return Reply(404, {"code": "document_not_found", "message": "Folder ID not found"})
        paging = self._paging(req, 50, 10)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        ids = [i for i in sorted(self.lists) if self.lists[i]["folderId"] == fid]
        rows = [self._list_json(i, False) for i in ids[offset : offset + limit]]
        return Reply(200, {"lists": rows, "count": len(ids)})

    def post_list(self, req: Request) -> Reply:
        body = req.json or {}
        if body.get("folderId") not in self.folders:
            return Reply(400, {"code": "invalid_parameter", "message": "Folder ID not found"})
        self.mutations.append(f"list {body['name']}")
        return Reply(201, {"id": self.add_list(body["name"], body["folderId"])})

    def post_members(self, req: Request) -> Reply:
        lid = int(req.groups["listId"])
        adding = req.path.endswith("/add")
        if lid not in self.lists:
            return Reply(404, {"code": "document_not_found", "message": "List ID does not exist"})
        body = req.json or {}
        given = body.get("ids") if "ids" in body else body.get("emails", [])
        if len(given) > 150:
            self.violations.append(f"POST {req.path}: {len(given)} members, Brevo allows 150")
            return Reply(400, {"code": "out_of_range", "message": "maximum 150 per request"})
        success: list[Any] = []
        failure: list[Any] = []
        for ident in given:
            c = self._find(str(ident))
            ok = c is not None and (lid not in c.list_ids if adding else lid in c.list_ids)
            if ok and adding and c is not None and c.id in self.fail_list_add:
                ok = False
            if ok and c is not None:
                if adding:
                    c.list_ids.append(lid)
                else:
                    c.list_ids.remove(lid)
                self.touch(c)
                success.append(ident)
            else:
                failure.append(ident)
        self.mutations.append(f"{'add' if adding else 'remove'} {lid} {success}")
        if not success:
            return Reply(
                400,
                {
                    "code": "invalid_parameter",
                    "message": "Contact already in list and/or does not exist",
                },
            )
        # an empty array matches both branches of the spec's oneOf (emails | ids): left out
        answer = {k: v for k, v in (("success", success), ("failure", failure)) if v}
        return Reply(201, {"contacts": answer})

    def get_list_contacts(self, req: Request) -> Reply:
        lid = int(req.groups["listId"])
        if lid not in self.lists:
            return Reply(404, {"code": "document_not_found", "message": "List ID does not exist"})
        paging = self._paging(req, 500, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        rows = [c for c in self.contacts.values() if lid in c.list_ids]
        page = [c.as_json() for c in rows[offset : offset + limit]]
        return Reply(200, {"contacts": page, "count": len(rows)})

    def get_campaigns(self, req: Request) -> Reply:
        paging = self._paging(req, 100, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        status = req.arg("status")
        rows = [c for c in self.campaigns.values() if status is None or c["status"] == status]
        html = req.arg("excludeHtmlContent") != "true"
        out = [self._campaign_json(c, html) for c in rows[offset : offset + limit]]
        return Reply(200, {"campaigns": out, "count": len(rows)})

    def _campaign_json(self, c: dict[str, Any], html: bool) -> dict[str, Any]:
        zero = {
            k: 0
            for k in (
                "clickers",
                "complaints",
                "delivered",
                "hardBounces",
                "sent",
                "softBounces",
                "uniqueClicks",
                "uniqueViews",
                "unsubscriptions",
                "viewed",
                "trackableViews",
            )
        }
        return {
            "id": c["id"],
            "name": c["name"],
            "subject": c.get("subject", ""),
            "type": "classic",
            "status": c["status"],
            "testSent": False,
            "header": "[DEFAULT_HEADER]",
            "footer": "[DEFAULT_FOOTER]",
            "sender": c["sender"],
            "replyTo": c.get("replyTo", c["sender"].get("email", "")),
            "htmlContent": c.get("htmlContent", "") if html else "",
            "createdAt": c["createdAt"],
            "modifiedAt": c["createdAt"],
            "recipients": {
                "lists": c.get("recipients", {}).get("listIds", []),
                "exclusionLists": [],
            },
            "statistics": {
                "globalStats": zero,
                "campaignStats": [],
                "mirrorClick": 0,
                "remaining": 0,
                "linksStats": {},
                "statsByDomain": {},
                "statsByDevice": {},
                "statsByBrowser": {},
            },
        }

    def post_campaign(self, req: Request) -> Reply:
        body = dict(req.json or {})
        if body.get("scheduledAt"):
            self.violations.append("a campaign was scheduled: Segmerge only creates drafts")
        cid = max(self.campaigns, default=0) + 1
        body.update(id=cid, status="draft", createdAt=stamp(self.clock))
        self.campaigns[cid] = body
        self.mutations.append(f"campaign {body['name']}")
        return Reply(201, {"id": cid})
