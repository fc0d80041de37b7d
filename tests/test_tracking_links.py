"""How a letter's links are rewritten: every shop link once, nothing else, and back again."""

from __future__ import annotations

import re

from segmerge.mail.tracking_links import Tracker
from segmerge.mail.tracking_tokens import CLICK, read_token, tracking_key
from segmerge.render.templates import Rendered

KEY = tracking_key(b"k" * 32)
UNSUB = "https://boutique.fr/u?token=abc"


def letter(html: str, text: str) -> Rendered:
    return Rendered("Objet", "", html, text, None, None, "x.html.j2")


def target(link: str) -> tuple[str, int]:
    hit = read_token(KEY, link.rsplit("/", 1)[1])
    assert hit is not None and hit.kind == CLICK and hit.run_id == "a@d" and hit.contact_id == "c1"
    return hit.url, hit.links


def test_links_of_both_parts_point_to_their_signed_targets_and_the_rest_is_kept() -> None:
    html = (
        '<p><a class="b" href="https://boutique.fr/a?x=1&amp;y=2">a</a>'
        "<A HREF='https://boutique.fr/é'>é</A> <a href=\"#top\">haut</a>"
        f'<a href="mailto:aide@boutique.fr">aide</a> <a href="{UNSUB}">stop</a></p>'
    )
    text = "Voir (https://boutique.fr/a?x=1&y=2). Ou https://boutique.fr/é !\nStop : " + UNSUB
    t = Tracker(KEY, "https://boutique.fr", clicks=True, opens=False)
    out = t.apply(letter(html, text), "a@d", "c1", UNSUB)
    tracked = re.findall(r'(?i)href="(https://boutique\.fr/t/c/[^"]+)"', out.html)
    assert [target(u) for u in tracked] == [
        ("https://boutique.fr/a?x=1&y=2", 2),
        ("https://boutique.fr/%C3%A9", 2),
    ]
    assert 'href="#top"' in out.html and "mailto:aide@boutique.fr" in out.html
    assert f'href="{UNSUB}"' in out.html and out.text.endswith("Stop : " + UNSUB)
    assert out.text.startswith("Voir (https://boutique.fr/t/c/") and "). Ou " in out.text
    words = out.text.split()
    assert target(words[1].strip("().")) == target(tracked[0]), "one target, one token"
    assert out.html.count("/t/c/") == 2 and "<img" not in out.html


def test_the_pixel_goes_last_in_the_body_only_when_opens_are_on() -> None:
    t = Tracker(KEY, "https://boutique.fr/suivi", clicks=False, opens=True)
    out = t.apply(letter("<html><body><p>x</p></body></html>", "x"), "a@d", "c1", UNSUB)
    assert out.html.startswith('<html><body><p>x</p><img src="https://boutique.fr/suivi/t/o/')
    assert out.html.endswith(
        '.gif" width="1" height="1" alt="" style="display:block;border:0;'
        'width:1px;height:1px;overflow:hidden"></body></html>'
    )
    assert (
        Tracker(KEY, "https://b.fr", False, False)
        .apply(letter("<p>x</p>", "x"), "r", "c", UNSUB)
        .html
        == "<p>x</p>"
    )


def test_a_tracking_base_url_that_is_not_https_is_refused_naming_it(tmp_path) -> None:
    from tracking_setup import make_workspace

    from segmerge.errors import ConfigError
    from segmerge.workspace import config as wsmod

    make_workspace(tmp_path, tracking='[tracking]\nbase_url = "http://boutique.fr/suivi?x=1"\n')
    try:
        wsmod.load(tmp_path)
    except ConfigError as exc:
        assert "base_url" in str(exc) and exc.exit_code == 2
    else:
        raise AssertionError("an http:// tracking base was accepted")
