"""The events a campaign's KPIs use: its own, never another campaign's.

- Our own sends (smtp, outbox): the opens and clicks our redirects and pixel
  recorded for the campaign's runs (:mod:`segmerge.ledger.tracking`), those a
  person made (not a scanner's), each tagged with its run id; and the one-click
  unsubscribes of `serve`, each credited to the last letter the contact got.
- Platform campaigns: the platform's events whose ``campaign_id`` is one of the
  campaign's (its name, its run ids, the ids the platform gave its drafts).

An event of any other campaign is left out, even inside the attribution window:
before, an SMTP campaign counted whatever the source had from any campaign.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from segmerge.i18n import _, ngettext, number
from segmerge.ledger.store import Ledger
from segmerge.mail.unsubscribe_queue import AUDIT_FILE
from segmerge.workspace.storage import StateError

COLUMNS = ["contact_id", "campaign_id", "event", "at"]


def tracked_events(ledger: Ledger, run_ids: Iterable[str | None]) -> pd.DataFrame:
    """Our tracked opens and clicks of these runs, and the one-click unsubscribes their
    letters brought, as events of campaign id = run id."""
    runs = [r for r in run_ids if r]
    rows = ledger.tracked(runs)
    frame = pd.DataFrame(
        {
            "contact_id": pd.array([r["contact_id"] for r in rows], dtype="string"),
            "campaign_id": pd.array([r["run_id"] for r in rows], dtype="string"),
            "event": pd.array([r["event"] for r in rows], dtype="string"),
            "at": pd.to_datetime([r["first_at"] for r in rows], utc=True, format="ISO8601"),
        }
    )
    unsubscribes = own_unsubscribes(ledger)
    unsubscribes = unsubscribes[unsubscribes["campaign_id"].isin(runs)]
    return (
        pd.concat([frame[COLUMNS], unsubscribes], ignore_index=True)
        if len(unsubscribes)
        else frame[COLUMNS]
    )


def own_unsubscribes(ledger: Ledger) -> pd.DataFrame:
    """One-click unsubscribes through `serve`, each credited to the run whose letter the
    contact got last before it (the link came in one of our letters; its token names
    the contact, not the letter, so the last one before the click is the one clicked in,
    or the one that decided it)."""
    audit = _audit_rows(ledger.path.parent / AUDIT_FILE)
    if audit.empty:
        return _empty()
    sends = pd.DataFrame(
        ledger.sends_to(sorted(set(audit["contact_id"]))),
        columns=["campaign_id", "contact_id", "sent"],
    )
    if sends.empty:
        return _empty()
    sends["sent"] = pd.to_datetime(sends["sent"], utc=True, format="ISO8601")
    sends["contact_id"] = sends["contact_id"].astype("string")  # the audit's dtype: merge keys
    audit = audit.sort_values("at")
    sends = sends.sort_values("sent")
    m = pd.merge_asof(
        audit, sends, left_on="at", right_on="sent", by="contact_id", allow_exact_matches=False
    )
    m = m[m["campaign_id"].notna()]
    return pd.DataFrame(
        {
            "contact_id": m["contact_id"].astype("string"),
            "campaign_id": m["campaign_id"].astype("string"),
            "event": pd.array(["unsubscribe"] * len(m), dtype="string"),
            "at": m["at"],
        }
    )[COLUMNS].reset_index(drop=True)


def _audit_rows(path: Path) -> pd.DataFrame:
    """(contact id, when) of each unsubscribe the endpoint recorded; read only, never created."""
    empty = pd.DataFrame(
        {"contact_id": pd.Series(dtype="string"), "at": pd.Series(dtype="datetime64[ns, UTC]")}
    )
    if not path.exists():
        return empty
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT contact_id, at FROM unsubscribes").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:  # a damaged audit file: kpi says nothing it cannot read
        raise StateError(
            _("the unsubscribe audit cannot be read: {exc}").format(exc=exc), file=path
        ) from None
    if not rows:
        return empty
    frame = pd.DataFrame(rows, columns=["contact_id", "at"])
    frame["contact_id"] = frame["contact_id"].astype("string")
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": pd.Series(dtype="string"),
            "campaign_id": pd.Series(dtype="string"),
            "event": pd.Series(dtype="string"),
            "at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )


def campaign_events(source: pd.DataFrame, tracked: pd.DataFrame, ours: set[str]) -> pd.DataFrame:
    """The platform's events of ``ours`` campaign ids, and our own tracked ones."""
    mine = source[source["campaign_id"].isin(list(ours))][COLUMNS]
    own = tracked[tracked["campaign_id"].isin(list(ours))]
    if own.empty:
        return mine.reset_index(drop=True)
    if mine.empty:
        return own.reset_index(drop=True)
    return pd.concat([mine, own], ignore_index=True)


def machines_note(ledger: Ledger, run_id: str) -> str | None:
    """How many of the run's tracked hits were a machine's (docs/tracking.md), if any."""
    n = sum(ledger.tracked_summary([run_id]).values())
    if not n:
        return None
    return ngettext(
        "{n} open or click by a machine (mail scanner, link checker) was not counted",
        "{n} opens or clicks by machines (mail scanners, link checkers) were not counted",
        n,
    ).format(n=number(n))
