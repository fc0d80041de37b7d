"""A stateful fake of HubSpot's public API on 127.0.0.1, checked against documented shapes.

HubSpot publishes no spec we may copy (see shared/api-specs/README.md), so the request
contract is written (in ``hubspot_contract.py``) as JSON Schemas from the public docs ("CRM API | Contacts",
"| Search", "| Properties", "Lists API", "Marketing emails", "Email events" and "API
usage guidelines") and the generated models of HubSpot/hubspot-api-python
(``hubspot/crm/contacts/models``, ``crm/lists/models``, ``crm/properties/models``,
``marketing/emails/models``). A request outside them (unknown path or query parameter,
missing required field, wrong type, ``limit`` over the maximum) is answered 400 with
HubSpot's ``VALIDATION_ERROR`` body and recorded in ``violations``.

Behaviour, as documented:
- ``GET /crm/v3/objects/contacts``: ``limit`` <= 100, opaque ``after`` cursor, only the
  requested ``properties`` (null when unset) plus the defaults; no ``paging`` on the last
  page. ``POST .../search``: filters on ``lastmodifieddate``, ascending sort, ``limit`` <= 200,
  ``total``; an ``after`` at or past ``search_cap`` (10,000) is a 400.
- ``batch/read`` and ``batch/update``: <= 100 inputs, 200, or 207 with ``numErrors`` and
  ``errors[].context.ids`` for unknown ids or ids in ``reject_ids``; a value outside a
  checkbox property's options is a 400 ``INVALID_OPTION`` for the whole batch.
- properties, deals with contact associations (the first 100 inline, the rest on the v4
  associations API), deal pipelines, static lists (``recordsIdsAdded`` spelt as the SDK
  spells it), marketing e-mails (create, clone, read back, update; ``drop_email_widgets``
  empties what it keeps), the legacy e-mail events (``hasMore``/``offset``) in
  ``hubspot_marketing.py``. Each handler cites the page or SDK model its answer follows;
  tests/contracts/test_hubspot_shapes.py checks the documented examples against them.
- two limits: every call counts in a window of ``limit`` per ``window`` seconds (429 with
  ``policyName`` ``TEN_SECONDLY_ROLLING`` and the ``X-HubSpot-RateLimit-*`` headers every
  answer carries); searches also count in ``search_limit`` per ``search_window`` (429
  ``SECONDLY``; search answers carry no rate-limit headers, as HubSpot documents).
- 401 ``INVALID_AUTHENTICATION``/``EXPIRED_AUTHENTICATION``; 403 ``MISSING_SCOPES`` naming
  the scope when ``scopes`` lacks it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid
from typing import Any

import jsonschema

from .base import FakeServer, Reply, Request, WindowLimiter
from .hubspot_contract import ANSWERS, CONTRACTS, CORE_DEFS, LIMITS, SCOPE
from .hubspot_handlers import HubSpotHandlers, error_body
from .hubspot_marketing import HubSpotMarketing, default_pipeline
from .hubspot_records import EPOCH, Contact, HubList, iso, ms

TOKEN = "pat-eu1-00000000-test-0000-SECRET"
ALL_SCOPES = frozenset(
    {
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.objects.deals.read",
        "crm.lists.read",
        "crm.lists.write",
        "content",
    }
)


class HubSpotFake(HubSpotHandlers, HubSpotMarketing, FakeServer):
    def __init__(
        self,
        *,
        limit: int = 100,
        window: float = 10.0,
        search_limit: int = 5,
        search_window: float = 1.0,
        search_cap: int = 10_000,
        seed: int = 0,
    ) -> None:
        super().__init__(None, seed=seed)
        self.token = TOKEN
        self.expired = False
        self.scopes = set(ALL_SCOPES)
        self.limiter = WindowLimiter(limit, window)
        self.search_limiter = WindowLimiter(search_limit, search_window)
        self.search_cap = search_cap
        self.contacts: dict[int, Contact] = {}
        self._order: list[int] = []  # ids in creation (= ascending) order, for paging
        self.defs: dict[str, dict[str, Any]] = {}
        for name, kind in CORE_DEFS.items():
            self.add_property(name, kind, hubspot_defined=True)
        self.deals: dict[int, dict[str, Any]] = {}
        self.pipelines: list[dict[str, Any]] = [default_pipeline()]
        self.association_reads = 0  # v4 association pages read
        self.event_calls: list[tuple[int, int]] = []  # (startTimestamp, endTimestamp) asked
        self.drop_email_widgets = False  # HubSpot keeps no widget of a draft's content
        self.lists: dict[int, HubList] = {}
        self.emails: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.reject_ids: set[str] = set()  # batch/update answers 207 for these
        self.reject_once: set[str] = set()  # ... only the first time
        self.lose_email_answers = 0  # POST /marketing/v3/emails creates, then answers 504
        # records are made "a day ago", a millisecond apart, so that real-time cursors see
        # the changes a test makes now (``touch`` stamps the real time)
        self.clock = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
        self._ids = itertools.count(1001)
        self._setup()

    # state helpers --------------------------------------------------------------------
    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(milliseconds=1)
        return self.clock

    def add_property(
        self,
        name: str,
        kind: str = "string",
        *,
        hubspot_defined: bool = False,
        field_type: str | None = None,
        options: list[str] | None = None,
    ) -> None:
        ft = field_type or {
            "number": "number",
            "bool": "booleancheckbox",
            "date": "date",
            "datetime": "date",
            "enumeration": "select",
        }.get(kind, "text")
        self.defs[name] = {
            "name": name,
            "label": name.replace("_", " ").title(),
            "type": kind,
            "fieldType": ft,
            "groupName": "contactinformation",
            "description": "",
            "hidden": False,
            "hubspotDefined": hubspot_defined,
            "formField": True,
            "displayOrder": -1,
            "options": [
                {"label": o, "value": o, "hidden": False, "displayOrder": n}
                for n, o in enumerate(options or [])
            ],
            "createdAt": iso(EPOCH),
            "updatedAt": iso(EPOCH),
            "archived": False,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": False,
        }

    def add_contact(
        self, email: str | None, *, modified: dt.datetime | None = None, **props: str | None
    ) -> int:
        cid = next(self._ids)
        when = modified or self.tick()
        self.contacts[cid] = Contact(cid, {"email": email, **props}, when, when)
        self._order.append(cid)
        return cid

    def touch(self, cid: int, when: dt.datetime | None = None, **props: str | None) -> None:
        c = self.contacts[cid]
        c.props.update(props)
        c.modified = when or max(dt.datetime.now(dt.UTC), self.tick())

    def add_deal(
        self,
        contact_ids: list[int],
        amount: str,
        closedate: str,
        stage: str = "closedwon",
        pipeline: str = "default",
        closed_won_unset: bool = False,
    ) -> int:
        did = next(self._ids)
        self.deals[did] = {
            "props": {
                "amount": amount,
                "closedate": closedate,
                "dealstage": stage,
                "pipeline": pipeline,
                "dealname": f"deal {did}",
            },
            "contacts": list(contact_ids),
            "closed_won_unset": closed_won_unset,
        }
        return did

    def add_event(
        self, kind: str, recipient: str, when: dt.datetime, campaign: int = 77, **extra: Any
    ) -> None:
        self.events.append(
            {
                "id": str(uuid.uuid4()),
                "type": kind,
                "recipient": recipient,
                "created": ms(when),
                "emailCampaignId": campaign,
                "portalId": 4711,
                "appId": 113,
                "appName": "Batch",
                **extra,
            }
        )

    def list_named(self, name: str) -> HubList | None:
        return next((x for x in self.lists.values() if x.name == name), None)

    def tags_of(self, cid: int, prop: str = "segmerge_segments") -> list[str]:
        value = self.contacts[cid].props.get(prop) or ""
        return [t for t in value.split(";") if t]

    # the contract -------------------------------------------------------------------------
    def _contract(self, req: Request) -> dict[str, Any] | None:
        """The request contract of the endpoint ``req`` calls."""
        for (method, pattern), contract in CONTRACTS.items():
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
            if method == req.method and re.match(f"^{regex}/?$", req.path):
                return contract
        return None

    def _validate_request(self, req: Request, h: Any, query: str) -> str | None:
        contract = self._contract(req)
        if contract is None:
            return f"{req.method} {req.path} is not a documented HubSpot endpoint"
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return "no `Authorization: Bearer <token>` header"
        for name, values in req.params.items():
            schema = contract["query"].get(name)
            if schema is None:
                return f"unknown query parameter {name!r}"
            try:
                jsonschema.validate(values[-1], schema)
            except jsonschema.ValidationError as exc:
                return f"query parameter {name}: {exc.message}"
        maximum = LIMITS.get(req.path.rstrip("/"))
        if maximum and req.int_arg("limit", 0) > maximum:
            return f"limit {req.arg('limit')} is over the maximum {maximum}"
        if "body" in contract:
            if not req.headers.get("content-type", "").startswith("application/json"):
                return "the body is not application/json"
            try:
                body = json.loads(req.body or b"null")
                jsonschema.validate(body, contract["body"])
            except ValueError as exc:
                return f"the body is not JSON: {exc}"
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "body"
                return f"{where}: {exc.message}"
        elif req.body:
            return "this endpoint takes no body"
        return None

    def _answer(self, req: Request, h: Any, query: str) -> Reply:
        reply = super()._answer(req, h, query)
        if reply.status == 400 and isinstance(reply.body, dict) and "code" in reply.body:
            reply.body = error_body("VALIDATION_ERROR", str(reply.body.get("message")))
        return reply

    def route(self, method: str, pattern: str, handler: Any) -> None:
        """Every answer a route gives is checked against its schema (injected faults are not)."""
        schema = ANSWERS.get((method, pattern))

        def checked(req: Request) -> Reply:
            reply: Reply = handler(req)
            if schema is not None and 200 <= reply.status < 300:
                try:
                    jsonschema.validate(reply.body, schema)
                except jsonschema.ValidationError as exc:
                    where = "/".join(str(p) for p in exc.absolute_path) or "body"
                    self.violations.append(
                        f"answer to {req.method} {req.path}: {where}: {exc.message}"
                    )
            return reply

        super().route(method, pattern, checked)

    def check_auth(self, req: Request) -> Reply | None:
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return Reply(
                401,
                error_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports "
                    "OAuth 2.0 authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
        if self.expired:
            return Reply(
                401,
                error_body(
                    "EXPIRED_AUTHENTICATION",
                    "The OAuth token used to make this call expired 2 hour(s) ago.",
                ),
            )
        for method, regex, scope in SCOPE:
            if (not method or method == req.method) and re.search(regex, req.path):
                if scope not in self.scopes:
                    body = error_body(
                        "MISSING_SCOPES",
                        "This app hasn't been granted all required "
                        "scopes to make this call. Read more about required scopes "
                        "here: https://developers.hubspot.com/scopes.",
                    )
                    body["errors"] = [
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredScopes": [scope]},
                        }
                    ]
                    body["links"] = {"scopes": "https://developers.hubspot.com/scopes"}
                    return Reply(403, body)
                break
        return None

    def _is_search(self, req: Request) -> bool:
        return req.method == "POST" and req.path.endswith("/search") and "/objects/" in req.path

    def rate_limit(self, req: Request) -> Reply | None:
        """429 bodies and headers of https://developers.hubspot.com/docs/api/usage-details
        ("Rate limits": errorType RATE_LIMIT, policyName TEN_SECONDLY_ROLLING / SECONDLY /
        DAILY; X-HubSpot-RateLimit-* on every answer but the search endpoints)."""
        ok, _, _ = self.limiter.hit()
        if not ok:
            body = error_body("RATE_LIMIT", "You have reached your ten_secondly_rolling limit.")
            body.update(
                {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
            )
            return Reply(429, body)
        if self._is_search(req):
            ok, _, _ = self.search_limiter.hit()
            if not ok:
                body = error_body("RATE_LIMIT", "You have reached your secondly limit.")
                body.update({"errorType": "RATE_LIMIT", "policyName": "SECONDLY"})
                return Reply(429, body)
        return None

    def decorate(self, req: Request, reply: Reply) -> None:
        general_429 = (
            isinstance(reply.body, dict) and reply.body.get("policyName") == "TEN_SECONDLY_ROLLING"
        )
        if self._is_search(req) and not general_429:
            return
        lim = self.limiter
        remaining = max(0, lim.limit - lim.count)
        reply.headers.update(
            {
                "X-HubSpot-RateLimit-Max": str(lim.limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(lim.window * 1000)),
                "X-HubSpot-RateLimit-Daily": "250000",
                "X-HubSpot-RateLimit-Daily-Remaining": "249000",
            }
        )

    # routes ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.route
        # https://developers.hubspot.com/docs/api-reference/account-account-info-v3/
        # portal-information/get-account-info-v3-details (example answer)
        r(
            "GET",
            "/account-info/v3/details",
            lambda q: Reply(
                200,
                {
                    "portalId": 4711,
                    "accountType": "STANDARD",
                    "timeZone": "Europe/Paris",
                    "companyCurrency": "EUR",
                    "additionalCurrencies": [],
                    "utcOffset": "+01:00",
                    "utcOffsetMilliseconds": 3600000,
                    "uiDomain": "app-eu1.hubspot.com",
                    "dataHostingLocation": "eu1",
                },
            ),
        )
        r("GET", "/crm/v3/properties/contacts", self.get_properties)
        r("GET", "/crm/v3/properties/contacts/{name}", self.get_property)
        r("POST", "/crm/v3/properties/contacts", self.post_property)
        r("PATCH", "/crm/v3/properties/contacts/{name}", self.patch_property)
        r("GET", "/crm/v3/objects/contacts", self.get_contacts)
        r("POST", "/crm/v3/objects/contacts/search", self.search_contacts)
        r("POST", "/crm/v3/objects/contacts/batch/read", self.batch_read)
        r("POST", "/crm/v3/objects/contacts/batch/update", self.batch_update)
        r("GET", "/crm/v3/objects/deals", self.get_deals)
        r("GET", "/crm/v3/pipelines/deals", self.get_pipelines)
        r("GET", "/crm/v4/objects/deals/{dealId}/associations/contacts", self.get_deal_contacts)
        r("POST", "/crm/v3/lists", self.post_list)
        r("POST", "/crm/v3/lists/search", self.search_lists)
        r("PUT", "/crm/v3/lists/{listId}/memberships/add", lambda q: self.members(q, True))
        r("PUT", "/crm/v3/lists/{listId}/memberships/remove", lambda q: self.members(q, False))
        r("GET", "/marketing/v3/emails", self.get_emails)
        r("POST", "/marketing/v3/emails", self.post_email)
        r("POST", "/marketing/v3/emails/clone", self.clone_email)
        r("GET", "/marketing/v3/emails/{emailId}", self.get_email)
        r("PATCH", "/marketing/v3/emails/{emailId}", self.patch_email)
        r("GET", "/email/public/v1/events", self.get_events)


def make_connector(
    fake: HubSpotFake,
    *,
    name: str = "crm",
    root: Any = None,
    token: str | None = None,
    **settings: Any,
) -> Any:
    """A HubSpotConnector on ``fake``, paced at the fake's limits unless told otherwise."""
    from pathlib import Path

    from connectors.hubspot import HubSpotConnector
    from segmerge.ports.connector import ConnectorContext

    base = {
        "base_url": fake.url,
        "rate_limit": fake.limiter.limit,
        "rate_window_seconds": fake.limiter.window,
        "search_rate_limit": fake.search_limiter.limit,
        "search_window_seconds": fake.search_limiter.window,
    }
    folder = Path(root) if root is not None else Path("/nonexistent-workspace")
    secret = token if token is not None else fake.token
    ctx = ConnectorContext(
        name, {**base, **settings}, folder, folder / "segmerge.toml", secret=lambda: secret
    )
    return HubSpotConnector(ctx)


def populate(fake: HubSpotFake, n: int, *, tag_property: bool = True) -> list[int]:
    """``n`` contacts with a custom number and date property, a few opted out, some tagged."""
    fake.add_property("age", "number")
    fake.add_property("member_since", "date")
    fake.add_property("favourite_genre", "string")
    if tag_property:
        fake.add_property(
            "segmerge_segments",
            "enumeration",
            field_type="checkbox",
            options=["vip", "seg:old", "seg:fonceurs"],
        )
    ids = []
    for i in range(n):
        props: dict[str, str | None] = {
            "firstname": f"Ann{i}",
            "lastname": f"Lee{i}",
            "age": str(20 + i % 50),
            "member_since": "2024-03-01",
            "favourite_genre": ["jazz", "rock", None][i % 3],
            "hs_email_optout": "true" if i % 10 == 3 else "false",
            "city": "Lyon",
        }
        if i % 7 == 0:
            props["segmerge_segments"] = "vip;seg:old"
        ids.append(fake.add_contact(f"ann{i}@example.org", **props))
    return ids
