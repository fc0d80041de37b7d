"""A stateful fake of Brevo's API v3 on 127.0.0.1, checked against Brevo's OpenAPI spec.

It behaves as Brevo documents (developers.brevo.com, "Rate limits", "Rate limit
headers", the API reference) and as the real service is known to answer:

- ``GET /contacts`` pages with ``limit`` (<= 1000) and ``offset``, sorted by creation,
  filtered by ``modifiedSince``/``createdSince``; ``count`` is the total that matches;
  contacts carry only the attributes they have (empty ones are left out) and dates
  with the account's UTC offset (``2026-03-01T10:00:00.000+01:00``), as Brevo does;
- list membership with ``POST /contacts/lists/{id}/contacts/add|remove``: at most 150
  ids or emails, a 201 with ``contacts.success``/``failure`` (already in the list and
  unknown contacts both land in ``failure``), and a 400 when none succeeds;
- folders, lists, attributes (with category enumerations), draft e-mail campaigns,
  per-contact campaign statistics, e-commerce orders and the account;
- two rate-limit buckets like Brevo's general tier: everything under ``/contacts``
  (10 requests per second) and every other endpoint (100 per hour); over the limit a
  429 ``too_many_requests`` with ``x-sib-ratelimit-limit/-remaining/-reset``, which
  every answer of a rate-limited endpoint carries too;
- 401 ``unauthorized`` / "Key not found" for a wrong or revoked key.

Tests shrink the windows (``contacts_limit``, ``other_limit``, ``other_window``) rather
than sleeping. Requests with more than 150 list members are recorded as violations:
the spec's ``maxItems`` is not enforced by the (anyOf-patched) schema.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from .base import FakeServer, Reply, Request, WindowLimiter

KEY = "xkeysib-test-0123456789abcdef"
OFFSET = dt.timezone(dt.timedelta(hours=1))  # the account's time zone, as Brevo shows dates
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def stamp(when: dt.datetime) -> str:
    """Brevo's date format: milliseconds and the account's offset."""
    return when.astimezone(OFFSET).isoformat(timespec="milliseconds")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Contact:
    id: int
    email: str | None
    attributes: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    list_ids: list[int] = field(default_factory=list)
    blacklisted: bool = False
    stats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "emailBlacklisted": self.blacklisted,
            "smsBlacklisted": False,
            "createdAt": stamp(self.created),
            "modifiedAt": stamp(self.modified),
            "listIds": list(self.list_ids),
            "attributes": {k: v for k, v in self.attributes.items() if v not in (None, "")},
        }
        if self.email is not None:
            body["email"] = self.email
        return body


ATTRIBUTES = [
    {"name": "FIRSTNAME", "category": "normal", "type": "text"},
    {"name": "LASTNAME", "category": "normal", "type": "text"},
    {"name": "SMS", "category": "normal", "type": "text"},
    {"name": "CODE_POSTAL", "category": "normal", "type": "text"},
    {"name": "AGE", "category": "normal", "type": "float"},
    {"name": "DATE_NAISSANCE", "category": "normal", "type": "date"},
    {"name": "VIP", "category": "normal", "type": "boolean"},
    {
        "name": "CIVILITE",
        "category": "category",
        "type": "text",
        "enumeration": [{"value": 1, "label": "Madame"}, {"value": 2, "label": "Monsieur"}],
    },
]


class BrevoFake(FakeServer):
    base_path = "/v3"

    def __init__(
        self,
        openapi: Any = None,
        *,
        check_responses: bool = True,
        seed: int = 0,
        contacts_limit: int = 10,
        contacts_window: float = 1.0,
        other_limit: int = 100,
        other_window: float = 3600.0,
    ) -> None:
        super().__init__(openapi, check_responses=check_responses, seed=seed)
        self.key = KEY
        self.contacts: dict[int, Contact] = {}
        self.by_email: dict[str, int] = {}
        self.attributes: list[dict[str, Any]] = [dict(a) for a in ATTRIBUTES]
        self.folders: dict[int, str] = {1: "Your first folder"}
        self.lists: dict[int, dict[str, Any]] = {}
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.orders: list[dict[str, Any]] = []
        self.clock = EPOCH + dt.timedelta(days=300)  # "now" for modifications
        self.contacts_limiter = WindowLimiter(contacts_limit, contacts_window)
        self.other_limiter = WindowLimiter(other_limit, other_window)
        self.fail_list_add: set[int] = set()  # contact ids a list add refuses (transient)
        self.mutations: list[str] = []  # ("add 3 [1,2]") for assertions
        self.type_change_after: int | None = None  # serve listIds as a string after N pages
        self._pages_served = 0
        self.contact_queries: list[dict[str, list[str]]] = []  # params of GET /contacts
        self._routes_setup()

    # state helpers ----------------------------------------------------------
    def add_contact(
        self,
        email: str | None,
        *,
        attributes: dict[str, Any] | None = None,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
        list_ids: list[int] | None = None,
        blacklisted: bool = False,
        stats: dict[str, list[dict[str, Any]]] | None = None,
    ) -> Contact:
        cid = len(self.contacts) + 1
        created = created or EPOCH + dt.timedelta(minutes=cid)
        c = Contact(
            cid,
            email,
            dict(attributes or {}),
            created,
            modified or created,
            list(list_ids or []),
            blacklisted,
            stats or {},
        )
        self.contacts[cid] = c
        if email:
            self.by_email[email.lower()] = cid
        return c

    def add_folder(self, name: str) -> int:
        fid = max(self.folders, default=0) + 1
        self.folders[fid] = name
        return fid

    def add_list(self, name: str, folder_id: int) -> int:
        lid = max(self.lists, default=0) + 1
        self.lists[lid] = {"id": lid, "name": name, "folderId": folder_id}
        return lid

    def list_named(self, name: str) -> int | None:
        return next((i for i, x in self.lists.items() if x["name"] == name), None)

    def members(self, list_id: int) -> set[int]:
        return {c.id for c in self.contacts.values() if list_id in c.list_ids}

    def touch(self, c: Contact) -> None:
        self.clock += dt.timedelta(seconds=1)
        c.modified = self.clock

    # hooks --------------------------------------------------------------------
    def check_auth(self, req: Request) -> Reply | None:
        if req.headers.get("api-key") != self.key:
            return Reply(401, {"code": "unauthorized", "message": "Key not found"})
        return None

    def _limiter(self, req: Request) -> WindowLimiter:
        return self.contacts_limiter if req.path.startswith("/contacts") else self.other_limiter

    def rate_limit(self, req: Request) -> Reply | None:
        limiter = self._limiter(req)
        allowed, remaining, reset = limiter.hit()
        req.headers["x-fake-remaining"] = str(remaining)
        req.headers["x-fake-reset"] = str(max(1, math.ceil(reset)))
        if allowed:
            return None
        return Reply(
            429, {"code": "too_many_requests", "message": "The expected rate limit is exceeded."}
        )

    def decorate(self, req: Request, reply: Reply) -> None:
        limiter = self._limiter(req)
        reply.headers.setdefault("x-sib-ratelimit-limit", str(limiter.limit))
        reply.headers.setdefault(
            "x-sib-ratelimit-remaining", req.headers.get("x-fake-remaining", "0")
        )
        reply.headers.setdefault("x-sib-ratelimit-reset", req.headers.get("x-fake-reset", "1"))

    # routes -------------------------------------------------------------------
    def _routes_setup(self) -> None:
        r = self.route
        r("GET", "/account", self.get_account)
        r("GET", "/contacts", self.get_contacts)
        r("GET", "/contacts/attributes", self.get_attributes)
        r("GET", "/contacts/folders", self.get_folders)
        r("POST", "/contacts/folders", self.post_folder)
        r("GET", "/contacts/folders/{folderId}/lists", self.get_folder_lists)
        r("GET", "/contacts/lists", self.get_lists)
        r("POST", "/contacts/lists", self.post_list)
        r("POST", "/contacts/lists/{listId}/contacts/add", self.post_members)
        r("POST", "/contacts/lists/{listId}/contacts/remove", self.post_members)
        r("GET", "/contacts/lists/{listId}/contacts", self.get_list_contacts)
        r("GET", "/contacts/{identifier}/campaignStats", self.get_stats)
        r("GET", "/contacts/{identifier}", self.get_contact)
        r("GET", "/emailCampaigns", self.get_campaigns)
        r("POST", "/emailCampaigns", self.post_campaign)
        r("GET", "/orders", self.get_orders)

    def get_account(self, req: Request) -> Reply:
        return Reply(200, {
            "email": "owner@boutique.example", "firstName": "Ana", "lastName": "Lopez",
            "companyName": "La Boutique", "address": {"street": "1 rue X", "city": "Lyon",
                                                      "zipCode": "69001", "country": "France"},
            "plan": [{"type": "free", "creditsType": "sendLimit", "credits": 300.0}],
            "relay": {"enabled": True, "data": {"userName": "owner@boutique.example",
                                                "relay": "smtp-relay.brevo.com", "port": 587}},
        })  # fmt: skip

    def _paging(self, req: Request, maximum: int, default: int) -> tuple[int, int] | Reply:
        limit = req.int_arg("limit", default)
        offset = req.int_arg("offset", 0)
        if limit > maximum or limit < 0 or offset < 0:
            return Reply(400, {"code": "out_of_range", "message": f"limit must be <= {maximum}"})
        return limit, offset

    def get_contacts(self, req: Request) -> Reply:
        paging = self._paging(req, 1000, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        self.contact_queries.append(req.params)
        rows = list(self.contacts.values())
        since = req.arg("modifiedSince")
        if since:
            cut = parse(since)
            rows = [c for c in rows if c.modified > cut]
        created = req.arg("createdSince")
        if created:
            cut = parse(created)
            rows = [c for c in rows if c.created > cut]
        if req.arg("sort", "desc") == "desc":
            rows = rows[::-1]
        page = [c.as_json() for c in rows[offset : offset + limit]]
        self._pages_served += 1
        if self.type_change_after is not None and self._pages_served > self.type_change_after:
            for item in page:
                item["listIds"] = ",".join(str(i) for i in item["listIds"])
        return Reply(200, {"contacts": page, "count": len(rows)})

    def _find(self, identifier: str) -> Contact | None:
        if identifier.isdigit():
            return self.contacts.get(int(identifier))
        cid = self.by_email.get(identifier.lower())
        return self.contacts.get(cid) if cid else None

    def get_contact(self, req: Request) -> Reply:
        c = self._find(req.groups["identifier"])
        if c is None:
            return Reply(404, {"code": "document_not_found", "message": "Contact does not exist"})
        body = c.as_json()
        body["statistics"] = {}
        return Reply(200, body)

    def get_stats(self, req: Request) -> Reply:
        c = self._find(req.groups["identifier"])
        if c is None:
            return Reply(404, {"code": "document_not_found", "message": "Contact does not exist"})
        start, end = req.arg("startDate"), req.arg("endDate")
        body: dict[str, Any] = {}
        for kind, events in c.stats.items():
            kept = [e for e in events if _in_window(e["eventTime"], start, end)]
            if kind in ("userUnsubscription", "adminUnsubscription"):
                body.setdefault(
                    "unsubscriptions", {"userUnsubscription": [], "adminUnsubscription": []}
                )[kind] = kept
            elif kept:
                body[kind] = kept
        return Reply(200, body)

    def get_attributes(self, req: Request) -> Reply:
        return Reply(200, {"attributes": self.attributes})

    def get_folders(self, req: Request) -> Reply:
        paging = self._paging(req, 50, 10)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        rows = [self._folder_json(i) for i in sorted(self.folders)]
        return Reply(200, {"folders": rows[offset : offset + limit], "count": len(rows)})

    def _folder_json(self, fid: int) -> dict[str, Any]:
        return {"id": fid, "name": self.folders[fid], "totalBlacklisted": 0,
                "totalSubscribers": 0, "uniqueSubscribers": 0}  # fmt: skip

    def post_folder(self, req: Request) -> Reply:
        name = (req.json or {}).get("name")
        if not name:
            return Reply(400, {"code": "missing_parameter", "message": "name is missing"})
        self.mutations.append(f"folder {name}")
        return Reply(201, {"id": self.add_folder(name)})

    def _list_json(self, lid: int, with_folder: bool = True) -> dict[str, Any]:
        x = self.lists[lid]
        n = len(self.members(lid))
        body = {"id": lid, "name": x["name"], "totalBlacklisted": 0, "totalSubscribers": n,
                "uniqueSubscribers": n}  # fmt: skip
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
            return Reply(400, {"code": "invalid_parameter",
                               "message": "Contact already in list and/or does not exist"})  # fmt: skip
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
        zero = {k: 0 for k in ("clickers", "complaints", "delivered", "hardBounces", "sent",
                                "softBounces", "uniqueClicks", "uniqueViews", "unsubscriptions",
                                "viewed", "trackableViews")}  # fmt: skip
        return {
            "id": c["id"], "name": c["name"], "subject": c.get("subject", ""),
            "type": "classic", "status": c["status"], "testSent": False,
            "header": "[DEFAULT_HEADER]", "footer": "[DEFAULT_FOOTER]",
            "sender": c["sender"], "replyTo": c.get("replyTo", c["sender"].get("email", "")),
            "htmlContent": c.get("htmlContent", "") if html else "",
            "createdAt": c["createdAt"], "modifiedAt": c["createdAt"],
            "recipients": {"lists": c.get("recipients", {}).get("listIds", []),
                           "exclusionLists": []},
            "statistics": {"globalStats": zero, "campaignStats": [], "mirrorClick": 0,
                           "remaining": 0, "linksStats": {}, "statsByDomain": {},
                           "statsByDevice": {}, "statsByBrowser": {}},
        }  # fmt: skip

    def post_campaign(self, req: Request) -> Reply:
        body = dict(req.json or {})
        if body.get("scheduledAt"):
            self.violations.append("a campaign was scheduled: Segmerge only creates drafts")
        cid = max(self.campaigns, default=0) + 1
        body.update(id=cid, status="draft", createdAt=stamp(self.clock))
        self.campaigns[cid] = body
        self.mutations.append(f"campaign {body['name']}")
        return Reply(201, {"id": cid})

    def get_orders(self, req: Request) -> Reply:
        paging = self._paging(req, 100, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        rows = self.orders
        since = req.arg("modifiedSince")
        if since:
            cut = parse(since)
            rows = [o for o in rows if parse(o["updatedAt"]) > cut]
        if req.arg("sort", "desc") == "desc":
            rows = rows[::-1]
        return Reply(200, {"orders": rows[offset : offset + limit], "count": len(rows)})


def _in_window(when: str, start: str | None, end: str | None) -> bool:
    day = parse(when).date().isoformat()
    return (start is None or day >= start) and (end is None or day <= end)


def populate(fake: BrevoFake, n: int, *, seed_lists: bool = True) -> None:
    """``n`` contacts with French attributes, some blocklisted, a marketer's own list."""
    own = fake.add_list("Newsletter", 1) if seed_lists else None
    for i in range(1, n + 1):
        attrs: dict[str, Any] = {"FIRSTNAME": f"Prénom{i}", "LASTNAME": f"Nom{i}",
                                 "CODE_POSTAL": f"{69000 + i % 10}", "AGE": 20 + i % 50}  # fmt: skip
        if i % 3 == 0:
            attrs["VIP"] = True
        fake.add_contact(
            f"client{i}@example.org",
            attributes=attrs,
            list_ids=[own] if own and i % 2 else [],
            blacklisted=i % 10 == 0,
        )
