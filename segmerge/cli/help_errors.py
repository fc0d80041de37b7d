"""A usage error (unknown command or option, missing argument, bad value) said in the
command's language.

Typer's vendored click raises its usage errors with English f-strings ("No such
option: --x", "Missing argument 'RULES'.", "Got unexpected extra argument(s)
(b c)"); they are read back here, by exception class and, where click keeps no
field, by their fixed English form, and told as a :class:`SegmergeError`: the
message, and a hint with the command's usage and its ``--help``. A form not
known here keeps click's words.
"""

from __future__ import annotations

import re
from difflib import get_close_matches

from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    MissingParameter,
    NoSuchOption,
    UsageError,
)

from segmerge.errors import SegmergeError
from segmerge.i18n import _, ngettext

_NO_COMMAND = re.compile(r"No such command (.+?)\.(?: Did you mean .*\?)?$", re.S)
_EXTRA = re.compile(r"Got unexpected extra argument(?:\(s\)|s)? \((.*)\)$", re.S)
_NEEDS_VALUE = re.compile(r"Option (.+) requires (?:an argument|\d+ arguments)\.$")
_NO_VALUE = re.compile(r"Option (.+) does not take a value\.$")


def _names(names: list[str]) -> str:
    return ", ".join(names)


def message_of(exc: UsageError) -> str:
    """What went wrong, in the command's language."""
    text = exc.message
    if isinstance(exc, NoSuchOption):
        said = _("no such option: {option}").format(option=exc.option_name)
        if exc.possibilities:
            said += " " + _("(did you mean {options}?)").format(
                options=_names(sorted(exc.possibilities))
            )
        return said
    if isinstance(exc, MissingParameter):
        name = exc.param.get_error_hint() if exc.param else "?"
        if exc.param_type == "option" or getattr(exc.param, "param_type_name", "") == "option":
            return _("missing option {name}").format(name=name)
        return _("missing argument {name}").format(name=name)
    if isinstance(exc, BadParameter):
        if exc.param is None:
            return _("invalid value: {problem}").format(problem=text)
        hint = exc.param.get_error_hint()
        return _("invalid value for {name}: {problem}").format(name=hint, problem=text)
    if isinstance(exc, BadOptionUsage):
        if m := _NEEDS_VALUE.match(text):
            return _("option {option} needs a value").format(option=m.group(1))
        if m := _NO_VALUE.match(text):
            return _("option {option} takes no value").format(option=m.group(1))
        return text
    if m := _NO_COMMAND.match(text):
        said = _("no such command {name}").format(name=m.group(1))
        known = list(getattr(exc.ctx.command, "commands", {})) if exc.ctx else []
        close = get_close_matches(m.group(1).strip("'\""), known)
        if close:
            said += " " + _("(did you mean {options}?)").format(options=_names(close))
        return said
    if m := _EXTRA.match(text):
        extra = m.group(1).split()
        return ngettext(
            "unexpected extra argument: {args}", "unexpected extra arguments: {args}", len(extra)
        ).format(args=" ".join(extra))
    if text == "Missing command.":
        return _("missing command")
    return text


def said(exc: UsageError) -> SegmergeError:
    """The usage error as Segmerge tells any mistake: a message, and a hint with the
    command's usage and where its help is."""
    hint = None
    ctx = exc.ctx
    if ctx is not None:
        usage = " ".join([ctx.command_path, *ctx.command.collect_usage_pieces(ctx)])
        hint = _("usage: {usage} (all of it: {command} --help)").format(
            usage=usage, command=ctx.command_path
        )
    return SegmergeError(message_of(exc), hint=hint)
