"""The RFC 8058 one-click unsubscribe endpoint that `segmerge serve --unsubscribe-port` opens.

- ``POST /unsubscribe?token=T`` with the body ``List-Unsubscribe=One-Click``
  (what a mail client sends for ``List-Unsubscribe-Post``, and what our own
  page's button sends) puts the contact's address on the workspace's
  suppression list at once, then tells the source platform when its connector
  can (a method ``unsubscribe(contact_id, email)``).
- ``GET /unsubscribe?token=T`` only shows a page with a button: mail scanners
  and link previewers fetch every link of a message, so a GET must never
  unsubscribe anyone by itself.
- The token is the one every message carries (:func:`segmerge.consent.unsubscribe_token`,
  an HMAC of the contact id with the workspace's key); a token this workspace
  did not sign is refused (403) and nothing is recorded. No login, no cookie.

The address to suppress comes from the ledger: the sends to this contact id
(the token was in one of them). Every address the contact was mailed at is
suppressed, the conservative choice when a contact changed address. Each
unsubscribe is also kept in `.segmerge/unsubscribes.sqlite` with whether the
source platform was told, so a platform that could not be reached is known.

It listens on 127.0.0.1 by default: put it behind the site's reverse proxy
(HTTPS), which maps the public unsubscribe URL of `[mail] unsubscribe_url`.
"""

from __future__ import annotations

import html
import logging
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .consent import signing_key, verify_token
from .ledger import Ledger
from .workspace import Workspace

log = logging.getLogger("segmerge.unsubscribe")
AUDIT_FILE = "unsubscribes.sqlite"
MAX_BODY = 4096
PUSH_TIMEOUT = 120  # seconds a platform push may take, after the answer was sent

_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=body).encode("utf-8")


class UnsubscribeServer:
    """A small threaded HTTP server in a daemon thread; `port=0` picks a free port."""

    def __init__(
        self, ws: Workspace, host: str = "127.0.0.1", port: int = 0, *, isolate: bool = True
    ) -> None:
        self.ws = ws
        self.isolate = isolate  # push to the platforms from a child process
        self.lock = threading.Lock()  # one unsubscribe written at a time
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="unsubscribe", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # what a valid POST does ----------------------------------------------------

    def contact_for(self, token: str) -> str | None:
        key = signing_key(self.ws.state_dir, create=False)
        return verify_token(key, token) if key else None

    def unsubscribe(self, contact_id: str) -> tuple[list[str], list[str]]:
        """Suppress every address this contact was mailed at: (addresses, their sources)."""
        with self.lock:
            ledger = Ledger(self.ws.state_dir / "ledger.sqlite")
            try:
                rows = ledger.db.execute(
                    "SELECT DISTINCT a.target, r.campaign FROM actions a JOIN runs r "
                    "ON r.run_id = a.run_id WHERE a.contact_id=? AND a.kind='send' "
                    "AND a.target IS NOT NULL",
                    (contact_id,),
                ).fetchall()
                addresses = sorted({str(r[0]).strip().lower() for r in rows})
                ledger.suppress(
                    [(a, f"one-click unsubscribe (contact {contact_id})") for a in addresses]
                )
            finally:
                ledger.close()
            sources = sorted(
                {
                    self.ws.config.campaigns[str(r[1])].source
                    for r in rows
                    if str(r[1]) in self.ws.config.campaigns
                }
            )
        if not addresses:
            log.warning(
                "contact %s unsubscribed but no message to them is in the ledger: "
                "no address to suppress",
                contact_id,
            )
        return addresses, sources

    def tell_source(self, contact_id: str, addresses: list[str], sources: list[str]) -> None:
        """After the answer was sent: push to the platform, keep the audit row, log it."""
        if not sources:
            pushed = "no source"
        elif self.isolate:
            pushed = _push_in_child(str(self.ws.root), contact_id, addresses, sources)
        else:
            pushed = push_to_sources(self.ws, contact_id, addresses, sources)
        _audit(self.ws, contact_id, addresses, pushed)
        data = {"event": "unsubscribe", "contact_id": contact_id,
                "addresses": len(addresses), "source": pushed}  # fmt: skip
        log.info("unsubscribed contact %s (%d address(es)); source: %s", contact_id,
                 len(addresses), pushed, extra={"data": data})  # fmt: skip


