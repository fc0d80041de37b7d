"""`segmerge preview` in a real headless Chromium (Debian's), driven by Playwright.

A person's path through the page: the index, a campaign, another segment,
another contact, the letter in its sandboxed frame; then a template edited and
broken while the page is open, which must follow without a manual reload. The same
pages on a 375 px phone (what tests/test_pages_mobile.py checks of the report and kpi
pages): nothing wider than the screen, the letter at a phone's or a desktop's width.
Screenshots are decoded (by Pillow) and must be of the viewport's size and not
blank. The session's one Chromium and page (tests/browser.py), a context of its own
for the page without scripts; skipped, with the reason, when Chromium or Playwright is missing
(`tests/browser_setup.sh` installs Chromium).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_pages_mobile import DESKTOP, PHONE, fits
from test_preview_server import AS_OF, edit, make_workspace

from segmerge.preview.app import PreviewServer
from tests.browser import expect

VIEWPORT = {"width": 1200, "height": 850}


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct colours (every third pixel of every third row)
    of a PNG. Decoded by Pillow, which matplotlib (a dependency) brings: unfiltering
    three screenshots in pure Python cost seconds of CPU."""
    import io

    import numpy as np
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        w, h = img.size
        pixels = np.asarray(img.convert("RGB"))[::3, ::3].reshape(-1, 3)
    return w, h, {bytes(c) for c in np.unique(pixels, axis=0)}


