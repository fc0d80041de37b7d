"""Addresses are compared as mail servers deliver them.

One real campaign run into an outbox, over a contacts file holding the spellings an
attacker (or a sloppy CRM export) would use to slip a suppressed mailbox past the
suppression list, two spellings of one mailbox, and addresses that cannot be sent
to at all. Each test checks one of them against what actually went out.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from consent_ws import ledger, mailed, make_workspace, run_news, suppress

from segmerge.mail.message import build_message
from segmerge.ports.addresses import normalise_column
from segmerge.render.templates import Rendered

SUPPRESSED = ("alice@example.org", "bob@exâmple.org")
#: contact id -> (its address in contacts.csv, what it is)
DISGUISED = {
    "a1": ("alice@exam\u00adple.org", "a soft hyphen in the domain"),
    "a2": ("\uff41lice@example.org", "a full-width letter"),
    "a3": ("ali\u200bce@example.org", "a zero-width space"),
    "a4": ("\ufeffalice@example.org", "a BOM in front"),
    "a5": ("  ALICE@Example.ORG\u2060", "upper case, spaces and a word joiner"),
    "b1": ("bob@EXÂMPLE.ORG", "an upper-case IDN domain"),
    "b2": ("bob@xn--exmple-xta.org", "the punycode twin of the IDN domain"),
    "d1": ("dave@xn--exmple-cua.org", "a legacy lower-cased suppression in Unicode"),
}
TWO_SPELLINGS = [("e20", "Erin@Example.org"), ("e10", "erin@exam\u00adple.org")]
UNUSABLE = {
    "x1": ("fr\nank@example.org", "address cannot be used: control character"),
    "x2": ("@", "address cannot be used: not of the form name@domain"),
    "x3": ("gina@xn--zz.org", "address cannot be used: invalid domain"),
    "x4": (
        "jörg@example.de",
        "address cannot be used: non-ASCII before the @: not deliverable without SMTPUTF8",
    ),
    "x5": ("hal @example.org", "address cannot be used: space inside"),
}
#: a contact who said no, and another record of the same mailbox in another spelling
SAID_NO = [("f1", "frank@example.org", "non"), ("f2", "FRANK@exam\u200dple.org", "oui")]
CONTROL = [("z1", "carol@example.org"), ("z2", "zoe@exâmple.org")]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    root = tmp_path_factory.mktemp("addr") / "ws"
    contacts = [(cid, addr) for cid, (addr, _) in DISGUISED.items()]
    contacts += TWO_SPELLINGS + [(cid, addr) for cid, (addr, _) in UNUSABLE.items()]
    contacts += SAID_NO + CONTROL
    make_workspace(root, contacts)
    suppress(root, *SUPPRESSED)
    # a ledger written before normalisation stored addresses only stripped and lower-cased
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        db.execute(
            "INSERT INTO suppressions(address, reason, added_at) "
            "VALUES ('dave@exämple.org', 'old', '2025-01-01')"
        )
    summary = run_news(root)
    return root, summary, mailed(root)


@pytest.mark.parametrize("cid", list(DISGUISED), ids=[w for _, w in DISGUISED.values()])
def test_a_disguised_suppressed_address_is_not_mailed(outcome, cid):
    _, summary, sent = outcome
    assert cid not in sent
    assert summary.not_mailed["on the suppression list"] == len(DISGUISED)


def test_the_suppression_list_holds_one_normal_form(outcome):
    root, _, _ = outcome
    led = ledger(root)
    try:
        assert {"alice@example.org", "bob@xn--exmple-xta.org"} <= led.suppressed_addresses()
        assert led.suppress([("ALICE@exam\u00adple.org", "again")]) == 0  # the same mailbox
    finally:
        led.close()


def test_a_mailbox_closed_by_one_contact_is_closed_under_another_spelling(outcome):
    _, summary, sent = outcome
    assert "f1" not in sent and "f2" not in sent
    assert summary.not_mailed["address shared with a contact who said no"] == 1


def test_two_spellings_of_one_mailbox_get_one_letter_to_the_smallest_id(outcome):
    _, summary, sent = outcome
    erin = {cid: to for cid, to in sent.items() if to == "erin@example.org"}
    assert erin == {"e10": "erin@example.org"}  # e20 comes first in the file: order is no matter
    assert summary.not_mailed["address shared with another contact"] == 1


@pytest.mark.parametrize("cid", list(UNUSABLE), ids=[repr(a) for a, _ in UNUSABLE.values()])
def test_an_unusable_address_is_skipped_and_reported_and_the_run_goes_on(outcome, cid):
    _, summary, sent = outcome
    assert cid not in sent
    assert summary.not_mailed[UNUSABLE[cid][1]] >= 1
    assert sent["z1"] == "carol@example.org"
    assert sent["z2"] == "zoe@xn--exmple-xta.org"  # an IDN address is mailed, in ASCII
    assert summary.render_errors == []


def test_only_the_controls_and_one_erin_were_mailed(outcome):
    _, summary, sent = outcome
    assert sorted(sent) == ["e10", "z1", "z2"]
    assert summary.outcome["send"] == {"done": 3}


def test_every_normalised_address_passes_the_message_builder():
    """What the normalisation lets through is always a valid SMTP address for message.py."""
    raw = [a for a, _ in DISGUISED.values()] + [a for _, a in TWO_SPELLINGS + CONTROL]
    raw += ["o'brien+tag@sub.example.co.uk", "x@ab--cd.com", "ℌ@münchen.de", "A.B@EXAMPLE.ORG."]
    normal, problem = normalise_column(pd.Series(raw))
    assert problem.isna().all()
    letter = Rendered(
        subject="s",
        preheader="",
        html="<p>x</p>",
        text="x",
        from_addr=None,
        reply_to=None,
        template="t.html.j2",
    )
    for addr in normal:
        msg = build_message(
            letter,
            to=addr,
            to_name="Ann",
            from_addr="shop@example.org",
            message_id="<k@example.org>",
            unsubscribe_url="https://example.org/u?t=x",
        )
        assert str(msg["To"]) == f"Ann <{addr}>"


def test_plain_addresses_take_the_column_path_and_match_the_one_by_one_path(tmp_path: Path):
    from segmerge.ports.addresses import normalise

    values = [f"User{i}@Example.ORG " for i in range(2000)] + ["ｕser1@example.org"]
    normal, problem = normalise_column(pd.Series(values))
    assert problem.isna().all()
    assert normal.tolist() == [normalise(v) for v in values]
    assert normal.nunique() == 2000


def test_an_imported_suppression_list_in_odd_spellings_blocks_the_plain_addresses(tmp_path):
    from segmerge.ledger.store import Ledger
    from segmerge.mail.suppression import read_addresses

    export = tmp_path / "bounces.csv"
    export.write_text(
        "Email;Raison\nALICE@exam\u00adple.org;bounce\nbob@EXÂMPLE.ORG;spam\n"
        '\uff43arol@example.org;x\n"Dave D <Dave@Example.org>";y\n',
        encoding="utf-8",
    )
    addresses = read_addresses(export)
    assert addresses == [
        "alice@example.org",
        "bob@xn--exmple-xta.org",
        "carol@example.org",
        "dave@example.org",
    ]
    led = Ledger(tmp_path / "ledger.sqlite")
    try:
        assert led.suppress([(a, "import") for a in addresses]) == 4
        assert led.suppress([("Alice@Example.org", "manual")]) == 0
        assert led.unsuppress("carol@exam\u200bple.org")  # any spelling removes it
        assert led.suppressed_addresses() == {
            "alice@example.org",
            "bob@xn--exmple-xta.org",
            "dave@example.org",
        }
    finally:
        led.close()


def test_the_frequency_cap_counts_a_mailbox_sent_to_under_another_spelling(tmp_path):
    from datetime import UTC, datetime

    from segmerge.ledger.health import signing_key
    from segmerge.run.pipeline import RunOptions, run
    from segmerge.workspace import config as wsmod

    root = make_workspace(tmp_path / "ws", [("c1", "alice@example.org"), ("c2", "bob@example.org")])
    with (root / "segmerge.toml").open("a") as fh:
        fh.write("\n[pressure]\nmax_messages = 1\nper_days = 7\n")
    ledger(root).close()  # the state a previous run leaves: a ledger and a key
    signing_key(root / ".segmerge", create=True)
    # a send from another campaign, recorded as an older version spelled the address
    now = datetime.now(UTC)
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        db.execute(
            "INSERT INTO runs(run_id, campaign, as_of, started_at, status) "
            "VALUES ('promo@x', 'promo', ?, ?, 'done')",
            (now.isoformat(),) * 2,
        )
        db.execute(
            "INSERT INTO actions(key, run_id, contact_id, kind, destination, target, "
            "status, created_at, updated_at) VALUES ('promo@x|9|send', 'promo@x', '9', "
            "'send', 'outbox', 'ALICE@Exam\u00adple.org', 'done', ?, ?)",
            (now.isoformat(),) * 2,
        )
    summary = run(wsmod.load(root), "news", RunOptions(as_of="2026-12-01", now=now))
    assert mailed(root) == {"c2": "bob@example.org"}
    assert sum(summary.deferred.values()) == 1
