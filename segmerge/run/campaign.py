"""A campaign, opened: its rule set, templates, source and destination, all checked.

Opening a campaign validates everything that can be validated without
sending: that is what `segmerge validate` does and what every run does first,
so that a typo fails before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmerge.errors import ConfigError, TemplateError
from segmerge.i18n import _
from segmerge.ledger.health import signing_key
from segmerge.mail.message import build_message, check_message
from segmerge.mail.tokens import unsubscribe_token
from segmerge.ports import registry
from segmerge.ports.connector import Connector, Destination, Source
from segmerge.ports.schema import Tables
from segmerge.render.limits import Limits
from segmerge.render.templates import RenderContext, Rendered, TemplateSet
from segmerge.render.variants import assign, unit_hash, units
from segmerge.rules import RuleSet, load_ruleset
from segmerge.run.columns import MESSAGES, in_source, letter_columns, run_columns
from segmerge.run.experiment_check import check_experiment
from segmerge.run.letter_check import Headers
from segmerge.run.memory import release_memory
from segmerge.segment.segmentation import (
    Segmented,
    connector_context,
    open_source,
    pull_source,
    rules_file,
    segment,
)
from segmerge.workspace.config import CampaignConfig, Workspace


@dataclass
class OpenCampaign:
    ws: Workspace
    name: str
    config: CampaignConfig
    seg: Segmented
    templates: TemplateSet
    source: Source
    destination: Destination
    tag_destination: Destination | None
    checks: list[str] = field(default_factory=list)  # what the connectors' checks said
    #: the contact columns the letters read (segmerge.run.columns), None: unknown
    letter_reads: set[str] | None = None
    _groups: tuple[np.ndarray, pd.Series] | None = field(default=None, repr=False)
    _units: pd.Series | None = field(default=None, repr=False)
    _variants: dict[str, list[str]] | None = field(default=None, repr=False)

    def units(self) -> pd.Series:
        """Per contact row, what its groups are drawn for: its mailbox (see variants)."""
        if self._units is None:
            self._units = units(self.seg.frame)
        return self._units

    def variants(self) -> dict[str, list[str]]:
        """Each segment's A/B variants ([] for a segment with one letter)."""
        if self._variants is None:
            self._variants = {s: self.templates.variants(s) for s in self.templates.segments}
        return self._variants

    def groups(self) -> tuple[np.ndarray, pd.Series]:
        """Per contact row: in the holdout?, and the A/B variant of its letter (or None)."""
        if self._groups is None:
            self._groups = assign(
                self.units(),
                self.seg.assignment.primary,
                self.name,
                self.config.holdout,
                self.variants(),
            )
        return self._groups

    def variant_pick(self) -> np.ndarray:
        """The hash ``groups()`` picks variants from, for the segments a contact is in
        besides its first (tags of every segment follow the same draw)."""
        return unit_hash(self.units(), f"{self.name}#variant")

    def letter_of(self, row: int, segment: str) -> tuple[str, str | None]:
        """The letter key (``fonceurs`` or ``fonceurs.B``) and variant of a contact row.
        A segment with one letter draws nothing: the whole base's mailboxes are not
        hashed for it (some 150 MiB at a million contacts)."""
        if not self.variants().get(segment):
            return self.templates.letter_key(segment, None), None
        v = self.groups()[1].iat[row]
        variant = str(v) if v is not None else None
        return self.templates.letter_key(segment, variant), variant

    def letters_of(
        self, rows: list[int], segments: list[str]
    ) -> tuple[list[str], list[str | None]]:
        """:meth:`letter_of` for a chunk's rows: each one's letter key and variant. Segments
        with one letter (most) are looked up once per chunk, not once per contact."""
        variants = self.variants()
        keys = {s: self.templates.letter_key(s, None) for s in set(segments) if not variants.get(s)}
        if len(keys) == len(set(segments)):
            return [keys[s] for s in segments], [None] * len(segments)
        picked = [self.letter_of(i, s) for i, s in zip(rows, segments, strict=True)]
        return [p[0] for p in picked], [p[1] for p in picked]

    def forget_unread(self, *, consented: bool = False) -> None:
        """Drop the contacts' columns no letter, consent check or message reads, once a dry
        run has counted its tags: the tags (a million lists, some 65 MiB), and dates
        and metrics that only segmenting needed, are not held while the letters are made.
        ``consented``: the sends are chosen, so the addresses (the letters have their
        own, normalised) and ``subscribed`` go too, unless a letter reads them."""
        if self.letter_reads is None:
            return
        keep = {"contact_id", *MESSAGES, *self.letter_reads}
        if consented:
            if any(self.variants().values()):
                self.groups()  # drawn from the mailboxes, before the addresses go
            keep = {"contact_id", "first_name", "last_name", *self.letter_reads}
        seg = self.seg
        drop = [c for c in seg.frame.columns if c not in keep]
        if not drop:
            return
        seg.frame = seg.frame.drop(columns=drop)
        contacts = seg.tables.contacts
        seg.tables.contacts = contacts.drop(columns=[c for c in drop if c in contacts.columns])
        release_memory()

    @property
    def sender(self) -> str:
        return self.config.from_ or self.ws.config.mail.from_

    def render_context(self, contact_id: str, key: bytes | None) -> RenderContext:
        return RenderContext(
            campaign={"name": self.name, "id": self.name, "description": self.config.description},
            today=self.seg.as_of.tz_convert(self.ws.tz).date(),
            unsubscribe_url=self.unsubscribe_url(contact_id, key),
        )

    def unsubscribe_url(self, contact_id: str, key: bytes | None) -> str:
        """The contact's signed one-click link (what :meth:`render_context` carries)."""
        token = unsubscribe_token(key, contact_id)
        return self.ws.config.mail.unsubscribe_url.replace("{token}", token)

    def unsubscribe_urls(self, contact_ids: list[str], key: bytes | None) -> list[str]:
        """:meth:`unsubscribe_url` for a chunk of contacts."""
        head, token, tail = self.ws.config.mail.unsubscribe_url.partition("{token}")
        if not token or "{token}" in tail:
            return [self.unsubscribe_url(c, key) for c in contact_ids]
        return [f"{head}{unsubscribe_token(key, c)}{tail}" for c in contact_ids]

    def message(
        self,
        r: Rendered,
        *,
        to: str,
        contact: Mapping[str, Any] | None,
        key: str,
        unsubscribe_url: str,
        segment: str,
        variant: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Message:
        """A contact's message as a run sends it: what `run`, `render`, `preview` and
        `test-send` all show must be built in this one place, or they drift apart."""
        args = self.headers().args(r, to, contact, key, unsubscribe_url, segment, variant)
        args["extra_headers"].update(extra_headers or {})
        return build_message(r, **args)

    def check_message(
        self,
        r: Rendered,
        *,
        to: str,
        contact: Mapping[str, Any] | None,
        key: str,
        unsubscribe_url: str,
        segment: str,
        variant: str | None = None,
    ) -> None:
        """What :meth:`message` refuses (a MessageError), without building the message:
        a dry run proves each letter could be sent, and keeps none."""
        check_message(
            r, **self.headers().args(r, to, contact, key, unsubscribe_url, segment, variant)
        )

    def headers(self) -> Headers:
        """What every message of this campaign carries (picklable: a dry run's render
        workers check the letters they render with it)."""
        mail = self.ws.config.mail
        return Headers(
            self.name,
            self.sender,
            self.config.reply_to,
            mail.message_id_domain,
            mail.unsubscribe_mailto,
        )

    def close(self) -> None:
        self.source.close()
        if self.destination is not self.source:
            self.destination.close()


def open_destination(ws: Workspace, name: str, source: Source, source_name: str) -> Destination:
    if name == source_name and isinstance(source, Destination):
        return source
    if name in ws.config.destinations:
        ref = ws.config.destinations[name]
        conn = registry.create(ref.connector, connector_context(ws, name, "destination"))
    elif name in ws.config.sources:
        ref = ws.config.sources[name]
        conn = registry.create(ref.connector, connector_context(ws, name, "source"))
    else:
        raise ConfigError(_("no destination {name!r}").format(name=name), file=ws.config_file)
    if not isinstance(conn, Destination):
        raise ConfigError(
            _("connector {connector!r} cannot be a destination").format(connector=ref.connector),
            file=ws.config_file,
            field=name,
        )
    return conn


def open_campaign(
    ws: Workspace,
    name: str,
    *,
    as_of: str | None = None,
    full_refresh: bool = False,
    keep_pull: bool = False,
    pulled: dict[str, Tables] | None = None,
    lean: bool = False,
) -> OpenCampaign:
    """``keep_pull``: keep the pulled streams in the snapshot as they come (a real run).
    ``pulled``: the tables one command already pulled, by source (filled here), so that
    its campaigns on one source pull it once (`validate`: the demo's three).
    ``lean``: the frame keeps only what a run reads (segmerge.run.columns; a real run,
    ``keep_pull``, also keeps what the rules read), when the source segments in its
    database; `validate` and the previews keep every column.

    The rule set is loaded and the template folder looked for before the source is
    pulled: a typo fails in milliseconds, not after minutes and API quota of a pull."""
    cfg = ws.campaign(name)
    ruleset = load_ruleset(rules_file(ws, cfg.rules))
    folder = _templates_folder(ws, cfg, name)
    _load_templates(ws, folder, ruleset, None)  # their syntax; their columns once pulled
    source = open_source(ws, cfg.source)
    checks = _check(source)
    tables = None  # a source with a SQL dialect segments in its database
    if source.dialect is None:
        tables = (pulled or {}).get(cfg.source)
        if tables is None:
            tables = pull_source(ws, source, full_refresh=full_refresh, keep=keep_pull)
        if pulled is not None:
            pulled[cfg.source] = tables
    letters = letter_columns(folder) if lean else None
    columns = None
    if letters is not None and tables is None:
        columns = _run_columns(source, letters, ruleset if keep_pull else None)
    seg = segment(
        ws,
        cfg.rules,
        source_name=cfg.source,
        as_of=as_of,
        tables=tables,
        source=source,
        columns=columns,
        ruleset=ruleset,
    )
    release_memory()
    destination = open_destination(ws, cfg.destination, source, cfg.source)
    if destination is not source:
        checks.extend(_check(destination))
    tag_dest = source if isinstance(source, Destination) and "tag" in source.accepts else None
    if not cfg.push_tags:
        tag_dest = None
    templates = _load_templates(ws, folder, ruleset, set(seg.frame.columns))
    if "send" in destination.accepts and not (cfg.from_ or ws.config.mail.from_):
        raise ConfigError(
            _("no sender address"),
            file=ws.config_file,
            field=f"campaigns.{name}.from",
            hint=_('set `from = "Shop <hello@example.org>"` in the campaign or in [mail]'),
        )
    camp = OpenCampaign(ws, name, cfg, seg, templates, source, destination, tag_dest, checks)
    camp.letter_reads = letters
    try:
        check_experiment(ws, name, cfg, destination, tag_dest, camp.variants())
    except ConfigError:
        camp.close()
        raise
    return camp


def _templates_folder(ws: Workspace, cfg: CampaignConfig, name: str) -> Path:
    """The campaign's template folder, refused when missing (no data needed to tell)."""
    folder = ws.templates_dir(cfg)
    if not folder.is_dir():
        raise TemplateError(
            _("template folder {value} not found").format(value=ws.relative(folder)),
            file=ws.config_file,
            field=f"campaigns.{name}.templates",
        )
    return folder


def _load_templates(
    ws: Workspace, folder: Path, ruleset: RuleSet, known: set[str] | None
) -> TemplateSet:
    """The campaign's letters, compiled and checked (``known``: the columns they may read,
    None: all but that, which needs no data)."""
    return TemplateSet.load(
        folder,
        [(s.name, s.label) for s in ruleset.segments],
        locale=ws.config.locale,
        tz=ws.tz,
        currency=ws.config.currency,
        known_columns=known,
        limits=Limits(ws.config.mail.render_timeout, ws.config.mail.max_letter_size),
    )


def _run_columns(source: Source, letters: set[str], ruleset: RuleSet | None) -> set[str] | None:
    """What a run reads of the contacts (None: everything): the letters' columns, and
    the ``ruleset``'s when given (a real run keeps them). A platform that reports list
    memberships keeps them all: its ``lists`` column is not always there."""
    if isinstance(source, Destination) and "add_to_list" in source.accepts:
        return None
    return in_source(run_columns(letters, ruleset), source)


def _check(conn: Connector) -> list[str]:
    """The connector's own cheap check, and where its credential came from."""
    notes = list(conn.check())
    if conn.needs_secret:
        origin = conn.ctx.secret_origin()
        notes.append(f"{conn.name}: credential from {origin or 'nowhere'}")
    return notes


def sample_contacts(camp: OpenCampaign) -> dict[str, int | None]:
    """For each segment, the row of its fullest contact (most non-null values), for validation."""
    frame = camp.seg.frame
    filled = frame.notna().sum(axis=1).to_numpy()
    out: dict[str, int | None] = {}
    for s in camp.seg.ruleset.segments:
        rows = np.flatnonzero(camp.seg.assignment.matrix[s.name].to_numpy(dtype=bool))
        out[s.name] = int(rows[filled[rows].argmax()]) if len(rows) else None
    return out


def validate_templates(camp: OpenCampaign) -> list[str]:
    """Render every segment's template against a real contact of that segment.

    A segment nobody is in is rendered against the fullest contact of the
    base, so a typo in its letter is still caught before the day it fills up.
    """
    notes: list[str] = []
    key = signing_key(camp.ws.state_dir, create=False)
    frame = camp.seg.frame
    fallback = int(frame.notna().sum(axis=1).to_numpy().argmax()) if len(frame) else None
    for seg_name, row in sample_contacts(camp).items():
        idx = row if row is not None else fallback
        if idx is None:
            notes.append(f"segment {seg_name}: no contact at all to render with")
            continue
        if row is None:
            notes.append(f"segment {seg_name} is empty; its letter was checked on another contact")
        contact = contact_record(frame, idx)
        ctx = camp.render_context(contact["contact_id"], key)
        for letter in camp.templates.letter_keys(seg_name):
            camp.templates.render(letter, contact, ctx)
    return notes


def contact_record(frame: pd.DataFrame, idx: int) -> dict:
    return frame.iloc[idx].to_dict()
