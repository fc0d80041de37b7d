"""Segmerge tags as Brevo lists: one list per tag, named as the tag, in one folder.

Brevo contacts have no free-form tags; marketers segment with lists (and folders of
lists). So the tag ``seg:fonceurs`` is the list ``seg:fonceurs`` inside the folder
"Segmerge" (created when missing), and tagging is list membership through
``POST /contacts/lists/{id}/contacts/add|remove`` (150 contacts a call). Only lists
of that folder are ever touched: a marketer's list of the same name elsewhere is not.

Brevo's answer puts in ``failure`` both the contacts already in (or out of) the list
and the unknown ones, and answers 400 when no contact of the call succeeded; so a
failure is checked against the list's real members before it is called one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from segmerge.ports import (
    Action,
    BadAnswer,
    ConnectorError,
    CredentialError,
    HttpClient,
    Outcome,
    OutcomeStatus,
    _,
    batched,
    create_once,
    field_of,
)

from .brevo_contacts import contacts_page, listing_count

MAX_PER_CALL = 150  # Brevo: "a maximum of 150 emails/IDs in one request"
LISTING_PAGE = 50  # GET /contacts/folders, /contacts/lists: `limit` maximum
MEMBERS_PAGE = 500  # GET /contacts/lists/{id}/contacts: `limit` maximum
ADD_KINDS = {"tag", "add_to_list"}
REMOVE_KINDS = {"untag", "remove_from_list"}
#: beyond this many failures of one call, read the list's members instead of each contact
BULK_CHECK = 20
CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class Member:
    """How a contact is named in a list call: its Brevo id, or its e-mail."""

    kind: str  # "ids" or "emails"
    value: int | str


def member_of(action: Action) -> Member | None:
    cid = action.contact_id
    if cid is not None and str(cid).isdigit():
        return Member("ids", int(cid))
    email = action.payload.get("email")
    if isinstance(email, str) and "@" in email:
        return Member("emails", email.strip().lower())
    return None


class ListBook:
    """The Segmerge folder's lists and what is known of their members, for one connector."""

    def __init__(self, client: HttpClient, folder: str, source: str, workers: int) -> None:
        self.client = client
        self.folder = folder
        self.source = source
        self.workers = workers
        self.folder_id: int | None = None
        self.lists: dict[str, int] | None = None  # name -> id, inside the folder
        self.members: dict[int, set[Any]] = {}  # list id -> ids/emails known to be in it
        self.absent: dict[int, set[Any]] = {}  # list id -> ids/emails known to be out
        self.lock = threading.Lock()

    # -- lookup --------------------------------------------------------------------------
    def all_named(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every folder or list of a listing (pages of 50, Brevo's maximum)."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self.client.get(path, {"limit": LISTING_PAGE, "offset": offset})
            page, count = named_items(body, key, f"GET {path}", self.source, offset)
            rows.extend(page)
            offset += len(page)
            if len(page) < LISTING_PAGE or offset >= count:
                return rows

    def find_folder(self, create: bool) -> int | None:
        if self.folder_id is None:
            for f in self.all_named("/contacts/folders", "folders"):
                if f["name"] == self.folder:
                    self.folder_id = int(f["id"])
                    break
        if self.folder_id is None and create:
            self.folder_id = self._create(
                "/contacts/folders", {"name": self.folder}, lambda: self.find_folder(create=False)
            )
        return self.folder_id

    def known_lists(self, folder_lists: list[dict[str, Any]] | None = None) -> dict[str, int]:
        """Name -> id of the folder's lists (``folder_lists``: from a pull's list listing)."""
        if folder_lists is not None:
            self.lists = {str(x["name"]): int(x["id"]) for x in folder_lists}
        if self.lists is None:
            fid = self.find_folder(create=False)
            rows = [] if fid is None else self.all_named(f"/contacts/folders/{fid}/lists", "lists")
            self.lists = {str(x["name"]): int(x["id"]) for x in rows}
        return self.lists

    def list_id(self, name: str, create: bool) -> int | None:
        lists = self.known_lists()
        if name in lists or not create:
            return lists.get(name)
        fid = self.find_folder(create=True)
        if fid is None:
            raise ConnectorError(
                _("{source}: the folder {folder} could not be found or created").format(
                    source=self.source, folder=repr(self.folder)
                ),
                field=self.source,
            )

        def lookup() -> int | None:
            self.lists = None
            return self.known_lists().get(name)

        lid = self._create("/contacts/lists", {"name": name, "folderId": fid}, lookup)
        self.known_lists()[name] = lid
        return lid

    def _create(self, path: str, body: dict[str, Any], lookup: Callable[[], int | None]) -> int:
        """Create once: never retried blindly; after a lost answer, look before trying again."""

        def create() -> int:
            answer = self.client.json("POST", path, json=body, ok=(201,), retry=False)
            return created_id(answer, f"POST {path}", self.source)

        return create_once(create, lookup, attempts=CREATE_ATTEMPTS)

    def remember(self, contact_id: int, list_ids: Sequence[int]) -> None:
        """A pulled contact's memberships, so that a repeat costs no call."""
        ids = set(list_ids)
        for lid in (self.lists or {}).values():
            (self.members if lid in ids else self.absent).setdefault(lid, set()).add(contact_id)

    # -- push --------------------------------------------------------------------------------
    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        out: list[Outcome] = []
        groups: dict[tuple[bool, str, str], dict[Any, list[Action]]] = {}
        for a in actions:
            adding = a.kind in ADD_KINDS
            name = a.payload.get("tag") or a.payload.get("list")
            member = member_of(a)
            if not isinstance(name, str) or not name:
                out.append(Outcome(a.key, "failed", "no tag or list name in the action"))
            elif member is None:
                out.append(Outcome(a.key, "failed", "the contact has no Brevo id and no e-mail"))
            else:
                groups.setdefault((adding, name, member.kind), {}).setdefault(
                    member.value, []
                ).append(a)
        for (adding, name, kind), by_member in groups.items():
            out.extend(self._push_group(adding, name, kind, by_member))
        return out

    def _push_group(
        self, adding: bool, name: str, kind: str, by_member: dict[Any, list[Action]]
    ) -> list[Outcome]:
        def all_as(status: OutcomeStatus, detail: str) -> list[Outcome]:
            return [Outcome(a.key, status, detail) for acts in by_member.values() for a in acts]

        try:
            lid = self.list_id(name, create=adding)
        except CredentialError:
            raise
        except ConnectorError as exc:
            return all_as("retry", f"list {name!r} could not be found or created: {exc.message}")
        if lid is None:  # removing from a list that does not exist: nothing to do
            return all_as("done", f"no list {name!r} in folder {self.folder!r}")
        verb = "add" if adding else "remove"
        state: dict[Any, tuple[str, str]] = {}
        with self.lock:
            known = (self.members if adding else self.absent).get(lid, set())
            todo = [m for m in by_member if m not in known]
            for m in by_member:
                if m in known:
                    state[m] = ("done", f"already {'in' if adding else 'out of'} list {name!r}")
        chunks = list(batched(todo, MAX_PER_CALL))
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(chunks) or 1))) as pool:
            for result in pool.map(lambda c: self._call(verb, lid, kind, c), chunks):
                state.update(result)
        failed = [m for m, (status, _) in state.items() if status == "check"]
        if failed:
            state.update(self._settle(verb, lid, kind, name, failed))
        with self.lock:
            done = {m for m, (s, _) in state.items() if s == "done"}
            (self.members if adding else self.absent).setdefault(lid, set()).update(done)
            (self.absent if adding else self.members).setdefault(lid, set()).difference_update(done)
        return [
            Outcome(a.key, *state[m], platform_id=str(lid))  # type: ignore[arg-type]
            for m, acts in by_member.items()
            for a in acts
        ]

    def _call(self, verb: str, lid: int, kind: str, chunk: list[Any]) -> dict[Any, tuple[str, str]]:
        path = f"/contacts/lists/{lid}/contacts/{verb}"
        try:
            resp = self.client.request("POST", path, json={kind: chunk}, ok=(200, 201))
        except CredentialError:
            raise
        except BadAnswer as exc:
            if exc.status == 404:  # the list was deleted meanwhile
                with self.lock:
                    self.lists = None
                return {m: ("retry", exc.message) for m in chunk}
            # 400 "already in list and/or does not exist": check each
            return {m: ("check", exc.message) for m in chunk}
        except ConnectorError as exc:
            return {m: ("retry", exc.message) for m in chunk}
        success = call_result(self.client.decode(resp, f"POST {path}"), f"POST {path}", self.source)
        return {m: ("done", "") if m in success else ("check", "refused by Brevo") for m in chunk}

    def _settle(
        self, verb: str, lid: int, kind: str, name: str, failed: list[Any]
    ) -> dict[Any, tuple[str, str]]:
        """A refused member: already done, unknown to Brevo, or refused again one by one."""
        adding = verb == "add"
        inside = self._members(lid) if len(failed) > BULK_CHECK else None
        out: dict[Any, tuple[str, str]] = {}
        for m in failed:
            try:
                if inside is not None:
                    exists, is_in = None, (m in inside)
                else:
                    exists, is_in = self._contact_in(m, lid)
            except ConnectorError as exc:
                if isinstance(exc, CredentialError):
                    raise
                out[m] = ("retry", f"could not check list {name!r}: {exc.message}")
                continue
            if exists is False:
                out[m] = ("failed", f"no Brevo contact {m!r}")
            elif is_in == adding:
                out[m] = ("done", f"already {'in' if adding else 'out of'} list {name!r}")
            else:
                again = self._call(verb, lid, kind, [m])[m]
                if again[0] == "check":
                    again = ("failed", f"Brevo refused to {verb} {m!r} ({name!r}): {again[1]}")
                out[m] = again
        return out

    def _contact_in(self, member: Any, lid: int) -> tuple[bool, bool]:
        path = f"/contacts/{quote(str(member), safe='@')}"
        try:
            body = self.client.get(path)
        except BadAnswer as exc:
            if exc.status == 404:
                return False, False
            raise
        ids = field_of(body, "listIds", list, endpoint=f"GET {path}", source=self.source)
        return True, lid in ids

    def _members(self, lid: int) -> set[Any]:
        """Every member of a list, by id and by e-mail (pages of 500)."""
        found: set[Any] = set()
        path = f"/contacts/lists/{lid}/contacts"
        offset = 0
        while True:
            body = self.client.get(path, {"limit": MEMBERS_PAGE, "offset": offset})
            page, count = contacts_page(body, self.source, f"GET {path}", offset)
            for c in page:
                found.add(c["id"])
                if isinstance(c.get("email"), str):
                    found.add(c["email"].lower())
            offset += len(page)
            if len(page) < MEMBERS_PAGE or offset >= count:
                return found


