"""Letters compiled once per process (segmerge/render/compiled.py), never stale.

The preview opens a campaign again after each file change, and a run's workers open it
again too: a second open of unchanged templates must compile nothing, and an open after
an edit must show the edit, or refuse a broken one with its file and line, even when
the file keeps its size and modification time.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from segmerge.errors import TemplateError
from segmerge.render.sandbox import LimitedSandbox
from segmerge.render.templates import RenderContext, TemplateSet

PARIS = ZoneInfo("Europe/Paris")
CTX = RenderContext(campaign={"name": "c"}, today=date(2026, 3, 3), unsubscribe_url="https://x/u")
CONTACT = {"contact_id": "1", "first_name": "<b>Inès</b>", "ville": "Lyon"}
KNOWN = {"contact_id", "first_name", "ville"}


def open_set(folder: Path, known=KNOWN) -> TemplateSet:
    return TemplateSet.load(folder, [("s", "Le segment")], tz=PARIS, known_columns=known)


def rewrite(path: Path, old: str, new: str) -> None:
    """Replace text, keeping the file's size and modification time: only its text changed."""
    assert len(old) == len(new)
    before = os.stat(path)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    shared = tmp_path / "_shared"
    shared.mkdir()
    (shared / "_foot.html.j2").write_text("<i>Pied A</i>", encoding="utf-8")
    rfm = tmp_path / "rfm"
    rfm.mkdir()
    (rfm / "s.html.j2").write_text(
        '---\nsubject: "Sujet A {{ contact.ville }}"\n---\n'
        '<p>Corps A {{ contact.first_name }}</p>{% include "_foot.html.j2" %}',
        encoding="utf-8",
    )
    (rfm / "s.txt.j2").write_text("Corps A {{ contact.first_name }}", encoding="utf-8")
    return rfm


@pytest.fixture()
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The file of each template (or front-matter value) Jinja parses from now on."""
    seen: list[str | None] = []
    real = LimitedSandbox._parse

    def counted(self, source, name, filename):
        seen.append(filename)
        return real(self, source, name, filename)

    monkeypatch.setattr(LimitedSandbox, "_parse", counted)
    return seen


def test_a_second_open_compiles_nothing_and_renders_the_same(folder, parses):
    first = open_set(folder).render("s", CONTACT, CTX)
    parses.clear()
    second = open_set(folder).render("s", CONTACT, CTX)
    assert parses == []
    assert second == first
    # the sandbox and autoescaping are the same: the HTML escapes, the text twin does not
    assert second.html == "<p>Corps A &lt;b&gt;Inès&lt;/b&gt;</p><i>Pied A</i>"
    assert second.text == "Corps A <b>Inès</b>" and second.subject == "Sujet A Lyon"


def test_edits_show_at_the_next_open_even_with_the_same_size_and_mtime(folder, parses):
    open_set(folder)
    rewrite(folder / "s.html.j2", "Corps A", "Corps B")
    rewrite(folder / "s.html.j2", "Sujet A", "Sujet B")
    rewrite(folder.parent / "_shared" / "_foot.html.j2", "Pied A", "Pied B")
    rewrite(folder / "s.txt.j2", "Corps A", "Corps B")
    parses.clear()
    r = open_set(folder).render("s", CONTACT, CTX)
    assert (r.subject, r.text) == ("Sujet B Lyon", "Corps B <b>Inès</b>")
    assert r.html == "<p>Corps B &lt;b&gt;Inès&lt;/b&gt;</p><i>Pied B</i>"
    assert str(folder.parent / "_shared" / "_foot.html.j2") in parses  # only what changed
    # back to the first text: that letter is the one compiled before
    rewrite(folder / "s.html.j2", "Corps B", "Corps A")
    assert "<p>Corps A" in open_set(folder).render("s", CONTACT, CTX).html


def test_a_broken_edit_is_refused_with_file_and_line_after_a_good_open(folder):
    letter = folder / "s.html.j2"
    open_set(folder)
    rewrite(letter, "Corps A", "{%if x ")
    with pytest.raises(TemplateError) as e:
        open_set(folder)
    assert (e.value.file, e.value.line) == (str(letter), 4)
    rewrite(letter, "{%if x ", "Corps A")
    open_set(folder)
    rewrite(letter, "first_name", "frist_name")  # a typo of a column: refused at the open
    with pytest.raises(TemplateError) as e:
        open_set(folder)
    assert (e.value.file, e.value.line, e.value.field) == (str(letter), 4, "contact.frist_name")


def test_letters_that_passed_are_checked_again_against_other_columns(folder):
    open_set(folder)
    with pytest.raises(TemplateError) as e:
        open_set(folder, known={"contact_id", "first_name"})  # this source has no `ville`
    assert e.value.field == "contact.ville" and e.value.line == 2
