"""A letter of our own sends, with its links through our redirects and, if asked, a pixel.

Applied by the run to each contact's rendered letter just before the message is
built (:func:`segmerge.run.pipeline._plan_sends`), and only there: `render`, `preview`
and `test-send` show and send the links as written, so a test letter never counts
as a click of a campaign.

Rewritten: ``href`` of ``<a>`` and ``<area>`` in the HTML part, and bare
``http(s)://`` links in the text part (a reader clicks those too). Left alone:
the unsubscribe link (RFC 8058 wants it as is, and a scanner following it through
a redirect would look like a click), ``mailto:``/``tel:``/anchors, and links
already on the tracking host. One target gets one token, wherever it appears.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape, unescape
from urllib.parse import quote

from segmerge.mail.tracking_tokens import CLICK, OPEN, Hit, make_token, tracking_key
from segmerge.render.templates import Rendered
from segmerge.workspace.config import Workspace
from segmerge.workspace.tracking import base_url

_HREF = re.compile(r"""(<(?:a|area)\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_BARE = re.compile(r"""https?://[^\s<>"']+""")
_TRAILING = ".,;:!?)]}»'\""
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"  # what a link keeps; the rest is percent-encoded
PIXEL = (
    '<img src="{src}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px;overflow:hidden">'
)


@dataclass(frozen=True)
class Tracker:
    """What every letter of one run shares: the tracking key, base URL and settings."""

    tkey: bytes
    base: str  # https://host[/prefix], no trailing slash
    clicks: bool
    opens: bool

    def apply(self, r: Rendered, run_id: str, contact_id: str, unsubscribe_url: str) -> Rendered:
        """``r`` with its links rewritten and its pixel added, as this run's settings say."""
        if not (self.clicks or self.opens):
            return r
        html, text = r.html, r.text
        if self.clicks:
            skip = {unsubscribe_url, quote(unsubscribe_url, safe=_URL_SAFE)}
            targets = self._targets(html, text, skip)
            if targets:
                links = len(targets)
                href = {t: self.click_url(run_id, contact_id, t, links) for t in targets}
                html = _HREF.sub(lambda m: _href(m, href), html)
                text = _BARE.sub(lambda m: _bare(m, href), text)
        if self.opens:
            token = make_token(self.tkey, Hit(OPEN, run_id, contact_id))
            img = PIXEL.format(src=f"{self.base}/t/o/{token}.gif")
            end = html.lower().rfind("</body")
            html = html[:end] + img + html[end:] if end >= 0 else html + img
        return replace(r, html=html, text=text)

    def click_url(self, run_id: str, contact_id: str, target: str, links: int) -> str:
        token = make_token(self.tkey, Hit(CLICK, run_id, contact_id, target, links))
        return f"{self.base}/t/c/{token}"

    def _targets(self, html: str, text: str, skip: set[str]) -> list[str]:
        """The distinct trackable targets of a letter, in order of appearance."""
        seen: dict[str, None] = {}
        for m in _HREF.finditer(html):
            url = _target(unescape(m.group(2) if m.group(2) is not None else m.group(3)))
            if url is not None and url not in skip and not self._ours(url):
                seen.setdefault(url)
        for m in _BARE.finditer(text):
            url = _target(_strip(m.group(0)))
            if url is not None and url not in skip and not self._ours(url):
                seen.setdefault(url)
        return list(seen)

    def _ours(self, url: str) -> bool:
        return url.startswith(self.base + "/t/")


def _target(raw: str) -> str | None:
    """The URL as a redirect will send it (percent-encoded), or None if not trackable."""
    url = raw.strip()
    if not re.match(r"https?://[^/\s]", url, re.IGNORECASE):
        return None
    return quote(url, safe=_URL_SAFE)


def _strip(url: str) -> str:
    """A bare link without the punctuation of the sentence around it."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _href(m: re.Match[str], href: dict[str, str]) -> str:
    raw = m.group(2) if m.group(2) is not None else m.group(3)
    url = _target(unescape(raw))
    if url is None or url not in href:
        return m.group(0)
    return f'{m.group(1)}"{escape(href[url])}"'


def _bare(m: re.Match[str], href: dict[str, str]) -> str:
    whole = m.group(0)
    link = _strip(whole)
    url = _target(link)
    if url is None or url not in href:
        return whole
    return href[url] + whole[len(link) :]


def run_tracker(ws: Workspace, key: bytes | None) -> Tracker | None:
    """The tracker of one run of our own sends, or None (both off, or no key: a dry run)."""
    cfg = ws.config.tracking
    if key is None or not (cfg.clicks or cfg.opens):
        return None
    base = base_url(cfg, ws.config.mail.unsubscribe_url)
    return Tracker(tracking_key(key), base, cfg.clicks, cfg.opens)
