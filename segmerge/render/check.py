"""Static checks of templates, on the Jinja syntax tree, before anything is rendered.

A typo must fail when the campaign is validated, not on Monday at 9:00 for
every contact: so each segment's letter, together with every layout and
partial it extends, includes or imports, is walked once at load time for

- names a template may not use (only ``contact``, ``segment``, ``campaign``,
  ``unsubscribe_url``, ``today``, Jinja's harmless globals, and names the
  templates themselves set);
- ``contact.<column>`` where the column is neither a contact column nor a
  metric (with the nearest names as a hint);
- ``segment.<attr>`` other than ``name`` and ``label``;
- attribute names starting with ``_``: the sandbox refuses them at render
  time anyway, refusing them here turns an escape attempt into a load error;
- template names that are not quoted text (``{% include var %}``), which
  could not be checked, and names reaching out of the template folders
  (``../../segmerge.toml``, ``/etc/passwd``).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

from jinja2 import meta, nodes

from segmerge.errors import TemplateError
from segmerge.i18n import _

TOP_LEVEL = ("contact", "segment", "campaign", "unsubscribe_url", "today")
SEGMENT_ATTRS = ("name", "label")


class TemplateSecurityError(TemplateError):
    """A template tried to reach Python internals or a file outside its folders; refused."""


@dataclass(frozen=True)
class Parsed:
    """One template file (or front-matter value) and its syntax tree."""

    file: str
    tree: nodes.Template


_N = TypeVar("_N", bound=nodes.Node)


@functools.lru_cache(maxsize=256)
def _all_nodes(tree: nodes.Node) -> tuple[nodes.Node, ...]:
    """Every node under ``tree``, in ``find_all``'s order (each before its children).

    A letter's checks look for a dozen kinds of node in each template: one walk,
    filtered for each, instead of a walk for each.
    """
    out: list[nodes.Node] = []

    def walk(node: nodes.Node) -> None:
        for child in node.iter_child_nodes():
            out.append(child)
            walk(child)

    walk(tree)
    return tuple(out)


def _find(tree: nodes.Node, kinds: type[_N] | tuple[type[_N], ...]) -> list[_N]:
    """``tree.find_all(kinds)``, from the one walk of :func:`_all_nodes`."""
    return [cast(_N, n) for n in _all_nodes(tree) if isinstance(n, kinds)]


def referenced(parsed: Parsed) -> list[str]:
    """Templates this one extends, includes or imports; dynamic names are refused."""
    names: list[str] = []
    for name in meta.find_referenced_templates(parsed.tree):
        if name is None:
            node = next(
                (
                    n
                    for n in _find(parsed.tree, (nodes.Extends, nodes.Include, nodes.Import))
                    if not isinstance(getattr(n, "template", None), nodes.Const)
                ),
                None,
            )
            raise TemplateError(
                _("the template to extend, include or import must be a quoted name"),
                file=parsed.file,
                line=getattr(node, "lineno", None),
                hint=_('e.g. {% include "_button.html.j2" %}'),
            )
        names.append(name)
    _check_paths(parsed)
    return names


def _check_paths(parsed: Parsed) -> None:
    """A referenced name is a file of the template folders: no ``..``, no absolute path.

    The loader would not find such a name anyway; saying why, at the line that
    asks for it, tells the author this is refused, not missing.
    """
    kinds = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in _find(parsed.tree, kinds):
        target = node.template  # type: ignore[attr-defined]
        consts = target.items if isinstance(target, nodes.List | nodes.Tuple) else [target]
        for c in consts:
            name = c.value if isinstance(c, nodes.Const) else None
            if not isinstance(name, str):
                continue
            pieces = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in pieces:
                raise TemplateSecurityError(
                    _(
                        "{name} is outside the template folders, so it is not found there: a "
                        "template reads only files of its campaign's folder and of _shared, by a "
                        "name relative to them"
                    ).format(name=repr(name)),
                    file=parsed.file,
                    line=node.lineno,
                    hint=_('e.g. {% include "_footer.html.j2" %} for _shared/_footer.html.j2'),
                )


def stored_names(units: Iterable[Parsed]) -> set[str]:
    """Names the templates of one letter set themselves (visible across extends)."""
    out: set[str] = set()
    for p in units:
        for n in _find(p.tree, nodes.Name):
            if n.ctx in ("store", "param"):
                out.add(n.name)
        out.update(m.name for m in _find(p.tree, nodes.Macro))
        for imp in _find(p.tree, nodes.Import):
            out.add(imp.target)
        for frm in _find(p.tree, nodes.FromImport):
            out.update(n if isinstance(n, str) else n[1] for n in frm.names)
    return out


def check(
    units: list[Parsed], known_columns: Collection[str] | None, jinja_globals: Collection[str]
) -> None:
    """Raise the first problem found in the templates that make up one letter."""
    allowed = set(TOP_LEVEL) | set(jinja_globals) | stored_names(units) | {"super", "self"}
    for p in units:
        _check_private(p)
        _check_names(p, allowed)
        _check_attrs(p, "contact", known_columns, _("contact has no column or metric {name}"))
        _check_attrs(p, "segment", SEGMENT_ATTRS, _("segment has no attribute {name}"))


def _check_private(p: Parsed) -> None:
    for node in _find(p.tree, (nodes.Getattr, nodes.Getitem)):
        attr = _attr_name(node)  # type: ignore[arg-type]
        if attr is not None and attr.startswith("_"):
            raise TemplateSecurityError(
                _(
                    "access to {name} is not allowed in templates (names starting with '_' "
                    "are Python internals)"
                ).format(name=repr(attr)),
                file=p.file,
                line=node.lineno,
                field=attr,
            )


_GUARDS = ("default", "d", "defined", "undefined")


def guarded_names(tree: nodes.Template) -> set[str]:
    """Names the author handles being undefined: ``x | default(...)``, ``x is defined``.

    A layout may read a variable that only some letters set (``accent``); asking
    for a default is saying so.
    """
    out: set[str] = set()
    for node in _find(tree, (nodes.Filter, nodes.Test)):
        base = node.node
        if isinstance(base, nodes.Name) and node.name in _GUARDS:
            out.add(base.name)
    return out


def guarded_attrs(tree: nodes.Template, owner: str) -> set[str]:
    """``contact.x`` used under ``| default`` or ``is defined`` somewhere in this file."""
    out: set[str] = set()
    for node in _find(tree, (nodes.Filter, nodes.Test)):
        base = node.node
        if node.name in _GUARDS and isinstance(base, nodes.Getattr | nodes.Getitem):
            owner_node = getattr(base, "node", None)
            attr = _attr_name(base)
            if isinstance(owner_node, nodes.Name) and owner_node.name == owner and attr:
                out.add(attr)
    return out


def _check_names(p: Parsed, allowed: set[str]) -> None:
    unknown = meta.find_undeclared_variables(p.tree) - allowed - guarded_names(p.tree)
    if not unknown:
        return
    first = min(
        (n for n in _find(p.tree, nodes.Name) if n.name in unknown and n.ctx == "load"),
        key=lambda n: n.lineno,
    )
    close = difflib.get_close_matches(first.name, TOP_LEVEL, n=1)
    raise TemplateError(
        _("unknown variable {name}").format(name=repr(first.name)),
        file=p.file,
        line=first.lineno,
        field=first.name,
        hint=(_("did you mean {name}? ").format(name=repr(close[0])) if close else "")
        + _("a template sees: {names}").format(names=", ".join(TOP_LEVEL)),
    )


def _check_attrs(p: Parsed, owner: str, known: Collection[str] | None, message: str) -> None:
    """Unknown columns are errors, except optional ones (guarded, and not a near-typo).

    A shared layout may say ``{% if contact.civilite is defined %}`` for a column
    some sources lack; ``contact.frist_name | default('')`` is still a typo.
    """
    if known is None:
        return
    optional = guarded_attrs(p.tree, owner)
    for node in sorted(_attr_nodes(p.tree, owner), key=lambda n: n.lineno):
        attr = _attr_name(node)
        if attr is None or attr in known:
            continue
        close = difflib.get_close_matches(attr, sorted(known), n=3, cutoff=0.6)
        if attr in optional and not difflib.get_close_matches(attr, list(known), n=1, cutoff=0.8):
            continue
        raise TemplateError(
            message.format(name=repr(attr)),
            file=p.file,
            line=node.lineno,
            field=f"{owner}.{attr}",
            hint=_("did you mean {names}?").format(names=_(" or ").join(close))
            if close
            else _known_hint(known),
        )


def _known_hint(known: Collection[str]) -> str:
    names = sorted(known)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return _("known names: {names}").format(names=shown) if names else _("no column is known")


def _attr_nodes(tree: nodes.Template, owner: str) -> Iterable[nodes.Getattr | nodes.Getitem]:
    for node in _find(tree, (nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if isinstance(base, nodes.Name) and base.name == owner and base.ctx == "load":
            yield node  # type: ignore[misc]


def _attr_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    arg = node.arg
    if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
        return arg.value
    return None


def contact_fields(units: Iterable[Parsed]) -> set[str] | None:
    """The contact columns these templates can read: each ``contact.x`` and
    ``contact['x']``. None when one uses ``contact`` whole (printed, looped over, passed
    to a macro or a filter, indexed by a variable): then every column may be read.

    A run hands its render workers only these columns of each contact: making a
    record of every column and metric cost more than rendering the letter.
    """
    out: set[str] = set()
    for p in units:
        bases: set[int] = set()
        for node in _attr_nodes(p.tree, "contact"):
            attr = _attr_name(node)
            if attr is None:
                return None
            out.add(attr)
            bases.add(id(node.node))
        for n in _find(p.tree, nodes.Name):
            if n.name == "contact" and n.ctx == "load" and id(n) not in bases:
                return None
    return out
