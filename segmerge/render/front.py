"""A templated front-matter value, rendered once per distinct set of values it reads.

A subject such as ``{{ contact.first_name | default('Bonjour') }}, des nouvelles``
was a whole Jinja render for every letter (~15 µs, as much as a small letter's
HTML), while a base of a million contacts holds a few thousand first names. When
a value's syntax tree shows that it only reads named contact columns, the segment
and today's date, through deterministic filters and tests, and holds no loop, no
call and no assignment, its text is a function of those values: it is rendered
for the first contact with them and remembered for the others (keyed by each
value's type too: ``1``, ``1.0`` and ``True`` print differently). Anything else
(``contact`` used whole, the unsubscribe link, ``campaign``, a macro, a loop, an
unlisted filter) renders each time, as before. A value that fails is never
remembered: each contact gets its own error.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2 import nodes

#: filters whose output depends on their input alone (and the run's locale and zone)
PURE_FILTERS = frozenset(
    {
        "default",
        "d",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "replace",
        "truncate",
        "escape",
        "e",
        "string",
        "int",
        "float",
        "round",
        "abs",
        "money",
        "number",
        "percent",
        "date",
        "datetime",
        "capitalize_name",
        "name",
    }
)
PURE_TESTS = frozenset(
    {"defined", "undefined", "none", "number", "string", "odd", "even", "divisibleby"}
    | {"eq", "ne", "lt", "le", "gt", "ge", "in", "equalto", "sameas"}
)
# what may appear in a remembered value, besides names and the filters and tests above
_PLAIN = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
    nodes.Keyword,
)
#: distinct values remembered per front-matter value before starting over
MAX_REMEMBERED = 4096
_MISSING = object()


class Front:
    """A templated front-matter value: ``render(variables)`` as its Jinja template's."""

    def __init__(self, template: jinja2.Template, tree: nodes.Template) -> None:
        self.template = template
        self.reads = reads(tree)  # None: rendered each time
        self._texts: dict[tuple[Any, ...], str] = {}

    def render(self, variables: dict[str, Any]) -> str:
        if self.reads is None:
            return self.template.render(variables)
        fields, segment, today = self.reads
        values = variables["contact"].__dict__  # a ContactView: the present values
        key: list[Any] = []
        for f in fields:
            v = values.get(f, _MISSING)
            key += (type(v), v)
        if segment:
            key += variables["segment"].items()
        if today:
            key.append(variables["today"])
        try:
            k = tuple(key)
            text = self._texts.get(k)
        except TypeError:  # a value that cannot be a key (a list, a dict)
            return self.template.render(variables)
        if text is None:
            text = self.template.render(variables)
            if len(self._texts) >= MAX_REMEMBERED:
                self._texts.clear()
            self._texts[k] = text
        return text


def reads(tree: nodes.Template) -> tuple[tuple[str, ...], bool, bool] | None:
    """The contact columns a value reads, and whether it reads the segment and today's
    date; None when its text may depend on anything else."""
    fields: set[str] = set()
    used: set[str] = set()
    if not _pure(tree, fields, used):
        return None
    return tuple(sorted(fields)), "segment" in used, "today" in used


def _pure(node: nodes.Node, fields: set[str], used: set[str]) -> bool:
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
        name = node.node.name
        if name == "contact":  # contact.x, contact['x']: one column
            field = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
            if field is None:
                return False
            fields.add(field)
            return True
        if name in ("segment", "today"):
            used.add(name)
            return isinstance(node, nodes.Getattr) or _const(node.arg) is not None
        return False
    if isinstance(node, nodes.Name):
        if node.ctx != "load" or node.name not in ("segment", "today"):
            return False  # contact whole, the link, campaign, a global, a set name
        used.add(node.name)
        return True
    if isinstance(node, nodes.Filter):
        ok = node.name in PURE_FILTERS and node.dyn_args is None and node.dyn_kwargs is None
    elif isinstance(node, nodes.Test):
        ok = node.name in PURE_TESTS and node.dyn_args is None and node.dyn_kwargs is None
    else:
        ok = type(node) in _PLAIN
    return ok and all(_pure(child, fields, used) for child in node.iter_child_nodes())


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None
