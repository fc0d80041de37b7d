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
  e-commerce orders (``modifiedSince`` on ``updatedAt``) and the account;
- per-contact campaign statistics in the documented shape (``Contact.stats``: one list
  per kind, ``clicked`` items timed per link, ``adminUnsubscription`` with no
  campaign), filtered to ``startDate``..``endDate`` by event day;
- two rate-limit buckets like Brevo's general tier: everything under ``/contacts``
  (10 requests per second) and every other endpoint (100 per hour); over the limit a
  429 ``too_many_requests`` with ``x-sib-ratelimit-limit/-remaining/-reset``, which
  every answer of a rate-limited endpoint carries too;
- 401 ``unauthorized`` / "Key not found" for a wrong or revoked key.

Tests shrink the windows (``contacts_limit``, ``other_limit``, ``other_window``) rather
than sleeping. Requests with more than 150 list members are recorded as violations:
the spec's ``maxItems`` is not enforced by the (anyOf-patched) schema; so are answers
carrying a field Brevo does not document (``brevo_shapes``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from .base import FakeServer, Reply, Request, WindowLimiter
from .brevo_campaigns import SentCampaigns
from .brevo_dates import EPOCH, parse, stamp
from .brevo_lists import BrevoLists

KEY = "xkeysib-test-0123456789abcdef"


def echo_headers(req: Request) -> Reply | None:
    """An auth check for the secrets tests (``server.check_auth = echo_headers``): reads
    pass; every write is refused with the request's headers, the key included, in the body
    (as a careless proxy might), to prove Segmerge never prints what it is answered."""
    if req.method == "GET":
        return None if req.headers.get("api-key") == KEY else Reply(401, {"message": "no"})
    return Reply(
        401,
        {
            "code": "unauthorized",
            "message": f"Key not found: {req.headers['api-key']}",
            "request": {"headers": req.headers},
        },
    )


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


class BrevoFake(BrevoLists, FakeServer):
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
        self.order_queries: list[dict[str, list[str]]] = []  # params of GET /orders
        self._budget: dict[int, tuple[int, float]] = {}  # request -> (remaining, reset)
        self._routes_setup()
        self.sent = SentCampaigns(self)  # sent campaigns, recipient exports, files

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
        with self.lock:
            self._budget[id(req)] = (remaining, reset)
        if allowed:
            return None
        return Reply(
            429, {"code": "too_many_requests", "message": "The expected rate limit is exceeded."}
        )

    def decorate(self, req: Request, reply: Reply) -> None:
        """Every answer of a rate-limited endpoint carries the bucket's state, as Brevo
        documents ("Rate limit headers", developers.brevo.com/docs/limit-headers): the
        window's limit, the requests left in it, and the seconds until it resets (whole
        seconds, as in the page's example ``x-sib-ratelimit-reset: 45``)."""
        with self.lock:
            remaining, reset = self._budget.pop(id(req), (0, 1.0))
        reply.headers.setdefault("x-sib-ratelimit-limit", str(self._limiter(req).limit))
        reply.headers.setdefault("x-sib-ratelimit-remaining", str(remaining))
        reply.headers.setdefault("x-sib-ratelimit-reset", str(max(1, math.ceil(reset))))
        if (
            self.openapi is not None
            and self.check_responses
            and 200 <= reply.status < 300
            and self._first_times(req, "fields", str(reply.status))
        ):
            from .brevo_shapes import undocumented  # the spec's libraries: only with a spec

            extra = undocumented(req.method, req.path, reply.body)
            if extra:
                with self.lock:
                    self.violations.append(
                        f"answer to {req.method} {req.full_path}: fields "
                        f"Brevo does not document: {', '.join(extra)}"
                    )

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
        return Reply(
            200,
            {
                "email": "owner@boutique.example",
                "firstName": "Ana",
                "lastName": "Lopez",
                "companyName": "La Boutique",
                "address": {
                    "street": "1 rue X",
                    "city": "Lyon",
                    "zipCode": "69001",
                    "country": "France",
                },
                "plan": [{"type": "free", "creditsType": "sendLimit", "credits": 300.0}],
                "relay": {
                    "enabled": True,
                    "data": {
                        "userName": "owner@boutique.example",
                        "relay": "smtp-relay.brevo.com",
                        "port": 587,
                    },
                },
            },
        )

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
            if kind == "clicked":  # the times are the links' (getContactCampaignStats)
                kept = [
                    {**e, "links": links}
                    for e in events
                    if (links := [x for x in e["links"] if _in_window(x["eventTime"], start, end)])
                ]
            else:
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

    def get_orders(self, req: Request) -> Reply:
        paging = self._paging(req, 100, 50)
        if isinstance(paging, Reply):
            return paging
        limit, offset = paging
        self.order_queries.append(req.params)
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
        attrs: dict[str, Any] = {
            "FIRSTNAME": f"Prénom{i}",
            "LASTNAME": f"Nom{i}",
            "CODE_POSTAL": f"{69000 + i % 10}",
            "AGE": 20 + i % 50,
        }
        if i % 3 == 0:
            attrs["VIP"] = True
        fake.add_contact(
            f"client{i}@example.org",
            attributes=attrs,
            list_ids=[own] if own and i % 2 else [],
            blacklisted=i % 10 == 0,
        )
