"""The TemplateError a marketer reads when a letter is wrong: which file, which line.

A template fails in three places: its front matter (an address that is not
one), its syntax (when the set is loaded) and its rendering for one contact
(a missing value, a refused operation, a filter given the wrong thing). Each
gets one message naming the file and the line, never a Jinja traceback.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

from segmerge.errors import TemplateError
from segmerge.i18n import _
from segmerge.render import frontmatter
from segmerge.render.check import TemplateSecurityError
from segmerge.render.env import MissingValue
from segmerge.render.filters import FilterError
from segmerge.render.limits import RenderLimit


def check_address(
    value: jinja2.Template | str | None, path: Path, f: frontmatter.FrontField | None, key: str
) -> None:
    """A constant ``from`` / ``reply_to`` must be an address."""
    if isinstance(value, str) and "@" not in parseaddr(value)[1]:
        raise TemplateError(
            _("{key} {value} is not an e-mail address").format(key=key, value=repr(value)),
            file=path,
            line=f.line if f else None,
            field=key,
            hint=_('e.g. from: "La Boutique <bonjour@example.org>"'),
        )


def syntax_error(exc: jinja2.TemplateSyntaxError, file: str) -> TemplateError:
    return TemplateError(
        _("template syntax error: {problem}").format(problem=exc.message),
        file=exc.filename or file,
        line=exc.lineno,
    )


def render_failure(
    exc: BaseException, files: Collection[str], main_file: str, contact: Mapping[str, Any]
) -> TemplateError:
    """The TemplateError for a contact whose letter failed: which of the letter's
    ``files`` (the innermost frame in one of them, else ``main_file``), line and value."""
    file, line = main_file, None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in files:
            file, line = name, tb.tb_lineno
        tb = tb.tb_next
    who = _("contact {id}").format(id=contact.get("contact_id", "?"))
    if isinstance(exc, MissingValue):
        return TemplateError(
            _("{who}: {problem}").format(who=who, problem=exc),
            file=file,
            line=line,
            field=exc.field,
            hint=_(
                "the letter is not sent; use `| default('...')` or "
                "`{% if contact.x is defined %}` for a value that may be empty"
            ),
        )
    if isinstance(exc, SecurityError):
        return TemplateSecurityError(
            _("{who}: {problem}").format(who=who, problem=exc), file=file, line=line
        )
    if isinstance(exc, FilterError):
        return TemplateError(
            _("{who}: {problem}").format(who=who, problem=exc), file=file, line=line
        )
    if isinstance(exc, RenderLimit | RecursionError | MemoryError):
        what = {
            RecursionError: _(
                "the letter nests macros or includes too deeply (a macro "
                "that calls itself without end?)"
            ),
            MemoryError: _("the letter needs more memory than there is"),
        }.get(type(exc), str(exc))
        err = TemplateError(
            _("{who}: {what}; the letter is not sent").format(who=who, what=what),
            file=file,
            line=line,
            hint=_("render_timeout and max_letter_size in [mail] set the time and size limits"),
        )
        err.timed_out = isinstance(exc, RenderLimit) and exc.timed_out
        return err
    problem = f"{type(exc).__name__}: {exc}"  # a bug's own words, for its report
    return TemplateError(
        _("{who}: {problem}").format(who=who, problem=problem), file=file, line=line
    )
