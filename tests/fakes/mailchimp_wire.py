"""What the Mailchimp fake says on the wire: its spec, ids, timestamps, errors, projections."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from openapi_core import Config, OpenAPI

from tests.fakes import specs
from tests.fakes.base import Reply

API_KEY = "0123456789abcdef0123456789abcdef-us6"
LIST_ID = "a1b2c3d4e5"
ERROR_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM = "application/problem+json"


@lru_cache(maxsize=1)
def mailchimp_openapi() -> OpenAPI:
    """``specs.mailchimp()`` with patch 9 applied to all 11 merge-field maps.

    ``specs.mailchimp_spec_dict`` only rewrites ``additionalProperties`` maps that hold
    nothing but ``type: object``; the 10 merge-field maps also carry a ``description``,
    so ``{"FNAME": "Ann"}`` was still rejected in every member answer. Fixed here on a
    copy (tests/fakes/specs.py is shared; see the connector's report).
    """
    spec = copy.deepcopy(specs.mailchimp_spec_dict())
    for node in specs._walk(spec):
        ap = node.get("additionalProperties")
        if isinstance(ap, dict) and ap.get("type") == "object":
            node["additionalProperties"] = {}
    cfg = Config(extra_media_type_deserializers={PROBLEM: json.loads})
    return OpenAPI.from_dict(spec, config=cfg)


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
