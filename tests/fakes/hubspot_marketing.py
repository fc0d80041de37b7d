"""The HubSpot fake's deals side (deals, deal pipelines, v4 associations) and marketing
side (marketing e-mails, the legacy e-mail events). A mixin of
:class:`~tests.fakes.hubspot.HubSpotFake`, like ``hubspot_handlers``.

Every answer is written from HubSpot's reference pages and the generated models of
HubSpot/hubspot-api-python@a2a528a97f4c1131d7f65d0303bfbd2e523a8eba (``SDK`` below),
cited next to it; the answer schemas in ``hubspot_contract.ANSWERS`` hold the fake to them.
"""

from __future__ import annotations

import copy
from typing import Any

from .base import Reply, Request
from .hubspot_records import EPOCH, iso

#: how many associations a CRM object read carries inline before ``paging.next``
#: (SDK hubspot/crm/deals/models/collection_response_associated_id.py has ``paging``;
#: the v4 API pages the rest: "Limit 500 per call", SDK crm/associations/v4/api/basic_api.py)
INLINE_ASSOCIATIONS = 100


def default_pipeline() -> dict[str, Any]:
    """HubSpot's default deal pipeline: ``GET /crm/v3/pipelines/deals``.

    Shape: SDK crm/pipelines/models/pipeline.py and pipeline_stage.py (``metadata`` is
    ``dict[str, str]``: "For deals pipelines, the probability field is required ...
    between 0.0 and 1.0"); stage ids and probabilities as in the pipelines guide,
    https://developers.hubspot.com/docs/guides/api/crm/pipelines (closed won: isClosed
    "true", probability "1.0"; closed lost: "true", "0.0").
    """
    stages = [
        ("appointmentscheduled", "Appointment scheduled", "0.2", "false"),
        ("qualifiedtobuy", "Qualified to buy", "0.4", "false"),
        ("presentationscheduled", "Presentation scheduled", "0.6", "false"),
        ("decisionmakerboughtin", "Decision maker bought-In", "0.8", "false"),
        ("contractsent", "Contract sent", "0.9", "false"),
        ("closedwon", "Closed won", "1.0", "true"),
        ("closedlost", "Closed lost", "0.0", "true"),
    ]
    return pipeline("default", "Sales Pipeline", stages)


