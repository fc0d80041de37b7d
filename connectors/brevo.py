"""The `brevo` connector: contacts, orders and campaign engagement in; lists and drafts out.

Brevo (ex-Sendinblue) API v3, authenticated by the ``api-key`` header. What goes
where, and why, is in ``docs/connectors/brevo.md``; in short:

- contacts from ``GET /contacts`` (1000 a page, ``modifiedSince`` for incremental
  pulls), their attributes as lower snake case columns, ``emailBlacklisted`` ->
  not subscribed; ``tags`` are the names of the lists of the "Segmerge" folder the
  contact is in (Brevo has no contact tags: one list per tag stands in);
- orders from Brevo e-commerce (``GET /orders``, ``modifiedSince`` too: see
  ``brevo_orders``), engagement events per campaign (``brevo_engagement``) or from
  each contact's ``GET /contacts/{id}/campaignStats`` (``brevo_activity``); each
  stream resumes from its own cursor and is handed over as soon as it is complete;
- tags and list memberships are list adds/removes (``brevo_lists``), draft
  campaigns ``POST /emailCampaigns`` (``brevo_campaigns``).

Brevo's limits are two budgets, on two clients: everything under ``/contacts`` (10
requests a second on the general tier) and every other endpoint (100 an hour). Each
client starts with its full budget, paces to the documented rate, and trusts Brevo's
``x-sib-ratelimit-remaining``/``-reset`` on every answer: it only waits when Brevo's
budget is really spent, and then says until when.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import pandas as pd
from pydantic import Field

from segmerge.ports import (
    Action,
    BadAnswer,
    ConnectorSettings,
    CredentialError,
    Destination,
    HttpClient,
    Outcome,
    RateLimit,
    Source,
    Tables,
    _,
    brevo_budget,
    conform,
    empty_orders,
    field_of,
    number,
)

from .brevo_activity import pull_events
from .brevo_campaigns import Drafts
from .brevo_contacts import (
    ContactMapping,
    attributes_from,
    contact_id_of,
    contacts_frame,
    contacts_page,
)
from .brevo_engagement import Engagement, ExportSettings, pull_exports
from .brevo_export_file import ExportCache
from .brevo_lists import ADD_KINDS, REMOVE_KINDS, ListBook
from .brevo_orders import pull_orders

PAGE = 1000  # GET /contacts maximum
OVERLAP = dt.timedelta(minutes=5)  # the next incremental pull starts a little earlier
PACE = 0.95  # pace at 95% of the documented limit: a fixed window never trips


class BrevoSettings(ConnectorSettings):
    base_url: str = "https://api.brevo.com/v3"
    #: the folder holding one list per Segmerge tag (created when missing)
    folder: str = "Segmerge"
    #: pull Brevo e-commerce orders (GET /orders)
    orders: bool = True
    #: where engagement events come from: recipient exports of each sent campaign (cost per
    #: campaign, dated at the send; see brevo_engagement), each contact's campaign
    #: statistics (exact times, one call per contact: small bases), or nowhere
    events: Literal["campaign_exports", "contact_stats", "none"] = "campaign_exports"
    #: campaign_exports: most seconds a pull waits for Brevo to finish its exports, and
    #: the first pause between two polls of GET /processes (each poll is one call)
    events_export_wait: float = Field(600.0, ge=0)
    events_poll_seconds: float = Field(3.0, ge=0)
    #: how far back events are read (Brevo answers at most 90 days per call)
    events_days: int = Field(90, ge=1, le=90)
    #: the plan's documented limits: /contacts endpoints per second (general 10,
    #: advanced 20, extended 60), all other endpoints per hour (general 100, advanced 200)
    contacts_requests_per_second: float = Field(10.0, gt=0)
    other_requests_per_hour: float = Field(100.0, gt=0)
    #: parallel requests (Brevo's latency is the bottleneck below the limit)
    concurrency: int = Field(4, ge=1, le=16)
    timeout: float = Field(30.0, gt=0)
    #: retries of a 5xx, timeout or dropped connection before giving up
    max_retries: int = Field(5, ge=0, le=10)
    #: the longest a run waits for a spent Brevo budget to come back (the hourly one
    #: resets within the hour); beyond it the run stops at once, saying when to run again
    max_wait: float = Field(3600.0, ge=0)


class BrevoConnector(Source, Destination):
    Settings: ClassVar[type[ConnectorSettings]] = BrevoSettings
    description: ClassVar[str] = "Brevo (ex-Sendinblue): contacts, orders, lists, draft campaigns"
    needs_secret: ClassVar[bool] = True
    accepts: ClassVar[frozenset[str]] = frozenset(
        {"tag", "untag", "add_to_list", "remove_from_list", "create_campaign"}
    )
    idempotent: ClassVar[bool] = True
    batch_size: int = 1500  # ten list calls of 150 per push

    settings: BrevoSettings

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._contacts: HttpClient | None = None
        self._other: HttpClient | None = None
        self._book: ListBook | None = None
        self._drafts: Drafts | None = None
        self.mapping = ContactMapping()

    # -- clients -------------------------------------------------------------------------
    def _client(self, per_second: float, burst: int) -> HttpClient:
        key = self.ctx.secret()
        if not key:
            env = f"SEGMERGE_{self.name.upper().replace('-', '_')}_TOKEN"
            raise CredentialError(
                _("{source}: no Brevo API key").format(source=self.name),
                field=self.name,
                hint=_("`segmerge auth set {source}` stores one (or set {env})").format(
                    source=self.name, env=env
                ),
            )
        s = self.settings
        return HttpClient(
            source=self.name,
            base_url=s.base_url,
            headers={"api-key": key, "Content-Type": "application/json"},
            rate=RateLimit(per_second * PACE, 1.0, burst=burst),
            timeout=s.timeout,
            max_retries=s.max_retries,
            # Brevo counts calls per window and says what is left on every answer: the
            # client spends what Brevo says remains, and waits for the reset when spent
            budget_hint=brevo_budget,
            max_wait=s.max_wait,
            pool=s.concurrency,
            credential_hint=self.ctx.secret_origin() or "the keyring or SEGMERGE_<NAME>_TOKEN",
        )

    @property
    def contacts_client(self) -> HttpClient:
        if self._contacts is None:
            self._contacts = self._client(self.settings.contacts_requests_per_second, 1)
        return self._contacts

    @property
    def other_client(self) -> HttpClient:
        if self._other is None:
            per_hour = self.settings.other_requests_per_hour
            # an hourly budget may be spent in a burst: Brevo counts per hour, not per second
            self._other = self._client(per_hour / 3600.0, max(1, int(per_hour * PACE)))
        return self._other

    @property
    def book(self) -> ListBook:
        if self._book is None:
            self._book = ListBook(
                self.contacts_client, self.settings.folder, self.name, self.settings.concurrency
            )
        return self._book

    @property
    def drafts(self) -> Drafts:
        if self._drafts is None:
            self._drafts = Drafts(self.other_client, self.book, self.name)
        return self._drafts

    def close(self) -> None:
        for c in (self._contacts, self._other):
            if c is not None:
                c.close()

    # -- check ---------------------------------------------------------------------------
    def check(self) -> list[str]:
        return [account_line(self.other_client.get("/account"), self.name)]

    # -- pull ----------------------------------------------------------------------------
    def pull(self, since: str | None = None) -> Tables:
        """Contacts, then orders, then events: each stream resumes from its own cursor and is
        handed to the engine (``ctx.stream_done``) as soon as it is complete."""
        cursors: dict[str, str] = {}
        notes: list[str] = []
        contacts_since = self.ctx.cursors.get("contacts", since)
        started = _now_cursor()
        frame = self._contacts_stream(contacts_since, notes)
        cursors["contacts"] = started
        self.ctx.stream_done("contacts", frame, started)
        orders_since = self.ctx.cursors.get("orders", since)
        started = _now_cursor()
        orders, more = self._orders(orders_since, frame)
        notes += more
        if self.settings.orders:
            cursors["orders"] = started
            self.ctx.stream_done("orders", orders, started)
        started = _now_cursor()
        engagement = self._events(self.ctx.cursors.get("events", since), frame)
        events = engagement.events
        notes += engagement.notes
        if self.settings.events != "none":
            cursors["events"] = engagement.cursor or started
            self.ctx.stream_done("events", events, cursors["events"])
        tables = Tables(
            frame,
            orders,
            events,
            cursor=cursors["contacts"],
            notes=notes,
            incremental=contacts_since is not None,
            cursors=cursors,
        )
        out = conform(tables, source=self.name)
        out.incremental = contacts_since is not None
        return out

    def _contacts_stream(self, since: str | None, notes: list[str]) -> pd.DataFrame:
        client = self.contacts_client
        attributes = attributes_from(client.get("/contacts/attributes"), self.name)
        lists = self.book.all_named("/contacts/lists", "lists")
        folder_id = self.book.find_folder(create=False)
        tag_lists = {
            x["id"] for x in lists if folder_id is not None and x.get("folderId") == folder_id
        }
        self.book.known_lists([x for x in lists if x["id"] in tag_lists])
        names = {x["id"]: x["name"] for x in lists}
        items = self._contact_items(since)
        frame, self.mapping = contacts_frame(
            items, attributes, names, tag_lists, self.ctx.timezone, self.name
        )
        for it in items:
            self.book.remember(int(it["id"]), it["listIds"])
        notes += self.mapping.notes
        said = _("{source}: incremental pull, {n} contact(s) modified since {since}")
        if not since:
            said = _("{source}: full pull, {n} contact(s)")
        notes.append(said.format(source=self.name, n=number(len(frame)), since=since))
        return frame

    def _contact_items(self, since: str | None) -> list[dict[str, Any]]:
        """Every contact (or those modified since), pages fetched in parallel, creation order."""
        client = self.contacts_client
        params: dict[str, Any] = {"limit": PAGE, "sort": "asc"}
        if since:
            params["modifiedSince"] = since

        def page(offset: int) -> list[dict[str, Any]]:
            body = client.get("/contacts", {**params, "offset": offset})
            if body is None:
                return []
            return contacts_page(body, self.name, "GET /contacts", offset)[0]

        first = client.get("/contacts", {**params, "offset": 0})
        items, count = contacts_page(first, self.name, "GET /contacts", 0)
        pages = [items]
        offsets = list(range(PAGE, count, PAGE))
        if offsets:
            with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
                pages.extend(pool.map(page, offsets))
        offset = max([0, *offsets]) + PAGE
        while len(pages[-1]) == PAGE:  # contacts created meanwhile: read on to a short page
            pages.append(page(offset))
            offset += PAGE
        unique: dict[int, dict[str, Any]] = {}
        for p in pages:
            for it in p:
                unique[it["id"]] = it  # an insertion shifting pages repeats, never loses
        return list(unique.values())

    def _orders(self, since: str | None, contacts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        if not self.settings.orders:
            return empty_orders(), []
        by_email = dict(zip(contacts["email"].str.lower(), contacts["contact_id"], strict=True))

        def contact_of(email: str) -> str | None:
            key = email.strip().lower()
            if key not in by_email:  # a buyer not in this (incremental) pull
                path = f"/contacts/{quote(key, safe='@')}"
                try:
                    by_email[key] = contact_id_of(
                        self.contacts_client.get(path), self.name, "GET /contacts/{email}"
                    )
                except BadAnswer as exc:
                    if exc.status != 404:  # the status, not the (translated) text
                        raise
                    by_email[key] = None
            return by_email[key]

        return pull_orders(self.other_client, since, contact_of, self.name)

    def _events(self, since: str | None, contacts: pd.DataFrame) -> Engagement:
        s = self.settings
        if s.events == "campaign_exports":
            # the contacts were pulled incrementally (only the modified ones) when they have
            # their own cursor, or when the pull's one cursor is all there is
            cursors = self.ctx.cursors
            partial = bool(cursors.get("contacts")) or ("events" not in cursors and bool(since))

            def resolve(emails: set[str]) -> dict[str, str]:
                """E-mails of exports that are no pulled contact: on an incremental pull,
                one pass over GET /contacts (1000 a page, the 10/s bucket) finds them."""
                if not partial:
                    return {}
                every = (
                    (str(it.get("email") or "").strip().lower(), str(it["id"]))
                    for it in self._contact_items(None)
                )
                return {mail: cid for mail, cid in every if mail in emails}

            # the export files sit on Brevo's file host: no API key goes there
            files = HttpClient(
                source=self.name, base_url=s.base_url, timeout=s.timeout, max_retries=s.max_retries
            )
            try:
                return pull_exports(
                    self.other_client,
                    files,
                    contacts,
                    previous=self.ctx.cursors.get("events"),
                    budget_fallback=int(s.other_requests_per_hour * PACE)
                    - self.other_client.stats.requests,
                    resolve=resolve,
                    settings=ExportSettings(
                        s.events_days, s.events_export_wait, s.events_poll_seconds
                    ),
                    source=self.name,
                    cache=ExportCache(self.ctx.root / ".segmerge" / "cache" / "brevo" / self.name),
                )
            finally:
                files.close()
        if s.events == "none" or contacts.empty:
            return Engagement()
        # a cursor left by campaign_exports (its counters, JSON) is no date: read the window
        cut = pd.Timestamp(since).to_pydatetime() if since and since[:1] != "{" else None
        if cut is not None and cut.tzinfo is None:
            cut = cut.replace(tzinfo=dt.UTC)
        # only contacts that can be mailed: a blocklisted one's engagement drives nothing
        mailable = contacts.loc[contacts["subscribed"].astype(bool), "contact_id"]
        return Engagement(
            pull_events(
                self.contacts_client,
                mailable.tolist(),
                days=s.events_days,
                since=cut,
                workers=s.concurrency,
                source=self.name,
            )
        )

    # -- push ----------------------------------------------------------------------------
    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        members = [a for a in actions if a.kind in ADD_KINDS | REMOVE_KINDS]
        out: list[Outcome] = self.book.push(members) if members else []
        for a in actions:
            if a.kind == "create_campaign":
                out.append(self.drafts.create(a))
            elif a.kind not in ADD_KINDS | REMOVE_KINDS:
                out.append(Outcome(a.key, "failed", f"brevo does not take {a.kind!r} actions"))
        return out

    def merge_tag(self, column: str) -> str | None:
        """Brevo's template language: ``{{ contact.FIRSTNAME }}``, ``{{ unsubscribe }}``."""
        if column == "unsubscribe_url":
            return "{{ unsubscribe }}"
        defaults = {"first_name": "FIRSTNAME", "last_name": "LASTNAME", "email": "EMAIL"}
        name = self.mapping.columns.get(column) or defaults.get(column)
        return f"{{{{ contact.{name} }}}}" if name else None


def account_line(body: Any, source: str) -> str:
    """``GET /account`` (``getAccount``: ``companyName``, ``plan: [{type, ...}]``) -> one line."""
    plans = field_of(body, "plan", list, endpoint="GET /account", source=source)
    kinds = ", ".join(str(p.get("type")) for p in plans if isinstance(p, dict))
    company = body.get("companyName")
    return f"{source}: Brevo account ok ({company or 'no company name'}; plan {kinds or 'unknown'})"


def _now_cursor() -> str:
    """A stream's next cursor: when its pull started, a little earlier (clock skew, commits
    in flight), in the form Brevo's ``modifiedSince`` takes."""
    at = dt.datetime.now(dt.UTC) - OVERLAP
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["BrevoConnector", "BrevoSettings"]
