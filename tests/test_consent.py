"""Consent: who may never be mailed, and unsubscribe tokens that cannot be forged."""

from __future__ import annotations

import pandas as pd

from segmerge.ledger.health import signing_key
from segmerge.mail.consent import not_mailable
from segmerge.mail.tokens import unsubscribe_token, verify_token


def test_every_reason_blocks_and_first_reason_wins():
    frame = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3", "4", "5", "6"],
            "email": ["a@x.fr", None, "c@x.fr", "d@x.fr", "E@X.FR", "f@x.fr"],
            "subscribed": [True, True, False, True, True, True],
        }
    )
    at = pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True)
    events = pd.DataFrame(
        {
            "contact_id": ["4", "6"],
            "campaign_id": ["c", "c"],
            "event": ["unsubscribe", "bounce"],
            "at": at,
        }
    )
    reasons = not_mailable(frame, events, {"e@x.fr"})
    assert reasons.isna().tolist() == [True, False, False, False, False, False]
    assert reasons.iloc[1:].tolist() == [
        "no e-mail address",
        "not subscribed",
        "unsubscribed (event)",
        "on the suppression list",
        "address bounced",
    ]


def test_token_round_trip_and_forgery(tmp_path):
    key = signing_key(tmp_path, create=True)
    assert key is not None and (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    assert signing_key(tmp_path, create=True) == key  # stable across runs
    token = unsubscribe_token(key, "C00042")
    assert verify_token(key, token) == "C00042"
    forged = unsubscribe_token(key, "C00043").split(".")[0] + "." + token.split(".")[1]
    assert verify_token(key, forged) is None
    assert verify_token(b"other", token) is None
    assert signing_key(tmp_path / "new", create=False) is None


def test_one_click_by_id_unusable_addresses_and_a_shared_mailbox():
    frame = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3", "4", "5"],
            "email": ["new@x.fr", "NEW@x.fr", "a b@x.fr", "ok@x.fr", "\u200b"],
            "subscribed": [True, True, True, True, True],
        }
    )
    events = pd.DataFrame(columns=["contact_id", "campaign_id", "event", "at"])
    reasons = not_mailable(frame, events, set(), {"1"})
    assert reasons.tolist()[:3] == [
        "unsubscribed (one-click)",
        "address shared with a contact who said no",
        "address cannot be used: space inside",
    ]
    assert pd.isna(reasons.iloc[3])
    assert reasons.iloc[4] == "no e-mail address"  # only invisible characters: no address


def test_one_letter_per_mailbox_goes_to_the_smallest_id_whatever_the_order():
    """A household and two spellings of one address get one letter, to the contact with
    the smallest id even when the file lists it last; ids given as a list or a column."""
    import numpy as np

    from segmerge.mail.consent import check, one_per_address

    frame = pd.DataFrame(
        {
            "contact_id": ["9", "3", "5", "7", "1"],
            "email": ["home@x.fr", "solo@x.fr", " HOME@x.fr", "b@x.fr", "home@x.fr"],
            "subscribed": [True, True, True, False, True],
        }
    )
    consent = check(frame, pd.DataFrame(columns=["contact_id", "event"]), set())
    mailable = consent.reason.isna().to_numpy()
    ids = frame["contact_id"].astype("string")
    for given in (ids.tolist(), ids):
        kept, left_out = one_per_address(mailable, consent.address, given)
        assert np.flatnonzero(kept).tolist() == [1, 4]  # "3" alone, "1" of the household
        assert left_out == 2


def test_one_letter_per_mailbox_on_addresses_in_several_arrow_chunks():
    """A database's answer comes in chunks: a mailbox shared across two is still one."""
    import numpy as np
    import pyarrow as pa

    from segmerge.mail.consent import one_per_address

    chunks = pa.chunked_array(
        [pa.array(["a@x.fr", "b@x.fr", None]), pa.array(["a@x.fr", "c@x.fr"])]
    )
    address = pd.Series(pd.arrays.ArrowStringArray(chunks))
    kept, left_out = one_per_address(np.array([1, 1, 0, 1, 1], bool), address, list("52913"))
    assert kept.tolist() == [False, True, False, True, True] and left_out == 1


def test_addresses_normalised_a_slice_at_a_time_give_each_contact_the_same_reason(
    monkeypatch,
):
    """A million addresses are normalised a slice at a time (their copies were ~90 MiB at
    once): a mailbox shared across two slices is still closed, and still gets one letter."""
    import numpy as np

    from segmerge.mail import consent

    frame = pd.DataFrame(
        {
            "contact_id": ["9", "3", "5", "7", "1", "2", "4"],
            "email": ["home@x.fr", "solo@x.fr", " HOME@x.fr", "b@x.fr", "a b@x", None, "B@x.fr"],
            "subscribed": [True, True, True, False, True, True, True],
        }
    )
    events = pd.DataFrame(columns=["contact_id", "event"])
    whole = consent.check(frame, events, set())
    monkeypatch.setattr(consent, "SLICE", 2)
    sliced = consent.check(frame, events, set())
    pd.testing.assert_series_equal(sliced.reason, whole.reason)
    pd.testing.assert_series_equal(sliced.address, whole.address)
    assert sliced.reason.iloc[[6, 4, 5]].tolist() == [
        "address shared with a contact who said no",  # "7" said no in another slice
        "address cannot be used: space inside",
        "no e-mail address",
    ]
    kept, left_out = consent.one_per_address(
        sliced.reason.isna().to_numpy(), sliced.address, frame["contact_id"]
    )
    assert np.flatnonzero(kept).tolist() == [1, 2] and left_out == 1  # "5" of the home
