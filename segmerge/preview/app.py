"""`segmerge preview`: a local web page where marketers see every letter as it will be sent.

Why a server and not static files: the page must follow the workspace as it is
edited (:mod:`segmerge.preview.live` reloads it when a file changes, and the page
polls ``/_version``). A broken rule or template is therefore an error shown in
the page, with its file and line, never a crash.

Safety: it binds 127.0.0.1 by default, answers only requests addressed to
that name (the `Host` header, :mod:`segmerge.preview.host`: a page using DNS
rebinding to read contacts' data gets 421), answers nothing but GET (405),
writes nothing, and never runs a letter's scripts: the HTML part is served
from its own URL with a Content-Security-Policy that forbids scripts, forms
and plugins (and is ``sandbox``ed), inside an ``<iframe sandbox="">``. Every
value on the pages is HTML-escaped by Jinja's autoescaping (the page templates
are in ``preview_assets/``, never served).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from segmerge import i18n
from segmerge.i18n import _
from segmerge.preview import pages
from segmerge.preview.host import allowed_names, host_ok
from segmerge.preview.lang import ASSETS, PAGES, shown_day, speaking
from segmerge.preview.live import Preview, Watcher
from segmerge.preview.pages import error_info

log = logging.getLogger("segmerge.preview")

SERVED = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# the letter: inline styles and images as a mail client shows them; no script, form, plugin
LETTER_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "font-src data: https:; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; sandbox"
)


def refused_host(preview: Preview) -> str:
    """The whole answer to a request for a name the preview does not go by, in its language."""
    with speaking(preview.language()):
        return (
            _(
                "This address is not the preview's: it answers only 127.0.0.1, localhost and [::1] "
                "(segmerge preview --allow-host NAME adds one)."
            )
            + "\n"
        )


# -- HTTP ------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server_version = "segmerge-preview"
    preview: Preview  # set on the subclass made by PreviewServer
    hosts: frozenset[str]  # the Host names it answers (see preview_host)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def _send(self, code: int, body: bytes, ctype: str, csp: str = PAGE_CSP) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def page(self, code: int, name: str, **values: Any) -> None:
        ws, ws_error = self.preview.workspace()
        values.setdefault("errors", [])
        if ws_error:
            values["errors"] = [ws_error, *values["errors"]]
        html = PAGES.get_template(name).render(
            version=self.preview.tag,
            ws=ws,
            lang=i18n.lang(),
            names=self.preview.names(),
            as_of=shown_day(self.preview.as_of),
            **values,
        )
        self._send(code, html.encode("utf-8"), "text/html; charset=utf-8")

    def not_found(self, message: str) -> None:
        self.page(404, "error.html.j2", title=_("Not found"), message=message)

    def _refused(self) -> bool:
        """Answer a request from a name it does not go by (DNS rebinding): 421, no data."""
        if host_ok(self.headers.get("Host"), self.hosts, self.port):
            return False
        log.warning(
            "preview: request for Host %r refused (--allow-host adds a name)",
            self.headers.get("Host", "")[:100],
        )
        body = refused_host(self.preview).encode("utf-8")
        self.close_connection = True
        self._send(421, body, "text/plain; charset=utf-8")
        return True

    def _not_allowed(self) -> None:
        """Any method but GET: the preview only reads, so nothing else has a purpose."""
        if self._refused():
            return
        self.close_connection = True
        self.send_response(405)
        self.send_header("Allow", "GET")
        self.send_header("Content-Length", "0")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed
    do_HEAD = _not_allowed  # a HEAD answer must not carry a body: simplest is none at all

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        with speaking(self.preview.language()):
            self._get()

    def _get(self) -> None:
        if self._refused():
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            self.route(parts, query)
        except (BrokenPipeError, ConnectionResetError):
            return  # the browser went away (a reload): nothing to answer
        except Exception as exc:  # noqa: BLE001 - a page, never a traceback
            try:
                self.page(
                    500,
                    "error.html.j2",
                    title=_("Error"),
                    message=_("Internal error"),
                    errors=[error_info(exc)],
                )
            except Exception:  # noqa: BLE001 - even the error page failed: plain text
                log.exception("preview: the error page failed")
                self._send(
                    500, _("Internal error of the preview").encode(), "text/plain; charset=utf-8"
                )

    def route(self, parts: list[str], query: dict[str, str]) -> None:
        if not parts:
            return self.page(
                200, "index.html.j2", title=_("Campaigns"), **pages.index(self.preview)
            )
        head, rest = parts[0], parts[1:]
        if head == "favicon.ico":
            return self._send(204, b"", "image/x-icon")
        if head == "_version" and not rest:
            body = json.dumps({"version": self.preview.tag}).encode()
            return self._send(200, body, "application/json")
        if head == "assets" and len(rest) == 1 and Path(rest[0]).suffix in SERVED:
            asset = ASSETS / Path(rest[0]).name
            if asset.is_file():
                return self._send(200, asset.read_bytes(), SERVED[asset.suffix])
        if head in ("c", "letter") and 1 <= len(rest) <= 2:
            view = self.preview.campaign(rest[0])
            if view is None:
                return self.not_found(_("No campaign “{name}”.").format(name=rest[0]))
            if head == "c":
                code, values = pages.segment_page(view, rest[1] if len(rest) > 1 else None, query)
                return self.page(code, "campaign.html.j2", **values)
            if len(rest) == 2:
                code, letter = pages.letter(view, rest[1], query)
                return self._send(
                    code, letter.encode("utf-8"), "text/html; charset=utf-8", LETTER_CSP
                )
        return self.not_found(_("This page does not exist."))


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class PreviewServer:
    """The preview on a port, with its watcher; ``port=0`` picks a free one."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        as_of: str | None = None,
        only: str | None = None,
        interval: float = 0.5,
        allow_hosts: Sequence[str] = (),
    ) -> None:
        self.preview = Preview(root, as_of=as_of, only=only)
        hosts = allowed_names(host, allow_hosts)
        handler = type("BoundHandler", (Handler,), {"preview": self.preview, "hosts": hosts})
        server_class = _Server6 if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, port), handler)
        self.httpd.daemon_threads = True
        self.watcher = Watcher(self.preview, interval)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        address, port = self.httpd.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> PreviewServer:
        self.watcher.start()
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="segmerge-preview-http"
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.watcher.start()
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.watcher.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
