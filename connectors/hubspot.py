"""The `hubspot` connector: HubSpot CRM contacts, won deals and e-mail events in; segments out.

In: contacts (``GET /crm/v3/objects/contacts``, 100 a page, the properties the
segment rules can use), their won deals as orders and marketing e-mail events
(the legacy Email Events API, the only per-recipient engagement HubSpot offers).
Later pulls search for contacts modified since the last one.

Out: segment tags as the options of one multiple-checkboxes contact property,
one static list per segment, and one DRAFT marketing e-mail per segment that
targets its list and carries the rendered letter with HubL merge tags.
See docs/connectors/hubspot.md for what a user configures and sees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd

from segmerge.ports import (
    Action,
    BadAnswer,
    ConfigError,
    ConnectorError,
    CredentialError,
    Destination,
    HttpClient,
    Outcome,
    SegmergeError,
    Source,
    Tables,
    _,
    empty_events,
    empty_orders,
    field_of,
    number,
    secret_env_var,
)

from . import hubspot_events as he
from . import hubspot_pull as hp
from .hubspot_client import LIST_PAGE, StuckSearch, make_clients, next_after, search_modified_since
from .hubspot_deals import WonDeals
from .hubspot_drafts import Drafts
from .hubspot_lists import Lists
from .hubspot_settings import HubSpotSettings
from .hubspot_tags import TagWriter

TAG_KINDS = frozenset({"tag", "untag"})
#: characters of comma-joined property names sent in one query string
URL_BUDGET = 6000
LIST_KINDS = frozenset({"add_to_list", "remove_from_list"})


class HubSpotConnector(Source, Destination):
    Settings = HubSpotSettings
    description = "HubSpot CRM: contacts, won deals, e-mail events; tags, lists, draft e-mails"
    needs_secret: ClassVar[bool] = True
    accepts: ClassVar[frozenset[str]] = TAG_KINDS | LIST_KINDS | {"create_campaign"}
    idempotent: ClassVar[bool] = True
    #: actions per push call: a segment's list memberships go in one call per batch (up to
    #: hubspot_lists.MEMBERSHIP_CHUNK), tags in 100-contact batch calls within it; a batch
    #: is about 20 s of calls at the Free/Starter limit, the most a crash can leave in flight
    batch_size = 10_000

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._api: HttpClient | None = None
        self._search: HttpClient | None = None
        self._types: dict[str, str] | None = None
        self._custom: list[str] = []
        self._prop_by_column: dict[str, str] = {}
        self._tags: TagWriter | None = None
        self._lists: Lists | None = None
        self._drafts: Drafts | None = None

    @property
    def cfg(self) -> HubSpotSettings:
        assert isinstance(self.settings, HubSpotSettings)
        return self.settings

    # clients ------------------------------------------------------------------------
    def _clients(self) -> tuple[HttpClient, HttpClient]:
        if self._api is None or self._search is None:
            token = self.ctx.secret()
            if not token:
                raise CredentialError(
                    _("{source}: no HubSpot private app token").format(source=self.name),
                    field=self.name,
                    hint=_("`segmerge auth set {source}` stores it, or set {env}").format(
                        source=self.name, env=secret_env_var(self.name)
                    ),
                )
            c = self.cfg
            self._api, self._search = make_clients(
                self.name,
                c.base_url,
                token,
                limit=c.rate_limit,
                window=c.rate_window_seconds,
                search_limit=c.search_rate_limit,
                search_window=c.search_window_seconds,
                timeout=c.timeout,
                credential_hint=self.ctx.secret_origin(),
            )
        return self._api, self._search

    @property
    def api(self) -> HttpClient:
        return self._clients()[0]

    def close(self) -> None:
        for client in (self._api, self._search):
            if client is not None:
                client.close()
        self._api = self._search = None

    # check --------------------------------------------------------------------------
    def check(self) -> list[str]:
        """The token works (account details) and may read contacts (the scope we need most)."""
        acct = self.api.get("/account-info/v3/details")
        self.api.get(hp.CONTACTS, {"limit": 1, "properties": "email", "archived": "false"})
        portal = acct.get("portalId", "?") if isinstance(acct, dict) else "?"
        kind = acct.get("accountType", "unknown type") if isinstance(acct, dict) else "?"
        return [f"{self.name}: HubSpot account {portal} ok ({kind}); contacts readable"]

    # pull ---------------------------------------------------------------------------
    def property_types(self) -> dict[str, str]:
        """name -> type of every contact property (one call, kept for the run)."""
        if self._types is None:
            path = "/crm/v3/properties/contacts"
            body = self.api.get(path, {"archived": "false"})
            items = field_of(body, "results", list, endpoint=f"GET {path}", source=self.name)
            self._types = {
                str(p["name"]): str(p.get("type", "string"))
                for p in items
                if isinstance(p, dict) and "name" in p
            }
            self._custom = [
                str(p["name"])
                for p in items
                if isinstance(p, dict) and p.get("hubspotDefined") is False
            ]
        return self._types

    def wanted_properties(self, notes: list[str]) -> list[str]:
        types = self.property_types()
        wanted = [*hp.CORE, self.cfg.tags_property]
        if self.cfg.custom_properties:
            wanted += self._custom
        unknown = [p for p in self.cfg.properties if p not in types]
        if unknown:
            notes.append(
                _("{source}: no contact property {names} in HubSpot").format(
                    source=self.name, names=", ".join(unknown)
                )
            )
        wanted += [p for p in self.cfg.properties if p in types]
        return list(dict.fromkeys(wanted))

    def pull(self, since: str | None = None) -> Tables:
        """Contacts, then won deals, then events; each kept by the engine once complete.

        Each stream resumes from its own cursor (``ctx.cursors``), or from the combined
        cursor of an older run: a push that failed after the contacts were read does not
        make the next run read them all again.
        """
        started_ms = int(time.time() * 1000)
        notes: list[str] = []
        props = self.wanted_properties(notes)
        contacts_ms, events_ms = self._cursors(since, notes)
        records = None
        if contacts_ms is not None:
            records = self._changed_contacts(contacts_ms, props, notes)
        incremental = records is not None
        if records is None:
            records = self._all_contacts(props)
        types = self.property_types()
        columns = hp.column_names([p for p in props if p in types], self.cfg.tags_property)
        self._prop_by_column = {col: prop for prop, col in columns.items()}
        contacts = hp.contacts_frame(
            records, types, columns, self.cfg.tags_property, notes, self.name
        )
        overlap = self.cfg.cursor_overlap_seconds * 1000
        cursors = {"contacts": str(started_ms - overlap)}
        self.ctx.stream_done("contacts", contacts, cursors["contacts"])
        orders = empty_orders()
        if self.cfg.orders == "deals":
            orders = WonDeals(self.api, self.cfg.won_stages).frame()
            self.ctx.stream_done("orders", orders, None)  # read whole every time
        events = empty_events()
        next_events_ms = events_ms if events_ms is not None else started_ms - overlap
        if self.cfg.events:
            start = (
                events_ms
                if events_ms is not None
                else started_ms - self.cfg.events_days * 86_400_000
            )
            events, next_events_ms = self._events(contacts, start, started_ms, notes)
            cursors["events"] = str(next_events_ms)
            self.ctx.stream_done("events", events, cursors["events"])
        cursor = {"v": 1, "contacts_ms": started_ms - overlap, "events_ms": next_events_ms}
        tables = Tables(contacts, orders, events, cursor=json.dumps(cursor), notes=notes)
        tables.incremental = incremental
        tables.cursors = cursors
        return tables

    def _cursors(self, since: str | None, notes: list[str]) -> tuple[int | None, int | None]:
        """Where contacts and events resume: their own cursors first, else the combined one."""
        try:
            contacts_ms, events_ms = hp.read_cursor(since)
        except ConnectorError as exc:  # not ours (another connector's?): start over, safely
            said = _("{source}: {problem}; pulled everything instead")
            notes.append(said.format(source=self.name, problem=exc.message))
            contacts_ms = events_ms = None
        own = self.ctx.cursors
        for stream in ("contacts", "events"):
            value = own.get(stream)
            if not value:
                continue
            try:
                ms = int(value)
            except ValueError:
                said = _("{source}: unreadable {stream} cursor {value}; read it whole")
                notes.append(said.format(source=self.name, stream=stream, value=repr(value)))
                ms = None
            if stream == "contacts":
                contacts_ms = ms
            else:
                events_ms = ms
        return contacts_ms, events_ms

    def _all_contacts(self, props: list[str]) -> dict[str, dict[str, Any]]:
        """Every contact, 100 a page; in several passes when the property list is too long.

        The properties travel in the query string, and a very long URL is refused (414)
        by HubSpot's front end: past ``URL_BUDGET`` characters the list is split and
        each pass adds its properties to the records of the first.
        """
        records: dict[str, dict[str, Any]] = {}
        for group in hp.property_groups(props, URL_BUDGET):
            params = {"limit": LIST_PAGE, "properties": ",".join(group), "archived": "false"}
            pages = self.api.pages_cursor(
                hp.CONTACTS, items_key="results", next_cursor=next_after, params=params
            )
            batch = hp.read_contacts(pages, f"GET {hp.CONTACTS}", self.name)
            if not records:
                records = batch
                continue
            for rid, item in batch.items():
                if rid in records:
                    records[rid]["properties"].update(item["properties"])
        return records

    def _changed_contacts(
        self, since_ms: int, props: list[str], notes: list[str]
    ) -> dict[str, dict[str, Any]] | None:
        """Contacts modified since the cursor, or None when only a full pull can tell."""
        search = self._clients()[1]
        cap = self.cfg.search_result_cap
        try:
            pages = search_modified_since(search, "contacts", since_ms, props, cap=cap)
            records = hp.read_contacts(pages, f"POST {hp.CONTACTS}/search", self.name)
        except StuckSearch as exc:
            notes.append(_("{problem}; pulled every contact instead").format(problem=exc.message))
            return None
        said = _("{source}: {n} contact(s) modified since {since}")
        notes.append(said.format(source=self.name, n=number(len(records)), since=hp.iso(since_ms)))
        return records

    def _events(
        self, contacts: pd.DataFrame, start: int, end: int, notes: list[str]
    ) -> tuple[pd.DataFrame, int]:
        """E-mail events in [start, end] and where the next pull starts.

        The next pull starts after the last event seen, or at the end of this one less
        the overlap when that is later: the events of the overlap, indexed late, are
        new (every event seen is older), so none comes twice.
        """
        window = self.cfg.events_window_days * 86_400_000
        raw = he.collect(he.pages(self.api, start, end, window))
        known = contacts[contacts["email"].notna()]
        by_email = dict(zip(known["email"], known["contact_id"], strict=True))
        unknown = set(raw["recipient"].dropna().unique()) - set(by_email) - {""}
        if unknown:  # an incremental pull holds few contacts: look the others up
            by_email.update(hp.ids_for_emails(self.api, unknown))
        events, unmatched = he.canonical(raw, by_email)
        if unmatched:
            notes.append(
                _(
                    "{source}: {n} e-mail event(s) of addresses HubSpot has no contact for "
                    "were left out"
                ).format(source=self.name, n=number(unmatched))
            )
        overlap = self.cfg.cursor_overlap_seconds * 1000
        last = int(raw["at_ms"].max()) + 1 if not raw.empty else start
        return events, max(last, end - overlap)

    # merge tags ---------------------------------------------------------------------
    def merge_tag(self, column: str) -> str | None:
        """HubL: ``{{ contact.firstname }}``; the unsubscribe link is ``{{ unsubscribe_link }}``."""
        if column == "unsubscribe_url":
            return "{{ unsubscribe_link }}"
        prop = {"first_name": "firstname", "last_name": "lastname", "email": "email"}.get(column)
        if prop is None and not self._prop_by_column:
            try:
                types = self.property_types()
            except SegmergeError:
                types = {}
            self._prop_by_column = {
                v: k for k, v in hp.column_names(types, self.cfg.tags_property).items()
            }
        prop = prop or self._prop_by_column.get(column)
        return f"{{{{ contact.{prop} }}}}" if prop else None

    # push ---------------------------------------------------------------------------
    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        tags = [a for a in actions if a.kind in TAG_KINDS]
        lists = [a for a in actions if a.kind in LIST_KINDS]
        drafts = [a for a in actions if a.kind == "create_campaign"]
        outcomes += [
            Outcome(a.key, "failed", f"{self.name}: HubSpot cannot {a.kind}")
            for a in actions
            if a.kind not in self.accepts
        ]
        if tags:
            outcomes += self._guard(tags, lambda: self._tag_writer().push(tags))
        if lists:
            outcomes += self._guard(lists, lambda: self._list_writer().push(lists))
        for a in drafts:
            outcomes += self._guard([a], lambda a=a: [self._draft_writer().push(a)])
        return outcomes

    def _guard(self, group: list[Action], do: Any) -> list[Outcome]:
        """One kind's failure is that kind's outcomes; only a refused credential stops all."""
        try:
            result: list[Outcome] = do()
            return result
        except CredentialError as exc:
            if exc.status == 403 and group[0].kind == "create_campaign":
                return [Outcome(a.key, "failed", exc.message) for a in group]
            raise
        except (BadAnswer, ConfigError) as exc:
            return [Outcome(a.key, "failed", exc.message) for a in group]
        except ConnectorError as exc:
            return [Outcome(a.key, "retry", exc.message) for a in group]

    def _tag_writer(self) -> TagWriter:
        if self._tags is None:
            self._tags = TagWriter(self.api, self.cfg.tags_property, self.cfg.tags_label)
        return self._tags

    def _list_writer(self) -> Lists:
        if self._lists is None:
            self._lists = Lists(self.api)
        return self._lists

    def _draft_writer(self) -> Drafts:
        if self._drafts is None:
            self._drafts = Drafts(
                self.api,
                self._list_writer(),
                self.cfg.email_template_path,
                self.cfg.email_template_id,
            )
        return self._drafts
