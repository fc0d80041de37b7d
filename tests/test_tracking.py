"""Our own sends' clicks and opens: real runs into an outbox, the real endpoint on 127.0.0.1.

Each test follows the links of real letters as a reader's browser (or a scanner)
would, and checks what the shop cares about: where the reader lands, what the
ledger counted, and that nothing else can be made to redirect anywhere.
"""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta
from typing import Any

from tracking_setup import BROWSER, LINKS, Site, letters, part, site_factory, tracked_links

from segmerge.serve.endpoint.tracking_http import GIF

__all__ = ["site_factory"]  # the fixture, used by name


def rows(site: Site, filtered: bool | None = None) -> list[dict[str, Any]]:
    with sqlite3.connect(site.ws.state_dir / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        out = [dict(r) for r in db.execute("SELECT * FROM tracked_events ORDER BY first_at, url")]
    if filtered is None:
        return out
    return [r for r in out if bool(r["filtered"]) == filtered]


def test_a_click_is_recorded_then_redirected_to_the_letters_own_target(site_factory) -> None:
    site = site_factory()
    msg = letters(site.ws)["c1"]
    links = tracked_links(msg)
    assert len(links) == 3, "the three shop links are tracked"
    html, text = part(msg, "html"), part(msg, "plain")
    assert "https://boutique.fr/u?token=" in html, "the unsubscribe link is left as it is"
    assert "mailto:aide@boutique.fr" in html and not any(u in html for u in LINKS)
    assert "boutique.fr/t/c/" in text and not any(u in text for u in LINKS)
    code, headers, _ = site.get(links[1])
    assert code == 302 and headers["location"] == LINKS[1]
    [row] = rows(site)
    assert (row["run_id"], row["contact_id"], row["event"], row["url"], row["filtered"]) == (
        "a@2026-12-01",
        "c1",
        "click",
        LINKS[1],
        "",
    )


def test_a_second_click_on_the_same_link_is_one_click(site_factory) -> None:
    site = site_factory()
    link = tracked_links(letters(site.ws)["c2"])[0]
    assert site.get(link)[0] == 302
    site.clock.shift += timedelta(minutes=3)
    assert site.get(link)[0] == 302
    [row] = rows(site)
    assert row["hits"] == 2 and row["filtered"] == ""


def test_a_forged_or_altered_token_gets_a_plain_page_and_no_redirect(site_factory) -> None:
    site = site_factory()
    link = tracked_links(letters(site.ws)["c1"])[0]
    kind, payload, sig = link.rsplit("/", 1)[1].split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    evil = raw.replace(LINKS[0].encode(), b"https://evil.example/phish")
    evil_token = f"{kind}.{base64.urlsafe_b64encode(evil).decode().rstrip('=')}.{sig}"
    attempts = [
        link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"),  # a bad signature
        link.rsplit("/", 1)[0] + "/" + evil_token,  # the target swapped, signature kept
        "https://boutique.fr/t/c/x?url=https://evil.example/",  # a target in the query
        "https://boutique.fr/t/c/%0d%0aLocation:%20https://evil.example/",  # header injection
    ]
    for url in attempts:
        code, headers, body = site.get(url)
        assert code in (403, 404) and "location" not in headers, url
        assert b"evil.example" not in body and "text/html" in headers["content-type"]
    assert rows(site) == []


def test_an_open_token_is_not_a_click_and_a_post_redirects_nothing(site_factory) -> None:
    site = site_factory("[tracking]\nopens = true\n")
    msg = letters(site.ws)["c1"]
    pixel = part(msg, "html").split('src="')[1].split('"')[0]
    assert pixel.startswith("https://boutique.fr/t/o/") and pixel.endswith(".gif")
    as_click = pixel.replace("/t/o/", "/t/c/").removesuffix(".gif")
    code, headers, _ = site.get(as_click)
    assert code == 403 and "location" not in headers
    code, headers, _ = site.get(tracked_links(msg)[0], method="POST")
    assert code == 405 and "location" not in headers


def test_the_open_pixel_is_opt_in_and_recorded_once_per_letter(site_factory) -> None:
    site = site_factory("[tracking]\nopens = true\n")
    pixel = part(letters(site.ws)["c3"], "html").split('src="')[1].split('"')[0]
    for _ in range(2):
        code, headers, body = site.get(pixel)
        assert (code, headers["content-type"], body) == (200, "image/gif", GIF)
    [row] = rows(site)
    assert (row["contact_id"], row["event"], row["hits"], row["filtered"]) == ("c3", "open", 2, "")


def test_without_opens_there_is_no_pixel_and_clicks_can_be_turned_off(site_factory) -> None:
    site = site_factory("[tracking]\nclicks = false\n")
    html = part(letters(site.ws)["c1"], "html")
    assert "/t/o/" not in html and "/t/c/" not in html
    assert all(u in html for u in (LINKS[0], LINKS[2]))


def test_without_a_tracking_section_links_go_straight_to_the_shop(site_factory) -> None:
    # a proxy forwarding only /unsubscribe to serve must not break every link of every letter
    site = site_factory("")
    html = part(letters(site.ws)["c1"], "html")
    assert "/t/c/" not in html and "/t/o/" not in html
    assert all(u in html for u in (LINKS[0], LINKS[2]))


def test_a_scanner_clicking_every_link_at_once_is_set_aside(site_factory) -> None:
    site = site_factory()
    links = tracked_links(letters(site.ws)["c1"])
    for link in links:  # a gateway opens them all on arrival, with a browser's user agent
        code, headers, _ = site.get(link)
        assert code == 302, "the scanner still gets its redirect: it must not learn anything"
    assert len(rows(site, filtered=True)) == 3 and rows(site, filtered=False) == []
    assert all("link scanner" in r["filtered"] for r in rows(site))
    site.clock.shift += timedelta(minutes=30)  # the person reads the letter later
    assert site.get(links[2])[0] == 302
    [person] = rows(site, filtered=False)
    assert person["url"] == LINKS[2] and person["hits"] == 2


def test_scanner_agents_head_requests_and_instant_hits_are_not_counted(site_factory) -> None:
    site = site_factory()
    mail = letters(site.ws)
    assert site.get(tracked_links(mail["c1"])[0], agent="Mimecast-Security/1.0")[0] == 302
    assert site.get(tracked_links(mail["c2"])[0], method="HEAD")[0] == 302
    assert site.get(tracked_links(mail["c3"])[0], agent=None)[0] == 302
    site.clock.shift = timedelta(seconds=2)  # two seconds after the letter was delivered
    assert site.get(tracked_links(mail["c4"])[0], agent=BROWSER)[0] == 302
    why = {r["contact_id"]: r["filtered"] for r in rows(site)}
    assert why == {
        "c1": "scanner user agent (mimecast)",
        "c2": "HEAD request",
        "c3": "no user agent",
        "c4": "within 10 s of delivery",
    }


def test_a_click_that_cannot_be_recorded_is_not_redirected(site_factory) -> None:
    site = site_factory()
    link = tracked_links(letters(site.ws)["c1"])[0]
    assert site.get(link)[0] == 302
    ledger = site.ws.state_dir / "ledger.sqlite"
    ledger.rename(ledger.with_name("moved.sqlite"))  # lost (a restore brings it back)
    code, headers, _ = site.get(link)
    assert code == 503 and "location" not in headers and headers["retry-after"] == "60"
    assert not ledger.exists(), "a click never creates an empty ledger"
