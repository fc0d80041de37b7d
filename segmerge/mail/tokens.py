"""The tokens every unsubscribe link carries (the key that signs them is loaded, and
guarded, by :func:`segmerge.ledger.health.signing_key`).

Kept apart from :mod:`segmerge.mail.consent` (which works on whole pandas columns) so that
what answers a click, the one-click endpoint in ``serve``, checks a token without
loading pandas: a daemon that waits for clicks all week stays small.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from segmerge.ports.addresses import normalised_or_none

KEY_FILE = "signing.key"


def unsubscribe_token(key: bytes | None, contact_id: str) -> str:
    """`<contact id, base64url>.<HMAC>`: verifiable without a login or a database lookup."""
    cid = base64.urlsafe_b64encode(contact_id.encode()).decode().rstrip("=")
    if key is None:
        return f"{cid}.preview"
    sig = hmac.new(key, contact_id.encode(), hashlib.sha256).digest()[:16]
    return f"{cid}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


def verify_token(key: bytes, token: str) -> str | None:
    """The contact id a token was issued for, or None if it was not signed by this workspace."""
    if not token.isascii():  # compare_digest refuses non-ASCII str: a forged link, not a crash
        return None
    try:
        cid_b64, _sig = token.split(".", 1)
        contact_id = base64.urlsafe_b64decode(cid_b64 + "=" * (-len(cid_b64) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = unsubscribe_token(key, contact_id)
    return contact_id if hmac.compare_digest(expected, token) else None


#: test-send tokens: bound to the seed address, under a key derived for them alone, so no
#: test letter can ever carry (or be turned into) a customer's unsubscribe
TEST_TOKEN_PREFIX = "test."
_TEST_KEY_LABEL = b"segmerge test-send unsubscribe token v1"


def test_unsubscribe_token(key: bytes, seed_address: str) -> str:
    """`test.<seed address, base64url>.<HMAC>`: what a test letter's link carries.

    :func:`verify_token` rejects it (its first part is not a contact id, and it is signed
    with another key), so following a test letter's link unsubscribes nobody.
    """
    address = normalised_or_none(seed_address) or seed_address.strip().lower()
    enc = base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")
    return f"{TEST_TOKEN_PREFIX}{enc}.{_b64(_test_sig(key, address))}"


def verify_test_token(key: bytes, token: str) -> str | None:
    """The seed address a test token was issued for, or None if it is not one of ours."""
    if not token.startswith(TEST_TOKEN_PREFIX) or not token.isascii():
        return None
    try:
        enc, sig = token[len(TEST_TOKEN_PREFIX) :].split(".", 1)
        address = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return address if hmac.compare_digest(_b64(_test_sig(key, address)), sig) else None


def _test_sig(key: bytes, address: str) -> bytes:
    test_key = hmac.new(key, _TEST_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(test_key, b"test\0" + address.encode(), hashlib.sha256).digest()[:16]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


test_unsubscribe_token.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
