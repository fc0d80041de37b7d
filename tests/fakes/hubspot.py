"""A stateful fake of HubSpot's public API on 127.0.0.1, checked against documented shapes.

HubSpot publishes no spec we may copy (see shared/api-specs/README.md), so the request
contract is written here as JSON Schemas from the public docs ("CRM API | Contacts",
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
- properties, deals with contact associations, static lists (``recordsIdsAdded`` spelt as
  HubSpot spells it), marketing e-mails, the legacy e-mail events (``hasMore``/``offset``).
- two limits: every call counts in a window of ``limit`` per ``window`` seconds (429 with
  ``policyName`` ``TEN_SECONDLY_ROLLING`` and the ``X-HubSpot-RateLimit-*`` headers every
  answer carries); searches also count in ``search_limit`` per ``search_window`` (429
  ``SECONDLY``; search answers carry no rate-limit headers, as HubSpot documents).
- 401 ``INVALID_AUTHENTICATION``/``EXPIRED_AUTHENTICATION``; 403 ``MISSING_SCOPES`` naming
  the scope when ``scopes`` lacks it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from .base import FakeServer, Reply, Request, WindowLimiter

TOKEN = "pat-eu1-00000000-test-0000-SECRET"
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ALL_SCOPES = frozenset({
    "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.read",
    "crm.schemas.contacts.write", "crm.objects.deals.read", "crm.lists.read", "crm.lists.write",
    "content",
})  # fmt: skip


def iso(when: dt.datetime) -> str:
    return (
        when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


# request contracts ---------------------------------------------------------------------------
S: dict[str, Any] = {"type": "string"}
INT_Q = {"type": "string", "pattern": r"^\d+$"}
BOOL_Q = {"type": "string", "enum": ["true", "false"]}
PROPS_Q = {"type": "string"}
FILTER = {"type": "object", "required": ["propertyName", "operator"],
          "properties": {"propertyName": S, "operator": {"enum": [
              "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
              "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"]},
              "value": S, "highValue": S, "values": {"type": "array", "items": S}},
          "additionalProperties": False}  # fmt: skip
SORT = {"oneOf": [S, {"type": "object", "required": ["propertyName"], "additionalProperties": False,
                      "properties": {"propertyName": S,
                                     "direction": {"enum": ["ASCENDING", "DESCENDING"]}}}]}  # fmt: skip
OPTION = {"type": "object", "required": ["label", "value", "hidden"], "additionalProperties": False,
          "properties": {"label": S, "value": S, "hidden": {"type": "boolean"},
                         "displayOrder": {"type": "integer"}, "description": S}}  # fmt: skip
FIELD_TYPES = ["textarea", "text", "date", "file", "number", "select", "radio", "checkbox",
               "booleancheckbox", "calculation_equation"]  # fmt: skip
TYPES = ["string", "number", "date", "datetime", "enumeration", "bool"]
IDS = {"type": "array", "items": S, "maxItems": 100_000}
RECIPIENTS = {"type": "object", "additionalProperties": False,
              "properties": {"include": {"type": "array", "items": S},
                             "exclude": {"type": "array", "items": S}}}  # fmt: skip
CONTRACTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/account-info/v3/details"): {"query": {}},
    ("GET", "/crm/v3/properties/contacts"): {"query": {"archived": BOOL_Q, "properties": PROPS_Q}},
    ("GET", "/crm/v3/properties/contacts/{name}"): {"query": {"archived": BOOL_Q}},
    ("POST", "/crm/v3/properties/contacts"): {"query": {}, "body": {
        "type": "object", "required": ["name", "label", "type", "fieldType", "groupName"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}, "label": S,
                       "type": {"enum": TYPES}, "fieldType": {"enum": FIELD_TYPES},
                       "groupName": S, "description": S, "hidden": {"type": "boolean"},
                       "displayOrder": {"type": "integer"}, "formField": {"type": "boolean"},
                       "options": {"type": "array", "items": OPTION}}}},
    ("PATCH", "/crm/v3/properties/contacts/{name}"): {"query": {}, "body": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"label": S, "description": S, "groupName": S, "hidden": {"type": "boolean"},
                       "type": {"enum": TYPES}, "fieldType": {"enum": FIELD_TYPES},
                       "displayOrder": {"type": "integer"}, "formField": {"type": "boolean"},
                       "options": {"type": "array", "items": OPTION}}}},
    ("GET", "/crm/v3/objects/contacts"): {"query": {
        "limit": INT_Q, "after": S, "properties": PROPS_Q, "archived": BOOL_Q,
        "associations": S, "propertiesWithHistory": S}},
    ("POST", "/crm/v3/objects/contacts/search"): {"query": {}, "body": {
        "type": "object", "additionalProperties": False,
        "properties": {"filterGroups": {"type": "array", "maxItems": 5, "items": {
                           "type": "object", "required": ["filters"], "additionalProperties": False,
                           "properties": {"filters": {"type": "array", "maxItems": 6,
                                                      "items": FILTER}}}},
                       "sorts": {"type": "array", "items": SORT},
                       "properties": {"type": "array", "items": S}, "query": S,
                       "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                       "after": S}}},
    ("POST", "/crm/v3/objects/contacts/batch/read"): {"query": {"archived": BOOL_Q}, "body": {
        "type": "object", "required": ["inputs", "properties"], "additionalProperties": False,
        "properties": {"inputs": {"type": "array", "maxItems": 100, "items": {
                           "type": "object", "required": ["id"], "additionalProperties": False,
                           "properties": {"id": S}}},
                       "properties": {"type": "array", "items": S},
                       "propertiesWithHistory": {"type": "array", "items": S},
                       "idProperty": S}}},
    ("POST", "/crm/v3/objects/contacts/batch/update"): {"query": {}, "body": {
        "type": "object", "required": ["inputs"], "additionalProperties": False,
        "properties": {"inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
            "type": "object", "required": ["id", "properties"], "additionalProperties": False,
            "properties": {"id": S, "idProperty": S, "objectWriteTraceId": S,
                           "properties": {"type": "object",
                                          "additionalProperties": S}}}}}}},
    ("GET", "/crm/v3/objects/deals"): {"query": {
        "limit": INT_Q, "after": S, "properties": PROPS_Q, "archived": BOOL_Q, "associations": S}},
    ("POST", "/crm/v3/lists"): {"query": {}, "body": {
        "type": "object", "required": ["name", "objectTypeId", "processingType"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1}, "objectTypeId": S,
                       "processingType": {"enum": ["MANUAL", "DYNAMIC", "SNAPSHOT"]},
                       "listFolderId": {"type": "integer"}, "filterBranch": {"type": "object"},
                       "customProperties": {"type": "object"}}}},
    ("POST", "/crm/v3/lists/search"): {"query": {}, "body": {
        "type": "object", "additionalProperties": False,
        "properties": {"query": S, "offset": {"type": "integer", "minimum": 0},
                       "count": {"type": "integer", "minimum": 1, "maximum": 500},
                       "processingTypes": {"type": "array", "items": {
                           "enum": ["MANUAL", "DYNAMIC", "SNAPSHOT"]}},
                       "listIds": {"type": "array", "items": S},
                       "additionalProperties": {"type": "array", "items": S}, "sort": S}}},
    ("PUT", "/crm/v3/lists/{listId}/memberships/add"): {"query": {}, "body": IDS},
    ("PUT", "/crm/v3/lists/{listId}/memberships/remove"): {"query": {}, "body": IDS},
    ("GET", "/crm/v3/lists/{listId}/memberships"): {"query": {
        "after": S, "before": S, "limit": INT_Q}},
    ("GET", "/marketing/v3/emails"): {"query": {
        "limit": INT_Q, "after": S, "archived": BOOL_Q, "isPublished": BOOL_Q, "sort": S,
        "type": S, "includeStats": BOOL_Q}},
    ("POST", "/marketing/v3/emails"): {"query": {}, "body": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1}, "subject": S,
                       "state": {"enum": ["DRAFT", "AUTOMATED_DRAFT", "SCHEDULED", "PUBLISHED"]},
                       "sendOnPublish": {"type": "boolean"}, "language": S, "campaign": S,
                       "archived": {"type": "boolean"}, "businessUnitId": {"type": "integer"},
                       "subscriptionDetails": {"type": "object"}, "activeDomain": S,
                       "from": {"type": "object", "additionalProperties": False, "properties": {
                           "fromName": S, "replyTo": S, "customReplyTo": S}},
                       "to": {"type": "object", "additionalProperties": False, "properties": {
                           "contactIlsLists": RECIPIENTS, "contactLists": RECIPIENTS,
                           "contactIds": RECIPIENTS, "suppressGraymail": {"type": "boolean"},
                           "limitSendFrequency": {"type": "boolean"}}},
                       "content": {"type": "object", "additionalProperties": False, "properties": {
                           "templatePath": S, "plainTextVersion": S,
                           "widgets": {"type": "object"}, "flexAreas": {"type": "object"},
                           "widgetContainers": {"type": "object"},
                           "styleSettings": {"type": "object"},
                           "smartFields": {"type": "object"},
                           "themeSettingsValues": {"type": "object"}}}}}},
    ("GET", "/email/public/v1/events"): {"query": {
        "startTimestamp": INT_Q, "endTimestamp": INT_Q, "offset": S, "limit": INT_Q,
        "eventType": S, "recipient": S, "campaignId": INT_Q, "appId": INT_Q,
        "excludeFilteredEvents": BOOL_Q}},
}  # fmt: skip


# answer contracts (the required fields of the generated models): the fake keeps its word too
def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


NULLABLE_S = {"type": ["string", "null"]}
RECORD = _obj(["id", "properties", "createdAt", "updatedAt"], id=S, createdAt=S, updatedAt=S,
              properties={"type": "object", "additionalProperties": NULLABLE_S},
              archived={"type": "boolean"})  # fmt: skip
PAGING = _obj([], next=_obj(["after"], after=S, link=S))
STD_ERROR = _obj(["category", "context", "errors", "links", "message", "status"], category=S,
                 message=S, status=S, context={"type": "object"},
                 errors={"type": "array"}, links={"type": "object"})  # fmt: skip
BATCH = _obj(["completedAt", "results", "startedAt", "status"], completedAt=S, startedAt=S,
             status={"enum": ["PENDING", "PROCESSING", "CANCELED", "COMPLETE"]},
             results={"type": "array", "items": RECORD}, numErrors={"type": "integer"},
             errors={"type": "array", "items": STD_ERROR})  # fmt: skip
PROPERTY = _obj(["description", "fieldType", "groupName", "label", "name", "options", "type"],
                name=S, label=S, type={"enum": TYPES}, fieldType={"enum": FIELD_TYPES},
                groupName=S, description=S, hubspotDefined={"type": "boolean"},
                options={"type": "array", "items": _obj(["hidden", "label", "value"])})  # fmt: skip
LIST_FIELDS = ["listId", "listVersion", "name", "objectTypeId", "processingStatus",
               "processingType"]  # fmt: skip
MEMBERSHIPS = _obj(["recordIdsMissing", "recordIdsRemoved", "recordsIdsAdded"],
                   recordIdsMissing={"type": "array", "items": S},
                   recordIdsRemoved={"type": "array", "items": S},
                   recordsIdsAdded={"type": "array", "items": S})  # fmt: skip
EMAIL = _obj(["from", "content", "id", "name", "sendOnPublish", "state", "subcategory",
              "subject", "to"], id=S, name=S, state=S, sendOnPublish={"type": "boolean"})  # fmt: skip
ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/account-info/v3/details"): _obj(["portalId"], portalId={"type": "integer"}),
    ("GET", "/crm/v3/properties/contacts"): _obj(["results"], results={
        "type": "array", "items": PROPERTY}),
    ("GET", "/crm/v3/properties/contacts/{name}"): PROPERTY,
    ("POST", "/crm/v3/properties/contacts"): PROPERTY,
    ("PATCH", "/crm/v3/properties/contacts/{name}"): PROPERTY,
    ("GET", "/crm/v3/objects/contacts"): _obj(["results"], paging=PAGING, results={
        "type": "array", "items": RECORD}),
    ("POST", "/crm/v3/objects/contacts/search"): _obj(["total", "results"], paging=PAGING,
        total={"type": "integer"}, results={"type": "array", "items": RECORD}),
    ("POST", "/crm/v3/objects/contacts/batch/read"): BATCH,
    ("POST", "/crm/v3/objects/contacts/batch/update"): BATCH,
    ("GET", "/crm/v3/objects/deals"): _obj(["results"], paging=PAGING, results={
        "type": "array", "items": RECORD}),
    ("POST", "/crm/v3/lists"): _obj(["list"], list=_obj(LIST_FIELDS)),
    ("POST", "/crm/v3/lists/search"): _obj(["hasMore", "lists", "offset", "total"], lists={
        "type": "array", "items": _obj([*LIST_FIELDS, "additionalProperties"])}),
    ("PUT", "/crm/v3/lists/{listId}/memberships/add"): MEMBERSHIPS,
    ("PUT", "/crm/v3/lists/{listId}/memberships/remove"): MEMBERSHIPS,
    ("GET", "/marketing/v3/emails"): _obj(["results", "total"], paging=PAGING, results={
        "type": "array", "items": EMAIL}),
    ("POST", "/marketing/v3/emails"): EMAIL,
    ("GET", "/email/public/v1/events"): _obj(["events", "hasMore", "offset"], events={
        "type": "array", "items": _obj(["id", "created", "type", "recipient"])},
        hasMore={"type": "boolean"}, offset=S),
}  # fmt: skip


LIMITS = {"/crm/v3/objects/contacts": 100, "/crm/v3/objects/deals": 100,
          "/email/public/v1/events": 1000, "/marketing/v3/emails": 100}  # fmt: skip
SCOPE = [  # (method, path regex, scope) the first match decides
    ("GET", r"^/crm/v3/properties", "crm.schemas.contacts.read"),
    ("", r"^/crm/v3/properties", "crm.schemas.contacts.write"),
    ("POST", r"^/crm/v3/objects/contacts/(search|batch/read)$", "crm.objects.contacts.read"),
    ("GET", r"^/crm/v3/objects/contacts", "crm.objects.contacts.read"),
    ("", r"^/crm/v3/objects/contacts", "crm.objects.contacts.write"),
    ("", r"^/crm/v3/objects/deals", "crm.objects.deals.read"),
    ("GET", r"^/crm/v3/lists", "crm.lists.read"),
    ("POST", r"^/crm/v3/lists/search$", "crm.lists.read"),
    ("", r"^/crm/v3/lists", "crm.lists.write"),
    ("", r"^/(marketing|email)/", "content"),
]
DEFAULT_PROPS = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
CORE_DEFS = {
    "email": "string", "firstname": "string", "lastname": "string", "createdate": "datetime",
    "lastmodifieddate": "datetime", "hs_object_id": "number", "hs_email_optout": "bool",
    "hs_email_hard_bounce_reason_enum": "enumeration", "hs_email_quarantined": "bool",
    "city": "string", "phone": "string", "lifecyclestage": "enumeration",
}  # fmt: skip


@dataclass
class Contact:
    id: int
    props: dict[str, str | None]
    created: dt.datetime
    modified: dt.datetime

    def as_json(self, wanted: list[str] | None) -> dict[str, Any]:
        names = list(dict.fromkeys([*DEFAULT_PROPS, *(wanted or [])]))
        props: dict[str, Any] = {n: self.props.get(n) for n in names}
        props.update({"hs_object_id": str(self.id), "createdate": iso(self.created),
                      "lastmodifieddate": iso(self.modified)})  # fmt: skip
        return {"id": str(self.id), "properties": props, "createdAt": iso(self.created),
                "updatedAt": iso(self.modified), "archived": False}  # fmt: skip


@dataclass
class HubList:
    id: int
    name: str
    processing: str
    members: set[int] = field(default_factory=set)


class HubSpotFake(FakeServer):
    def __init__(self, *, limit: int = 100, window: float = 10.0, search_limit: int = 5,
                 search_window: float = 1.0, search_cap: int = 10_000, seed: int = 0) -> None:  # fmt: skip
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

    def add_property(self, name: str, kind: str = "string", *, hubspot_defined: bool = False,
                     field_type: str | None = None, options: list[str] | None = None) -> None:  # fmt: skip
        ft = field_type or {"number": "number", "bool": "booleancheckbox", "date": "date",
                            "datetime": "date", "enumeration": "select"}.get(kind, "text")  # fmt: skip
        self.defs[name] = {
            "name": name, "label": name.replace("_", " ").title(), "type": kind, "fieldType": ft,
            "groupName": "contactinformation", "description": "", "hidden": False,
            "hubspotDefined": hubspot_defined, "formField": True, "displayOrder": -1,
            "options": [{"label": o, "value": o, "hidden": False, "displayOrder": n}
                        for n, o in enumerate(options or [])],
            "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH), "archived": False,
            "calculated": False, "externalOptions": False, "hasUniqueValue": False,
        }  # fmt: skip

    def add_contact(self, email: str | None, *, modified: dt.datetime | None = None,
                    **props: str | None) -> int:  # fmt: skip
        cid = next(self._ids)
        when = modified or self.tick()
        self.contacts[cid] = Contact(cid, {"email": email, **props}, when, when)
        self._order.append(cid)
        return cid

    def touch(self, cid: int, when: dt.datetime | None = None, **props: str | None) -> None:
        c = self.contacts[cid]
        c.props.update(props)
        c.modified = when or max(dt.datetime.now(dt.UTC), self.tick())

    def add_deal(self, contact_ids: list[int], amount: str, closedate: str,
                 stage: str = "closedwon") -> int:  # fmt: skip
        did = next(self._ids)
        self.deals[did] = {"props": {"amount": amount, "closedate": closedate, "dealstage": stage,
                                     "pipeline": "default", "dealname": f"deal {did}"},
                           "contacts": list(contact_ids)}  # fmt: skip
        return did

    def add_event(self, kind: str, recipient: str, when: dt.datetime, campaign: int = 77,
                  **extra: Any) -> None:  # fmt: skip
        self.events.append({"id": str(uuid.uuid4()), "type": kind, "recipient": recipient,
                            "created": ms(when), "emailCampaignId": campaign, "portalId": 4711,
                            "appId": 113, "appName": "Batch", **extra})  # fmt: skip

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
            reply.body = _error("VALIDATION_ERROR", str(reply.body.get("message")))
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
                    self.violations.append(f"answer to {req.method} {req.path}: {where}: "
                                           f"{exc.message}")  # fmt: skip
            return reply

        super().route(method, pattern, checked)

    def check_auth(self, req: Request) -> Reply | None:
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return Reply(401, _error("INVALID_AUTHENTICATION",
                                     "Authentication credentials not found. This API supports "
                                     "OAuth 2.0 authentication and you can find more details at "
                                     "https://developers.hubspot.com/docs/methods/auth/oauth-overview"))  # fmt: skip
        if self.expired:
            return Reply(401, _error("EXPIRED_AUTHENTICATION",
                                     "The OAuth token used to make this call expired 2 hour(s) "
                                     "ago."))  # fmt: skip
        for method, regex, scope in SCOPE:
            if (not method or method == req.method) and re.search(regex, req.path):
                if scope not in self.scopes:
                    body = _error("MISSING_SCOPES", "This app hasn't been granted all required "
                                  "scopes to make this call. Read more about required scopes "
                                  "here: https://developers.hubspot.com/scopes.")  # fmt: skip
                    body["errors"] = [{"message": "One or more of the following scopes are "
                                       "required.", "context": {"requiredScopes": [scope]}}]  # fmt: skip
                    body["links"] = {"scopes": "https://developers.hubspot.com/scopes"}
                    return Reply(403, body)
                break
        return None

    def _is_search(self, req: Request) -> bool:
        return req.method == "POST" and req.path.endswith("/search") and "/objects/" in req.path

    def rate_limit(self, req: Request) -> Reply | None:
        ok, _, _ = self.limiter.hit()
        if not ok:
            body = _error("RATE_LIMIT", "You have reached your ten_secondly_rolling limit.")
            body.update({"status": "error", "errorType": "RATE_LIMIT",
                         "policyName": "TEN_SECONDLY_ROLLING"})  # fmt: skip
            return Reply(429, body)
        if self._is_search(req):
            ok, _, _ = self.search_limiter.hit()
            if not ok:
                body = _error("RATE_LIMIT", "You have reached your secondly limit.")
                body.update({"errorType": "RATE_LIMIT", "policyName": "SECONDLY"})
                return Reply(429, body)
        return None

    def decorate(self, req: Request, reply: Reply) -> None:
        general_429 = isinstance(reply.body, dict) and reply.body.get("policyName") == \
            "TEN_SECONDLY_ROLLING"  # fmt: skip
        if self._is_search(req) and not general_429:
            return
        lim = self.limiter
        remaining = max(0, lim.limit - lim.count)
        reply.headers.update({
            "X-HubSpot-RateLimit-Max": str(lim.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(lim.window * 1000)),
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "249000",
        })  # fmt: skip

    # routes ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.route
        r("GET", "/account-info/v3/details", lambda q: Reply(200, {
            "portalId": 4711, "accountType": "STANDARD", "timeZone": "Europe/Paris",
            "companyCurrency": "EUR", "additionalCurrencies": [], "utcOffset": "+01:00",
            "utcOffsetMilliseconds": 3600000, "uiDomain": "app-eu1.hubspot.com",
            "dataHostingLocation": "eu1"}))  # fmt: skip
        r("GET", "/crm/v3/properties/contacts", self.get_properties)
        r("GET", "/crm/v3/properties/contacts/{name}", self.get_property)
        r("POST", "/crm/v3/properties/contacts", self.post_property)
        r("PATCH", "/crm/v3/properties/contacts/{name}", self.patch_property)
        r("GET", "/crm/v3/objects/contacts", self.get_contacts)
        r("POST", "/crm/v3/objects/contacts/search", self.search_contacts)
        r("POST", "/crm/v3/objects/contacts/batch/read", self.batch_read)
        r("POST", "/crm/v3/objects/contacts/batch/update", self.batch_update)
        r("GET", "/crm/v3/objects/deals", self.get_deals)
        r("POST", "/crm/v3/lists", self.post_list)
        r("POST", "/crm/v3/lists/search", self.search_lists)
        r("PUT", "/crm/v3/lists/{listId}/memberships/add", lambda q: self.members(q, True))
        r("PUT", "/crm/v3/lists/{listId}/memberships/remove", lambda q: self.members(q, False))
        r("GET", "/marketing/v3/emails", self.get_emails)
        r("POST", "/marketing/v3/emails", self.post_email)
        r("GET", "/email/public/v1/events", self.get_events)

    def get_properties(self, req: Request) -> Reply:
        return Reply(200, {"results": list(self.defs.values())})

    def get_property(self, req: Request) -> Reply:
        d = self.defs.get(req.groups["name"])
        if d is None:
            return Reply(404, _error("OBJECT_NOT_FOUND", f"Property {req.groups['name']} does not "
                                     "exist"))  # fmt: skip
        return Reply(200, d)

    def post_property(self, req: Request) -> Reply:
        b = req.json
        if b["name"] in self.defs:
            return Reply(409, _error("OBJECT_ALREADY_EXISTS", f"A property named '{b['name']}' "
                                     "already exists."))  # fmt: skip
        self.add_property(b["name"], b["type"], field_type=b["fieldType"],
                          options=[o["value"] for o in b.get("options", [])])  # fmt: skip
        self.defs[b["name"]]["label"] = b["label"]
        return Reply(201, self.defs[b["name"]])

    def patch_property(self, req: Request) -> Reply:
        d = self.defs.get(req.groups["name"])
        if d is None:
            return Reply(404, _error("OBJECT_NOT_FOUND", "Property does not exist"))
        d.update(req.json)  # options replace the whole list, as HubSpot does
        return Reply(200, d)

    def _wanted(self, req: Request) -> list[str]:
        return [p for v in req.params.get("properties", []) for p in v.split(",") if p]

    def get_contacts(self, req: Request) -> Reply:
        limit = req.int_arg("limit", 10)
        ordered = self._order
        start = bisect.bisect_left(ordered, int(req.arg("after") or 0))
        page = ordered[start : start + limit]
        body: dict[str, Any] = {"results": [self.contacts[c].as_json(self._wanted(req))
                                            for c in page]}  # fmt: skip
        if start + limit < len(ordered):
            nxt = str(ordered[start + limit])
            body["paging"] = {"next": {"after": nxt, "link": f"{req.full_path}?after={nxt}"}}
        return Reply(200, body)

    def search_contacts(self, req: Request) -> Reply:
        b = req.json
        matches = list(self.contacts.values())
        for group in b.get("filterGroups", [])[:1]:
            for f in group["filters"]:
                if f["propertyName"] != "lastmodifieddate" or f["operator"] not in ("GTE", "GT"):
                    return Reply(400, _error("VALIDATION_ERROR", "the fake filters only on "
                                             "lastmodifieddate GTE/GT"))  # fmt: skip
                v = f.get("value", "")
                cut = int(v) if v.isdigit() else ms(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))  # fmt: skip
                matches = [c for c in matches if (ms(c.modified) >= cut if f["operator"] == "GTE"
                                                  else ms(c.modified) > cut)]  # fmt: skip
        matches.sort(key=lambda c: (c.modified, c.id))
        offset = int(b.get("after") or 0)
        if offset >= self.search_cap:
            return Reply(400, _error("VALIDATION_ERROR", f"paging past {self.search_cap} results "
                                     "is not allowed"))  # fmt: skip
        limit = b.get("limit", 10)
        page = matches[offset : min(offset + limit, self.search_cap)]
        body: dict[str, Any] = {"total": len(matches),
                                "results": [c.as_json(b.get("properties")) for c in page]}  # fmt: skip
        if offset + limit < len(matches):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return Reply(200, body)

    def _find(self, key: str, id_property: str | None) -> Contact | None:
        if id_property == "email":
            return next((c for c in self.contacts.values()
                         if (c.props.get("email") or "").lower() == key.lower()), None)  # fmt: skip
        return self.contacts.get(int(key)) if key.isdigit() else None

    def batch_read(self, req: Request) -> Reply:
        b = req.json
        found, missing = [], []
        for item in b["inputs"]:
            c = self._find(item["id"], b.get("idProperty"))
            (found.append(c) if c else missing.append(item["id"]))  # type: ignore[func-returns-value]
        return _batch_reply([c.as_json(b["properties"]) for c in found if c], missing,
                            "OBJECT_NOT_FOUND", "Could not get some CONTACT objects, they may be "
                            "deleted or not exist. Check that ids are valid.")  # fmt: skip

    def batch_update(self, req: Request) -> Reply:
        inputs = req.json["inputs"]
        ids = [i["id"] for i in inputs]
        if len(set(ids)) != len(ids):
            return Reply(400, _error("VALIDATION_ERROR", "Duplicate IDs found in batch input"))
        for item in inputs:
            for name, value in item["properties"].items():
                d = self.defs.get(name)
                if d is None:
                    return Reply(400, _error("VALIDATION_ERROR", f"Property \"{name}\" does not "
                                             "exist"))  # fmt: skip
                if d["type"] == "enumeration" and value:
                    allowed = {o["value"] for o in d["options"]}
                    bad = [v for v in value.split(";") if v not in allowed]
                    if bad:
                        return Reply(400, _error("VALIDATION_ERROR", f"{bad[0]!r} was not one of "
                                                 f"the allowed options for {name}"))  # fmt: skip
        done, missing = [], []
        for item in inputs:
            c = self._find(item["id"], None)
            if c is None or item["id"] in self.reject_ids or item["id"] in self.reject_once:
                self.reject_once.discard(item["id"])
                missing.append(item["id"])
                continue
            self.touch(c.id, **item["properties"])
            done.append(c.as_json(list(item["properties"])))
        return _batch_reply(done, missing, "OBJECT_NOT_FOUND", "Could not update some CONTACT "
                            "objects, they may be deleted or not exist.")  # fmt: skip

    def get_deals(self, req: Request) -> Reply:
        limit = req.int_arg("limit", 10)
        ordered = sorted(self.deals)
        start = int(req.arg("after") or 0)
        page = ordered[start : start + limit]
        wanted = self._wanted(req)
        results = []
        for did in page:
            d = self.deals[did]
            item: dict[str, Any] = {"id": str(did), "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH),
                                    "archived": False,
                                    "properties": {k: d["props"].get(k) for k in wanted}}  # fmt: skip
            if req.arg("associations") == "contacts" and d["contacts"]:
                item["associations"] = {"contacts": {"results": [
                    {"id": str(c), "type": t} for c in d["contacts"]
                    for t in ("deal_to_contact", "deal_to_contact_unlabeled")]}}  # fmt: skip
            results.append(item)
        body: dict[str, Any] = {"results": results}
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, body)

    def _list_json(self, x: HubList) -> dict[str, Any]:
        return {"listId": str(x.id), "name": x.name, "processingType": x.processing,
                "objectTypeId": "0-1", "processingStatus": "COMPLETE", "listVersion": 1,
                "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH), "size": len(x.members)}  # fmt: skip

    def post_list(self, req: Request) -> Reply:
        b = req.json
        if self.list_named(b["name"]):
            return Reply(400, _error("VALIDATION_ERROR", f"A list named '{b['name']}' already "
                                     "exists"))  # fmt: skip
        x = HubList(next(self._ids), b["name"], b["processingType"])
        self.lists[x.id] = x
        return Reply(200, {"list": self._list_json(x)})

    def search_lists(self, req: Request) -> Reply:
        b = req.json
        q = (b.get("query") or "").lower()
        kinds = set(b.get("processingTypes") or ["MANUAL", "DYNAMIC", "SNAPSHOT"])
        hits = [x for x in self.lists.values() if q in x.name.lower() and x.processing in kinds]
        offset, count = b.get("offset", 0), b.get("count", 20)
        page = hits[offset : offset + count]
        items = [{**self._list_json(x), "additionalProperties": {}} for x in page]
        for i in items:
            i.pop("size")
        return Reply(200, {"lists": items, "total": len(hits), "offset": offset + len(page),
                           "hasMore": offset + len(page) < len(hits)})  # fmt: skip

    def members(self, req: Request, add: bool) -> Reply:
        x = self.lists.get(int(req.groups["listId"]))
        if x is None:
            return Reply(404, _error("OBJECT_NOT_FOUND", "List does not exist"))
        ids = req.json
        missing = [i for i in ids if not i.isdigit() or int(i) not in self.contacts]
        ok = [int(i) for i in ids if i not in missing]
        if add:
            new = [i for i in ok if i not in x.members]
            x.members |= set(new)
            return Reply(200, {"recordsIdsAdded": [str(i) for i in new],
                               "recordIdsMissing": missing, "recordIdsRemoved": []})  # fmt: skip
        gone = [i for i in ok if i in x.members]
        x.members -= set(gone)
        return Reply(200, {"recordIdsRemoved": [str(i) for i in gone], "recordIdsMissing": missing,
                           "recordsIdsAdded": []})  # fmt: skip

    def get_emails(self, req: Request) -> Reply:
        limit = req.int_arg("limit", 10)
        ordered = list(self.emails.values())
        start = int(req.arg("after") or 0)
        body: dict[str, Any] = {"total": len(ordered), "results": ordered[start : start + limit]}
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, body)

    def post_email(self, req: Request) -> Reply:
        b = req.json
        eid = str(next(self._ids))
        self.emails[eid] = {
            "id": eid, "name": b["name"], "subject": b.get("subject", ""),
            "state": b.get("state", "DRAFT"), "sendOnPublish": b.get("sendOnPublish", False),
            "from": b.get("from", {}), "to": b.get("to", {}), "content": b.get("content", {}),
            "subcategory": "batch", "type": "BATCH_EMAIL", "isPublished": False,
            "archived": False, "createdAt": iso(self.clock), "updatedAt": iso(self.clock),
        }  # fmt: skip
        if self.lose_email_answers:
            self.lose_email_answers -= 1
            return Reply(504, "<html><body>Gateway Timeout</body></html>", content_type="text/html")
        return Reply(201, self.emails[eid])

    def get_events(self, req: Request) -> Reply:
        start = req.int_arg("startTimestamp", 0)
        end = req.int_arg("endTimestamp", 2**62)
        limit = req.int_arg("limit", 100)
        hits = sorted((e for e in self.events if start <= e["created"] <= end),
                      key=lambda e: (e["created"], e["id"]))  # fmt: skip
        offset = int(req.arg("offset") or 0)
        page = hits[offset : offset + limit]
        more = offset + limit < len(hits)
        return Reply(200, {"events": page, "hasMore": more, "offset": str(offset + len(page))})


def _error(category: str, message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": category}  # fmt: skip


def _batch_reply(results: list[dict[str, Any]], missing: list[str], category: str,
                 message: str) -> Reply:  # fmt: skip
    now = iso(dt.datetime.now(dt.UTC))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": now,
                            "startedAt": now, "completedAt": now}  # fmt: skip
    if not missing:
        return Reply(200, body)
    body["numErrors"] = 1
    body["errors"] = [{"status": "error", "category": category, "message": message,
                       "context": {"ids": missing}, "errors": [], "links": {}}]  # fmt: skip
    return Reply(207, body)


def make_connector(fake: HubSpotFake, *, name: str = "crm", root: Any = None,
                   token: str | None = None, **settings: Any) -> Any:  # fmt: skip
    """A HubSpotConnector on ``fake``, paced at the fake's limits unless told otherwise."""
    from pathlib import Path

    from connectors.hubspot import HubSpotConnector
    from segmerge.connector import ConnectorContext

    base = {"base_url": fake.url, "rate_limit": fake.limiter.limit,
            "rate_window_seconds": fake.limiter.window,
            "search_rate_limit": fake.search_limiter.limit,
            "search_window_seconds": fake.search_limiter.window}  # fmt: skip
    folder = Path(root) if root is not None else Path("/nonexistent-workspace")
    secret = token if token is not None else fake.token
    ctx = ConnectorContext(name, {**base, **settings}, folder, folder / "segmerge.toml",
                           secret=lambda: secret)  # fmt: skip
    return HubSpotConnector(ctx)


def populate(fake: HubSpotFake, n: int, *, tag_property: bool = True) -> list[int]:
    """``n`` contacts with a custom number and date property, a few opted out, some tagged."""
    fake.add_property("age", "number")
    fake.add_property("member_since", "date")
    fake.add_property("favourite_genre", "string")
    if tag_property:
        fake.add_property("segmerge_segments", "enumeration", field_type="checkbox",
                          options=["vip", "seg:old", "seg:fonceurs"])  # fmt: skip
    ids = []
    for i in range(n):
        props: dict[str, str | None] = {
            "firstname": f"Ann{i}", "lastname": f"Lee{i}", "age": str(20 + i % 50),
            "member_since": "2024-03-01", "favourite_genre": ["jazz", "rock", None][i % 3],
            "hs_email_optout": "true" if i % 10 == 3 else "false",
            "city": "Lyon",
        }  # fmt: skip
        if i % 7 == 0:
            props["segmerge_segments"] = "vip;seg:old"
        ids.append(fake.add_contact(f"ann{i}@example.org", **props))
    return ids
