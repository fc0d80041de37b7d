"""HubSpot's request and answer contracts, as JSON Schemas written from its public docs.

HubSpot publishes no spec we may copy (see shared/api-specs/README.md): these
are the fake's stand-in for one, from the pages and models its module
docstring names. A request outside them is a 400 and a violation; an answer
outside them means the fake broke its word.
"""

from __future__ import annotations

from typing import Any

# request contracts ---------------------------------------------------------------------------
S: dict[str, Any] = {"type": "string"}
INT_Q = {"type": "string", "pattern": r"^\d+$"}
BOOL_Q = {"type": "string", "enum": ["true", "false"]}
PROPS_Q = {"type": "string"}
FILTER = {
    "type": "object",
    "required": ["propertyName", "operator"],
    "properties": {
        "propertyName": S,
        "operator": {
            "enum": [
                "EQ",
                "NEQ",
                "LT",
                "LTE",
                "GT",
                "GTE",
                "BETWEEN",
                "IN",
                "NOT_IN",
                "HAS_PROPERTY",
                "NOT_HAS_PROPERTY",
                "CONTAINS_TOKEN",
                "NOT_CONTAINS_TOKEN",
            ]
        },
        "value": S,
        "highValue": S,
        "values": {"type": "array", "items": S},
    },
    "additionalProperties": False,
}
SORT = {
    "oneOf": [
        S,
        {
            "type": "object",
            "required": ["propertyName"],
            "additionalProperties": False,
            "properties": {"propertyName": S, "direction": {"enum": ["ASCENDING", "DESCENDING"]}},
        },
    ]
}
OPTION = {
    "type": "object",
    "required": ["label", "value", "hidden"],
    "additionalProperties": False,
    "properties": {
        "label": S,
        "value": S,
        "hidden": {"type": "boolean"},
        "displayOrder": {"type": "integer"},
        "description": S,
    },
}
FIELD_TYPES = [
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
]
TYPES = ["string", "number", "date", "datetime", "enumeration", "bool"]
IDS = {"type": "array", "items": S, "maxItems": 100_000}
RECIPIENTS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "include": {"type": "array", "items": S},
        "exclude": {"type": "array", "items": S},
    },
}
#: EmailCreateRequest / EmailUpdateRequest fields (SDK hubspot/marketing/emails/models/
#: email_create_request.py, public_email_from_details.py, public_email_content.py)
EMAIL_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1},
    "subject": S,
    "state": {"enum": ["DRAFT", "AUTOMATED_DRAFT", "SCHEDULED", "PUBLISHED"]},
    "sendOnPublish": {"type": "boolean"},
    "language": S,
    "campaign": S,
    "archived": {"type": "boolean"},
    "businessUnitId": {"type": "integer"},
    "subscriptionDetails": {"type": "object"},
    "activeDomain": S,
    "from": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"fromName": S, "replyTo": S, "customReplyTo": S},
    },
    "to": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "contactIlsLists": RECIPIENTS,
            "contactLists": RECIPIENTS,
            "contactIds": RECIPIENTS,
            "suppressGraymail": {"type": "boolean"},
            "limitSendFrequency": {"type": "boolean"},
        },
    },
    "content": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "templatePath": S,
            "plainTextVersion": S,
            "widgets": {"type": "object"},
            "flexAreas": {"type": "object"},
            "widgetContainers": {"type": "object"},
            "styleSettings": {"type": "object"},
            "smartFields": {"type": "object"},
            "themeSettingsValues": {"type": "object"},
        },
    },
}
CONTRACTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/account-info/v3/details"): {"query": {}},
    ("GET", "/crm/v3/properties/contacts"): {"query": {"archived": BOOL_Q, "properties": PROPS_Q}},
    ("GET", "/crm/v3/properties/contacts/{name}"): {"query": {"archived": BOOL_Q}},
    ("POST", "/crm/v3/properties/contacts"): {
        "query": {},
        "body": {
            "type": "object",
            "required": ["name", "label", "type", "fieldType", "groupName"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "label": S,
                "type": {"enum": TYPES},
                "fieldType": {"enum": FIELD_TYPES},
                "groupName": S,
                "description": S,
                "hidden": {"type": "boolean"},
                "displayOrder": {"type": "integer"},
                "formField": {"type": "boolean"},
                "options": {"type": "array", "items": OPTION},
            },
        },
    },
    ("PATCH", "/crm/v3/properties/contacts/{name}"): {
        "query": {},
        "body": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "label": S,
                "description": S,
                "groupName": S,
                "hidden": {"type": "boolean"},
                "type": {"enum": TYPES},
                "fieldType": {"enum": FIELD_TYPES},
                "displayOrder": {"type": "integer"},
                "formField": {"type": "boolean"},
                "options": {"type": "array", "items": OPTION},
            },
        },
    },
    ("GET", "/crm/v3/objects/contacts"): {
        "query": {
            "limit": INT_Q,
            "after": S,
            "properties": PROPS_Q,
            "archived": BOOL_Q,
            "associations": S,
            "propertiesWithHistory": S,
        }
    },
    ("POST", "/crm/v3/objects/contacts/search"): {
        "query": {},
        "body": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "filterGroups": {
                    "type": "array",
                    "maxItems": 5,
                    "items": {
                        "type": "object",
                        "required": ["filters"],
                        "additionalProperties": False,
                        "properties": {
                            "filters": {"type": "array", "maxItems": 6, "items": FILTER}
                        },
                    },
                },
                "sorts": {"type": "array", "items": SORT},
                "properties": {"type": "array", "items": S},
                "query": S,
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                "after": S,
            },
        },
    },
    ("POST", "/crm/v3/objects/contacts/batch/read"): {
        "query": {"archived": BOOL_Q},
        "body": {
            "type": "object",
            "required": ["inputs", "properties"],
            "additionalProperties": False,
            "properties": {
                "inputs": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["id"],
                        "additionalProperties": False,
                        "properties": {"id": S},
                    },
                },
                "properties": {"type": "array", "items": S},
                "propertiesWithHistory": {"type": "array", "items": S},
                "idProperty": S,
            },
        },
    },
    ("POST", "/crm/v3/objects/contacts/batch/update"): {
        "query": {},
        "body": {
            "type": "object",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["id", "properties"],
                        "additionalProperties": False,
                        "properties": {
                            "id": S,
                            "idProperty": S,
                            "objectWriteTraceId": S,
                            "properties": {"type": "object", "additionalProperties": S},
                        },
                    },
                }
            },
        },
    },
    ("GET", "/crm/v3/objects/deals"): {
        "query": {
            "limit": INT_Q,
            "after": S,
            "properties": PROPS_Q,
            "archived": BOOL_Q,
            "associations": S,
        }
    },
    ("POST", "/crm/v3/lists"): {
        "query": {},
        "body": {
            "type": "object",
            "required": ["name", "objectTypeId", "processingType"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "objectTypeId": S,
                "processingType": {"enum": ["MANUAL", "DYNAMIC", "SNAPSHOT"]},
                "listFolderId": {"type": "integer"},
                "filterBranch": {"type": "object"},
                "customProperties": {"type": "object"},
            },
        },
    },
    ("POST", "/crm/v3/lists/search"): {
        "query": {},
        "body": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "query": S,
                "offset": {"type": "integer", "minimum": 0},
                "count": {"type": "integer", "minimum": 1, "maximum": 500},
                "processingTypes": {
                    "type": "array",
                    "items": {"enum": ["MANUAL", "DYNAMIC", "SNAPSHOT"]},
                },
                "listIds": {"type": "array", "items": S},
                "additionalProperties": {"type": "array", "items": S},
                "sort": S,
            },
        },
    },
    ("PUT", "/crm/v3/lists/{listId}/memberships/add"): {"query": {}, "body": IDS},
    ("PUT", "/crm/v3/lists/{listId}/memberships/remove"): {"query": {}, "body": IDS},
    ("GET", "/crm/v3/lists/{listId}/memberships"): {
        "query": {"after": S, "before": S, "limit": INT_Q}
    },
    ("GET", "/marketing/v3/emails"): {
        "query": {
            "limit": INT_Q,
            "after": S,
            "archived": BOOL_Q,
            "isPublished": BOOL_Q,
            "sort": S,
            "type": S,
            "includeStats": BOOL_Q,
        }
    },
    ("POST", "/marketing/v3/emails"): {
        "query": {},
        "body": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": EMAIL_FIELDS,
        },
    },
    ("GET", "/crm/v3/pipelines/deals"): {"query": {}},
    ("GET", "/crm/v4/objects/deals/{dealId}/associations/contacts"): {
        "query": {"limit": INT_Q, "after": S}
    },
    ("POST", "/marketing/v3/emails/clone"): {
        "query": {},
        "body": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {"id": S, "cloneName": S, "language": S},
        },
    },
    ("GET", "/marketing/v3/emails/{emailId}"): {
        "query": {"includeStats": BOOL_Q, "includedProperties": S, "archived": BOOL_Q}
    },
    ("PATCH", "/marketing/v3/emails/{emailId}"): {
        "query": {"archived": BOOL_Q},
        "body": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {**EMAIL_FIELDS},
        },
    },
    ("GET", "/email/public/v1/events"): {
        "query": {
            "startTimestamp": INT_Q,
            "endTimestamp": INT_Q,
            "offset": S,
            "limit": INT_Q,
            "eventType": S,
            "recipient": S,
            "campaignId": INT_Q,
            "appId": INT_Q,
            "excludeFilteredEvents": BOOL_Q,
        }
    },
}


