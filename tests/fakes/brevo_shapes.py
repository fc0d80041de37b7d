"""Keeps the Brevo fake from answering fields Brevo does not document.

openapi-core checks the fake's answers against Brevo's spec, but the spec's schemas
allow any extra property: a fake that invents one (a click with a top-level
``eventTime``, as ours once did) passes, and so does a connector reading it, until
the real Brevo answers without it. So the answers of the routes the connector
reads are also walked against their schema with no extra property allowed (maps
declared without properties, like a contact's ``attributes``, stay free).

``GET /orders`` has no schema in the spec: its orders are checked against the
official SDK model (``GetOrdersOrdersInner``, getbrevo/brevo-node@c353d32c:
model/getOrdersOrdersInner.ts) and the spec's example.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from .specs import brevo_spec_dict

#: (method, path regex) of a fake route -> the spec operation whose 2xx schema it follows
STRICT = {
    ("GET", r"^/account$"): ("get", "/account"),
    ("GET", r"^/contacts$"): ("get", "/contacts"),
    ("GET", r"^/contacts/attributes$"): ("get", "/contacts/attributes"),
    ("GET", r"^/contacts/lists$"): ("get", "/contacts/lists"),
    ("GET", r"^/contacts/folders$"): ("get", "/contacts/folders"),
    ("GET", r"^/contacts/folders/\d+/lists$"): ("get", "/contacts/folders/{folderId}/lists"),
    ("GET", r"^/contacts/lists/\d+/contacts$"): ("get", "/contacts/lists/{listId}/contacts"),
    ("GET", r"^/contacts/[^/]+/campaignStats$"): ("get", "/contacts/{identifier}/campaignStats"),
    ("GET", r"^/contacts/(?!lists$|folders$|attributes$)[^/]+$"): ("get", "/contacts/{identifier}"),
}
#: GetOrdersOrdersInner: required and optional fields (plus `contact_id`, the spec's example)
ORDER_REQUIRED = {"id", "createdAt", "updatedAt", "status", "amount", "products"}
ORDER_OPTIONAL = {
    "email",
    "billing",
    "coupons",
    "contactId",
    "contact_id",
    "storeId",
    "identifiers",
}


def undocumented(method: str, path: str, body: Any) -> list[str]:
    """Fields of an answer the spec does not document (empty when all are, or unchecked)."""
    if path == "/orders" and method == "GET" and isinstance(body, dict):
        return [p for n, o in enumerate(body.get("orders", [])) for p in _order(n, o)]
    for (m, pattern), op in STRICT.items():
        if m == method and re.match(pattern, path):
            return _extra(body, _schema(*op), "")
    return []


def _order(n: int, order: dict[str, Any]) -> list[str]:
    missing = [f"orders[{n}].{k} (missing)" for k in sorted(ORDER_REQUIRED - set(order))]
    extra = [f"orders[{n}].{k}" for k in sorted(set(order) - ORDER_REQUIRED - ORDER_OPTIONAL)]
    return missing + extra


@cache
def _schema(method: str, path: str) -> dict[str, Any]:
    spec = brevo_spec_dict()
    for status, answer in spec["paths"][path][method]["responses"].items():
        if status.startswith("2"):
            return _resolve(answer["content"]["application/json"]["schema"])
    raise KeyError(path)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    spec = brevo_spec_dict()
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _properties(schema: dict[str, Any]) -> dict[str, Any] | None:
    """Every property an object schema declares (through allOf), None for a free map."""
    schema = _resolve(schema)
    props: dict[str, Any] = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        props.update(_properties(part) or {})
    return props or None


def _extra(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    schema = _resolve(schema)
    if isinstance(value, list):
        items = schema.get("items")
        if items is None:
            return []
        return [p for n, v in enumerate(value) for p in _extra(v, items, f"{where}[{n}]")]
    if not isinstance(value, dict):
        return []
    props = _properties(schema)
    if props is None:  # a map of free keys (attributes)
        return []
    out = [f"{where}.{k}".lstrip(".") for k in value if k not in props]
    for k, v in value.items():
        if k in props:
            out += _extra(v, props[k], f"{where}.{k}")
    return out
