"""How the `segmerge` command fails: one message and an exit code, never a secret.

A user's mistake (a :class:`SegmergeError`) is one line and exit 2 (1 for a run
that failed); a bug is "internal error" and exit 1, with its traceback only under
``--traceback`` and never with local variables (they may hold secrets). For the
whole command, stdout and stderr pass through :mod:`segmerge.redact`, and so does
the traceback's text: an exception quoting a header, or a vendor echoing the key,
never puts a credential on the screen or in a CI log.
"""

from __future__ import annotations

import logging
import sys
import traceback as tb
from collections.abc import Callable
from typing import Any

from segmerge.cli.console import err
from segmerge.errors import SegmergeError
from segmerge.i18n import _, label
from segmerge.redact import RedactingStream, install, redact


def run_cli(app: Callable[[], Any]) -> None:
    """Run the typer ``app`` as the command; exits with its code."""
    traceback = "--traceback" in sys.argv
    if logging.lastResort is not None:  # where a library's warning goes when nothing is set up
        install([logging.lastResort])
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        app()
    except SegmergeError as exc:
        if traceback:
            _print_traceback()
        err.print(f"{label(_('error'))} {exc}", style="bold red", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if traceback:
            _print_traceback()
            sys.exit(1)
        err.print(
            f"{label(_('internal error'))} {type(exc).__name__}: {redact(str(exc))}",
            markup=False,
            highlight=False,
        )
        err.print(_("run again with --traceback and report it"), style="dim")
        sys.exit(1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _print_traceback() -> None:
    """The traceback as Python prints it, redacted: an exception may quote a header."""
    sys.stderr.write(redact(tb.format_exc()))
    sys.stderr.flush()


def warn_exposed(root: Any) -> None:
    """A credential file other users can read is worth a line on every validate and run."""
    from segmerge.workspace.secrets import exposure_warnings

    for w in exposure_warnings(root):
        err.print(f"! {w}", style="yellow", markup=False, highlight=False)
