"""A campaign's KPIs count its own opens and clicks, never another campaign's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from tracking_setup import letters, part, site_factory, tracked_links

from segmerge.kpi import kpi
from segmerge.schema import Tables, empty_events, empty_orders

__all__ = ["site_factory"]  # the fixture, used by name
BOTH = "[pressure]\nmax_messages = 10\nper_days = 1\n[tracking]\nopens = true\n"


def platform_events(rows: list[tuple[str, str, str]]) -> Tables:
    """What the source says it saw: (contact, campaign id, event), two hours from now."""
    at = datetime.now(UTC) + timedelta(hours=2)
    ev = empty_events()
    ev = pd.concat([ev, pd.DataFrame(rows, columns=["contact_id", "campaign_id", "event"]).assign(
        at=pd.Timestamp(at))], ignore_index=True).astype(ev.dtypes.to_dict())  # fmt: skip
    return Tables(contacts=pd.DataFrame({"contact_id": []}), orders=empty_orders(), events=ev)


def counts(report, measure: str) -> int:
    [group] = [g for g in report.groups if g.name == "tous"]
    return group.rates[measure].count


def test_each_campaign_counts_only_its_own_tracked_events(site_factory) -> None:
    site = site_factory(BOTH, campaigns=("a", "b"))
    a, b = letters(site.ws, "a"), letters(site.ws, "b")
    assert len(a) == len(b) == 4
    assert site.get(tracked_links(a["c1"])[0])[0] == 302
    assert site.get(tracked_links(b["c2"])[1])[0] == 302
    assert site.get(tracked_links(b["c3"])[2])[0] == 302
    pixel = part(b["c4"], "html").split('src="')[1].split('"')[0]
    assert site.get(pixel)[0] == 200
    # the source also reports opens and clicks of a platform campaign sent the same day
    other = platform_events([(f"c{i}", "promo-noel", e) for i in range(1, 5)
                             for e in ("open", "click")])  # fmt: skip
    ra, rb = kpi(site.ws, "a", tables=other), kpi(site.ws, "b", tables=other)
    assert (counts(ra, "click"), counts(ra, "open")) == (1, 0)
    assert (counts(rb, "click"), counts(rb, "open")) == (2, 1)


def test_platform_events_carrying_the_campaigns_id_still_count(site_factory) -> None:
    site = site_factory()
    tables = platform_events([("c1", "a", "open"), ("c2", "a@2026-12-01", "click"),
                              ("c3", "promo-noel", "click")])  # fmt: skip
    r = kpi(site.ws, "a", tables=tables)
    assert (counts(r, "open"), counts(r, "click")) == (1, 1)
