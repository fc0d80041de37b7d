"""The tracking routes of `serve`'s endpoint: ``/t/c/<token>`` (a click) and ``/t/o/<token>.gif``.

Only the path's last three segments count (``.../t/c/<token>``), so a
``[tracking] base_url`` with a path prefix works whether or not the reverse
proxy strips it. A valid token is recorded (:mod:`segmerge.serve.endpoint.tracking_record`) in
the endpoint's disk threads, then answered: a click with a 302 to the target
bound in the token, an open with a transparent 1x1 GIF. A token this workspace
did not sign gets a plain page and no redirect: there is no target to take
from the request, so the endpoint can never be an open redirect.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from segmerge.i18n import _
from segmerge.mail.tracking_tokens import CLICK, OPEN
from segmerge.serve.endpoint import pages
from segmerge.serve.endpoint.http import Answer, Head
from segmerge.serve.endpoint.tracking_record import TrackRecorder

log = logging.getLogger("segmerge.tracking")
#: the smallest transparent GIF (43 bytes)
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
GIF_TYPE = "image/gif"


@dataclass(frozen=True)
class Work:
    """Disk work whose result is the answer: run in the endpoint's pool, never its loop."""

    run: Callable[[], Answer]


def forged_page() -> bytes:
    return pages.page(_("Invalid link"), "<p>" + _("This link is not valid.") + "</p>")


def failed_page() -> bytes:
    return pages.page(
        _("Try again later"),
        "<p>" + _("We could not take you there just now. Please try again in a minute.") + "</p>",
    )


def route(head: Head, tracker: TrackRecorder) -> Answer | Work | None:
    """The answer to a tracking path, the work that makes it, or None (not a tracking path)."""
    parts = head.target.partition("?")[0].split("/")
    if len(parts) < 4 or parts[-3] != "t" or parts[-2] not in (CLICK, OPEN):
        return None
    kind, token = parts[-2], unquote(parts[-1])
    if kind == OPEN:
        token = token.removesuffix(".gif")
    if head.method == "POST":
        return Answer(405, pages.METHOD, ("Allow", "GET, HEAD"))
    hit = tracker.check(token)
    if hit is None or hit.kind != kind or (kind == CLICK and not _web(hit.url)):
        return Answer(404 if kind == OPEN else 403, forged_page())
    method, agent = head.method, head.agent

    def work() -> Answer:
        try:
            tracker.record(hit, method, agent)
        except Exception as exc:  # the ledger locked, full or lost: no uncounted redirect
            log.error(
                "a %s could not be recorded: %s: %s",
                "click" if kind == CLICK else "open",
                type(exc).__name__,
                exc,
            )
            return Answer(503, failed_page(), ("Retry-After", "60"))
        if kind == OPEN:
            return Answer(200, GIF, ctype=GIF_TYPE)
        return Answer(302, b"", ("Location", hit.url))

    return Work(work)


def _web(url: str) -> bool:
    """Only an http(s) target is ever redirected to (the rewriter binds no other)."""
    return url.lower().startswith(("https://", "http://")) and url.isascii() and url.isprintable()
