"""Per-segment letters: sandboxed Jinja, YAML front matter, strict variables.

Templates are user text, so they run in Jinja's immutable sandbox (no Python
internals, no mutating a list or dict) with HTML autoescaping; the subject,
the preheader and ``.txt.j2`` files are not escaped. Variables are strict:
a typo in ``contact.frist_name`` fails when the set is loaded (see
:mod:`segmerge.render.check`), and a contact whose value is null (None, NaN,
NaT, pd.NA) sees it *undefined*, so a letter that cannot be filled raises a
:class:`TemplateError` for that contact and is skipped, never sent
half-filled; ``| default(...)`` and ``is defined`` handle optional values.
A letter that never ends or eats memory is stopped the same way, for that
contact only (:mod:`segmerge.render.limits`), and a templated ``from`` or
``reply_to`` fills its name only (:mod:`segmerge.render.senders`).

Layout: ``<folder>/<segment>.html.j2`` or ``_default.html.j2``, an optional
``.txt.j2`` twin (else the text is derived from the HTML), and files starting
with ``_`` shared by ``extends`` / ``include`` / ``import`` from the folder or
from ``<folder>/../_shared/``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from segmerge.errors import TemplateError
from segmerge.i18n import _
from segmerge.render import compiled, frontmatter
from segmerge.render.check import Parsed, TemplateSecurityError, contact_fields, referenced
from segmerge.render.env import (
    ContactView,
    FolderLoader,
    Sandbox,
    StrictValues,
    autoescape,
    present_values,
)
from segmerge.render.errors import check_address, render_failure, syntax_error
from segmerge.render.filters import make_filters
from segmerge.render.front import Front
from segmerge.render.headers import front_value, mailbox, one_line
from segmerge.render.limits import Limits, check_clock, start
from segmerge.render.pool import render_many
from segmerge.render.rendered import RenderContext, Rendered
from segmerge.render.sandbox import LimitedSandbox
from segmerge.render.senders import Sender, split_templated
from segmerge.render.textpart import html_to_text
from segmerge.render.variants import check_subject_variants, file_variants

SHARED_FOLDER = "_shared"
_SEGMENT_NAME = re.compile(r"[^\W_][\w-]*")

__all__ = ["RenderContext", "Rendered", "TemplateError", "TemplateSecurityError", "TemplateSet"]


@dataclass
class _Letter:
    name: str
    segment: dict[str, str]
    html_file: str
    text_file: str | None
    html: jinja2.Template
    text: jinja2.Template | None
    subject: Front | str
    preheader: Front | str
    from_addr: Sender | str | None
    reply_to: Sender | str | None
    files: frozenset[str] = field(default_factory=frozenset)
    subject_variants: dict[str, Front | str] = field(default_factory=dict)


class TemplateSet:
    """The letters of one rule set, compiled and statically checked."""

    def __init__(
        self, folder: Path, spec: dict[str, Any], loader: FolderLoader, env: Sandbox
    ) -> None:
        self.folder = folder
        self.spec = spec  # what a worker process needs to load the same set again
        self._loader = loader
        self._env = env
        self._letters: dict[str, _Letter] = {}
        self._variants: dict[str, list[str]] = {}
        self._read: list[Parsed] = []  # every tree a letter renders: what it reads
        self.limits = Limits()

    @classmethod
    def load(
        cls,
        folder: Path,
        segments: Sequence[tuple[str, str]],
        *,
        locale: str = "fr_FR",
        tz: ZoneInfo,
        currency: str = "EUR",
        known_columns: Collection[str] | None,
        limits: Limits | None = None,
    ) -> TemplateSet:
        """Compile and check every segment's letter (``known_columns=None``: no column check).

        ``limits``: the time and size one letter may take (see :mod:`segmerge.render.limits`).
        """
        folder = Path(folder)
        known = frozenset(known_columns) if known_columns is not None else None
        limits = limits or Limits()
        spec = dict(
            folder=folder,
            segments=[tuple(s) for s in segments],
            locale=locale,
            tz=tz,
            currency=currency,
            known_columns=known,
            limits=limits,
        )
        search = [folder] + [p for p in (folder.parent / SHARED_FOLDER,) if p.is_dir()]
        loader = FolderLoader(search)
        env = LimitedSandbox(
            loader=loader,
            autoescape=autoescape,
            undefined=StrictValues,
            auto_reload=False,
            cache_size=-1,
            bytecode_cache=compiled.CODE_CACHE,  # compiled once per process
        )
        env.filters.update(make_filters(locale, tz, currency))
        self = cls(folder, spec, loader, env)
        self.limits = limits
        for name, label in segments:
            self._load_segment(name, label, known)
        return self

    def _load_segment(self, name: str, label: str, known: frozenset[str] | None) -> None:
        """A segment's letter, or its A/B variants: letter files or subject lines."""
        files = file_variants(self.folder, name)
        if files:
            for v in files:
                letter = self._compile_letter(name, label, known, stem=f"{name}.{v}")
                letter.segment = {"name": name, "label": label, "variant": v}
                self._letters[f"{name}.{v}"] = letter
            self._variants[name] = files
            return
        letter = self._compile_letter(name, label, known)
        if not letter.subject_variants:
            self._letters[name] = letter
            return
        check_subject_variants(letter.html_file, letter.subject_variants)
        for v, subject in sorted(letter.subject_variants.items()):
            one = replace(
                letter, subject=subject, segment={"name": name, "label": label, "variant": v}
            )
            self._letters[f"{name}.{v}"] = one
        self._variants[name] = sorted(letter.subject_variants)

    def variants(self, segment: str) -> list[str]:
        """The A/B variants of a segment's letter, [] when it has one letter."""
        return list(self._variants.get(segment, []))

    def letter_keys(self, segment: str) -> list[str]:
        """Every letter of a segment: itself, or each of its variants."""
        return [self.letter_key(segment, v) for v in self.variants(segment)] or [segment]

    def letter_key(self, segment: str, variant: str | None) -> str:
        return f"{segment}.{variant}" if variant else segment

    def with_filters(self, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> TemplateSet:
        """The same letters compiled again where every filter is ``wrap(filter)`` (a draft's
        merge tags pass through them), without the column check; this set is unchanged."""
        other = copy.copy(self)
        other._env = self._env.overlay(cache_size=-1)  # a cache of its own: filters bind at compile
        other._env.filters = {k: wrap(f) for k, f in self._env.filters.items()}
        other._letters, other._variants, other._read = {}, {}, []
        for name, label in self.spec["segments"]:
            other._load_segment(name, label, None)
        return other

    # -- loading -----------------------------------------------------------------------------

    def _pick(self, segment: str, suffix: str) -> Path | None:
        for candidate in (f"{segment}.{suffix}", f"_default.{suffix}"):
            if (self.folder / candidate).is_file():
                return self.folder / candidate
        return None

    def _compile_letter(
        self, name: str, label: str, known: frozenset[str] | None, stem: str | None = None
    ) -> _Letter:
        if not _SEGMENT_NAME.fullmatch(name):
            raise TemplateError(
                _("segment name {name} cannot name a template file").format(name=repr(name)),
                file=self.folder,
                field=name,
                hint=_("letters, digits, '-' and '_', not starting with '_' (those are partials)"),
            )
        html_path = self._pick(stem or name, "html.j2")
        if html_path is None:
            raise TemplateError(
                _("segment {name} has no template in {folder}").format(
                    name=repr(name), folder=self.folder
                ),
                file=self.folder,
                field=name,
                hint=_(
                    "add {name}.html.j2 (or _default.html.j2 for every segment without one)"
                ).format(name=name),
            )
        text_path = self._pick(stem or name, "txt.j2")
        split = self._loader.split(html_path)
        if "subject" not in split.fields:
            raise TemplateError(
                _("the front matter needs a `subject:`"),
                file=html_path,
                line=1,
                field="subject",
                hint=_('start the file with ---, subject: "...", ---'),
            )
        if text_path is not None and self._loader.split(text_path).has_front_matter:
            raise TemplateError(
                _("front matter belongs in the .html.j2 file, not in the text twin"),
                file=text_path,
                line=1,
            )
        html, html_units = self._get(html_path)
        compiled.check(html_units, known, self._env.globals)
        text, text_units = self._get(text_path) if text_path else (None, [])
        compiled.check(text_units, known, self._env.globals)
        self._read += html_units + text_units
        values: dict[str, Any] = {}
        subject_variants: dict[str, Front | str] = {}
        for key, f in split.fields.items():
            variant = frontmatter.VARIANT_KEY.match(key)
            if variant:
                subject_variants[variant.group(1)] = self._front(html_path, f, known)
            else:
                values[key] = self._front(html_path, f, known)
        for key in ("from", "reply_to"):
            given = split.fields.get(key)
            if given is not None and not isinstance(values[key], str):
                name, addr = split_templated(given, html_path, key)
                named = self._front(html_path, replace(given, value=name), known)
                values[key] = Sender(named, addr)
            check_address(values.get(key), html_path, given, key)
        return _Letter(
            name=name,
            segment={"name": name, "label": label},
            html_file=str(html_path),
            text_file=str(text_path) if text_path else None,
            html=html,
            text=text,
            subject=values["subject"],
            preheader=values.get("preheader", ""),
            from_addr=values.get("from"),
            reply_to=values.get("reply_to"),
            files=frozenset(p.file for p in html_units + text_units) | {str(html_path)},
            subject_variants=subject_variants,
        )

    def _get(self, path: Path) -> tuple[jinja2.Template, list[Parsed]]:
        """Compile a file; parse it and everything it references, for the checks."""
        units: list[Parsed] = []
        self._parse_tree(path.name, units, seen=set(), origin=str(path))
        try:
            return self._env.get_template(path.name), units
        except jinja2.TemplateSyntaxError as exc:
            raise syntax_error(exc, str(path)) from None

    def _parse_tree(self, name: str, units: list[Parsed], seen: set[str], origin: str) -> None:
        path = self._loader.find(name)
        if path is None:
            raise TemplateError(
                _("template {name} not found in {folders}").format(
                    name=repr(name), folders=", ".join(str(s) for s in self._loader.search)
                ),
                file=origin,
            )
        if str(path) in seen:
            return
        seen.add(str(path))
        body = self._loader.split(path).body
        try:
            tree = compiled.parse(self._env, body, name, str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise syntax_error(exc, str(path)) from None
        parsed = Parsed(str(path), tree)
        if all(u.file != parsed.file for u in units):
            units.append(parsed)
        for ref in referenced(parsed):
            self._parse_tree(ref, units, seen, str(path))

    def _front(
        self, path: Path, f: frontmatter.FrontField, known: frozenset[str] | None
    ) -> Front | str:
        """A front-matter value: a template (padded so lines match the file) or constant text.

        It is rendered on its own, so it is checked on its own: a name set in the body
        is not visible in the subject.
        """
        if "{" not in f.value:
            return one_line(f.value)
        source = "\n" * (f.line - 1) + f.value
        try:
            tree = compiled.parse(self._env, source, None, str(path))
            self._read.append(Parsed(str(path), tree))
            compiled.check(self._read[-1:], known, self._env.globals)
            code = compiled.compile_code(self._env, source, str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise syntax_error(exc, str(path)) from None
        globals_ = self._env.make_globals(None)
        return Front(self._env.template_class.from_code(self._env, code, globals_), tree)

    # -- rendering ---------------------------------------------------------------------------

    @property
    def segments(self) -> list[str]:
        return [name for name, _ in self.spec["segments"]]

    def contact_fields(self) -> set[str] | None:
        """The columns a contact's letters can read (None: any of them); see ``check``."""
        fields = contact_fields(self._read)
        return None if fields is None else fields | {"contact_id"}  # errors name the contact

    def template_for(self, segment_name: str) -> str:
        """The .html.j2 file a segment's letter comes from, for reports."""
        return self._letter(segment_name).html_file

    def _letter(self, segment_name: str) -> _Letter:
        try:
            return self._letters[segment_name]
        except KeyError:
            raise TemplateError(
                _("no letter loaded for segment {name}").format(name=repr(segment_name)),
                file=self.folder,
            ) from None

    def render(self, segment_name: str, contact: Mapping[str, Any], ctx: RenderContext) -> Rendered:
        """One contact's letter; a TemplateError (file, line, field) if it cannot be filled."""
        return self.render_row(segment_name, contact, ctx.campaign, ctx.today, ctx.unsubscribe_url)

    def render_row(
        self,
        segment_name: str,
        contact: Mapping[str, Any],
        campaign: Mapping[str, Any],
        today: date,
        unsubscribe_url: str,
        limits: Limits | None = None,
    ) -> Rendered:
        """:meth:`render` with the context's parts apart, as the pool renders a batch: no
        RenderContext per contact; ``limits`` overrides the set's for this letter."""
        letter = self._letter(segment_name)
        view = ContactView()
        view.__dict__ = present_values(contact)
        variables = {
            "contact": view,
            "segment": letter.segment,
            "campaign": campaign,
            "unsubscribe_url": unsubscribe_url,
            "today": today,
        }
        start(limits or self.limits)
        try:
            subject = front_value(letter.subject, variables)
            preheader = front_value(letter.preheader, variables)
            html = letter.html.render(variables).strip()
            if letter.text is not None:
                text = letter.text.render(variables).strip()
            else:
                text = html_to_text(html, check_clock)
            from_addr = mailbox(letter.from_addr, variables)
            reply_to = mailbox(letter.reply_to, variables)
        except Exception as exc:  # noqa: BLE001 - every failure becomes this contact's report
            raise render_failure(exc, letter.files, letter.html_file, contact) from None
        if not subject:
            raise TemplateError(
                _("contact {contact}: the subject is empty").format(
                    contact=contact.get("contact_id", "?")
                ),
                file=letter.html_file,
                field="subject",
            )
        return Rendered(subject, preheader, html, text, from_addr, reply_to, letter.html_file)

    def render_many(
        self,
        items: Sequence[tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str]],
        ctx: RenderContext | Sequence[RenderContext] | Callable[[Mapping[str, Any]], RenderContext],
        *,
        workers: int | None = None,
    ) -> list[Rendered | TemplateError]:
        """Many letters, in order, one result per item: a Rendered or that contact's
        TemplateError (see :func:`segmerge.render.pool.render_many`)."""
        return render_many(self, items, ctx, workers=workers)
