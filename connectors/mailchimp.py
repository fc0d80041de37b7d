"""The `mailchimp` connector: one Mailchimp audience as a source and a destination.

Pulls the audience's members (contacts), its e-commerce orders and the
e-mail activity of the campaigns recently sent to it; pushes segment tags
(Mailchimp tags, which are static segments) and draft campaigns targeting
those tags. See docs/connectors/mailchimp.md for what a user configures and
sees. Modules: ``mailchimp_api`` (host, 10-connection limit, parallel paging,
pages torn by changes read again), ``mailchimp_gate`` (the connection cap),
``mailchimp_listings`` (what a pull reads, its cursors), ``mailchimp_shapes``
(the documented shape of every answer parsed), ``mailchimp_tables`` (answers ->
canonical tables), ``mailchimp_push`` (tags, drafts), ``mailchimp_tags`` (tags
created once, never twice).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pandas as pd
from pydantic import Field

from segmerge.ports import (
    Action,
    ConfigError,
    ConnectorSettings,
    CredentialError,
    Destination,
    Outcome,
    SegmergeError,
    Source,
    Tables,
    _,
    number,
    secret_env_var,
)

from . import mailchimp_listings as ml
from . import mailchimp_tables as mt
from .mailchimp_api import MAX_CONNECTIONS, Api, Listing, Page, base_url_for, fields
from .mailchimp_push import EmailBook, Pusher
from .mailchimp_shapes import check

#: members changed this long before the previous pull started are read again: the
#: platform's clock and ours differ, and an upsert by contact_id makes a repeat harmless
OVERLAP = timedelta(minutes=5)
MERGE_TAGS = {"first_name": "FNAME", "last_name": "LNAME", "email": "EMAIL"}
STATS = "stats.member_count,stats.unsubscribe_count,stats.cleaned_count"
#: a check's merge fields, tags, stores and campaigns serve the pull that follows it
#: within this many seconds (a run checks, then pulls at once)
PREFETCH_SECONDS = 300.0
READ_TIMEOUT = 120.0
#: member pages repeat this many members of the page before: a few members changed while
#: the pages are read slide them no further than that (see mailchimp_api.torn)
MEMBER_OVERLAP = 10
#: members sorted by last change, oldest first, as Airbyte's source-mailchimp reads them
#: (manifest.yaml, base_incremental_stream: sort_field/sort_dir ASC)
MEMBER_ORDER = {"sort_field": "last_changed", "sort_dir": "ASC"}


class MailchimpSettings(ConnectorSettings):
    list_id: str = Field(min_length=1)
    base_url: str | None = None  # default: https://<dc>.api.mailchimp.com/3.0 from the key
    store_id: str | None = None  # e-commerce store; default: every store of the audience
    orders: bool = True
    events: bool = True
    events_days: int = Field(365, ge=0)  # campaigns sent in the last N days
    max_connections: int = Field(MAX_CONNECTIONS, ge=1, le=MAX_CONNECTIONS)
    #: seconds to wait for an answer: a page of 1,000 members with their merge fields
    #: takes Mailchimp a second or two, and tens of seconds on a slow day (the official
    #: SDK waits forever, Singer's tap-mailchimp 300 s); 120 s lets a slow page come
    #: while a dead connection is still noticed within minutes
    timeout: float = Field(READ_TIMEOUT, gt=0)
    retry_backoff: float = Field(0.5, gt=0)  # seconds; tests shrink it


class MailchimpConnector(Source, Destination):
    Settings: ClassVar[type[ConnectorSettings]] = MailchimpSettings
    description: ClassVar[str] = "a Mailchimp audience: members, e-commerce orders, activity"
    needs_secret: ClassVar[bool] = True
    accepts: ClassVar[frozenset[str]] = frozenset({"tag", "untag", "create_campaign"})
    idempotent: ClassVar[bool] = True
    # 16 segment calls of 500 e-mails: 8,000 so that the engine's ramp (a 16th, an 8th...
    # of it for the first and last batches) cuts whole calls of 500
    batch_size = 8_000
    # the next batches go out while the last calls of this one drain and the ledger
    # records it, so the 10 connections stay in use across batches (the Pusher is
    # thread-safe)
    concurrent_batches = 5

    settings: MailchimpSettings

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._api: Api | None = None
        self._pusher: Pusher | None = None
        self._emails = EmailBook()  # contact_id -> e-mail, from the last pull
        self._column_tags: dict[str, str] = {}  # column -> merge tag
        self._size_hint = 0  # members counted by check(), for the next pull
        # (when, listings, pages) of the first-wave listings check() read, for the next pull
        self._prefetched: tuple[float, dict[str, Listing], list[Page]] | None = None

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api(self) -> Api:
        if self._api is None:
            key = self.ctx.secret()
            if not key:
                raise CredentialError(
                    _("{source}: no Mailchimp API key").format(source=self.name),
                    field=self.name,
                    hint=_(
                        "`segmerge auth set {source}` stores it in the keyring (or set {env})"
                    ).format(source=self.name, env=secret_env_var(self.name)),
                )
            base = self.settings.base_url or base_url_for(
                key, source=self.name, config_file=self.ctx.config_file
            )
            try:
                hint = self.ctx.secret_origin()
            except Exception:  # where the key came from is a nicety, never a failure
                hint = None
            self._api = Api(
                self.name,
                base,
                key,
                connections=self.settings.max_connections,
                timeout=self.settings.timeout,
                backoff=self.settings.retry_backoff,
                credential_hint=hint,
            )
        return self._api

    @property
    def pusher(self) -> Pusher:
        if self._pusher is None:
            self._pusher = Pusher(self.api, self.settings.list_id, self.name, self._emails)
        return self._pusher

    @property
    def list_path(self) -> str:
        return f"/lists/{self.settings.list_id}"

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
            self._pusher = None

    # -- check ---------------------------------------------------------------------------

    def check(self) -> list[str]:
        """The key works (account root) and the audience exists in that account.

        Every run checks before it pulls, so the check also reads, in the same round
        trip, the pull's listings that do not depend on the audience's size (merge
        fields, tags, stores, recent campaigns): the pull that follows then asks every
        member page at once and starts no wave of its own for them."""
        started = datetime.now(UTC)
        side = self._side_listings(started)
        pool = self.api.pool
        root = pool.submit(self.api.get, "/", {"fields": "account_name,pricing_plan_type"})
        audience_call = pool.submit(
            self.api.request,
            "GET",
            self.list_path,
            params={"fields": f"id,name,{STATS}"},
            ok=(200, 404),
        )
        try:
            pages: list[Page] | None = self.api.collect(list(side.values()))
        except CredentialError:
            raise
        except SegmergeError:  # the pull reads them again, and reports what is wrong then
            pages = None
        account = root.result() or {}
        resp = audience_call.result()
        if resp.status_code == 404:
            raise ConfigError(
                _("{source}: no audience {audience} in the Mailchimp account {account}").format(
                    source=self.name,
                    audience=repr(self.settings.list_id),
                    account=repr(account.get("account_name", "?")),
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.list_id",
                hint=_("the audience id is under Audience > Settings > Audience name and defaults"),
            )
        audience = self.api.client.decode(resp, f"GET {self.list_path}") or {}
        self._size_hint = ml.audience_size(audience)  # lets the next pull plan its pages at once
        if pages is not None:
            self._prefetched = (time.monotonic(), side, pages)
        members = (audience.get("stats") or {}).get("member_count")
        return [
            f"{self.name}: account ok ({account.get('account_name', '?')}, plan "
            f"{account.get('pricing_plan_type', '?')}); audience {audience.get('name')!r}"
            + (f", {members} members" if members is not None else "")
        ]

    # -- pull ----------------------------------------------------------------------------

    def pull(self, since: str | None = None) -> Tables:
        """Members, orders and activity, in two waves of parallel requests: first the
        members (every page at once), merge fields, tags, stores and recent campaigns
        (unless the check just before read those); then the orders of those stores and
        the activity of those campaigns.

        Each stream resumes from its own cursor (``ctx.cursors``, else ``since``) and
        is handed to ``ctx.stream_done`` as soon as it is complete, so a later failure
        does not make the next run read it all again. The members' cursor is the
        latest ``last_changed`` read (Mailchimp's clock, not ours)."""
        started = datetime.now(UTC)
        cursors = {k: self.ctx.cursors.get(k) or since for k in ("contacts", "orders", "events")}
        cuts = {k: ml.parse_cursor(v, self.name) if v else None for k, v in cursors.items()}
        members_cut = cuts["contacts"]
        notes: list[str] = []
        params: dict[str, Any] = {"fields": fields("members", mt.MEMBER_FIELDS), **MEMBER_ORDER}
        if members_cut is not None:
            params["since_last_changed"] = (members_cut - OVERLAP).isoformat(timespec="seconds")
        members = Listing(
            f"{self.list_path}/members",
            "members",
            params,
            digest=lambda page: mt.member_columns(page, self.name),
            ident="id",
            overlap=MEMBER_OVERLAP,
        )
        if members_cut is None:  # plan every page at once from the audience's own counts
            members.expected = self._size_hint or self._audience_size()
        self._size_hint = 0
        side, pages = self._take_prefetched(started)
        pages = pages + self.api.collect([members, *([] if pages else side.values())])
        merge, segments = side["merge"], side["segments"]
        stores, campaigns = side.get("stores"), side.get("campaigns")
        of = lambda lst: [p for p in pages if p.listing is lst]  # noqa: E731
        merge_types = self._merge_types(of(merge))
        self.pusher.remember_segments(of(segments))
        contacts = mt.contacts(of(members), merge_types)
        self._emails.add_columns(contacts["contact_id"], contacts["email"])
        done = {"contacts": ml.latest_change(contacts["updated_at"], cursors["contacts"], started)}
        self.ctx.stream_done("contacts", contacts, done["contacts"])

        store_ids = (
            [self.settings.store_id]
            if self.settings.store_id
            else ml.store_ids(of(stores), self.settings.list_id, self.name)
        )
        if self.settings.orders and not store_ids:
            notes.append(
                _(
                    "{source}: no e-commerce store is connected to audience {audience}, "
                    "so no orders"
                ).format(source=self.name, audience=self.settings.list_id)
            )
        sent_at = ml.send_times(of(campaigns), self.name)
        since_of = {k: pd.Timestamp(c) if c is not None else None for k, c in cuts.items()}
        second = (ml.order_listings(store_ids) if self.settings.orders else []) + (
            ml.activity_listings(sent_at, since_of["events"]) if self.settings.events else []
        )
        later = self.api.collect(second) if second else []
        orders = mt.orders(
            [p for p in later if p.listing.key == "orders"], since_of["orders"], self.name
        )
        events = mt.events(
            [p for p in later if p.listing.key == "emails"],
            [p for p in later if p.listing.key == "unsubscribes"],
            sent_at,
            since_of["events"],
            self.name,
        )
        stamp = started.isoformat(timespec="seconds")
        for stream, frame, wanted in (
            ("orders", orders, self.settings.orders),
            ("events", events, self.settings.events),
        ):
            if wanted:
                done[stream] = stamp
                self.ctx.stream_done(stream, frame, stamp)
        if self.settings.events:
            horizon = started - timedelta(days=self.settings.events_days)
            notes.append(
                _("{source}: activity of {n} campaign(s) sent since {day}").format(
                    source=self.name, n=number(len(sent_at)), day=horizon.date().isoformat()
                )
            )
        if members_cut is not None:
            notes.insert(
                0,
                _("{source}: incremental pull, {n} member(s) changed since {since}").format(
                    source=self.name,
                    n=number(len(contacts)),
                    since=members_cut.isoformat(timespec="seconds"),
                ),
            )
        tables = Tables(contacts, orders, events, cursor=stamp, notes=notes, cursors=done)
        tables.incremental = any(c is not None for c in cuts.values())
        return tables

    def _side_listings(self, started: datetime) -> dict[str, Listing]:
        """The listings of a pull's first wave besides the members, by name."""
        side = {
            "merge": Listing(
                f"{self.list_path}/merge-fields",
                "merge_fields",
                {"fields": fields("merge_fields", ("tag", "type"))},
            ),
            "segments": self.pusher.segment_listing(),  # the tags, for the push that follows
        }
        if self.settings.orders and not self.settings.store_id:
            side["stores"] = Listing(
                "/ecommerce/stores", "stores", {"fields": fields("stores", ("id", "list_id"))}
            )
        if self.settings.events:
            horizon = started - timedelta(days=self.settings.events_days)
            side["campaigns"] = Listing(
                "/campaigns",
                "campaigns",
                {
                    "status": "sent",
                    "list_id": self.settings.list_id,
                    "since_send_time": horizon.isoformat(timespec="seconds"),
                    "fields": fields("campaigns", ("id", "send_time")),
                },
            )
        return side

    def _take_prefetched(self, started: datetime) -> tuple[dict[str, Listing], list[Page]]:
        """The listings the last check read and their pages, if it was a moment ago; else
        fresh listings and no pages. Used once: a later pull reads them again."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and time.monotonic() - prefetched[0] < PREFETCH_SECONDS:
            return prefetched[1], prefetched[2]
        return self._side_listings(started), []

    def _audience_size(self) -> int:
        """A lower bound of the members count (subscribed + unsubscribed + cleaned: Mailchimp
        does not count pending or transactional ones), from one small call."""
        return ml.audience_size(self.api.get(self.list_path, {"fields": STATS}))

    def _merge_types(self, pages: list[Page]) -> dict[str, str]:
        """Merge tag -> Mailchimp type; also remembers each column's merge tag."""
        kinds: dict[str, str] = {}
        for page in pages:
            check(page, self.name)
            kinds.update((f["tag"], f["type"]) for f in page.items)
        self._column_tags = {mt.column_for(tag): tag for tag in kinds}
        return kinds

    # -- push ----------------------------------------------------------------------------

    def merge_tag(self, column: str) -> str | None:
        """Mailchimp's merge tag for a contact column (``*|FNAME|*``), or None."""
        if column == "unsubscribe_url":
            return "*|UNSUB|*"
        tag = MERGE_TAGS.get(column) or self._column_tags.get(column)
        return f"*|{tag}|*" if tag else None

    def prepare(self, actions: Sequence[Action]) -> None:
        """Create the tags a first run adds, while the engine writes its plan: a new tag
        is a static segment whose id every call adding members to it needs, so its
        creation would otherwise hold the push's first round trip with nine of the ten
        connections idle."""
        tags = {a.payload.get("tag") for a in actions if a.kind == "tag"}
        self.pusher.create_missing(
            [t for t in tags if isinstance(t, str) and t.strip()], even_one=True
        )

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        tags = [a for a in actions if a.kind in ("tag", "untag")]
        drafts = [a for a in actions if a.kind == "create_campaign"]
        outcomes = [
            Outcome(
                a.key,
                "failed",
                f"{self.name}: Mailchimp cannot {a.kind} here (a tag is "
                "its static segment: use tag/untag)",
            )
            for a in actions
            if a.kind not in self.accepts
        ]
        if tags:
            outcomes.extend(self.pusher.tags(tags))
        if drafts:
            outcomes.extend(self.pusher.campaigns(drafts))
        return outcomes
