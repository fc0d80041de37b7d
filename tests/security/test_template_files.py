"""Templates read only regular files inside their campaign's folder and `_shared`.

Templates often arrive from someone else (an agency's zip, a git repository):
a symlink among them to `.env` or `/etc/passwd`, an include of
`../../segmerge.toml`, or a FIFO would put the shop's credentials in every
letter, or hang the run. Each is refused when the campaign is validated (and
when letters are rendered), naming the template file and the line asking for it,
and the file's content appears nowhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli import Ran
from cli import segmerge as run_cli
from one_campaign import lay_out, rules

from segmerge.errors import TemplateError
from segmerge.render.templates import TemplateSet

SECRET = "xkeysib-never-in-a-letter-0123456789"


def letter(body: str) -> str:
    return f"---\nsubject: Hello {{{{ contact.first_name }}}}\n---\n<p>Hello</p>\n{body}\n"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace whose `.env` holds a key, with one campaign `news` and one letter."""
    root = tmp_path / "shop"
    lay_out(root, rules_text=rules(segments=(("all", "true"),)))
    (root / "templates/_shared").mkdir()
    (root / "data/contacts.csv").write_text(
        "contact_id,first_name,email,subscribed\n1,Alice,alice@example.org,true\n"
    )
    (root / ".env").write_text(f"SEGMERGE_CRM_TOKEN={SECRET}\n")
    (root / ".env").chmod(0o600)
    (root / "templates/news/_default.html.j2").write_text(letter(""))
    return root


def segmerge(root: Path, *args: str) -> Ran:
    return run_cli(*args, "-w", str(root))


def refused(p: Ran, where: str, *absent: str) -> str:
    """Exit 2 with ``where`` (file[:line]) in the message; none of ``absent`` shown."""
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert where in out and "internal error" not in out, out
    for text in (SECRET, *absent):
        assert text not in out
    return out


def load(folder: Path) -> TemplateSet:
    return TemplateSet.load(
        folder, [("all", "All")], tz=ZoneInfo("Europe/Paris"), known_columns=None
    )


def test_a_letter_symlinked_to_dotenv_is_refused(ws: Path) -> None:
    target = ws / "templates/news/_default.html.j2"
    target.unlink()
    target.symlink_to(ws / ".env")
    out = refused(segmerge(ws, "validate", "news"), str(target))
    assert "symbolic link" in out
    assert not (ws / "outbox").exists() or not any((ws / "outbox").rglob("*.eml"))


def test_a_partial_symlinked_to_etc_passwd_is_refused_at_its_include_line(ws: Path) -> None:
    (ws / "templates/news/_footer.html.j2").symlink_to("/etc/passwd")
    main = ws / "templates/news/_default.html.j2"
    main.write_text(letter('{% include "_footer.html.j2" %}'))
    out = refused(segmerge(ws, "validate", "news"), f"{main}:5:", "root:x:0")
    assert "_footer.html.j2" in out and "symbolic link" in out
    refused(segmerge(ws, "render", "news", "--contact", "1"), f"{main}:5:", "root:x:0")


def test_an_include_of_the_config_through_dotdot_is_refused_at_its_line(ws: Path) -> None:
    main = ws / "templates/news/_default.html.j2"
    main.write_text(letter('<p>x</p>\n{% include "../../segmerge.toml" %}'))
    out = refused(segmerge(ws, "validate", "news"), f"{main}:6:", "unsubscribe_url =")
    assert "outside the template folders" in out


def test_a_shared_partial_linked_out_is_refused(ws: Path) -> None:
    (ws / "templates/_shared/_base.html.j2").symlink_to(ws / ".env")
    main = ws / "templates/news/_default.html.j2"
    main.write_text(letter('{% extends "_base.html.j2" %}'))
    with pytest.raises(TemplateError) as info:
        load(ws / "templates/news")
    assert info.value.file == str(main) and info.value.line == 5
    assert SECRET not in str(info.value)


def test_a_linked_folder_on_the_way_is_refused(ws: Path) -> None:
    (ws / "templates/news/parts").symlink_to("/etc")
    main = ws / "templates/news/_default.html.j2"
    main.write_text(letter('{% import "parts/passwd" as p %}'))
    with pytest.raises(TemplateError) as info:
        load(ws / "templates/news")
    assert info.value.file == str(main) and info.value.line == 5
    assert "symbolic link (to /etc)" in str(info.value)


def test_a_fifo_partial_is_refused_without_hanging(ws: Path) -> None:
    os.mkfifo(ws / "templates/news/_pipe.html.j2")
    main = ws / "templates/news/_default.html.j2"
    main.write_text(letter('{% include "_pipe.html.j2" %}'))
    with pytest.raises(TemplateError) as info:
        load(ws / "templates/news")
    assert info.value.line == 5 and "not a regular file" in str(info.value)


def test_regular_partials_in_both_folders_still_work(ws: Path) -> None:
    (ws / "templates/_shared/_base.html.j2").write_text("<b>{% block c %}{% endblock %}</b>")
    (ws / "templates/news/sub").mkdir()
    (ws / "templates/news/sub/_bit.html.j2").write_text("bit")
    (ws / "templates/news/_default.html.j2").write_text(
        letter(
            '{% extends "_base.html.j2" %}{% block c %}{% include "sub/_bit.html.j2" %}'
            "{% endblock %}"
        )
    )
    assert "<b>bit</b>" in segmerge(ws, "render", "news", "--contact", "1").stdout
