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

from . import workspace as wsmod
from .cli_options import AsOfOpt, WorkspaceOpt
from .errors import ConfigError


def preview_cmd(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 8765,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Show only this campaign.")
    ] = None,  # fmt: skip
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
    root = wsmod.find_root(workspace)
    ws = wsmod.load(root)  # a workspace that does not load at start is a usage error
    if campaign is not None:
        ws.campaign(campaign)
    from .preview_app import PreviewServer, is_loopback  # lazy: pandas, only for this command
    from .preview_host import LOOPBACK, allowed_names
    from .segmentation import as_of_instant

    as_of_instant(ws, as_of)
    if not 0 <= port <= 65535:
        raise ConfigError("expected a port from 0 to 65535", field="--port")
    allowed = allowed_names(host, allow_host or [])  # a malformed name: exit 2 before binding
    try:
        server = PreviewServer(root, host=host, port=port, as_of=as_of, only=campaign,
                               allow_hosts=sorted(allowed))  # fmt: skip
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is already in use", field="--port",
                              hint="pass --port 0 for any free port") from None  # fmt: skip
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          field="--host") from None  # fmt: skip
    out = sys.stdout
    if not is_loopback(host):
        print(f"attention : l'aperçu écoute sur {host}, il est visible depuis le réseau et montre "
              "les données des contacts sans mot de passe", file=sys.stderr)  # fmt: skip
    if not is_loopback(host) and allowed <= LOOPBACK:
        print("l'aperçu ne répond qu'aux adresses 127.0.0.1, localhost et [::1] : ajoutez "
              "--allow-host NOM pour chaque nom ou adresse par lequel on l'ouvrira",
              file=sys.stderr)  # fmt: skip
    target = server.url + (f"c/{campaign}" if campaign else "")
    print(f"Aperçu Segmerge sur {target}  (Ctrl+C pour arrêter)", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_cmd)
