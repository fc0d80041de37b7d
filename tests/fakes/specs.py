"""Load the vendors' OpenAPI specs (copied, gzipped, from ``shared/api-specs/``) with the
in-memory patches that folder's README lists, so that openapi-core can check every request
our connectors send and every answer our fakes give.

The files are data and never edited: sha256 of the uncompressed copies are checked, so a
silently altered spec cannot make the contract tests lie.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema_path.loaders import JsonschemaSafeLoader
from openapi_core import OpenAPI

HERE = Path(__file__).resolve().parent / "specs"

#: first 16 hex digits of sha256, as recorded in shared/api-specs/README.md
SHA256_16 = {
    "brevo-v3.yml": "3d75d4e7cf888794",
    "mailchimp-marketing.json": "96676985494c935e",
}


def _raw(name: str) -> bytes:
    data = gzip.decompress((HERE / f"{name}.gz").read_bytes())
    digest = hashlib.sha256(data).hexdigest()[:16]
    if digest != SHA256_16[name]:
        raise RuntimeError(f"{name}: sha256 {digest} is not the recorded {SHA256_16[name]}")
    return data


def _drop_empty_content(spec: dict[str, Any]) -> None:
    """Patch 4: 204 answers declare ``content: {}``, which openapi-core reads as 'body required'."""
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for resp in op.get("responses", {}).values():
                if isinstance(resp, dict) and resp.get("content") == {}:
                    del resp["content"]


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


@cache
def brevo_spec_dict() -> dict[str, Any]:
    # patches 1 and 2: no timestamp resolver, integer status codes become strings
    spec = json.loads(json.dumps(yaml.load(_raw("brevo-v3.yml"), Loader=JsonschemaSafeLoader)))
    spec["servers"].append(
        {"url": "http://127.0.0.1:{port}/v3", "variables": {"port": {"default": "80"}}}
    )
    _drop_empty_content(spec)
    schemas = spec["components"]["schemas"]
    # patch 5: let a 429 body carry a rate-limit code
    code = schemas.get("errorModel", {}).get("properties", {}).get("code", {})
    if "enum" in code:
        code["enum"] = [*code["enum"], "too_many_requests"]
    # patch 6: Segment requires a `name` it does not define
    seg = schemas.get("Segment")
    if isinstance(seg, dict) and "required" in seg:
        seg["required"] = [r for r in seg["required"] if r != "name"]
        if not seg["required"]:
            del seg["required"]
    # patch 10: list add/remove bodies are a oneOf of branches that require nothing
    for suffix in ("add", "remove"):
        op = spec["paths"][f"/contacts/lists/{{listId}}/contacts/{suffix}"]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        _one_of_to_any_of(spec, schema)
    return spec


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        target: Any = spec
        for p in parts:
            target = target[p]
        node = target
    return node


def _one_of_to_any_of(spec: dict[str, Any], schema: dict[str, Any]) -> None:
    node = _resolve(spec, schema)
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")


@cache
def mailchimp_spec_dict() -> dict[str, Any]:
    spec = json.loads(_raw("mailchimp-marketing.json"))
    spec["servers"].append(
        {"url": "http://127.0.0.1:{port}/3.0", "variables": {"port": {"default": "80"}}}
    )
    _drop_empty_content(spec)
    schemas = spec["components"]["schemas"]
    # patch 8: the collection schema was reused for single members; point items at the member
    if "List_Members" in schemas and "List_Members_2" in schemas:
        coll = schemas["List_Members_2"]
        members = coll.get("properties", {}).get("members")
        if isinstance(members, dict) and "items" in members:
            members["items"] = {"$ref": "#/components/schemas/List_Members"}
        for item in spec["paths"].values():
            for op in item.values():
                if not isinstance(op, dict):
                    continue
                ok = op.get("responses", {}).get("200", {})
                for media in ok.get("content", {}).values():
                    ref = media.get("schema", {}).get("$ref", "")
                    if ref.endswith("/List_Members_2") and "{subscriber_hash}" in _path_of(
                        spec, op
                    ):
                        media["schema"] = {"$ref": "#/components/schemas/List_Members"}
    # patch 9: merge_fields maps typed {type: object} reject {"FNAME": "Ann"}
    for node in _walk(spec):
        ap = node.get("additionalProperties")
        if (
            isinstance(ap, dict)
            and ap.get("type") == "object"
            and set(ap) <= {"type", "description"}
        ):
            node["additionalProperties"] = {}
    return spec


def _path_of(spec: dict[str, Any], op: dict[str, Any]) -> str:
    for path, item in spec["paths"].items():
        if any(o is op for o in item.values()):
            return path
    return ""


#: first 16 hex digits of sha256 of each patched spec (as canonical JSON) that
#: openapi-spec-validator passed. Validating a spec costs 2-3 s of CPU each session for
#: an answer that only changes with the spec: a patched spec of another digest (a patch
#: or a file changed) is validated again at load, as openapi-core does by default.
VALIDATED = {"brevo": "3460fc7c1940e40a", "mailchimp": "5342df4670e0c2c4"}


def openapi(name: str, spec: dict[str, Any], **config: Any) -> OpenAPI:
    """openapi-core's checker of ``spec``, whose own validation is skipped when
    :data:`VALIDATED` records its digest under ``name``; ``config``: openapi-core's."""
    from openapi_core import Config

    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    if digest == VALIDATED[name]:
        config["spec_validator_cls"] = None
    return OpenAPI.from_dict(spec, config=Config(**config))


@cache
def brevo() -> OpenAPI:
    return openapi("brevo", brevo_spec_dict())


@cache
def mailchimp() -> OpenAPI:
    problem = {"application/problem+json": json.loads}
    return openapi("mailchimp", mailchimp_spec_dict(), extra_media_type_deserializers=problem)
