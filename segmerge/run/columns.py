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

from segmerge.errors import SegmergeError
from segmerge.ports.connector import Source
from segmerge.ports.schema import CONTACT_COLUMNS
from segmerge.render.check import Parsed, contact_fields
from segmerge.render.frontmatter import read_text, split
from segmerge.render.templates import SHARED_FOLDER
from segmerge.rules import RuleSet, ast
from segmerge.rules.checker import bind_call

#: what consent and the messages read, whatever the letters say (the contact id always
#: comes back); and with the tag push's
MESSAGES = ("email", "first_name", "last_name", "subscribed")
ALWAYS = (*MESSAGES, "tags")


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
    units: list[Parsed] = []
    for path in _template_files(folder):
        try:
            parts = split(read_text(path), path)
            texts = [parts.body, *(f.value for f in parts.fields.values())]
            units += [Parsed(str(path), env.parse(text)) for text in texts]
        except (SegmergeError, jinja2.TemplateSyntaxError):
            return None
    return contact_fields(units)  # what the loaded letters' render workers read too


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