# answer contracts (the required fields of the generated models): the fake keeps its word too
def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


NULLABLE_S = {"type": ["string", "null"]}
RECORD = _obj(
    ["id", "properties", "createdAt", "updatedAt"],
    id=S,
    createdAt=S,
    updatedAt=S,
    properties={"type": "object", "additionalProperties": NULLABLE_S},
    archived={"type": "boolean"},
)
PAGING = _obj([], next=_obj(["after"], after=S, link=S))
STD_ERROR = _obj(
    ["category", "context", "errors", "links", "message", "status"],
    category=S,
    message=S,
    status=S,
    context={"type": "object"},
    errors={"type": "array"},
    links={"type": "object"},
)
BATCH = _obj(
    ["completedAt", "results", "startedAt", "status"],
    completedAt=S,
    startedAt=S,
    status={"enum": ["PENDING", "PROCESSING", "CANCELED", "COMPLETE"]},
    results={"type": "array", "items": RECORD},
    numErrors={"type": "integer"},
    errors={"type": "array", "items": STD_ERROR},
)
PROPERTY = _obj(
    ["description", "fieldType", "groupName", "label", "name", "options", "type"],
    name=S,
    label=S,
    type={"enum": TYPES},
    fieldType={"enum": FIELD_TYPES},
    groupName=S,
    description=S,
    hubspotDefined={"type": "boolean"},
    options={"type": "array", "items": _obj(["hidden", "label", "value"])},
)
LIST_FIELDS = [
    "listId",
    "listVersion",
    "name",
    "objectTypeId",
    "processingStatus",
    "processingType",
]
MEMBERSHIPS = _obj(
    ["recordIdsMissing", "recordIdsRemoved", "recordsIdsAdded"],
    recordIdsMissing={"type": "array", "items": S},
    recordIdsRemoved={"type": "array", "items": S},
    recordsIdsAdded={"type": "array", "items": S},
)
EMAIL = _obj(
    ["from", "content", "id", "name", "sendOnPublish", "state", "subcategory", "subject", "to"],
    id=S,
    name=S,
    state=S,
    sendOnPublish={"type": "boolean"},
)
ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/account-info/v3/details"): _obj(["portalId"], portalId={"type": "integer"}),
    ("GET", "/crm/v3/properties/contacts"): _obj(
        ["results"], results={"type": "array", "items": PROPERTY}
    ),
    ("GET", "/crm/v3/properties/contacts/{name}"): PROPERTY,
    ("POST", "/crm/v3/properties/contacts"): PROPERTY,
    ("PATCH", "/crm/v3/properties/contacts/{name}"): PROPERTY,
    ("GET", "/crm/v3/objects/contacts"): _obj(
        ["results"], paging=PAGING, results={"type": "array", "items": RECORD}
    ),
    ("POST", "/crm/v3/objects/contacts/search"): _obj(
        ["total", "results"],
        paging=PAGING,
        total={"type": "integer"},
        results={"type": "array", "items": RECORD},
    ),
    ("POST", "/crm/v3/objects/contacts/batch/read"): BATCH,
    ("POST", "/crm/v3/objects/contacts/batch/update"): BATCH,
    ("GET", "/crm/v3/objects/deals"): _obj(
        ["results"], paging=PAGING, results={"type": "array", "items": RECORD}
    ),
    ("POST", "/crm/v3/lists"): _obj(["list"], list=_obj(LIST_FIELDS)),
    ("POST", "/crm/v3/lists/search"): _obj(
        ["hasMore", "lists", "offset", "total"],
        lists={"type": "array", "items": _obj([*LIST_FIELDS, "additionalProperties"])},
    ),
    ("PUT", "/crm/v3/lists/{listId}/memberships/add"): MEMBERSHIPS,
    ("PUT", "/crm/v3/lists/{listId}/memberships/remove"): MEMBERSHIPS,
    ("GET", "/marketing/v3/emails"): _obj(
        ["results", "total"], paging=PAGING, results={"type": "array", "items": EMAIL}
    ),
    ("POST", "/marketing/v3/emails"): EMAIL,
    ("GET", "/crm/v3/pipelines/deals"): _obj(
        ["results"],
        results={
            "type": "array",
            "items": _obj(
                ["id", "label", "displayOrder", "stages", "archived", "createdAt", "updatedAt"],
                stages={
                    "type": "array",
                    "items": _obj(
                        [
                            "id",
                            "label",
                            "displayOrder",
                            "metadata",
                            "archived",
                            "createdAt",
                            "updatedAt",
                            "writePermissions",
                        ],
                        metadata={"type": "object", "additionalProperties": S},
                    ),
                },
            ),
        },
    ),
    ("GET", "/crm/v4/objects/deals/{dealId}/associations/contacts"): _obj(
        ["results"],
        paging=PAGING,
        results={
            "type": "array",
            "items": _obj(
                ["toObjectId", "associationTypes"],
                toObjectId={"type": ["integer", "string"]},
                associationTypes={"type": "array", "items": _obj(["category", "typeId"])},
            ),
        },
    ),
    ("POST", "/marketing/v3/emails/clone"): EMAIL,
    ("GET", "/marketing/v3/emails/{emailId}"): EMAIL,
    ("PATCH", "/marketing/v3/emails/{emailId}"): EMAIL,
    ("GET", "/email/public/v1/events"): _obj(
        ["events", "hasMore", "offset"],
        events={
            "type": "array",
            "items": _obj(
                ["id", "created", "type", "recipient"],
                created={"type": "integer"},
                type=S,
                recipient=S,
            ),
        },
        hasMore={"type": "boolean"},
        offset=S,
    ),
}


