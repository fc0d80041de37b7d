"""The Jinja machinery behind :mod:`segmerge.render`: sandbox, loader, strict undefined.

Kept apart from the TemplateSet so that each piece says why it exists:
the sandbox refuses Python internals at once, the loader hides front matter
without shifting line numbers, the undefined names the missing contact value,
and the contact view makes null values absent.

Safety must not cost a whole core: the sandbox's generic checks run for every
attribute, call and escaped output, so the common cases (a contact column, a
dict key, a template macro, a plain string) take short paths that return the
very same values; benchmarks/render.py measures the difference.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections import ChainMap
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

from segmerge.errors import TemplateError
from segmerge.i18n import _
from segmerge.render import frontmatter

try:
    from markupsafe._speedups import _escape_inner
except ImportError:  # markupsafe without its C extension
    from markupsafe._native import _escape_inner


class MissingValue(jinja2.UndefinedError):
    """A variable the contact cannot fill; carries the field for the report."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class ContactView:
    """A contact as templates see it: columns as attributes, nulls absent.

    The values dict *is* the instance ``__dict__``, so ``contact.city`` is a
    plain attribute lookup, and no dict method (``items``, ``values``...) can
    shadow a column of the same name.
    """

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def __repr__(self) -> str:
        return f"<contact {self.__dict__.get('contact_id', '?')}>"


class StrictValues(jinja2.StrictUndefined):
    """StrictUndefined whose error says which contact value is missing (as a field)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        name, owner = self._undefined_name, self._undefined_obj
        if isinstance(owner, ContactView):
            raise MissingValue(
                _("this contact has no value for {name}").format(name=repr(name)),
                field=f"contact.{name}",
            ) from None
        if owner is jinja2.utils.missing:
            raise MissingValue(
                _("{name} is undefined").format(name=repr(name)), field=str(name)
            ) from None
        raise MissingValue(self._undefined_message, field=str(name)) from None


# Jinja binds every operator of Undefined (__str__, __iter__, __add__, ...) to the base
# class's function object, so overriding the method alone would not reach them.
for _name in dir(jinja2.StrictUndefined):
    if getattr(jinja2.StrictUndefined, _name) is jinja2.Undefined._fail_with_undefined_error:
        setattr(StrictValues, _name, StrictValues._fail_with_undefined_error)


_DICT_ATTRS = frozenset(dir(dict))
#: what ``loop.x`` may read in a ``for`` block: Jinja's documented loop variables, all data
_LOOP_ATTRS = frozenset(
    (
        "index",
        "index0",
        "revindex",
        "revindex0",
        "first",
        "last",
        "length",
        "depth",
        "depth0",
        "previtem",
        "nextitem",
    )
)
_str_new = str.__new__


def fast_escape(value: Any) -> Markup:
    """``markupsafe.escape`` without its two Python frames for the common types.

    Autoescaping calls it for every ``{{ ... }}`` of an HTML letter (about thirty
    times per letter); the result is the same Markup string.
    """
    kind = type(value)
    if kind is str:
        return _str_new(Markup, _escape_inner(value))
    if kind is Markup:
        return value
    if kind is int:
        return _str_new(Markup, str(value))
    return escape(value)


class FastTemplate(jinja2.Template):
    """A compiled template with two per-render costs removed, same output.

    Compiled templates call ``escape`` from their module namespace: it is the
    fast one. And each render (of a letter, of every macro module it imports)
    copies the template's globals into a new context; Jinja keeps them as a
    ChainMap over the environment's globals, much slower to copy than a
    dict. The Sandbox's globals never change once templates are loaded,
    so the chain is flattened into a dict once, at compile time.
    """

    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> jinja2.Template:
        if namespace.get("escape") is escape:
            namespace["escape"] = fast_escape
        template = super()._from_namespace(environment, namespace, globals)
        if isinstance(template.globals, ChainMap):
            template.globals = dict(template.globals)
        return template


class Sandbox(ImmutableSandboxedEnvironment):
    template_class = FastTemplate

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``contact.x``, ``some_dict.key`` and ``loop.last`` without the generic checks,
        same result.

        They are most of a letter's lookups. A contact's values are data (never
        callables, which still take the checked path), for a plain dict Jinja's
        sandbox itself returns ``d[key]`` unchecked once ``key`` is not a dict method,
        and the loop variables are read-only properties returning plain values.
        """
        kind = type(obj)
        if kind is ContactView:
            values = obj.__dict__
            if attribute in values and attribute[:1] != "_":
                value = values[attribute]
                if not callable(value):
                    return value
        elif kind is dict and attribute not in _DICT_ATTRS:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        elif kind is LoopContext and attribute in _LOOP_ATTRS:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def is_safe_callable(self, obj: Any) -> bool:
        """A macro the templates defined is safe to call; anything else gets the full check."""
        return type(obj) is Macro or super().is_safe_callable(obj)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        """Refuse at once, rather than return an Undefined that fails only when used."""
        raise SecurityError(
            _("access to {name} of a {kind} is not allowed in templates").format(
                name=repr(attribute), kind=type(obj).__name__
            )
        )


