"""A campaign's KPIs count its own opens and clicks, never another campaign's."""

from __future__ import annotations

import http.client
from datetime import UTC, datetime, timedelta

import pandas as pd
from tracking_setup import letters, part, site_factory, tracked_links

from segmerge.ledger.health import signing_key
from segmerge.mail.tokens import unsubscribe_token
from segmerge.ports.schema import Tables, empty_events, empty_orders
from segmerge.report.kpi import kpi

__all__ = ["site_factory"]  # the fixture, used by name
BOTH = "[pressure]\nmax_messages = 10\nper_days = 1\n[tracking]\nopens = true\n"


def platform_events(rows: list[tuple[str, str, str]]) -> Tables:
    """What the source says it saw: (contact, campaign id, event), two hours from now."""
    at = datetime.now(UTC) + timedelta(hours=2)
    ev = empty_events()
    ev = pd.concat(
        [
            ev,
            pd.DataFrame(rows, columns=["contact_id", "campaign_id", "event"]).assign(
                at=pd.Timestamp(at)
            ),
        ],
        ignore_index=True,
    ).astype(ev.dtypes.to_dict())
    return Tables(contacts=pd.DataFrame({"contact_id": []}), orders=empty_orders(), events=ev)


def counts(report, measure: str) -> int:
    """Contacts with the event (0 when the report saw no event of the campaign at all)."""
    [group] = [g for g in report.groups if g.name == "tous"]
    rate = group.rates[measure]
    return 0 if rate is None and not report.events_seen else rate.count


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
    other = platform_events(
        [(f"c{i}", "promo-noel", e) for i in range(1, 5) for e in ("open", "click")]
    )
    ra, rb = kpi(site.ws, "a", tables=other), kpi(site.ws, "b", tables=other)
    assert (counts(ra, "click"), counts(ra, "open")) == (1, 0)
    assert (counts(rb, "click"), counts(rb, "open")) == (2, 1)


def test_platform_events_carrying_the_campaigns_id_still_count(site_factory) -> None:
    site = site_factory()
    tables = platform_events(
        [("c1", "a", "open"), ("c2", "a@2026-12-01", "click"), ("c3", "promo-noel", "click")]
    )
    r = kpi(site.ws, "a", tables=tables)
    assert (counts(r, "open"), counts(r, "click")) == (1, 1)


def test_a_one_click_unsubscribe_counts_for_the_last_letter_the_contact_got(site_factory) -> None:
    site = site_factory(BOTH, campaigns=("a", "b"))  # b's letters went after a's
    key = signing_key(site.ws.state_dir, create=False)
    assert key is not None
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=10)
    conn.request(
        "POST",
        f"/unsubscribe?token={unsubscribe_token(key, 'c1')}",
        body=b"List-Unsubscribe=One-Click",
    )
    assert conn.getresponse().status == 200
    conn.close()
    none = platform_events([])
    assert counts(kpi(site.ws, "a", tables=none), "unsubscribe") == 0
    assert counts(kpi(site.ws, "b", tables=none), "unsubscribe") == 1


def test_the_report_says_how_many_hits_were_set_aside_as_machines(site_factory) -> None:
    site = site_factory()
    mail = letters(site.ws)
    assert site.get(tracked_links(mail["c1"])[0], agent="Barracuda Sentinel (EE)")[0] == 302
    assert site.get(tracked_links(mail["c2"])[0], method="HEAD")[0] == 302
    assert site.get(tracked_links(mail["c3"])[0])[0] == 302  # a person
    r = kpi(site.ws, "a", tables=platform_events([]))
    assert counts(r, "click") == 1
    assert (
        "2 opens or clicks by machines (mail scanners, link checkers) were not counted" in r.notes
    )