LIMITS = {
    "/crm/v3/objects/contacts": 100,
    "/crm/v3/objects/deals": 100,
    "/email/public/v1/events": 1000,
    "/marketing/v3/emails": 100,
}
SCOPE = [  # (method, path regex, scope) the first match decides
    ("GET", r"^/crm/v3/properties", "crm.schemas.contacts.read"),
    ("", r"^/crm/v3/properties", "crm.schemas.contacts.write"),
    ("POST", r"^/crm/v3/objects/contacts/(search|batch/read)$", "crm.objects.contacts.read"),
    ("GET", r"^/crm/v3/objects/contacts", "crm.objects.contacts.read"),
    ("", r"^/crm/v3/objects/contacts", "crm.objects.contacts.write"),
    ("", r"^/crm/v3/objects/deals", "crm.objects.deals.read"),
    ("", r"^/crm/v3/pipelines/deals", "crm.objects.deals.read"),
    ("", r"^/crm/v4/objects/deals", "crm.objects.deals.read"),
    ("GET", r"^/crm/v3/lists", "crm.lists.read"),
    ("POST", r"^/crm/v3/lists/search$", "crm.lists.read"),
    ("", r"^/crm/v3/lists", "crm.lists.write"),
    ("", r"^/(marketing|email)/", "content"),
]
DEFAULT_PROPS = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
CORE_DEFS = {
    "email": "string",
    "firstname": "string",
    "lastname": "string",
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
    "hs_object_id": "number",
    "hs_email_optout": "bool",
    "hs_email_hard_bounce_reason_enum": "enumeration",
    "hs_email_quarantined": "bool",
    "city": "string",
    "phone": "string",
    "lifecyclestage": "enumeration",
}
