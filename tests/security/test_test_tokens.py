"""A test-send letter can never unsubscribe a real customer.

Its link (in the body and in List-Unsubscribe) carries a token bound to the seed
address, signed under a key derived for test tokens alone: the customer token check
rejects it, however it is cut or re-assembled.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from urllib.parse import parse_qs, urlparse

import pytest
from consent_ws import make_workspace

from segmerge.errors import ConfigError
from segmerge.ledger.health import signing_key
from segmerge.mail.tokens import (
    test_unsubscribe_token,
    unsubscribe_token,
    verify_test_token,
    verify_token,
)
from segmerge.run.testsend import test_send as send_tests
from segmerge.workspace import config as wsmod

KEY = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _tokens(msg: email.message.EmailMessage) -> set[str]:
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    urls = re.findall(r"https://example\.org/u\?token=[^'\"<>\s]+", html)
    urls += re.findall(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"]))
    return {parse_qs(urlparse(u).query)["token"][0] for u in urls}


def test_a_test_send_letter_carries_a_token_that_names_no_customer(tmp_path):
    root = make_workspace(tmp_path / "ws", [("C00042", "real.customer@example.org")])
    results = send_tests(wsmod.load(root), "news", "Moi@Exam\u00adple.org", as_of="2026-12-01")
    assert [status for _, status, _ in results] == ["done"]
    [path] = list((root / "outbox").rglob("*.eml"))
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "moi@example.org"
    tokens = _tokens(msg)
    assert len(tokens) == 1, "the body and List-Unsubscribe carry the same test token"
    [token] = tokens
    key = signing_key(root / ".segmerge", create=False)
    assert key is not None
    assert verify_token(key, token) is None  # the endpoint's customer check: nobody
    assert verify_test_token(key, token) == "moi@example.org"
    assert token != unsubscribe_token(key, "C00042") and "C00042" not in token


def test_a_suppressed_seed_in_another_spelling_is_still_refused(tmp_path):
    from consent_ws import suppress

    root = make_workspace(tmp_path / "ws", [("c1", "a@example.org")])
    suppress(root, "moi@example.org")
    with pytest.raises(ConfigError, match="suppression list"):
        send_tests(wsmod.load(root), "news", "MOI@exam\u200bple.org", as_of="2026-12-01")
    assert not (root / "outbox").exists() or not list((root / "outbox").rglob("*.eml"))


@pytest.mark.parametrize("contact_id", ["C00042", "moi@example.org", "test", "", "a.b"])
def test_no_cut_or_reassembly_of_a_test_token_verifies_as_a_customer(contact_id):
    token = test_unsubscribe_token(KEY, "moi@example.org")
    prefix, enc, sig = token.split(".")
    customer = unsubscribe_token(KEY, contact_id)
    forged = [
        token,
        f"{enc}.{sig}",
        f"{prefix}.{sig}",
        f"{enc}.{sig}.{sig}",
        customer.split(".")[0] + "." + sig,
        f"{prefix}.{customer}",
    ]
    for candidate in forged:
        assert verify_token(KEY, candidate) is None, candidate
    # and a customer's token is not a test token either
    assert verify_test_token(KEY, customer) is None
    assert verify_test_token(KEY, "test." + customer) is None


def test_a_test_token_for_another_seed_or_key_does_not_verify():
    token = test_unsubscribe_token(KEY, "moi@example.org")
    _, enc, sig = token.split(".")
    other = base64.urlsafe_b64encode(b"toi@example.org").decode().rstrip("=")
    assert verify_test_token(KEY, f"test.{other}.{sig}") is None
    assert verify_test_token(b"another key", token) is None
    assert verify_test_token(KEY, "test.%%%.???") is None


@pytest.mark.parametrize("tail", ["é", "\u200b", "€€€", "\udcff"])
def test_a_token_with_non_ascii_text_is_refused_not_a_crash(tail):
    """A forged link with non-ASCII bytes in its signature used to raise TypeError
    (hmac.compare_digest refuses non-ASCII str) wherever a token is checked."""
    good = unsubscribe_token(KEY, "C42")
    test = test_unsubscribe_token(KEY, "moi@example.org")
    assert verify_token(KEY, good[:-1] + tail) is None
    assert verify_test_token(KEY, test[:-1] + tail) is None
    assert verify_token(KEY, good) == "C42"
