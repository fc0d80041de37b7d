"""YAML read with positions, so an error in a condition points into the file.

PyYAML's composer keeps a start mark on every node; a condition's own offsets
are mapped back through the scalar's raw text (quotes, escapes, folded lines,
block indentation), which is exact for one-line plain and quoted scalars and
close for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from segmerge.errors import RuleError
from segmerge.i18n import _
from segmerge.workspace.textfile import read_user_text

Locate = Callable[[int], tuple[int, int]]
_SKIPPABLE = " \t\r\n\\'\""
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"


def read_text(path: Path) -> str:
    """The rule set's text: UTF-8 and at most 1 MB, or a RuleError at the first bad byte."""
    return read_user_text(path, "the rule set", RuleError)


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree; a syntax error becomes a RuleError at its line and column."""
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        said, at_context, hinted = _said(exc)
        mark = (exc.context_mark if at_context else None) or exc.problem_mark or exc.context_mark
        raise RuleError(
            _("invalid YAML: {problem}").format(problem=said),
            file=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint=_quoting_hint() if hinted else None,
        ) from None
    except yaml.YAMLError as exc:
        raise RuleError(_("invalid YAML: {problem}").format(problem=exc), file=path) from None
    except RecursionError:  # PyYAML composes nested lists and mappings recursively
        mark = loader.get_mark()
        raise RuleError(
            _("invalid YAML: lists or mappings nested too deeply"),
            file=path,
            line=mark.line + 1,
            column=mark.column + 1,
        ) from None
    finally:
        loader.dispose()


def _quoting_hint() -> str:
    return _(
        "a condition that starts with a quote or contains ': ' or ' #' must be written "
        "as a block: `when: >-` then the condition on the next line, indented"
    )


def _said(exc: yaml.MarkedYAMLError) -> tuple[str, bool, bool]:
    """What went wrong in the marketer's words: (sentence, point at the context's mark
    rather than the problem's, worth the quoting hint). PyYAML only speaks English and
    in parser terms ("expected <block end>"), so its common problems are said here in the
    command's language; any other keeps PyYAML's text, in parentheses."""
    problem = exc.problem or exc.context or ""
    opened = exc.context_mark.line + 1 if exc.context_mark else None
    char = re.match(r"found character (.+) that cannot start any token", problem)
    if "'\\t'" in problem or "tab character" in problem:
        return _("a tab character: YAML indents with spaces only"), False, False
    if char:
        said = _("a value cannot start with {char}: put the value in quotes")
        return said.format(char=char.group(1)), False, True
    if problem == "mapping values are not allowed here":
        return (
            _(
                "a ':' where no value can start: put a value holding ': ' in quotes, "
                "or check this line's indentation"
            ),
            False,
            True,
        )
    if problem == "could not find expected ':'":
        return (
            _(
                "a line without ':' among key: value lines (a key lacks its ':', "
                "or the line is indented wrongly)"
            ),
            True,
            False,
        )
    if problem.startswith("expected <block end>"):
        return (
            _(
                "this line does not line up with its block: the keys of one mapping, "
                "and the items of one list, start in the same column"
            ),
            False,
            True,
        )
    if problem.startswith("expected ',' or ']'"):
        said = _("the list opened with '[' on line {line} is not closed with ']'")
        return said.format(line=opened), False, False
    if problem.startswith("expected ',' or '}'"):
        said = _("the mapping opened with '{{' on line {line} is not closed with '}}'")
        return said.format(line=opened), False, False
    if problem == "found unexpected end of stream" and "quoted" in (exc.context or ""):
        return _("the quote opened on line {line} is never closed").format(line=opened), True, False
    if problem.startswith("found undefined alias") or (
        problem.startswith("expected alphabetic or numeric character")
        and ("alias" in (exc.context or "") or "anchor" in (exc.context or ""))
    ):
        return _("a value starting with '*' or '&' must be put in quotes"), False, False
    escape = re.match(r"found unknown escape character (.+)", problem)
    if escape:
        said = _(
            "unknown escape \\{char} inside double quotes: use single quotes, "
            "or write the backslash twice"
        )
        return said.format(char=escape.group(1).strip("'")), False, False
    if problem == "block sequence entries are not allowed here":
        return (
            _("a '- ' list item where none can start: begin the list on the line under its key"),
            False,
            False,
        )
    text = problem + (f" ({exc.context})" if exc.context and exc.problem else "")
    return _("({problem})").format(problem=text or _("invalid YAML")), False, True


def line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def mark_of(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def locator(source: str, node: yaml.ScalarNode) -> Locate:
    """Map offsets in ``node.value`` to 1-based (line, column) in ``source``."""
    start, end = node.start_mark.index, node.end_mark.index
    raw = source[start:end]
    value: str = node.value
    style = node.style or ""
    j = 0
    if style in ("'", '"'):
        j = 1
    elif style in ("|", ">"):
        j = raw.find("\n") + 1 if "\n" in raw else len(raw)
    positions: list[int] = []
    for ch in value:
        k = j
        while k < len(raw) and raw[k] != ch and raw[k] in _SKIPPABLE:
            k += 1
        if k < len(raw) and raw[k] == ch:
            positions.append(k)
            j = k + 1
        else:  # an escape such as \n: assume one raw character per value character
            positions.append(j)
            j = min(j + 1, len(raw))
    positions.append(j)

    def locate(offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(value)))
        if offset == len(value) and offset:  # just after the last character
            return line_col(source, start + positions[offset - 1] + 1)
        return line_col(source, start + positions[offset])

    return locate


def scalar_text(node: yaml.Node, what: str, path: Path) -> str | None:
    """The raw text of a scalar (None when empty or null); anything else is an error."""
    if not isinstance(node, yaml.ScalarNode):
        line, column = mark_of(node)
        raise RuleError(
            _("expected {what}, got a YAML list or mapping").format(what=what),
            file=path,
            line=line,
            column=column,
        )
    if node.tag == NULL_TAG or not str(node.value).strip():
        return None
    return str(node.value)


def mapping_items(node: yaml.Node, what: str, path: Path) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key → (key node, value node), refusing non-mappings and duplicate keys."""
    if not isinstance(node, yaml.MappingNode):
        line, column = mark_of(node)
        raise RuleError(
            _("expected {what} (key: value lines)").format(what=what),
            file=path,
            line=line,
            column=column,
        )
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        if key in out:
            line, column = mark_of(key_node)
            raise RuleError(
                _("duplicate key '{key}'").format(key=key), file=path, line=line, column=column
            )
        out[key] = (key_node, value_node)
    return out