def push_to_sources(
    ws: Workspace, contact_id: str, addresses: list[str], sources: list[str]
) -> str:
    """Tell each source platform that has `unsubscribe(contact_id, email)`; never raises."""
    from .segmentation import open_source

    said: list[str] = []
    for name in sources:
        try:
            conn: Any = open_source(ws, name)
        except Exception as exc:
            said.append(f"{name}: cannot open ({type(exc).__name__})")
            continue
        try:
            method = getattr(conn, "unsubscribe", None)
            if method is None:
                said.append(f"{name}: not told (its connector cannot unsubscribe)")
                continue
            # a contact with no address on record may still be known by id to the platform
            targets: list[str | None] = [*addresses] or [None]
            for a in targets:
                method(contact_id, a)
            said.append(f"{name}: done")
        except Exception as exc:  # the suppression list already protects the contact
            said.append(f"{name}: failed ({type(exc).__name__}: {exc})")
        finally:
            conn.close()
    return "; ".join(said)


def _push_child(root: str, contact_id: str, addresses: list[str], sources: list[str],
                conn: Any) -> None:  # fmt: skip
    from . import workspace as wsmod

    conn.send(push_to_sources(wsmod.load(root), contact_id, addresses, sources))
    conn.close()


def _push_in_child(root: str, contact_id: str, addresses: list[str], sources: list[str]) -> str:
    """Connectors load the whole engine (pandas...): in a child, the daemon stays small."""
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_push_child, args=(root, contact_id, addresses, sources, there),
                       name="segmerge unsubscribe")  # fmt: skip
    proc.start()
    there.close()
    try:
        return str(here.recv()) if here.poll(PUSH_TIMEOUT) else "timed out"
    except EOFError:
        return f"the push process died (exit code {proc.exitcode})"
    finally:
        proc.join(5)
        here.close()


def _audit(ws: Workspace, contact_id: str, addresses: list[str], pushed: str) -> None:
    db = sqlite3.connect(ws.state_dir / AUDIT_FILE, timeout=30, isolation_level=None)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS unsubscribes (contact_id TEXT NOT NULL, "
                   "addresses TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL)")  # fmt: skip
        row = (contact_id, ",".join(addresses), datetime.now(UTC).isoformat(), pushed)
        db.execute("INSERT INTO unsubscribes VALUES (?,?,?,?)", row)
    finally:
        db.close()


class _Handler(BaseHTTPRequestHandler):
    app: UnsubscribeServer
    server_version = "segmerge"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # the query string holds the token: log the path only
        log.debug("%s %s", self.command, urlsplit(self.path).path)

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _token(self) -> str | None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") != "/unsubscribe":
            self._send(404, page("Page introuvable", "<p>Cette adresse n'existe pas.</p>"))
            return None
        token = (parse_qs(url.query).get("token") or [""])[0]
        if not token:
            self._send(
                400,
                page(
                    "Lien incomplet",
                    "<p>Ce lien de désabonnement est incomplet."
                    " Copiez-le en entier depuis le message reçu.</p>",
                ),
            )
            return None
        return token

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        token = self._token()
        if token is None:
            return
        if self.app.contact_for(token) is None:
            self._send(
                403, page("Lien non valide", "<p>Ce lien de désabonnement n'est pas valide.</p>")
            )
            return
        action = html.escape(self.path, quote=True)
        self._send(
            200,
            page(
                "Se désabonner",
                (
                    "<p>Vous ne souhaitez plus recevoir nos messages&nbsp;?"
                    " Confirmez ci-dessous&nbsp;: votre adresse sera retirée"
                    " immédiatement de nos envois.</p>"
                    f'<form method="post" action="{action}">'
                    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                    '<button type="submit">Me désabonner</button></form>'
                ),
            ),
        )

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        token = self._token()
        if token is None:
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(400, page("Requête refusée", "<p>Requête mal formée.</p>"))
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        if "List-Unsubscribe=One-Click" not in body:  # RFC 8058 §3.1; also in multipart bodies
            self._send(400, page("Requête refusée", "<p>Requête de désabonnement incomplète.</p>"))
            return
        contact_id = self.app.contact_for(token)
        if contact_id is None:
            self._send(
                403,
                page(
                    "Lien non valide",
                    "<p>Ce lien de désabonnement n'est pas"
                    " valide&nbsp;: rien n'a été enregistré.</p>",
                ),
            )
            return
        try:
            addresses, sources = self.app.unsubscribe(contact_id)
        except Exception as exc:
            log.error(
                "unsubscribe of contact %s could not be recorded: %s: %s",
                contact_id,
                type(exc).__name__,
                exc,
            )
            self._send(
                503,
                page(
                    "Réessayez plus tard",
                    "<p>Votre demande n'a pas pu être"
                    " enregistrée. Merci de réessayer dans quelques minutes.</p>",
                ),
            )
            return
        self._send(
            200,
            page(
                "Désabonnement confirmé",
                "<p>C'est fait&nbsp;: vous ne recevrez plus nos messages à cette adresse.</p>",
            ),
        )
        self.app.tell_source(contact_id, addresses, sources)
