"""`--help` and usage errors in the workspace's language.

Why here: Typer builds the click command tree (help texts from the code's
docstrings and ``help=`` strings) before any workspace is known, its help
panels' titles are module constants made at import, and its vendored click
writes usage errors ("No such option", "Missing argument") as English f-strings
with no gettext at all. So the language is chosen first, from the ``-w`` the
command line gives, else the workspace at ``.`` (or ``$SEGMERGE_WORKSPACE``),
else the environment, and then, for each call of the app:

- every command's and option's help in the freshly built tree is looked up in
  the catalogs (French in ``segmerge/locale/fr/cli_help.po``; the msgid is the
  English text exactly as Typer holds it), as are the panels' titles and the
  "Usage:" prefix;
- a usage error becomes a :class:`SegmergeError` said in the command's language
  (:mod:`segmerge.cli.help_errors`), printed like every other error: one
  message, a hint, exit 2.

bot.py's Typer app is made with ``cls=SpeakingGroup``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from typer._click.core import Command, Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup
from typer.exceptions import Abort

from segmerge.i18n import _, is_french, label, use_workspace_language


def workspace_arg(args: Sequence[str]) -> Path | None:
    """The ``-w``/``--workspace`` value of a command line, as given (None when absent)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-w", "--workspace") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--workspace="):
            return Path(arg.split("=", 1)[1])
        if arg.startswith("-w") and len(arg) > 2 and not arg.startswith("--"):
            return Path(arg[2:])
    return None


def choose_language(args: Sequence[str]) -> str:
    """The command's language before click parses anything: usage errors and ``--help``
    come before any option's callback could choose it."""
    from segmerge.workspace.root import find_root

    given = workspace_arg(args)
    root: Path | None = given
    with contextlib.suppress(Exception):  # a bad -w: its own error comes later, in its language
        root = find_root(given)
    return use_workspace_language(root)


class SpeakingFormatter(HelpFormatter):
    """Click's help formatter with the "Usage:" prefix in the command's language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, f"{label(_('Usage'))} " if prefix is None else prefix)


class SpeakingContext(Context):
    formatter_class = SpeakingFormatter

    def make_formatter(self) -> HelpFormatter:
        _panels()  # the help is about to be laid out by typer.rich_utils
        return super().make_formatter()


def _panels() -> None:
    """Typer's help panels' titles and notes, made at its import: set for this command.

    Only when rich lays out help or an error (click's own exception or an abort):
    typer.rich_utils loads rich's markdown and syntax modules, which cost more than a
    whole command that prints no help.
    """
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = _("Arguments")
    rich_utils.OPTIONS_PANEL_TITLE = _("Options")
    rich_utils.COMMANDS_PANEL_TITLE = _("Commands")
    rich_utils.ERRORS_PANEL_TITLE = _("Error")
    rich_utils.DEFAULT_STRING = _("[default: {}]")
    rich_utils.REQUIRED_LONG_STRING = _("[required]")
    rich_utils.DEPRECATED_STRING = _("(deprecated) ")
    rich_utils.ABORTED_TEXT = _("Aborted.")


def commands(root: Command) -> Iterator[Command]:
    """The command and every command under it."""
    yield root
    for sub in getattr(root, "commands", {}).values():
        yield from commands(sub)


def help_texts(root: Command) -> Iterator[str]:
    """Every help text of the tree, as Typer holds it (the msgids of cli_help.po)."""
    for cmd in commands(root):
        for text in (cmd.help, cmd.short_help, *(getattr(p, "help", None) for p in cmd.params)):
            if text:
                yield text
    yield "Show this message and exit."  # click's own --help option


def speak(root: Command) -> None:
    """Say the help of this tree in the command's language, in place: from the English
    Typer made it with, so one tree serves every command of a process (bot.main keeps
    it), each in its own language."""
    french = is_french()
    for cmd in commands(root):
        cmd.context_class = SpeakingContext
    for holder, attr, english in _english(root):
        setattr(holder, attr, _(english) if french else english)


#: each tree's help texts as Typer made them: (object, attribute, English text)
_ENGLISH: weakref.WeakKeyDictionary[Command, list[tuple[Any, str, str]]] = (
    weakref.WeakKeyDictionary()
)


def _english(root: Command) -> list[tuple[Any, str, str]]:
    """The help texts of ``root``'s tree, read once, before it is said in any language."""
    if root not in _ENGLISH:
        texts: list[tuple[Any, str, str]] = []
        for cmd in commands(root):
            helper = cmd.get_help_option(Context(cmd))
            holders = [(cmd, "help"), (cmd, "short_help"), *((p, "help") for p in cmd.params)]
            for holder, attr in [*holders, *([(helper, "help")] if helper is not None else [])]:
                if text := getattr(holder, attr, None):
                    texts.append((holder, attr, text))
        _ENGLISH[root] = texts
    return _ENGLISH[root]


class SpeakingGroup(TyperGroup):
    """The `segmerge` group: chooses the language, then speaks it in help and usage errors."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        choose_language(argv)
        speak(self)
        return super().main(argv, *rest, **extra)

    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            _panels()  # shown by typer.rich_utils, as an error
            raise
        except UsageError as exc:
            from segmerge.cli.help_errors import said

            raise said(exc) from None
        except (ClickException, Abort, EOFError):
            _panels()
            raise

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            _panels()
            raise
        except UsageError as exc:
            from segmerge.cli.help_errors import said

            raise said(exc) from None
        except (ClickException, Abort, EOFError):  # typer.rich_utils says them
            _panels()
            raise