def pipeline(pid: str, label: str, stages: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """A deal pipeline as ``GET /crm/v3/pipelines/deals`` gives it (SDK pipeline.py)."""
    return {
        "id": pid,
        "label": label,
        "displayOrder": 0,
        "archived": False,
        "createdAt": iso(EPOCH),
        "updatedAt": iso(EPOCH),
        "stages": [
            {
                "id": sid,
                "label": sl,
                "displayOrder": n,
                "archived": False,
                "createdAt": iso(EPOCH),
                "updatedAt": iso(EPOCH),
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "metadata": {"probability": prob, "isClosed": closed},
            }
            for n, (sid, sl, prob, closed) in enumerate(stages)
        ],
    }


class HubSpotMarketing:
    # deals -------------------------------------------------------------------------------
    def get_pipelines(self, req: Request) -> Reply:
        # SDK crm/pipelines/models/collection_response_pipeline_no_paging.py: {results}
        return Reply(200, {"results": copy.deepcopy(self.pipelines)})

    def won_stage(self, stage: str) -> bool:
        for p in self.pipelines:
            for s in p["stages"]:
                if s["id"] == stage:
                    return s["metadata"]["probability"] == "1.0"
        return False

    def get_deals(self, req: Request) -> Reply:
        """``GET /crm/v3/objects/deals?associations=contacts``: SDK crm/deals/models/
        simple_public_object_with_associations.py (``associations`` = name ->
        ``{results: [{id, type}], paging}``, AssociatedId has ``id`` and ``type``)."""
        limit = req.int_arg("limit", 10)
        ordered = sorted(self.deals)
        start = int(req.arg("after") or 0)
        page = ordered[start : start + limit]
        wanted = self._wanted(req)
        results = []
        for did in page:
            d = self.deals[did]
            props = dict(d["props"])
            # a calculated property (CRM "Deals" default properties); null on old records
            props["hs_is_closed_won"] = (
                None
                if d.get("closed_won_unset")
                else str(self.won_stage(props["dealstage"])).lower()
            )
            item: dict[str, Any] = {
                "id": str(did),
                "createdAt": iso(EPOCH),
                "updatedAt": iso(EPOCH),
                "archived": False,
                "properties": {k: props.get(k) for k in wanted},
            }
            if req.arg("associations") == "contacts" and d["contacts"]:
                shown = d["contacts"][:INLINE_ASSOCIATIONS]
                assoc: dict[str, Any] = {
                    "results": [
                        {"id": str(c), "type": t}
                        for c in shown
                        for t in ("deal_to_contact", "deal_to_contact_unlabeled")
                    ]
                }
                if len(d["contacts"]) > INLINE_ASSOCIATIONS:
                    assoc["paging"] = {"next": {"after": "inline-next", "link": "?after=x"}}
                item["associations"] = {"contacts": assoc}
            results.append(item)
        body: dict[str, Any] = {"results": results}
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, body)

    def get_deal_contacts(self, req: Request) -> Reply:
        """``GET /crm/v4/objects/deals/{dealId}/associations/contacts``: SDK crm/associations/
        v4/models/collection_response_multi_associated_object_with_label_forward_paging.py
        (``results: [{toObjectId, associationTypes: [{category, typeId, label}]}]``, paging)."""
        did = int(req.groups["dealId"])
        if did not in self.deals:
            return Reply(
                404,
                {"status": "error", "message": "deal not found", "category": "OBJECT_NOT_FOUND"},
            )
        self.association_reads += 1
        contacts = self.deals[did]["contacts"]
        limit = req.int_arg("limit", 500)
        start = int(req.arg("after") or 0)
        page = contacts[start : start + limit]
        body: dict[str, Any] = {
            "results": [
                {
                    "toObjectId": c,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
                    ],
                }
                for c in page
            ]
        }
        if start + limit < len(contacts):
            body["paging"] = {"next": {"after": str(start + limit), "link": "?after="}}
        return Reply(200, body)

    # marketing e-mails ---------------------------------------------------------------------
    def get_emails(self, req: Request) -> Reply:
        limit = req.int_arg("limit", 10)
        ordered = list(self.emails.values())
        start = int(req.arg("after") or 0)
        body: dict[str, Any] = {"total": len(ordered), "results": ordered[start : start + limit]}
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, body)

    def _store_email(self, b: dict[str, Any]) -> dict[str, Any]:
        """A PublicEmail (SDK marketing/emails/models/public_email.py) from a create body."""
        eid = str(next(self._ids))
        content = copy.deepcopy(b.get("content", {}))
        if self.drop_email_widgets:  # what HubSpot does with widgets its layout cannot hold
            content["widgets"] = {}
        self.emails[eid] = {
            "id": eid,
            "name": b["name"],
            "subject": b.get("subject", ""),
            "state": b.get("state", "DRAFT"),
            "sendOnPublish": b.get("sendOnPublish", False),
            "from": b.get("from", {}),
            "to": b.get("to", {}),
            "content": content,
            "subcategory": "batch",
            "type": "BATCH_EMAIL",
            "isPublished": False,
            "emailTemplateMode": "DRAG_AND_DROP",
            "archived": False,
            "createdAt": iso(self.clock),
            "updatedAt": iso(self.clock),
        }
        return self.emails[eid]

    def _lost(self) -> Reply | None:
        if self.lose_email_answers:
            self.lose_email_answers -= 1
            return Reply(504, "<html><body>Gateway Timeout</body></html>", content_type="text/html")
        return None

    def post_email(self, req: Request) -> Reply:
        email = self._store_email(req.json)
        return self._lost() or Reply(201, email)

    def clone_email(self, req: Request) -> Reply:
        """``POST /marketing/v3/emails/clone`` {id, cloneName} (SDK content_clone_request_v_next.py)
        -> the new PublicEmail, a copy of the template's content under the new name."""
        b = req.json
        src = self.emails.get(str(b["id"]))
        if src is None:
            return Reply(
                404,
                {
                    "status": "error",
                    "message": f"No email with id {b['id']}",
                    "category": "OBJECT_NOT_FOUND",
                },
            )
        email = self._store_email(
            {
                **copy.deepcopy(src),
                "name": b.get("cloneName") or f"{src['name']} (clone)",
                "state": "DRAFT",
            }
        )
        return self._lost() or Reply(200, email)

    def get_email(self, req: Request) -> Reply:
        email = self.emails.get(req.groups["emailId"])
        if email is None:
            return Reply(
                404,
                {"status": "error", "message": "Email not found", "category": "OBJECT_NOT_FOUND"},
            )
        return Reply(200, email)

    def patch_email(self, req: Request) -> Reply:
        """EmailUpdateRequest (SDK email_update_request.py): given fields replace, and
        ``content`` fields merge into the e-mail's content."""
        email = self.emails.get(req.groups["emailId"])
        if email is None:
            return Reply(
                404,
                {"status": "error", "message": "Email not found", "category": "OBJECT_NOT_FOUND"},
            )
        b = copy.deepcopy(req.json)
        content = b.pop("content", None)
        email.update(b)
        if content is not None:
            if self.drop_email_widgets:
                content["widgets"] = {}
            email["content"] = {**email["content"], **content}
        return Reply(200, email)

    # e-mail events ----------------------------------------------------------------------
    def get_events(self, req: Request) -> Reply:
        """Legacy Email Events API, https://legacydocs.hubspot.com/docs/methods/email/get_events:
        ``{hasMore, offset, events: [{id, created (ms), type, recipient, emailCampaignId,
        portalId, appId, appName, ...}]}``, events in [startTimestamp, endTimestamp]."""
        self.event_calls.append((req.int_arg("startTimestamp", 0), req.int_arg("endTimestamp", 0)))
        start = req.int_arg("startTimestamp", 0)
        end = req.int_arg("endTimestamp", 2**62)
        limit = req.int_arg("limit", 100)
        hits = sorted(
            (e for e in self.events if start <= e["created"] <= end),
            key=lambda e: (e["created"], e["id"]),
        )
        offset = int(req.arg("offset") or 0)
        page = hits[offset : offset + limit]
        more = offset + limit < len(hits)
        return Reply(200, {"events": page, "hasMore": more, "offset": str(offset + len(page))})
