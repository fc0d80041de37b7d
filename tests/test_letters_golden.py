"""Every letter of the demo, as `validate` and `run` fill it, stays byte for byte the same.

Making the rendering cheaper (the text part above all, which `validate` builds for
every contact) must not change one byte a contact receives. The golden file
tests/golden/letters/demo.json holds, per campaign and letter, how many letters
the demo fills and a SHA-256 of all their parts (subject, preheader, HTML, text,
sender, reply-to), made by the code before it was made faster. After an intended
change of the demo's letters, regenerate it and say why in the commit:

    SEGMERGE_GOLDEN=update .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/test_letters_golden.py

The second test needs no golden: no demo letter is left to the slow stdlib parser,
and the fast reading is the stdlib parser's on a sample of them
(tests/test_textpart.py tries the HTML the demo does not write).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from segmerge.errors import TemplateError
from segmerge.render import textpart
from segmerge.render.rendered import Rendered
from segmerge.render.textpart import _fast, parsed_by_stdlib
from tests.demo_fixtures import AS_OF, copy_of

GOLDEN = Path(__file__).with_name("golden") / "letters" / "demo.json"
CAMPAIGNS = ("profils", "rfm", "fidelite")
KEY = b"golden-letters-key-0123456789abc"  # a fixed key: the unsubscribe links are stable


Letters = dict[str, list[tuple[str, Rendered | TemplateError]]]


@pytest.fixture(scope="module")
def rendered(
    demo_pristine: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Letters, dict[str, str | None]]:
    """Each campaign's letters, rendered as `validate` fills them (in this process), and
    what the fast text part made of each HTML on the way (None: left to the stdlib)."""
    from segmerge.ports.schema import Tables
    from segmerge.run.campaign import open_campaign
    from segmerge.run.letters_check import letters_to_fill
    from segmerge.workspace.config import load

    root = copy_of(demo_pristine, tmp_path_factory.mktemp("golden") / "boutique")
    ws = load(root)
    out: Letters = {}
    fast: dict[str, str | None] = {}
    pulled: dict[str, Tables] = {}  # the demo pulled once for its campaigns, as `validate` does

    def reading(html: str) -> str | None:
        fast[html] = _fast(html)
        return fast[html]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(textpart, "_fast", reading)
        for name in CAMPAIGNS:
            camp = open_campaign(ws, name, as_of=AS_OF, pulled=pulled)
            try:
                todo = letters_to_fill(camp)
                ctx = camp.render_context("-", KEY)
                letters = camp.templates.render_many(todo.items, ctx, workers=1)
            finally:
                camp.close()
            out[name] = [(letter, r) for (letter, _), r in zip(todo.items, letters, strict=True)]
    return out, fast


@pytest.fixture(scope="module")
def demo_letters(rendered: tuple[Letters, dict[str, str | None]]) -> Letters:
    return rendered[0]


def _digest(letters: list[tuple[str, Rendered | TemplateError]]) -> dict[str, dict[str, object]]:
    hashes: dict[str, hashlib._Hash] = defaultdict(hashlib.sha256)
    counts: dict[str, int] = defaultdict(int)
    for letter, r in letters:
        counts[letter] += 1
        if isinstance(r, TemplateError):
            part = f"failed\0{r.message}"
        else:
            fields = (r.subject, r.preheader, r.html, r.text, r.from_addr, r.reply_to)
            part = "\0".join(str(f) for f in fields)
        hashes[letter].update(part.encode() + b"\1")
    return {k: {"letters": counts[k], "sha256": hashes[k].hexdigest()} for k in sorted(counts)}


def test_every_demo_letter_is_the_golden_one(demo_letters):
    got = {name: _digest(letters) for name, letters in demo_letters.items()}
    if os.environ.get("SEGMERGE_GOLDEN") == "update":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert GOLDEN.is_file(), f"no {GOLDEN}: run with SEGMERGE_GOLDEN=update"
    want = json.loads(GOLDEN.read_text())
    assert sum(v["letters"] for c in got.values() for v in c.values()) > 5000
    for name in CAMPAIGNS:
        assert got[name] == want[name], (
            f"{name}'s letters changed: review, then SEGMERGE_GOLDEN=update"
        )


def test_the_fast_text_part_reads_every_demo_letter_as_the_stdlib_parser(rendered):
    demo_letters, seen = rendered
    htmls = sorted(
        {r.html for letters in demo_letters.values() for _, r in letters if isinstance(r, Rendered)}
    )
    assert len(htmls) > 3000
    # as the rendering read them (a letter with a text twin of its own was not: read it here)
    fast = [seen[h] if h in seen else _fast(h) for h in htmls]
    assert None not in fast, "a demo letter is left to the slow stdlib parser"
    # the stdlib parser on one letter in eight (the golden above holds every letter's bytes)
    differ = [h for h, t in zip(htmls[::8], fast[::8], strict=True) if t != parsed_by_stdlib(h)]
    assert not differ, differ[0]
