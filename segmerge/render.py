"""Per-segment letters: sandboxed Jinja, YAML front matter, strict variables.

Templates are user text, so they run in Jinja's immutable sandbox with HTML
autoescaping. Variables are strict: a typo in `contact.frist_name` fails at
validation (checked statically against the known columns), and a contact
whose value is empty is *undefined* in the template, so a letter that cannot
be filled fails for that contact and is skipped, never sent half-filled.
"""

from __future__ import annotations

import difflib
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .errors import TemplateError
from .filters import register_filters
from .textpart import html_to_text

ALLOWED_GLOBALS = {"contact", "segment", "campaign", "unsubscribe_url", "today"}
FRONT_MATTER_KEYS = {"subject", "preheader", "from", "reply_to"}
SHARED_FOLDER = "_shared"


@dataclass(frozen=True)
class RenderContext:
    campaign: dict[str, Any]
    today: date
    unsubscribe_url: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str
    from_addr: str | None
    reply_to: str | None
    template: str


@dataclass
class _Letter:
    html_file: Path
    text_file: Path | None
    front: dict[str, str]
    html: jinja2.Template
    text: jinja2.Template | None
    subject: jinja2.Template
    preheader: jinja2.Template | None
    labels: dict[str, str] = field(default_factory=dict)


def split_front_matter(source: str, file: Path) -> tuple[dict[str, str], str]:
    """YAML between `---` lines at the top; the body keeps its line numbers (blank lines)."""
    if not source.startswith("---"):
        return {}, source
    lines = source.splitlines(keepends=True)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise TemplateError("front matter opened with --- is never closed", file=file, line=1)
    try:
        data = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise TemplateError(
            f"front matter is not valid YAML: {exc}", file=file, line=line
        ) from None
    if not isinstance(data, dict):
        raise TemplateError("front matter must be `key: value` lines", file=file, line=2)
    unknown = set(data) - FRONT_MATTER_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise TemplateError(
            f"unknown front matter key {key!r} (expected {', '.join(sorted(FRONT_MATTER_KEYS))})",
            file=file,
            line=_line_of(lines, key),
            field=key,
        )
    body = "\n" * (end + 1) + "".join(lines[end + 1 :])
    return {k: str(v) for k, v in data.items()}, body


def _line_of(lines: list[str], key: str) -> int | None:
    return next((i + 1 for i, ln in enumerate(lines) if ln.lstrip().startswith(f"{key}:")), None)


