"""Segment tags on HubSpot contacts: the options of one multiple-checkboxes property.

Tags live in one multi-checkbox contact property (``segmerge_segments`` unless
configured). HubSpot stores such a value as the checked options joined by ';'
and a write replaces the whole value, so every write is computed from the value
HubSpot holds *now* (read just before, in the same batch), adding or removing only
the tags the engine asked for: options a marketer checked by hand survive. A value
must be one of the property's options, so options are added before they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from segmerge.ports import (
    Action,
    ConfigError,
    ConnectorError,
    CredentialError,
    HttpClient,
    Outcome,
    OutcomeStatus,
    _,
    batched,
    failure_status,
    field_of,
)

from .hubspot_pull import CONTACTS, split_tags

PROPERTIES = "/crm/v3/properties/contacts"


@dataclass
class Change:
    """What the batch asks of one contact: tags to add and remove, and the actions behind it."""

    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class TagWriter:
    def __init__(self, client: HttpClient, prop: str, label: str) -> None:
        self.client = client
        self.prop = prop
        self.label = label
        self._options: set[str] | None = None

    # the property and its options --------------------------------------------------
    def ensure_options(self, tags: set[str]) -> None:
        if self._options is None:
            self._options = self._load_or_create(tags)
        missing = sorted(tags - self._options)
        if not missing:
            return
        path = f"{PROPERTIES}/{self.prop}"
        current = self.client.json("GET", path)
        options = field_of(
            current, "options", list, endpoint=f"GET {path}", source=self.client.source
        )
        have = {o.get("value") for o in options if isinstance(o, dict)}
        new = [_option(t, len(options) + n) for n, t in enumerate(missing) if t not in have]
        if new:
            keep = [
                {
                    k: o[k]
                    for k in ("label", "value", "hidden", "displayOrder", "description")
                    if k in o
                }
                for o in options
                if isinstance(o, dict)
            ]
            self.client.json("PATCH", path, json={"options": keep + new})
        self._options |= set(missing) | {str(v) for v in have}

    def _load_or_create(self, tags: set[str]) -> set[str]:
        path = f"{PROPERTIES}/{self.prop}"
        resp = self.client.request("GET", path, ok=(200, 404))
        if resp.status_code == 404:
            body = {
                "name": self.prop,
                "label": self.label,
                "type": "enumeration",
                "fieldType": "checkbox",
                "groupName": "contactinformation",
                "description": "Segments set by Segmerge (tags with the campaign prefix)",
                "options": [_option(t, n) for n, t in enumerate(sorted(tags))],
            }
            created = self.client.request("POST", PROPERTIES, json=body, ok=(201, 409))
            if created.status_code == 201:
                return set(tags)
            resp = self.client.request("GET", path)  # created meanwhile by another run
        data = self.client.decode(resp, f"GET {path}")
        if (
            not isinstance(data, dict)
            or data.get("type") != "enumeration"
            or data.get("fieldType") != "checkbox"
        ):
            kind = data.get("type") if isinstance(data, dict) else "?"
            raise ConfigError(
                _(
                    "{source}: the contact property {name} exists but is not a multiple "
                    "checkboxes property (type {kind})"
                ).format(source=self.client.source, name=repr(self.prop), kind=kind),
                field=f"{self.client.source}.tags_property",
                hint=_("choose another `tags_property` in segmerge.toml, or change the property"),
            )
        options = data.get("options") or []
        return {str(o.get("value")) for o in options if isinstance(o, dict)}

    # values -------------------------------------------------------------------------
    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        changes: dict[str, Change] = {}
        outcomes: list[Outcome] = []
        for a in actions:
            tag = str(a.payload.get("tag") or "")
            if not a.contact_id or not tag or ";" in tag:
                outcomes.append(Outcome(a.key, "failed", f"no contact id or a bad tag {tag!r}"))
                continue
            ch = changes.setdefault(str(a.contact_id), Change())
            (ch.add if a.kind == "tag" else ch.remove).append(tag)
            ch.keys.append(a.key)
        if not changes:
            return outcomes
        self.ensure_options({t for ch in changes.values() for t in ch.add})
        current, missing = self._read(list(changes))
        for cid, reason in missing.items():
            outcomes += [Outcome(k, "failed", reason) for k in changes.pop(cid).keys]
        values: dict[str, str] = {}
        for cid, ch in changes.items():
            before = current.get(cid, [])
            after = [t for t in before if t not in ch.remove]
            after += [t for t in dict.fromkeys(ch.add) if t not in after]
            if after == before:
                outcomes += [Outcome(k, "done", "already so") for k in ch.keys]
            else:
                values[cid] = ";".join(after)
        failed = self._update(values)
        for cid in [c for c, (status, _detail) in failed.items() if status == "failed"]:
            # once more, alone: a batch is refused whole for one bad input, and a 207
            # may be a moment's conflict; an outage ("retry") is left to the next run
            failed.pop(cid)
            failed.update(self._update({cid: values[cid]}))
        for cid in values:
            keys = changes[cid].keys
            if cid in failed:
                status, why = failed[cid]
                outcomes += [Outcome(k, status, why) for k in keys]
            else:
                outcomes += [Outcome(k, "done", f"{self.prop}={values[cid]}") for k in keys]
        return outcomes

    def _read(self, ids: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
        path = f"{CONTACTS}/batch/read"
        current: dict[str, list[str]] = {}
        missing: dict[str, str] = {}
        for chunk in batched(ids, 100):
            body = {"properties": [self.prop], "inputs": [{"id": i} for i in chunk]}
            answer = self.client.json("POST", path, json=body, ok=(200, 207))
            for item in field_of(
                answer, "results", list, endpoint=f"POST {path}", source=self.client.source
            ):
                props = item.get("properties") or {}
                current[str(item.get("id"))] = split_tags(props.get(self.prop))
            reasons = _errors_by_id(answer)
            for i in chunk:
                if i not in current:
                    missing[i] = reasons.get(i, f"HubSpot has no contact {i}")
        return current, missing

    def _update(self, values: dict[str, str]) -> dict[str, tuple[OutcomeStatus, str]]:
        """Write the values; return id -> (status, reason) of those not written."""
        path = f"{CONTACTS}/batch/update"
        failed: dict[str, tuple[OutcomeStatus, str]] = {}
        for chunk in batched(list(values), 100):
            body = {"inputs": [{"id": i, "properties": {self.prop: values[i]}} for i in chunk]}
            try:
                resp = self.client.request("POST", path, json=body, ok=(200, 207))
            except CredentialError:
                raise
            except ConnectorError as exc:  # a 400 refuses the whole batch for one input
                failed.update({i: (failure_status(exc), exc.message) for i in chunk})
                continue
            answer = self.client.decode(resp, f"POST {path}")
            done = {
                str(r.get("id"))
                for r in field_of(
                    answer, "results", list, endpoint=f"POST {path}", source=self.client.source
                )
            }
            reasons = _errors_by_id(answer)
            for i in chunk:
                if i not in done:
                    failed[i] = (
                        "failed",
                        reasons.get(i)
                        or _first_error(answer)
                        or f"HubSpot did not update contact {i}",
                    )
        return failed


def _option(tag: str, order: int) -> dict[str, Any]:
    return {"label": tag, "value": tag, "hidden": False, "displayOrder": order}


def _errors_by_id(answer: Any) -> dict[str, str]:
    """A 207's ``errors[]``: each names its records in ``context.ids``."""
    out: dict[str, str] = {}
    for err in (answer.get("errors") or []) if isinstance(answer, dict) else []:
        if not isinstance(err, dict):
            continue
        text = f"{err.get('category', 'error')}: {err.get('message', '')}".strip()
        ids = (err.get("context") or {}).get("ids") or []
        for i in ids if isinstance(ids, list) else []:
            out[str(i)] = text
    return out


def _first_error(answer: Any) -> str | None:
    errs = answer.get("errors") if isinstance(answer, dict) else None
    if errs and isinstance(errs[0], dict):
        return f"{errs[0].get('category', 'error')}: {errs[0].get('message', '')}"
    return None
