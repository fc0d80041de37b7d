"""Take the screenshots of docs/preview.md from the demo workspace, in headless Chromium.

    .venv/bin/python docs/make_screenshots.py          # writes docs/img/preview-*.png

It makes a fresh demo workspace (what `segmerge init` writes) in a temporary
folder, starts the preview on a free loopback port, and photographs the index,
a letter (on a desktop and on a 375 px phone), and a template error, so that
the pictures always show the current page and the current demo letters. The
browser and its flags are the browser tests' (segmerge/preview/chromium.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from importlib.resources import as_file, files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from playwright.sync_api import sync_playwright  # noqa: E402

from segmerge.preview import chromium  # noqa: E402
from segmerge.preview.app import PreviewServer  # noqa: E402

OUT = ROOT / "docs" / "img"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "boutique"
        with as_file(files("segmerge") / "scaffold") as src:
            shutil.copytree(src, ws)
        with (
            PreviewServer(ws, port=0, as_of="2026-12-01", interval=0.2) as srv,
            sync_playwright() as p,
        ):
            browser = chromium.launch(p.chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="fr-FR")
            page.goto(srv.url)
            page.screenshot(path=str(OUT / "preview-index.png"))
            page.goto(srv.url + "c/profils/fonceurs")
            page.frame_locator("#letter").locator("h1").wait_for()
            page.screenshot(path=str(OUT / "preview-lettre.png"))
            phone = browser.new_page(viewport={"width": 375, "height": 740}, locale="fr-FR")
            phone.goto(srv.url + "c/profils/fonceurs?device=mobile")
            phone.frame_locator("#letter").locator("h1").wait_for()
            phone.locator("nav.device").scroll_into_view_if_needed()
            phone.screenshot(path=str(OUT / "preview-telephone.png"))
            phone.close()
            tpl = ws / "templates" / "profils-vpc" / "fonceurs.html.j2"
            text = tpl.read_text(encoding="utf-8")
            tpl.write_text(
                text.replace("{{ contact.orders_count }}", "{{ contact.orders_count }"),
                encoding="utf-8",
            )
            page.locator(".errors .error").first.wait_for(timeout=20_000)
            page.screenshot(path=str(OUT / "preview-erreur.png"))
            browser.close()
    for name in ("index", "lettre", "telephone", "erreur"):
        print(OUT / f"preview-{name}.png")


if __name__ == "__main__":
    main()
