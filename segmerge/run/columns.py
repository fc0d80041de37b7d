"""Which of the contacts' columns and metrics a run keeps in its frame.

A run reads few of them: the letters read the columns their templates name, consent
the address and ``subscribed``, a message its To's names, the tag push the tags, the
day's assignment kept for `report` the values the rules read. At a million contacts
every other column (dates no letter shows, a city, twenty metrics the rules already
used in the database) is some 180 MiB held from the plan's answer to the last letter.
A source that segments in its database is asked for these only; when anything cannot
be told for sure (a template hands ``contact`` whole to a macro or a filter, a name
that is not a column), the run keeps them all, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2
from jinja2 import nodes

from segmerge.errors import SegmergeError
from segmerge.ports.connector import Source
from segmerge.ports.schema import CONTACT_COLUMNS
from segmerge.render.frontmatter import read_text, split
from segmerge.render.templates import SHARED_FOLDER
from segmerge.rules import RuleSet, ast
from segmerge.rules.checker import bind_call

#: what consent and the messages read, whatever the letters say (the contact id always
#: comes back); and with the tag push's
MESSAGES = ("email", "first_name", "last_name", "subscribed")
ALWAYS = (*MESSAGES, "tags")


class _Whole(Exception):
    """``contact`` is used otherwise than as ``contact.x`` or ``contact["x"]``."""


def run_columns(letters: set[str], ruleset: RuleSet | None) -> set[str]:
    """The columns a run of letters reading ``letters`` reads (with the values ``ruleset``'s
    conditions read, for the day's assignment a real run keeps)."""
    rules = set() if ruleset is None else rule_columns(ruleset)
    return {*ALWAYS, *letters, *rules} - {"contact_id"}


def in_source(columns: set[str], source: Source) -> set[str]:
    """``columns`` less the canonical ones the source's contacts lack: those come back
    empty whatever is asked (a template may read ``contact.last_name`` of a file that
    has none), while a name that is no column at all is left for the segmentation to
    refuse, with the closest names."""
    relation = source.relations()["contacts"]
    have = set(source.execute(f"SELECT * FROM {relation} AS c LIMIT 0").schema.names)
    return {c for c in columns if c in have or c not in CONTACT_COLUMNS}


def letter_columns(folder: Path) -> set[str] | None:
    """Every ``contact.x`` of every template file of the campaign's folder and of
    ``_shared`` (front matter included), or None when one cannot be read for sure."""
    env = jinja2.Environment()  # only parsed: the sandbox's syntax is Jinja's own
    found: set[str] = set()
    for path in _template_files(folder):
        try:
            parts = split(read_text(path), path)
            for text in [parts.body, *(f.value for f in parts.fields.values())]:
                found.update(_attrs(env.parse(text)))
        except (SegmergeError, jinja2.TemplateSyntaxError, _Whole):
            return None
    return found


def rule_columns(ruleset: RuleSet) -> set[str]:
    """The contact columns and metric calls (by their frame name) the conditions read."""
    out: set[str] = set()
    for _where, _text, expr, _loc in ruleset.conditions():
        out.update(_reads(expr))
    return out


def _reads(node: ast.Node) -> Iterator[str]:
    if isinstance(node, ast.Func):
        yield bind_call(node).key
        return
    if isinstance(node, ast.Name):
        yield node.name
    for child in node.children():
        yield from _reads(child)


def _template_files(folder: Path) -> list[Path]:
    dirs = [folder, folder.parent / SHARED_FOLDER]
    return sorted(p for d in dirs if d.is_dir() for p in d.rglob("*.j2") if p.is_file())


def _attrs(node: nodes.Node) -> Iterator[str]:
    """The constant attribute names read of ``contact``; raises _Whole on any other use."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Getattr | nodes.Getitem) and _is_contact(child.node):
            if isinstance(child, nodes.Getattr):
                yield child.attr
                continue
            arg = child.arg
            if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
                raise _Whole
            yield arg.value
            continue
        if _is_contact(child):
            raise _Whole
        yield from _attrs(child)


def _is_contact(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "contact"
