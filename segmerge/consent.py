"""Who may be mailed, and the signed unsubscribe link every message carries.

Consent is checked here, on whole columns, whatever the rule set says: a rule
set that forgets `exclude: not subscribed` still never mails someone who said
no, nor a suppressed, unsubscribed or bounced address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import numpy as np
import pandas as pd

KEY_FILE = "signing.key"

REASONS = {
    "no_email": "no e-mail address",
    "unsubscribed": "not subscribed",
    "unsubscribe_event": "unsubscribed (event)",
    "bounced": "address bounced",
    "suppressed": "on the suppression list",
    "shared": "address shared with a contact who said no",
}


def not_mailable(frame: pd.DataFrame, events: pd.DataFrame, suppressed: set[str]) -> pd.Series:
    """Per contact, why it must not be mailed (the first reason), or <NA> when it may be."""
    email = frame["email"].astype("string").str.strip().str.lower()
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    ids = frame["contact_id"].astype("string")

    def mark(mask: pd.Series | np.ndarray, key: str) -> None:
        m = np.asarray(mask, dtype=bool) & reason.isna().to_numpy()
        reason[m] = REASONS[key]

    mark(email.isna() | (email == ""), "no_email")
    mark(~frame["subscribed"].fillna(False).astype(bool), "unsubscribed")
    if len(events):
        kinds = events["event"].astype("string")
        unsub = set(events.loc[kinds == "unsubscribe", "contact_id"].astype(str))
        bounced = set(events.loc[kinds == "bounce", "contact_id"].astype(str))
        mark(ids.isin(unsub).fillna(False), "unsubscribe_event")
        mark(ids.isin(bounced).fillna(False), "bounced")
    if suppressed:
        mark(email.isin(suppressed).fillna(False), "suppressed")
    # a mailbox where one contact unsubscribed or bounced is closed for every contact using it
    refused = set(email[reason.notna() & (reason != REASONS["no_email"])].dropna())
    if refused:
        mark(email.isin(refused).fillna(False), "shared")
    return reason


def signing_key(state_dir: Path, *, create: bool) -> bytes | None:
    """The workspace's token key: random, kept in `.segmerge/` (never committed).

    Every unsubscribe link already sent was signed with it, so it is never silently
    replaced: an empty, garbled or foreign key is an error (exit 2), and a missing one
    is created (``create``) only in a workspace that never had state; in one that had
    (see :mod:`segmerge.state_check`) its loss is an error telling how to restore it.
    """
    from .state_check import load_key

    return load_key(state_dir, create=create)


def unsubscribe_token(key: bytes | None, contact_id: str) -> str:
    """`<contact id, base64url>.<HMAC>`: verifiable without a login or a database lookup."""
    cid = base64.urlsafe_b64encode(contact_id.encode()).decode().rstrip("=")
    if key is None:
        return f"{cid}.preview"
    sig = hmac.new(key, contact_id.encode(), hashlib.sha256).digest()[:16]
    return f"{cid}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


def verify_token(key: bytes, token: str) -> str | None:
    """The contact id a token was issued for, or None if it was not signed by this workspace."""
    try:
        cid_b64, _sig = token.split(".", 1)
        contact_id = base64.urlsafe_b64decode(cid_b64 + "=" * (-len(cid_b64) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = unsubscribe_token(key, contact_id)
    return contact_id if hmac.compare_digest(expected, token) else None
