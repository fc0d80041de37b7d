"""The YAML front matter at the top of a segment template.

Marketers keep the subject line, the preheader and an optional sender next to
the letter they belong to, so that one file is one message. The front matter is
replaced by as many blank lines as it had, so that Jinja's own line numbers
(in syntax errors and at render time) are the lines of the file the user edits.

Values are read from the YAML node tree rather than from ``yaml.safe_load``:
``subject: 2026`` stays the text "2026" and ``subject: yes`` stays "yes"
(no YAML 1.1 surprise), and each value keeps the line it starts on.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from segmerge.errors import TemplateError
from segmerge.i18n import _

#: The keys a front matter may hold; anything else is a typo. A subject-only A/B test
#: adds ``subject.A``, ``subject.B``... (see :data:`VARIANT_KEY`).
FRONT_KEYS = ("subject", "preheader", "from", "reply_to")
VARIANT_KEY = re.compile(r"^subject\.([A-Za-z0-9]{1,8})$")

_FENCE = re.compile(r"^---[ \t]*$")


@dataclass(frozen=True)
class FrontField:
    """One front-matter value and the 1-based line of the file it starts on."""

    value: str
    line: int


@dataclass(frozen=True)
class Split:
    """A template file cut in two: its front matter and its Jinja body."""

    body: str
    fields: dict[str, FrontField] = field(default_factory=dict)
    has_front_matter: bool = False


def read_text(path: Path) -> str:
    """A template file as text: UTF-8 (a BOM is tolerated), newlines normalised."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(
            _("cannot read the template: {problem}").format(problem=exc.strerror or exc), file=path
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TemplateError(
            _("the template is not UTF-8 text"),
            file=path,
            line=line,
            hint=_("save it as UTF-8 in your editor"),
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split(text: str, file: str | Path) -> Split:
    """Separate the front matter (``---`` ... ``---`` on the first lines) from the body."""
    lines = text.split("\n")
    if not lines or not _FENCE.match(lines[0]):
        return Split(body=text)
    end = next((i for i in range(1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        raise TemplateError(
            _("the front matter opened with '---' on line 1 is never closed"),
            file=file,
            line=1,
            hint=_("end it with a line holding only '---'"),
        )
    yaml_text = "\n".join(lines[1:end])
    fields = _parse(yaml_text, file)
    body = "\n" * (end + 1) + "\n".join(lines[end + 1 :])
    return Split(body=body, fields=fields, has_front_matter=True)


def _parse(yaml_text: str, file: str | Path) -> dict[str, FrontField]:
    try:
        root = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TemplateError(
            _("the front matter is not valid YAML: {problem}").format(problem=exc.problem or exc),
            file=file,
            line=mark.line + 2 if mark else 1,
            column=mark.column + 1 if mark else None,
            hint=_(
                'quote a value holding `: ` or `{{`, e.g. `subject: "{{ contact.first_name }} ..."`'
            ),
        ) from None
    except yaml.YAMLError as exc:
        raise TemplateError(
            _("the front matter is not valid YAML: {problem}").format(problem=exc),
            file=file,
            line=1,
        ) from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise TemplateError(
            _("the front matter must be `key: value` lines (subject, preheader, from, reply_to)"),
            file=file,
            line=root.start_mark.line + 2,
        )
    fields: dict[str, FrontField] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 2  # +1 for 1-based, +1 for the opening '---'
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key is None or (key not in FRONT_KEYS and not VARIANT_KEY.match(key)):
            close = difflib.get_close_matches(str(key), FRONT_KEYS, n=1)
            raise TemplateError(
                _("unknown front-matter key {key}").format(key=repr(key)),
                file=file,
                line=line,
                field=str(key),
                hint=(_("did you mean {name}? ").format(name=repr(close[0])) if close else "")
                + _("allowed keys: {keys} (and subject.A, subject.B... for a subject test)").format(
                    keys=", ".join(FRONT_KEYS)
                ),
            )
        if key in fields:
            raise TemplateError(
                _("front-matter key {key} is given twice (first on line {line})").format(
                    key=repr(key), line=fields[key].line
                ),
                file=file,
                line=line,
                field=key,
            )
        if not isinstance(value_node, yaml.ScalarNode):
            raise TemplateError(
                _("front-matter key {key} expects a text, not a list or a mapping").format(
                    key=repr(key)
                ),
                file=file,
                line=line,
                field=key,
            )
        if value_node.tag.endswith(":null") or value_node.value.strip() == "":
            continue  # `preheader:` left empty means no preheader
        fields[key] = FrontField(value_node.value, value_node.start_mark.line + 2)
    return fields
