"""Does ``/t/`` reach `segmerge serve`? The check docs/tracking.md asks for, done for you.

With ``[tracking] clicks`` on, every link of every letter goes through
``BASE/t/c/<token>``; if the reverse proxy does not forward ``/t/`` to `serve`,
every link of the next run is broken. The probe asks ``BASE/t/c/check`` (a token
nobody signed) as ``curl -sI`` would: `serve` answers 403 with ``Server: segmerge``.
Anything else (no answer, a 404 from the web site, a 403 from another server) means
the links would not reach it. `doctor` makes that a problem (exit 2), `validate` a
warning; both name the URL and the proxy line to add.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from segmerge.i18n import _
from segmerge.workspace.config import Workspace
from segmerge.workspace.tracking import base_url

#: url -> (HTTP status or None when nothing answered, its Server header, what went wrong)
Probe = Callable[[str], tuple[int | None, str | None, str]]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to judge (a site's catch-all), not one to follow."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def probe(url: str, timeout: float = 10.0) -> tuple[int | None, str | None, str]:
    """One HEAD request, as ``curl -sI`` sends it, following no redirect."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "segmerge-check"})
    try:
        with opener.open(request, timeout=timeout) as r:
            return r.status, r.headers.get("Server"), ""
    except urllib.error.HTTPError as exc:  # 403 is the answer hoped for
        return exc.code, exc.headers.get("Server"), ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, None, str(reason)


@dataclass(frozen=True)
class Reachability:
    url: str
    ok: bool
    what: str  # the sentence for the user, in the command's language
    fix: str  # the proxy line to add (empty when ok)


def check_url(ws: Workspace) -> str | None:
    """The URL to probe, or None when the workspace tracks neither clicks nor opens."""
    cfg = ws.config.tracking
    if not (cfg.clicks or cfg.opens):
        return None
    return f"{base_url(cfg, ws.config.mail.unsubscribe_url)}/t/c/check"


def proxy_line(url: str) -> str:
    """The nginx block forwarding the tracked path to `serve` (docs/tracking.md's)."""
    prefix = urlsplit(url).path.removesuffix("c/check")
    return (
        f"location {prefix} {{ proxy_pass http://127.0.0.1:8058; "
        "proxy_set_header User-Agent $http_user_agent; }"
    )


def check_tracking(ws: Workspace, ask: Probe | None = None) -> Reachability | None:
    """Ask the tracking URL once (with :func:`probe` unless told otherwise); None when
    tracking is off (nothing to check)."""
    url = check_url(ws)
    if url is None:
        return None
    status, server, error = (ask or probe)(url)
    if status == 403 and (server or "").split("/")[0].strip().lower() == "segmerge":
        return Reachability(
            url,
            True,
            _("tracked links reach segmerge serve: {url} answers 403 from segmerge").format(
                url=url
            ),
            "",
        )
    if status is None:
        got = _("no answer ({error})").format(error=error)
    else:
        got = _("HTTP {status} from server {server}").format(status=status, server=server or "?")
    what = _(
        "tracked links do not reach segmerge serve: {url} gave {got} instead of 403 from "
        "segmerge; every tracked link of the next run would be broken"
    ).format(url=url, got=got)
    fix = _(
        "forward /t/ to `segmerge serve` in your reverse proxy, e.g. nginx: {line} "
        "(or set [tracking] clicks and opens to false)"
    )
    fix = fix.format(line=proxy_line(url))
    return Reachability(url, False, what, fix)
