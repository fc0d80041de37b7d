"""YAML read with positions, so an error in a condition points into the file.

PyYAML's composer keeps a start mark on every node; a condition's own offsets
are mapped back through the scalar's raw text (quotes, escapes, folded lines,
block indentation), which is exact for one-line plain and quoted scalars and
close for the rest.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import yaml

from ..errors import RuleError, SegmergeError

Locate = Callable[[int], tuple[int, int]]
_SKIPPABLE = " \t\r\n\\'\""
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"

_YAML_HINT = (
    "a condition that starts with a quote or contains ': ' or ' #' must be written as a block: "
    "`when: >-` then the condition on the next line, indented"
)


#: A rule set is a few dozen lines; a megabyte is room for a 20,000-term condition, and the
#: limit keeps a mistaken or hostile file (a 10 MB dump, /dev/zero) from costing minutes.
MAX_BYTES = 1_000_000


def read_text(path: Path) -> str:
    """The rule set's text, UTF-8 only.

    A rule set is written by hand in an editor, and its strings are compared exactly
    with contact data: guessing CP1252 for a file that is really Latin-9 or MacRoman would
    turn `'Orléans'` into a condition that silently matches nobody. So anything but
    UTF-8 (with or without BOM) is refused at its first bad byte, with the fix, unlike a
    CSV export, which comes from a tool the user does not control.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RuleError(f"cannot read the rule set: {exc.strerror or exc}", file=path) from None
    if len(data) > MAX_BYTES:
        raise RuleError(
            f"the rule set is larger than {MAX_BYTES // 1_000_000} MB; rule sets are limited "
            f"to {MAX_BYTES:,} bytes",
            file=path,
            hint="a rule set holds conditions, not data: put long lists of values in a column",
        )
    return decode_utf8(data, path, RuleError)


def decode_utf8(data: bytes, path: Path, error: type[SegmergeError]) -> str:
    """Strict UTF-8 (a BOM is dropped); UTF-16, NUL bytes and other encodings name their place."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise error(
            "the file is saved as UTF-16; it must be UTF-8",
            file=path,
            line=1,
            column=1,
            hint="save it again choosing the UTF-8 encoding",
        )
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(body, exc.start)
        raise error(
            f"the file is not UTF-8: byte 0x{body[exc.start]:02X} cannot be read",
            file=path,
            line=line,
            column=column,
            hint="it was probably saved as Latin-1 or Windows-1252; save it again as UTF-8",
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line, column = line_col(text, nul)
        raise error(
            "the file contains a NUL byte (it is binary or damaged)",
            file=path,
            line=line,
            column=column,
        )
    return text


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``index``, the text before it being UTF-8."""
    line_start = data.rfind(b"\n", 0, index) + 1
    before = data[line_start:index].decode("utf-8", errors="replace")
    return data.count(b"\n", 0, index) + 1, len(before) + 1


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree; a syntax error becomes a RuleError at its line and column."""
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise RuleError(
            f"invalid YAML: {problem}{context}",
            file=path,
            line=line,
            column=column,
            hint=_YAML_HINT,
        ) from None
    except yaml.YAMLError as exc:
        raise RuleError(f"invalid YAML: {exc}", file=path) from None
    except RecursionError:  # PyYAML composes nested lists and mappings recursively
        mark = loader.get_mark()
        raise RuleError(
            "invalid YAML: lists or mappings nested too deeply",
            file=path,
            line=mark.line + 1,
            column=mark.column + 1,
        ) from None
    finally:
        loader.dispose()


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
            f"expected {what}, got a YAML list or mapping", file=path, line=line, column=column
        )
    if node.tag == NULL_TAG or not str(node.value).strip():
        return None
    return str(node.value)


def mapping_items(node: yaml.Node, what: str, path: Path) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key → (key node, value node), refusing non-mappings and duplicate keys."""
    if not isinstance(node, yaml.MappingNode):
        line, column = mark_of(node)
        raise RuleError(f"expected {what} (key: value lines)", file=path, line=line, column=column)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        if key in out:
            line, column = mark_of(key_node)
            raise RuleError(f"duplicate key '{key}'", file=path, line=line, column=column)
        out[key] = (key_node, value_node)
    return out