def check_screenshot(path: Path, *, min_colours: int = 20) -> set[bytes]:
    w, h, colours = png_pixels(path.read_bytes())
    assert (w, h) == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(colours) >= min_colours, f"{path.name}: {len(colours)} colours, looks blank"
    return colours


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One preview for the module (each cold start computes the index's three campaigns):
    the page without scripts reads the rfm campaign, which the other tests' edits (profils'
    zens letter) leave alone; run first, it also pulls the demo source that the index's
    campaigns then share. The phone test puts back the letter it breaks; the last test
    breaks it for good."""
    root = make_workspace(tmp_path_factory.mktemp("browser") / "ws")
    with PreviewServer(root, port=0, as_of=AS_OF, interval=0.2) as srv:
        yield srv


@pytest.fixture()
def page_without_scripts(page):
    """The session's page with its scripts off, as a context's ``java_script_enabled=False``
    turns them off in each of its pages (DevTools' ``Emulation.setScriptExecutionDisabled``),
    and on again after: a context of its own would cost a renderer process."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("Emulation.setScriptExecutionDisabled", {"value": True})
    yield page
    devtools.send("Emulation.setScriptExecutionDisabled", {"value": False})
    devtools.detach()


def test_without_javascript_links_still_switch_contacts(page_without_scripts, server):
    page = page_without_scripts
    page.set_viewport_size(VIEWPORT)
    page.goto(server.url + "c/rfm")
    # a page without scripts: its <noscript> is parsed as markup (its reload every 10 s)
    expect(page.locator('noscript meta[http-equiv="refresh"]')).to_have_count(1)
    view = server.preview.campaign("rfm")
    assert view is not None and view.camp is not None
    current = page.locator("nav.tabs a[aria-current]").get_attribute("data-segment")
    ids = view.camp.seg.frame["contact_id"]
    third = str(ids.iat[int(view.rows(current)[2])])
    page.locator(f'.contact-list a[data-contact="{third}"]').click()
    expect(page).to_have_url(re.compile(rf"/c/rfm/{current}\?contact={third}"))
    email = page.locator(".contact-list a[aria-current] .email").inner_text()
    page.locator("#q").fill(email.upper())
    page.locator("form[role=search] button").click()
    expect(page.locator(".contact-list a")).to_have_count(1)
    expect(page.locator(".contact-list a")).to_have_attribute("data-contact", third)


def test_preview_fits_a_phone_and_shows_the_letter_at_both_widths(page, server):
    page.set_viewport_size(PHONE)
    page.goto(server.url)
    expect(page.locator("h1")).to_have_text("Campagnes")
    fits(page, "index")
    page.goto(server.url + "c/profils/zens")
    page.locator("details.overview > summary").click()  # the segments' table, opened
    fits(page, "segment page")
    table = page.locator("table.segments").bounding_box()
    assert table is not None and table["width"] > 0
    page.locator("details.part:not([open]) > summary").click()  # the headers' table
    fits(page, "headers open")
    # the toggle: the letter in a phone-wide frame, kept while switching contacts
    page.locator('nav.device a[data-device="mobile"]').click()
    expect(page.locator("nav.device a[aria-current]")).to_have_attribute("data-device", "mobile")
    # the new page's DOM may be queried before its style sheet applies: wait for it
    expect(page.locator("#letter")).to_have_css("width", "375px")
    assert page.locator("#letter").bounding_box()["width"] == 375
    fits(page, "letter at 375 px")
    second = page.locator(".contact-list a").nth(1)
    cid = second.get_attribute("data-contact")
    second.click()
    expect(page.locator('.contact-list a[aria-current="true"]')).to_have_attribute(
        "data-contact", cid
    )
    expect(page.locator("#letter")).to_have_css("width", "375px")
    assert page.locator("#letter").bounding_box()["width"] == 375
    # inside the frame the letter lays out for a 375 px screen
    letter = page.frame_locator("#letter").locator("html")
    assert letter.evaluate("e => e.clientWidth") == 375

    # on a desktop screen, the same page (the device chosen lives in the address only,
    # and each page or navigation costs Chromium about half a second of CPU): the phone's
    # frame is kept, "desktop" (the page's default address) widens it, "phone" narrows it
    page.set_viewport_size(DESKTOP)
    assert page.locator("#letter").bounding_box()["width"] == 375
    page.locator('nav.device a[data-device="desktop"]').click()
    expect(page.locator("#letter")).to_have_class("desktop")
    assert page.locator("#letter").bounding_box()["width"] >= 600
    assert "device=" not in page.url
    page.locator('nav.device a[data-device="mobile"]').click()
    expect(page.locator("#letter")).to_have_class("mobile")
    expect(page.locator("#letter")).to_have_css("width", "375px")
    assert page.locator("#letter").bounding_box()["width"] == 375

    # a template error with a long line: the error box wraps on the phone too
    page.set_viewport_size(PHONE)
    tpl = server.preview.root / "templates" / "profils-vpc" / "zens.html.j2"
    lines = tpl.read_text(encoding="utf-8").splitlines()
    tpl.write_text(
        "\n".join([*lines[:8], "{% if %}" + "x" * 200, *lines[9:]]) + "\n", encoding="utf-8"
    )
    expect(page.locator(".errors .error .excerpt")).to_contain_text("{% if %}xxx", timeout=20_000)
    fits(page, "template error")
    # fixed, the letter comes back (and the next test finds the template as it was)
    tpl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expect(page.locator(".errors .error")).to_have_count(0, timeout=20_000)
    expect(page.frame_locator("#letter").locator("h1")).to_have_text(
        "Prendre le temps, en décembre"
    )


def test_browse_switch_edit_and_break_a_letter(page, server, tmp_path):
    page.set_viewport_size(VIEWPORT)
    page.goto(server.url)
    expect(page.locator("h1")).to_have_text("Campagnes")
    expect(page.locator("section.card")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "index.png"))
    check_screenshot(tmp_path / "index.png")

    page.locator("#campagne-profils h2 a").click()
    expect(page).to_have_url(server.url + "c/profils")
    expect(page.locator("nav.tabs a[aria-current]")).to_have_attribute("data-segment", "fonceurs")
    view = server.preview.campaign("profils")
    assert view is not None and view.camp is not None
    frame = view.camp.seg.frame

    page.locator('nav.tabs a[data-segment="zens"]').click()
    expect(page).to_have_url(server.url + "c/profils/zens")
    expect(page.locator("h1")).to_contain_text("Les zens")
    zens = [str(frame["contact_id"].iat[int(r)]) for r in view.rows("zens")[:20]]
    expect(page.locator(".contact-list a")).to_have_count(20)
    assert (
        page.locator(".contact-list a").evaluate_all("els => els.map(e => e.dataset.contact)")
        == zens
    )

    second = zens[1]
    row = int(view.rows("zens")[1])
    first_name = str(frame["first_name"].iat[row])
    page.locator(f'.contact-list a[data-contact="{second}"]').click()
    expect(page.locator('.contact-list a[aria-current="true"]')).to_have_attribute(
        "data-contact", second
    )
    expect(page.locator("#subject")).to_have_text(
        f"{first_name}, quelques idées pour un dimanche tranquille"
    )
    expect(page.locator("#preheader")).to_have_text(
        "Nos conseils de saison, à lire quand vous aurez le temps"
    )
    assert page.locator("#letter").get_attribute("sandbox") == ""
    letter = page.frame_locator("#letter")
    expect(letter.locator("h1")).to_have_text("Prendre le temps, en décembre")
    expect(letter.locator("body")).to_contain_text(f"Bonjour {first_name},")
    page.screenshot(path=str(tmp_path / "letter.png"))
    colours = check_screenshot(tmp_path / "letter.png")
    assert b"\x1f\x5f\xa8" in colours  # the current tab's blue is on screen

    # edit the letter while the page is open: it follows, the letter's script never runs
    tpl = server.preview.root / "templates" / "profils-vpc" / "zens.html.j2"
    edit(tpl, "quelques idées pour un dimanche", "trois idées pour un dimanche")
    edit(
        tpl,
        "Tout est à lire sur notre carnet",
        '<p id="js">script bloqué</p><script>document.getElementById("js").textContent = '
        '"script exécuté"; parent.document.title = "pwned";</script>Tout est à lire sur notre carnet',
    )
    expect(page.locator("#subject")).to_have_text(
        f"{first_name}, trois idées pour un dimanche tranquille", timeout=20_000
    )
    expect(page.locator('.contact-list a[aria-current="true"]')).to_have_attribute(
        "data-contact", second
    )
    expect(letter.locator("#js")).to_have_text("script bloqué")
    assert "pwned" not in page.title()

    # break it: the error, with file and line, replaces the message in the open page
    lines = tpl.read_text(encoding="utf-8").splitlines()
    lines[8] = "{% if %}"
    tpl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = page.locator(".errors .error").first
    expect(error).to_contain_text("templates/profils-vpc/zens.html.j2", timeout=20_000)
    expect(error.locator(".line")).to_have_text("ligne 9")
    expect(error.locator(".msg")).to_contain_text("erreur de syntaxe dans le modèle")  # fr_FR demo
    expect(error.locator(".excerpt")).to_have_text("9 | {% if %}")
    page.screenshot(path=str(tmp_path / "error.png"))
    check_screenshot(tmp_path / "error.png")
