"""The `segmerge preview` command: serve the browsable preview until Ctrl+C.

Kept out of bot.py (which calls :func:`register`). It checks what can be
checked before binding (the port, a non-loopback host, the campaign name) so a
mistake is one message and exit 2; everything after that, a broken rule or
template included, is shown in the page instead.
"""

from __future__ import annotations

import errno
import sys
from typing import Annotated

import typer

from segmerge.cli.options import AsOfOpt, WorkspaceOpt, load_workspace
from segmerge.errors import ConfigError
from segmerge.i18n import _
from segmerge.workspace.root import find_root


def preview_cmd(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 8765,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Show only this campaign.")
    ] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Also answer requests for this host name (repeatable). By default only "
            "127.0.0.1, localhost, [::1] and the --host address: a web page cannot read "
            "your contacts through the preview by pointing its own name at it.",
        ),
    ] = None,
) -> None:
    """Open a local web page showing every campaign's letters as they will be sent.

    Segments and sizes, sample contacts, and each message (subject, preheader, HTML,
    text part, headers) per contact and variant. The page reloads when a file in
    segrules/ or templates/ or segmerge.toml changes, and shows errors with file and line.

    Example: segmerge preview --campaign profils --as-of 2026-12-01
    """
    root = find_root(workspace)
    ws = load_workspace(root)  # a workspace that does not load at start is a usage error
    if campaign is not None:
        ws.campaign(campaign)
    from segmerge.preview.app import (  # lazy: pandas, only for this command
        PreviewServer,
        is_loopback,
    )
    from segmerge.preview.host import LOOPBACK, allowed_names
    from segmerge.segment.segmentation import as_of_instant

    as_of_instant(ws, as_of)
    if not 0 <= port <= 65535:
        raise ConfigError(_("expected a port from 0 to 65535"), field="--port")
    allowed = allowed_names(host, allow_host or [])  # a malformed name: exit 2 before binding
    try:
        server = PreviewServer(
            root, host=host, port=port, as_of=as_of, only=campaign, allow_hosts=sorted(allowed)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                _("port {port} is already in use").format(port=port),
                field="--port",
                hint=_("pass --port 0 for any free port"),
            ) from None
        raise ConfigError(
            _("cannot listen on {address}: {problem}").format(
                address=f"{host}:{port}", problem=exc.strerror or exc
            ),
            field="--host",
        ) from None
    out = sys.stdout
    if not is_loopback(host):
        print(
            _(
                "warning: the preview listens on {host}, it can be seen from the network and "
                "shows the contacts' data without a password"
            ).format(host=host),
            file=sys.stderr,
        )
    if not is_loopback(host) and allowed <= LOOPBACK:
        print(
            _(
                "the preview only answers 127.0.0.1, localhost and [::1]: add "
                "--allow-host NAME for each name or address it will be opened by"
            ),
            file=sys.stderr,
        )
    target = server.url + (f"c/{campaign}" if campaign else "")
    print(_("Segmerge preview on {url}  (Ctrl+C to stop)").format(url=target), file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_cmd)