def named_items(
    body: Any, key: str, endpoint: str, source: str, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A listing of folders, lists or campaigns -> its items (each with an id and a name)
    and the total ``count`` (optional in Brevo's schemas: the page's end when absent)."""
    if body is None:  # Brevo answers 204 where a listing is empty
        return [], 0
    if isinstance(body, dict) and key not in body:  # optional in the schemas: an empty listing
        return [], 0
    items = field_of(body, key, list, endpoint=endpoint, source=source)
    for n, x in enumerate(items):
        ident = x.get("id") if isinstance(x, dict) else None
        if (
            not isinstance(ident, int)
            or isinstance(ident, bool)
            or not isinstance(x.get("name"), str)
        ):
            raise BadAnswer(
                _(
                    "{source}: {endpoint}: item #{value} of {key!r} has no integer 'id' "
                    "and text 'name'"
                ).format(source=source, endpoint=endpoint, value=offset + n, key=key),
                field=source,
            )
    return items, listing_count(body, items, endpoint, source, offset)


def created_id(body: Any, endpoint: str, source: str) -> int:
    """A creation's answer (``createModel``: ``{id}``) -> the new id."""
    return field_of(body, "id", int, endpoint=endpoint, source=source)


def call_result(body: Any, endpoint: str, source: str) -> set[Any]:
    """A list add/remove answer -> the ids and (lower-cased) e-mails that succeeded.

    Brevo's schema and reference (``postContactInfo``; developers.brevo.com/reference/
    add-contact-to-list) wrap them as ``{contacts: {success, failure}}``; the spec's own
    examples show ``{success, failure}`` bare: both are read.
    """
    inner = body.get("contacts", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise BadAnswer(
            _("{source}: {endpoint}: field 'contacts' is {kind}, expected an object").format(
                source=source, endpoint=endpoint, kind=type(inner).__name__
            ),
            field=source,
        )
    for key in ("success", "failure"):
        value = inner.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str | int) for x in value):
            raise BadAnswer(
                _(
                    "{source}: {endpoint}: field 'contacts.{key}' is not a list of ids or e-mails"
                ).format(source=source, endpoint=endpoint, key=key),
                field=source,
            )
    return {_norm(x) for x in inner.get("success", [])}


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
