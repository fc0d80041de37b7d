"""An unsubscribe kept by contact id survives a change of address in the CRM."""

from __future__ import annotations

import sqlite3

from cli import segmerge
from consent_ws import ledger, mailed, make_workspace, run_news, write_contacts

from segmerge.ledger.store import Ledger


def test_a_contact_unsubscribed_by_id_then_given_a_new_address_is_not_mailed(tmp_path):
    root = make_workspace(tmp_path / "ws", [("c1", "old@example.org"), ("c2", "ok@example.org")])
    led = ledger(root)
    try:  # what the one-click endpoint records
        assert led.suppress_contacts([("c1", "one-click"), ("c1", "again")]) == 1
    finally:
        led.close()
    # the CRM export now has c1 at a new address, and a second record (c3) sharing it
    write_contacts(
        root, [("c1", "new@example.org"), ("c2", "ok@example.org"), ("c3", "NEW@example.org")]
    )
    summary = run_news(root)
    assert mailed(root) == {"c2": "ok@example.org"}
    assert summary.not_mailed == {
        "unsubscribed (one-click)": 1,
        "address shared with a contact who said no": 1,
    }
    led = ledger(root)
    try:  # the mailbox c1 has today is closed for good, whichever record carries it next
        assert "new@example.org" in led.suppressed_addresses()
        assert led.suppressed_contact_ids() == {"c1"}
    finally:
        led.close()


def test_an_old_ledger_gains_the_contact_table_and_keeps_its_suppressions(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # a ledger from before contact suppressions
        db.execute(
            "CREATE TABLE suppressions (address TEXT PRIMARY KEY, "
            "reason TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL)"
        )
        db.execute("INSERT INTO suppressions VALUES ('alice@example.org', 'old', '2025-01-01')")
    led = Ledger(path)
    try:
        assert led.suppressed_contact_ids() == set()
        assert led.suppress_contacts([("C00042", "one-click")]) == 1
        assert led.suppressed_addresses() == {"alice@example.org"}
    finally:
        led.close()
    again = Ledger(path)
    try:
        assert again.suppressed_contact_ids() == {"C00042"}
    finally:
        again.close()


def test_suppress_list_shows_contacts_suppressed_by_id(tmp_path):
    root = make_workspace(tmp_path / "ws", [("c1", "a@example.org")])
    led = ledger(root)
    try:
        led.suppress([("b@example.org", "manual")])
        led.suppress_contacts([("C00042", "unsubscribed (one-click)")])
    finally:
        led.close()
    out = segmerge("suppress", "list", "--format", "csv", "-w", str(root))
    assert out.returncode == 0, out.stderr
    assert "b@example.org" in out.stdout
    assert "C00042" in out.stdout and "unsubscribed (one-click)" in out.stdout
