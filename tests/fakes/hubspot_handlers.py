"""The HubSpot fake's endpoints: properties, contacts (list, search, batch read and
update), deals, static lists and their memberships, marketing e-mails and e-mail events.
A mixin of :class:`~tests.fakes.hubspot.HubSpotFake`, which holds the state and routes
the requests here after checking their contract, credential and rate."""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from typing import Any

from .base import Reply, Request
from .hubspot_records import EPOCH, Contact, HubList, iso, ms


class HubSpotHandlers:
    def get_properties(self, req: Request) -> Reply:
        """https://developers.hubspot.com/docs/guides/api/crm/properties; SDK crm/properties/
        models/collection_response_property_no_paging.py ({results: [Property]})."""
        return Reply(200, {"results": list(self.defs.values())})

    def get_property(self, req: Request) -> Reply:
        """SDK crm/properties/models/property.py; an unknown name is 404 OBJECT_NOT_FOUND."""
        d = self.defs.get(req.groups["name"])
        if d is None:
            return Reply(
                404, error_body("OBJECT_NOT_FOUND", f"Property {req.groups['name']} does not exist")
            )
        return Reply(200, d)

    def post_property(self, req: Request) -> Reply:
        """201 with the Property; a taken name is 409 OBJECT_ALREADY_EXISTS (properties guide,
        "Create a property")."""
        b = req.json
        if b["name"] in self.defs:
            return Reply(
                409,
                error_body(
                    "OBJECT_ALREADY_EXISTS", f"A property named '{b['name']}' already exists."
                ),
            )
        self.add_property(
            b["name"],
            b["type"],
            field_type=b["fieldType"],
            options=[o["value"] for o in b.get("options", [])],
        )
        self.defs[b["name"]]["label"] = b["label"]
        return Reply(201, self.defs[b["name"]])

    def patch_property(self, req: Request) -> Reply:
        """PropertyUpdate (SDK crm/properties/models/property_update.py): ``options`` replace."""
        d = self.defs.get(req.groups["name"])
        if d is None:
            return Reply(404, error_body("OBJECT_NOT_FOUND", "Property does not exist"))
        d.update(req.json)  # options replace the whole list, as HubSpot does
        return Reply(200, d)

    def _wanted(self, req: Request) -> list[str]:
        return [p for v in req.params.get("properties", []) for p in v.split(",") if p]

    def get_contacts(self, req: Request) -> Reply:
        """https://developers.hubspot.com/docs/guides/api/crm/objects/contacts, "Retrieve
        contacts": {results: [SimplePublicObject], paging.next.after/link}, no paging on the
        last page (SDK crm/contacts/models/collection_response_simple_public_object_with_
        associations_forward_paging.py)."""
        limit = req.int_arg("limit", 10)
        ordered = self._order
        start = bisect.bisect_left(ordered, int(req.arg("after") or 0))
        page = ordered[start : start + limit]
        body: dict[str, Any] = {
            "results": [self.contacts[c].as_json(self._wanted(req)) for c in page]
        }
        if start + limit < len(ordered):
            nxt = str(ordered[start + limit])
            body["paging"] = {"next": {"after": nxt, "link": f"{req.full_path}?after={nxt}"}}
        return Reply(200, body)

    def search_contacts(self, req: Request) -> Reply:
        """https://developers.hubspot.com/docs/guides/api/crm/search: {total, results, paging};
        "you can page up to 10,000 results" (past it, 400)."""
        b = req.json
        matches = list(self.contacts.values())
        for group in b.get("filterGroups", [])[:1]:
            for f in group["filters"]:
                if f["propertyName"] != "lastmodifieddate" or f["operator"] not in ("GTE", "GT"):
                    return Reply(
                        400,
                        error_body(
                            "VALIDATION_ERROR", "the fake filters only on lastmodifieddate GTE/GT"
                        ),
                    )
                v = f.get("value", "")
                cut = (
                    int(v)
                    if v.isdigit()
                    else ms(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
                )
                matches = [
                    c
                    for c in matches
                    if (ms(c.modified) >= cut if f["operator"] == "GTE" else ms(c.modified) > cut)
                ]
        matches.sort(key=lambda c: (c.modified, c.id))
        offset = int(b.get("after") or 0)
        if offset >= self.search_cap:
            return Reply(
                400,
                error_body(
                    "VALIDATION_ERROR", f"paging past {self.search_cap} results is not allowed"
                ),
            )
        limit = b.get("limit", 10)
        page = matches[offset : min(offset + limit, self.search_cap)]
        body: dict[str, Any] = {
            "total": len(matches),
            "results": [c.as_json(b.get("properties")) for c in page],
        }
        if offset + limit < len(matches):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return Reply(200, body)

    def _find(self, key: str, id_property: str | None) -> Contact | None:
        if id_property == "email":
            return next(
                (
                    c
                    for c in self.contacts.values()
                    if (c.props.get("email") or "").lower() == key.lower()
                ),
                None,
            )
        return self.contacts.get(int(key)) if key.isdigit() else None

    def batch_read(self, req: Request) -> Reply:
        """BatchResponseSimplePublicObject(WithErrors): 200, or 207 with numErrors and
        errors[].context.ids (SDK crm/contacts/models/batch_response_simple_public_object_
        with_errors.py, standard_error.py)."""
        b = req.json
        found, missing = [], []
        for item in b["inputs"]:
            c = self._find(item["id"], b.get("idProperty"))
            (found.append(c) if c else missing.append(item["id"]))  # type: ignore[func-returns-value]
        return _batch_reply(
            [c.as_json(b["properties"]) for c in found if c],
            missing,
            "OBJECT_NOT_FOUND",
            "Could not get some CONTACT objects, they may be "
            "deleted or not exist. Check that ids are valid.",
        )

    def batch_update(self, req: Request) -> Reply:
        """As batch_read; a value outside a checkbox property's options refuses the whole
        batch with 400 VALIDATION_ERROR (contacts guide, "Update contacts in batches")."""
        inputs = req.json["inputs"]
        ids = [i["id"] for i in inputs]
        if len(set(ids)) != len(ids):
            return Reply(400, error_body("VALIDATION_ERROR", "Duplicate IDs found in batch input"))
        for item in inputs:
            for name, value in item["properties"].items():
                d = self.defs.get(name)
                if d is None:
                    return Reply(
                        400, error_body("VALIDATION_ERROR", f'Property "{name}" does not exist')
                    )
                if d["type"] == "enumeration" and value:
                    allowed = {o["value"] for o in d["options"]}
                    bad = [v for v in value.split(";") if v not in allowed]
                    if bad:
                        return Reply(
                            400,
                            error_body(
                                "VALIDATION_ERROR",
                                f"{bad[0]!r} was not one of the allowed options for {name}",
                            ),
                        )
        done, missing = [], []
        for item in inputs:
            c = self._find(item["id"], None)
            if c is None or item["id"] in self.reject_ids or item["id"] in self.reject_once:
                self.reject_once.discard(item["id"])
                missing.append(item["id"])
                continue
            self.touch(c.id, **item["properties"])
            done.append(c.as_json(list(item["properties"])))
        return _batch_reply(
            done,
            missing,
            "OBJECT_NOT_FOUND",
            "Could not update some CONTACT objects, they may be deleted or not exist.",
        )

    def _list_json(self, x: HubList) -> dict[str, Any]:
        return {
            "listId": str(x.id),
            "name": x.name,
            "processingType": x.processing,
            "objectTypeId": "0-1",
            "processingStatus": "COMPLETE",
            "listVersion": 1,
            "createdAt": iso(EPOCH),
            "updatedAt": iso(EPOCH),
            "size": len(x.members),
        }

    def post_list(self, req: Request) -> Reply:
        """https://developers.hubspot.com/docs/guides/api/crm/lists, "Create a list":
        {list: PublicObjectList} (SDK crm/lists/models/list_create_response.py)."""
        b = req.json
        if self.list_named(b["name"]):
            return Reply(
                400, error_body("VALIDATION_ERROR", f"A list named '{b['name']}' already exists")
            )
        x = HubList(next(self._ids), b["name"], b["processingType"])
        self.lists[x.id] = x
        return Reply(200, {"list": self._list_json(x)})

    def search_lists(self, req: Request) -> Reply:
        """ListSearchResponse {lists, total, offset, hasMore} (SDK crm/lists/models/
        list_search_response.py; items PublicObjectListSearchResult, no ``size``)."""
        b = req.json
        q = (b.get("query") or "").lower()
        kinds = set(b.get("processingTypes") or ["MANUAL", "DYNAMIC", "SNAPSHOT"])
        hits = [x for x in self.lists.values() if q in x.name.lower() and x.processing in kinds]
        offset, count = b.get("offset", 0), b.get("count", 20)
        page = hits[offset : offset + count]
        items = [{**self._list_json(x), "additionalProperties": {}} for x in page]
        for i in items:
            i.pop("size")
        return Reply(
            200,
            {
                "lists": items,
                "total": len(hits),
                "offset": offset + len(page),
                "hasMore": offset + len(page) < len(hits),
            },
        )

    def members(self, req: Request, add: bool) -> Reply:
        """MembershipsUpdateResponse {recordsIdsAdded, recordIdsRemoved, recordIdsMissing}
        (SDK crm/lists/models/memberships_update_response.py; the reference page's example
        spells recordIdsAdded, which the connector does not read)."""
        x = self.lists.get(int(req.groups["listId"]))
        if x is None:
            return Reply(404, error_body("OBJECT_NOT_FOUND", "List does not exist"))
        ids = req.json
        missing = [i for i in ids if not i.isdigit() or int(i) not in self.contacts]
        ok = [int(i) for i in ids if i not in missing]
        if add:
            new = [i for i in ok if i not in x.members]
            x.members |= set(new)
            return Reply(
                200,
                {
                    "recordsIdsAdded": [str(i) for i in new],
                    "recordIdsMissing": missing,
                    "recordIdsRemoved": [],
                },
            )
        gone = [i for i in ok if i in x.members]
        x.members -= set(gone)
        return Reply(
            200,
            {
                "recordIdsRemoved": [str(i) for i in gone],
                "recordIdsMissing": missing,
                "recordsIdsAdded": [],
            },
        )


def error_body(category: str, message: str) -> dict[str, Any]:
    """HubSpot's error body: what the connector reads to name the failure (the "Error
    handling" section of https://developers.hubspot.com/docs/api/usage-details; SDK
    crm/contacts/models/error.py: status, message, correlationId, category)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }


def _batch_reply(
    results: list[dict[str, Any]], missing: list[str], category: str, message: str
) -> Reply:
    now = iso(dt.datetime.now(dt.UTC))
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": now,
        "startedAt": now,
        "completedAt": now,
    }
    if not missing:
        return Reply(200, body)
    body["numErrors"] = 1
    body["errors"] = [
        {
            "status": "error",
            "category": category,
            "message": message,
            "context": {"ids": missing},
            "errors": [],
            "links": {},
        }
    ]
    return Reply(207, body)
