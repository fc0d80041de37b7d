"""A real workspace for the consent tests: a contacts CSV as the source, an outbox as the
destination, one campaign `news` whose one segment takes everyone subscribed.

Who was mailed is read back from the outbox's `.eml` files (the `To` header and the
contact id in the file name), the way a shop would check what went out.
"""

from __future__ import annotations

import csv
import email
import email.policy
from pathlib import Path

from one_campaign import lay_out, rules

from segmerge.ledger.store import Ledger
from segmerge.run.pipeline import RunOptions, RunSummary, run
from segmerge.workspace import config as wsmod

DAY = "2026-12-01"


Contact = tuple[str, str] | tuple[str, str, str]


def make_workspace(root: Path, contacts: list[Contact]) -> Path:
    """``contacts`` as (contact_id, email) or (contact_id, email, subscribed), in this file
    order; subscribed (``oui``) unless said."""
    lay_out(root, rules_text=rules(exclude="not subscribed"))
    write_contacts(root, contacts)
    return root


def write_contacts(root: Path, contacts: list[Contact]) -> None:
    (root / "data").mkdir(exist_ok=True)
    with (root / "data" / "contacts.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_ALL)
        w.writerow(["contact_id", "email", "first_name", "subscribed"])
        for cid, addr, *subscribed in contacts:
            w.writerow([cid, addr, f"Prénom {cid}", subscribed[0] if subscribed else "oui"])


def run_news(root: Path, day: str = DAY) -> RunSummary:
    return run(wsmod.load(root), "news", RunOptions(as_of=day))


def ledger(root: Path) -> Ledger:
    return Ledger(root / ".segmerge" / "ledger.sqlite")


def suppress(root: Path, *addresses: str) -> None:
    led = ledger(root)
    try:
        led.suppress([(a, "unsubscribed by phone") for a in addresses])
    finally:
        led.close()


def mailed(root: Path) -> dict[str, str]:
    """contact id -> the `To` address of every letter in the outbox."""
    out: dict[str, str] = {}
    for path in sorted((root / "outbox").rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[path.name.rsplit("-", 1)[0]] = str(msg["To"].addresses[0].addr_spec)
    return out
