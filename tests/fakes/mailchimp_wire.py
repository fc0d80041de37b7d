"""What the Mailchimp fake says on the wire: its spec, ids, timestamps, errors, projections."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from openapi_core import OpenAPI

from tests.fakes import specs
from tests.fakes.base import Reply

API_KEY = "0123456789abcdef0123456789abcdef-us6"
LIST_ID = "a1b2c3d4e5"
ERROR_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM = "application/problem+json"


def mailchimp_openapi() -> OpenAPI:
    """``specs.mailchimp()``: its patch 9 frees all 11 merge-field maps (those with a
    ``description`` too), so ``{"FNAME": "Ann"}`` passes in every member answer; one
    checker for every fake and contract test, its validators built once a session."""
    return specs.mailchimp()


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def iso(dt: datetime) -> str:
    """Mailchimp's timestamps: ISO 8601 with an explicit +00:00 offset, no fraction."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def problem(status: int, title: str, detail: str) -> Reply:
    body = {
        "type": ERROR_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"fake-{status}-{time.monotonic_ns()}",
    }
    return Reply(status, body, content_type=PROBLEM)


def project(obj: Any, fields: str | None) -> Any:
    """Mailchimp's ``fields=a.b,c``: keep only those dotted paths (lists are mapped over)."""
    if not fields:
        return obj
    tree: dict[str, Any] = {}
    for path in fields.split(","):
        node = tree
        parts = [p for p in path.split(".") if p]
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                node[part] = None  # the whole value
            elif node.get(part, {}) is not None:
                node = node.setdefault(part, {})
            else:
                break
    return _keep(obj, tree)


def _keep(obj: Any, tree: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [_keep(x, tree) for x in obj]
    if not isinstance(obj, dict):
        return obj
    return {
        k: (obj[k] if sub is None else _keep(obj[k], sub)) for k, sub in tree.items() if k in obj
    }
