"""One static HubSpot list per segment: found by exact name, created when missing.

Static lists (``processingType = MANUAL``) change only when told to, which is what
a segment pushed by Segmerge needs; members are contact record ids, and ids HubSpot
does not know come back in ``recordIdsMissing``, reported per contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segmerge.ports import (
    Action,
    BadAnswer,
    ConnectorError,
    CredentialError,
    HttpClient,
    Outcome,
    _,
    batched,
    create_once,
    failure_status,
    field_of,
)

LISTS = "/crm/v3/lists"
CONTACT_OBJECT = "0-1"  # HubSpot's objectTypeId for contacts
#: record ids per membership call. The reference for ``PUT /crm/v3/lists/{listId}/memberships/
#: add|remove`` (https://developers.hubspot.com/docs/api-reference/crm-lists-v3/memberships/
#: put-crm-v3-lists-listId-memberships-add) sets no maximum on its body; the one size the
#: Lists API documents for memberships is 100,000 (``add-from`` and clearing a list,
#: HubSpot/hubspot-api-python@a2a528a9 hubspot/crm/lists/api/memberships_api.py), so a
#: segment goes in one call up to that, instead of one call per 100 contacts.
MEMBERSHIP_CHUNK = 100_000


class Lists:
    """Static (``MANUAL``) contact lists, found by exact name, created when missing."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self._ids: dict[str, str] = {}

    def find(self, name: str) -> str | None:
        if name in self._ids:
            return self._ids[name]
        path = f"{LISTS}/search"
        offset = 0
        while True:
            body = {"query": name, "processingTypes": ["MANUAL"], "count": 100, "offset": offset}
            answer = self.client.json("POST", path, json=body)
            lists = field_of(
                answer, "lists", list, endpoint=f"POST {path}", source=self.client.source
            )
            for item in lists:
                if (
                    isinstance(item, dict)
                    and item.get("name") == name
                    and item.get("objectTypeId") == CONTACT_OBJECT
                ):
                    self._ids[name] = str(item["listId"])
                    return self._ids[name]
            if not answer.get("hasMore") or not lists:
                return None
            offset = int(answer.get("offset") or offset + len(lists))

    def ensure(self, name: str) -> str:
        found = self.find(name)
        if found is not None:
            return found
        body = {"name": name, "objectTypeId": CONTACT_OBJECT, "processingType": "MANUAL"}
        # a refusal is looked up too: it may say the name was taken a moment ago
        answer = create_once(
            lambda: self.client.json("POST", f"{LISTS}/", json=body, retry=False),
            lambda: self._answer_of(self.find(name)),
            look_after_refusal=True,
        )
        made = answer.get("list") if isinstance(answer, dict) else None
        if not isinstance(made, dict) or "listId" not in made:
            raise BadAnswer(
                _("{source}: POST {lists}/ answered without list.listId").format(
                    source=self.client.source, lists=LISTS
                ),
                field=self.client.source,
            )
        self._ids[name] = str(made["listId"])
        return self._ids[name]

    @staticmethod
    def _answer_of(found: str | None) -> dict[str, Any] | None:
        """A list found after a lost answer, as the answer would have said it."""
        return None if found is None else {"list": {"listId": found}}

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        groups: dict[tuple[str, str], list[Action]] = {}
        for a in actions:
            name = str(a.payload.get("list") or "")
            if not name or not a.contact_id:
                outcomes.append(Outcome(a.key, "failed", "no list name or no contact id"))
                continue
            op = "add" if a.kind == "add_to_list" else "remove"
            groups.setdefault((name, op), []).append(a)
        for (name, op), group in groups.items():
            try:
                list_id = self.ensure(name) if op == "add" else self.find(name)
            except CredentialError:
                raise
            except ConnectorError as exc:
                outcomes += [Outcome(a.key, "retry", exc.message) for a in group]
                continue
            if list_id is None:  # nothing to remove from a list that does not exist
                outcomes += [Outcome(a.key, "done", f"no list {name!r}") for a in group]
                continue
            outcomes += self._members(list_id, name, op, group)
        return outcomes

    def _members(self, list_id: str, name: str, op: str, group: list[Action]) -> list[Outcome]:
        path = f"{LISTS}/{list_id}/memberships/{op}"
        ids = list(dict.fromkeys(str(a.contact_id) for a in group))
        missing: set[str] = set()
        outcomes: list[Outcome] = []
        for chunk in batched(ids, MEMBERSHIP_CHUNK):
            try:
                miss = self._call(path, chunk)
                if miss and op == "add":  # once more for those: a contact created a moment ago
                    miss = self._call(path, sorted(miss))
                missing |= miss
            except CredentialError:
                raise
            except ConnectorError as exc:
                status = failure_status(exc)
                outcomes += [
                    Outcome(a.key, status, exc.message) for a in group if str(a.contact_id) in chunk
                ]
                continue
        settled = {o.key for o in outcomes}
        verb = "in" if op == "add" else "out of"
        for a in group:
            if a.key in settled:
                continue
            if str(a.contact_id) in missing and op == "add":
                outcomes.append(
                    Outcome(
                        a.key, "failed", f"HubSpot has no contact {a.contact_id} to add to {name!r}"
                    )
                )
            else:
                outcomes.append(
                    Outcome(a.key, "done", f"{verb} list {name!r} ({list_id})", list_id)
                )
        return outcomes

    def _call(self, path: str, ids: list[str]) -> set[str]:
        answer = self.client.json("PUT", path, json=ids)
        missing = answer.get("recordIdsMissing") if isinstance(answer, dict) else None
        if not isinstance(missing, list):
            raise BadAnswer(
                _("{source}: PUT {path}: no recordIdsMissing list").format(
                    source=self.client.source, path=path
                ),
                field=self.client.source,
            )
        return {str(m) for m in missing}
