"""Signed tokens of our own click redirects and open pixels.

A click token carries the run, the contact, the number of tracked links in the
letter and the target itself, signed together: the redirect goes only where the
letter said, so the endpoint is never an open redirect (a changed target breaks the
signature), and it needs no table of links to answer. The key is derived from the
workspace's signing key under a label of its own, so a tracking token can never be
turned into an unsubscribe token, nor the other way round.

Tokens are deterministic (no time, no nonce): the same action builds the same bytes,
which is what makes a resend recognisable (see :mod:`segmerge.mail.message`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

_LABEL = b"segmerge tracking token v1"
MAX_TOKEN = 4096  # characters; a target URL over ~3 KB is not a link we rewrote
CLICK, OPEN = "c", "o"


@dataclass(frozen=True)
class Hit:
    """What a valid token says: a click on ``url`` (one of ``links``) or an open."""

    kind: str  # CLICK or OPEN
    run_id: str
    contact_id: str
    url: str = ""
    links: int = 0


def tracking_key(key: bytes) -> bytes:
    return hmac.new(key, _LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sig(tkey: bytes, kind: str, payload: bytes) -> str:
    return _b64(hmac.new(tkey, kind.encode() + b"\0" + payload, hashlib.sha256).digest()[:16])


def make_token(tkey: bytes, hit: Hit) -> str:
    """``<kind>.<payload, base64url>.<HMAC>``; ``tkey`` is :func:`tracking_key`'s."""
    fields = [hit.run_id, hit.contact_id]
    if hit.kind == CLICK:
        fields += [str(hit.links), hit.url]
    payload = "\0".join(fields).encode()
    return f"{hit.kind}.{_b64(payload)}.{_sig(tkey, hit.kind, payload)}"


def read_token(tkey: bytes, token: str) -> Hit | None:
    """The hit a token was issued for, or None when this workspace did not sign it."""
    if len(token) > MAX_TOKEN or not token.isascii():  # compare_digest refuses non-ASCII
        return None
    try:
        kind, enc, sig = token.split(".")
        payload = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
    except (ValueError, TypeError):
        return None
    if kind not in (CLICK, OPEN) or not hmac.compare_digest(_sig(tkey, kind, payload), sig):
        return None
    try:
        fields = payload.decode().split("\0")
    except UnicodeDecodeError:
        return None
    if kind == OPEN and len(fields) == 2:
        return Hit(OPEN, fields[0], fields[1])
    if kind == CLICK and len(fields) == 4 and fields[2].isdigit():
        return Hit(CLICK, fields[0], fields[1], fields[3], int(fields[2]))
    return None
