"""The events a campaign's KPIs use: its own, never another campaign's.

- Our own sends (smtp, outbox): the opens and clicks our redirects and pixel
  recorded for the campaign's runs (:mod:`segmerge.ledger_tracking`), those a
  person made (not a scanner's), each tagged with its run id.
- Platform campaigns: the platform's events whose ``campaign_id`` is one of the
  campaign's (its name, its run ids, the ids the platform gave its drafts).

An event of any other campaign is left out, even inside the attribution window:
before, an SMTP campaign counted whatever the source had from any campaign.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .ledger import Ledger

COLUMNS = ["contact_id", "campaign_id", "event", "at"]


def tracked_events(ledger: Ledger, run_ids: Iterable[str | None]) -> pd.DataFrame:
    """Our tracked opens and clicks of these runs, as events of campaign id = run id."""
    rows = ledger.tracked([r for r in run_ids if r])
    frame = pd.DataFrame(
        {
            "contact_id": pd.array([r["contact_id"] for r in rows], dtype="string"),
            "campaign_id": pd.array([r["run_id"] for r in rows], dtype="string"),
            "event": pd.array([r["event"] for r in rows], dtype="string"),
            "at": pd.to_datetime([r["first_at"] for r in rows], utc=True, format="ISO8601"),
        }
    )
    return frame[COLUMNS]


def campaign_events(source: pd.DataFrame, tracked: pd.DataFrame, ours: set[str]) -> pd.DataFrame:
    """The platform's events of ``ours`` campaign ids, and our own tracked ones."""
    mine = source[source["campaign_id"].isin(list(ours))][COLUMNS]
    own = tracked[tracked["campaign_id"].isin(list(ours))]
    if own.empty:
        return mine.reset_index(drop=True)
    if mine.empty:
        return own.reset_index(drop=True)
    return pd.concat([mine, own], ignore_index=True)