class FolderLoader(jinja2.BaseLoader):
    """Files from the folder, then ``_shared``; front matter blanked out, lines kept.

    Only regular files inside those folders are read. Templates often come from
    elsewhere (an agency's zip, a git repository), and a symbolic link among them
    (``_footer.html.j2 -> ../../.env``) or a FIFO would otherwise put a credential
    in every letter or hang the run: such a file, or a link anywhere on its path
    below the folder, is refused with the file (and the line that asks for it).
    """

    def __init__(self, search: list[Path]) -> None:
        self.search = search
        self.splits: dict[str, frontmatter.Split] = {}

    def find(self, name: str) -> Path | None:
        try:
            pieces = split_template_path(name)
        except jinja2.TemplateNotFound:  # a '..' in the name: nothing outside the folders
            return None
        for base in self.search:
            problem = _unsafe(base, pieces)
            if problem == "absent":
                continue
            if problem:
                raise self._refusal(name, base.joinpath(*pieces), problem)
            return base.joinpath(*pieces)
        return None

    def split(self, path: Path) -> frontmatter.Split:
        key = str(path)
        if key not in self.splits:
            self._check_letter(path)
            self.splits[key] = frontmatter.split(frontmatter.read_text(path), key)
        return self.splits[key]

    def _check_letter(self, path: Path) -> None:
        """A file picked by name (a segment's letter) obeys the same rule as an include."""
        for base in self.search:
            try:
                pieces = path.relative_to(base).parts
            except ValueError:
                continue
            problem = _unsafe(base, list(pieces))
            if problem and problem != "absent":
                raise TemplateError(_refused(problem), file=path)
            return
        raise TemplateError(_refused(_("the template is outside the template folders")), file=path)

    def _refusal(self, name: str, path: Path, problem: str) -> TemplateError:
        """The error names the template that asks for the file, at its line, when known."""
        asking = re.compile(
            r"\{%-?\s*(?:include|extends|import|from)\b[^%]*?(['\"])" + re.escape(name) + r"\1"
        )
        for file, split in self.splits.items():
            m = asking.search(split.body)
            if m:
                line = split.body.count("\n", 0, m.start()) + 1
                return TemplateError(_refused(f"{name!r} ({path}) {problem}"), file=file, line=line)
        return TemplateError(_refused(problem), file=path)

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = self.find(template)
        if path is None:
            raise jinja2.TemplateNotFound(template)
        return self.split(path).body, str(path), lambda: True


def _refused(problem: str) -> str:
    """The problem, then the rule it breaks, in the command's language."""
    return _(
        "{problem}: templates read only regular files inside the campaign's template folder "
        "and _shared"
    ).format(problem=problem)


def _unsafe(base: Path, pieces: list[str]) -> str | None:
    """Why ``base/pieces`` may not be read ("absent" when it is not there), None when it may.

    Each component below ``base`` is checked with lstat, so a link cannot hide
    anywhere on the way; ``base`` itself is the user's configured folder and may be one.
    """
    current = base
    for i, piece in enumerate(pieces):
        current = current / piece
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return "absent"
        except OSError as exc:
            return _("cannot be read ({reason})").format(reason=exc.strerror or type(exc).__name__)
        if stat.S_ISLNK(st.st_mode):
            return _("is a symbolic link (to {target})").format(target=os.readlink(current))
        if i < len(pieces) - 1:
            if not stat.S_ISDIR(st.st_mode):
                return "absent"
        elif stat.S_ISDIR(st.st_mode):  # a folder is not a template: look further
            return "absent"
        elif not stat.S_ISREG(st.st_mode):
            return _("is not a regular file (a FIFO, a device or a socket)")
    return None


def autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".htm.j2", ".html"))


def present_values(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The contact without its null values, which templates must see as undefined."""
    nulls = _null_types()
    out: dict[str, Any] = {}
    for k, v in contact.items():
        t = type(v)
        if t is str or t is int:  # most values: nothing to check
            out[k] = v
            continue
        if v is None or t in nulls or (isinstance(v, float | Decimal) and v != v):  # NaN too
            continue
        if t.__name__ in ("datetime64", "timedelta64") and v != v:  # numpy NaT
            continue
        out[k] = v
    return out


def _null_types() -> tuple[type, ...]:
    """pandas' NA and NaT types, if pandas is loaded (it is whenever the values come from it)."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return ()
    return (type(pd.NA), type(pd.NaT))