class _Loader(jinja2.FileSystemLoader):
    """A file-system loader that hides front matter from Jinja (keeping line numbers)."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        _, body = split_front_matter(source, Path(filename))
        return body, filename, uptodate


class TemplateSet:
    """The letters of one rule set, compiled and statically checked."""

    def __init__(self, folder: Path, letters: dict[str, _Letter], labels: dict[str, str]) -> None:
        self.folder = folder
        self.letters = letters
        self.labels = labels

    @classmethod
    def load(
        cls,
        folder: Path,
        segments: list[tuple[str, str]],
        *,
        locale: str = "fr_FR",
        tz: tzinfo,
        currency: str = "EUR",
        known_columns: set[str],
    ) -> TemplateSet:
        search = [str(folder)]
        if (folder.parent / SHARED_FOLDER).is_dir():
            search.append(str(folder.parent / SHARED_FOLDER))
        html_env = ImmutableSandboxedEnvironment(
            loader=_Loader(search), autoescape=True, undefined=jinja2.StrictUndefined
        )
        text_env = ImmutableSandboxedEnvironment(
            loader=_Loader(search), autoescape=False, undefined=jinja2.StrictUndefined
        )
        for env in (html_env, text_env):
            register_filters(env, locale=locale, tz=tz, currency=currency)
        letters: dict[str, _Letter] = {}
        for name, _label in segments:
            html_file = _pick(folder, name, "html.j2")
            if html_file is None:
                raise TemplateError(
                    f"segment {name!r} has no template: add {name}.html.j2 or _default.html.j2",
                    file=folder,
                    field=name,
                )
            text_file = _pick(folder, name, "txt.j2")
            front, _ = split_front_matter(html_file.read_text(encoding="utf-8"), html_file)
            if "subject" not in front:
                raise TemplateError("front matter needs a `subject:`", file=html_file, line=1)
            html = _compile(html_env, html_file.name, html_file, known_columns)
            text = (
                _compile(text_env, text_file.name, text_file, known_columns) if text_file else None
            )
            subject = _compile_string(text_env, front["subject"], html_file, known_columns)
            pre = front.get("preheader")
            preheader = _compile_string(text_env, pre, html_file, known_columns) if pre else None
            letters[name] = _Letter(html_file, text_file, front, html, text, subject, preheader)
        return cls(folder, letters, dict(segments))

    def template_for(self, segment: str) -> str:
        return str(self.letters[segment].html_file)

    def render(self, segment: str, contact: dict[str, Any], ctx: RenderContext) -> Rendered:
        letter = self.letters[segment]
        variables = {
            "contact": defined_values(contact),
            "segment": {"name": segment, "label": self.labels.get(segment, segment)},
            "campaign": ctx.campaign,
            "unsubscribe_url": ctx.unsubscribe_url,
            "today": ctx.today,
        }
        file = letter.html_file
        try:
            subject = " ".join(letter.subject.render(variables).split())
            preheader = letter.preheader.render(variables).strip() if letter.preheader else ""
            html = letter.html.render(variables).lstrip("\n")
            if letter.text is not None:
                file = letter.text_file or file
                text = letter.text.render(variables)
            else:
                text = html_to_text(html)
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"contact {contact.get('contact_id')}: {_undefined_message(exc)}",
                file=file,
                line=_template_line(exc, file),
            ) from None
        except SecurityError as exc:
            raise TemplateError(f"unsafe template operation: {exc}", file=file) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(str(exc), file=file, line=_template_line(exc, file)) from None
        return Rendered(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            from_addr=letter.front.get("from"),
            reply_to=letter.front.get("reply_to"),
            template=str(letter.html_file),
        )


def defined_values(contact: dict[str, Any]) -> dict[str, Any]:
    """Drop null values so that the template sees them as undefined (strict)."""
    out: dict[str, Any] = {}
    for k, v in contact.items():
        if v is None or v is _NA or (isinstance(v, float) and math.isnan(v)):
            continue
        if type(v).__name__ in ("NaTType", "NAType"):
            continue
        out[str(k)] = v
    return out


_NA = object()


def _pick(folder: Path, segment: str, suffix: str) -> Path | None:
    for name in (f"{segment}.{suffix}", f"_default.{suffix}"):
        if (folder / name).is_file():
            return folder / name
    return None


def _compile(env: jinja2.Environment, name: str, file: Path, known: set[str]) -> jinja2.Template:
    try:
        body = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
        tree = env.parse(body, name, str(file))
        _check_names(tree, file, known)
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), file=file, line=exc.lineno) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"included template {exc.name!r} not found", file=file) from None


def _compile_string(
    env: jinja2.Environment, source: str, file: Path, known: set[str]
) -> jinja2.Template:
    try:
        _check_names(env.parse(source), file, known)
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"in the subject: {exc.message}", file=file, line=1) from None


def _check_names(tree: nodes.Template, file: Path, known: set[str]) -> None:
    unknown = meta.find_undeclared_variables(tree) - ALLOWED_GLOBALS
    if unknown:
        name = sorted(unknown)[0]
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
        close = difflib.get_close_matches(name, sorted(ALLOWED_GLOBALS), n=1)
        raise TemplateError(
            f"unknown variable {name!r}",
            file=file,
            line=line,
            field=name,
            hint=f"did you mean {close[0]}?"
            if close
            else "variables: " + ", ".join(sorted(ALLOWED_GLOBALS)),
        )
    for node in tree.find_all(nodes.Getattr):
        is_contact = isinstance(node.node, nodes.Name) and node.node.name == "contact"
        if is_contact:
            if node.attr not in known:
                close = difflib.get_close_matches(node.attr, sorted(known), n=3)
                raise TemplateError(
                    f"contact has no column or metric {node.attr!r}",
                    file=file,
                    line=node.lineno,
                    field=f"contact.{node.attr}",
                    hint=f"did you mean {', '.join(close)}?" if close else None,
                )


def _undefined_message(exc: jinja2.UndefinedError) -> str:
    msg = str(exc)
    if "has no attribute" in msg and "dict object" in msg:
        attr = msg.split("has no attribute", 1)[1].strip().strip("'")
        return f"the value of {attr!r} is empty (use `| default(...)` in the template)"
    return msg


def _template_line(exc: BaseException, file: Path) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and Path(frame.filename).name == file.name:
            return frame.lineno
    return None
