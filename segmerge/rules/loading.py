"""Reading a rule-set file into a :class:`~segmerge.rules.ruleset.RuleSet`.

Every mistake is a :class:`RuleError` at its line and column in the YAML file, in
the workspace's language: an unknown key (with the closest known one), a missing
version or segment list, a bad or duplicate name, a condition that does not parse.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.rules import ast
from segmerge.rules.checker import suggest
from segmerge.rules.parser import ExprError, parse
from segmerge.rules.ruleset import RuleSet, Segment
from segmerge.rules.yamlpos import (
    INT_TAG,
    Locate,
    compose,
    locator,
    mapping_items,
    mark_of,
    read_text,
    scalar_text,
)

SLUG = re.compile(r"[a-z0-9_-]+")
MODES = ("first", "all")
_TOP_KEYS = ("version", "name", "description", "mode", "exclude", "segments")
_SEGMENT_KEYS = ("name", "label", "when", "description")


def load_ruleset(path: Path) -> RuleSet:
    """Read and parse a rule-set file; every mistake is a RuleError with file, line, column."""
    path = Path(path)
    text = read_text(path)
    root = compose(text, path)
    if root is None:
        raise RuleError(
            _("the rule set is empty"),
            file=path,
            line=1,
            column=1,
            hint=_("it needs at least `version: 1` and a list of `segments:`"),
        )
    top = mapping_items(root, _("a rule set"), path)
    _refuse_unknown(top, _TOP_KEYS, _("in a rule set"), path)
    if "version" not in top:
        raise RuleError(_("missing `version: 1`"), file=path, line=1, column=1, field="version")
    key_node, version = top["version"]
    if not (
        isinstance(version, yaml.ScalarNode)
        and version.tag == INT_TAG
        and str(version.value).strip().lstrip("+") == "1"
    ):
        shown = str(version.value)[:20]
        raise _at(
            version,
            path,
            _("unsupported version {version}; expected 1").format(version=repr(shown)),
            "version",
        )

    name = path.stem
    if "name" in top:
        given = scalar_text(top["name"][1], _("a name"), path)
        if given is not None:
            if not SLUG.fullmatch(given):
                raise _at(top["name"][1], path, _slug_message(given), "name")
            name = given
    description = _optional_text(top, "description", path)
    mode = (_optional_text(top, "mode", path) or "first").strip()
    if mode not in MODES:
        raise _at(
            top["mode"][1],
            path,
            _("unknown mode {mode}; expected first or all").format(mode=repr(mode)),
            "mode",
        )

    exclude = exclude_text = exclude_locate = None
    if "exclude" in top:
        node = top["exclude"][1]
        exclude_text = scalar_text(node, _("a condition"), path)
        if exclude_text is not None:
            assert isinstance(node, yaml.ScalarNode)
            exclude_locate = locator(text, node)
            exclude = _parse(exclude_text, exclude_locate, path, "exclude")

    if "segments" not in top:
        raise RuleError(
            _("missing `segments:`, the list of segments"),
            file=path,
            line=1,
            column=1,
            field="segments",
        )
    seg_key, seg_node = top["segments"]
    if not isinstance(seg_node, yaml.SequenceNode) or not seg_node.value:
        raise _at(
            seg_node if isinstance(seg_node, yaml.SequenceNode) else seg_key,
            path,
            _("expected a non-empty list of segments (`- name: ...`)"),
            "segments",
        )
    segments: list[Segment] = []
    for item in seg_node.value:
        segments.append(_segment(item, text, path, {s.name: s for s in segments}))
    return RuleSet(name, description, mode, segments, exclude, path, exclude_text, exclude_locate)


def _segment(node: yaml.Node, text: str, path: Path, seen: dict[str, Segment]) -> Segment:
    items = mapping_items(node, _("a segment (name:, when:)"), path)
    _refuse_unknown(items, _SEGMENT_KEYS, _("in a segment"), path)
    line = mark_of(node)[0]
    if "name" not in items:
        raise _at(node, path, _("a segment needs a name"), "name")
    name = scalar_text(items["name"][1], _("a name"), path)
    if name is None or not SLUG.fullmatch(name):
        raise _at(items["name"][1], path, _slug_message(name or ""), "name")
    if name in seen:
        raise _at(
            items["name"][1],
            path,
            _("duplicate segment name '{name}' (first at line {line})").format(
                name=name, line=seen[name].line
            ),
            "name",
        )
    label = _optional_text(items, "label", path) or name
    if "when" not in items or scalar_text(items["when"][1], _("a condition"), path) is None:
        where = items["when"][1] if "when" in items else node
        raise _at(
            where,
            path,
            _("segment '{name}' needs a condition `when:`").format(name=name),
            "when",
            _("write `when: true` for a catch-all segment"),
        )
    when_node = items["when"][1]
    assert isinstance(when_node, yaml.ScalarNode)
    when_text = str(when_node.value)
    locate = locator(text, when_node)
    expr = _parse(when_text, locate, path, _("segment {name}, when").format(name=repr(name)))
    description = _optional_text(items, "description", path)
    return Segment(name, label, when_text, expr, line, description, locate)


def _parse(text: str, locate: Locate, path: Path, where: str) -> ast.Node:
    try:
        return parse(text)
    except ExprError as exc:
        line, column = locate(exc.offset)
        raise RuleError(
            exc.message, file=path, line=line, column=column, field=where, hint=exc.hint
        ) from None


def _optional_text(items: dict[str, tuple[yaml.Node, yaml.Node]], key: str, path: Path) -> str:
    if key not in items:
        return ""
    return (scalar_text(items[key][1], _("text for {key}").format(key=key), path) or "").strip()


def _refuse_unknown(
    items: dict[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...], what: str, path: Path
) -> None:
    for key, (key_node, _value) in items.items():
        if key not in allowed:
            close = suggest(key, allowed)
            mean = _("; did you mean '{close}'?").format(close=close[0]) if close else ""
            raise _at(
                key_node,
                path,
                _("unknown key '{key}' {where}").format(key=key, where=what) + mean,
                key,
                _("allowed: {keys}").format(keys=", ".join(allowed)),
            )


def _slug_message(value: str) -> str:
    return _("invalid name {name}; expected lower-case letters, digits, '-' or '_'").format(
        name=repr(value)
    )


def _at(
    node: yaml.Node, path: Path, message: str, field_name: str, hint: str | None = None
) -> RuleError:
    line, column = mark_of(node)
    return RuleError(message, file=path, line=line, column=column, field=field_name, hint=hint)
