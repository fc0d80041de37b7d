"""A letter that never ends or eats memory skips that contact, and the run goes on.

One real ``segmerge run`` mails seven contacts through aiosmtpd; the letter
turns hostile for five of them (their first name picks the attack, as contact
data would). Each test reads what the shop cares about: who was mailed, who
was skipped and why (run summary and ledger), how long the run took and what
it exited with. The other commands that render (validate, render, preview)
must not hang either.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli import segmerge
from smtp_server import SmtpServer, make_workspace

from segmerge.errors import TemplateError
from segmerge.preview.pages import message_for
from segmerge.render import pool as render_pool
from segmerge.render.limits import Limits
from segmerge.render.templates import RenderContext, TemplateSet
from segmerge.run.campaign import open_campaign
from segmerge.workspace.config import load

AS_OF = "2026-12-01"
#: first name -> the Jinja that attacks, and what the contact's skip reason must say
ATTACKS = {
    "Boucle": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "loops over more than",
    ),
    "Multiplie": ("{{ 'x' * 10**8 }}", "size limit"),
    "Recursion": ("{{ rec(0) }}", "calls itself"),
    "Vingt": ("{% for i in range(20) %}{{ 'a' * 1000000 }}{% endfor %}", "size limit"),
    "Arbre": ("{{ arbre(0) }}", "took more than 0.3 s"),
}
MACROS = (
    "{% macro rec(n) %}{{ rec(n + 1) }}{% endmacro %}"
    # 2**40 calls, no loop, no output: only the clock stops it
    "{% macro arbre(n) %}{% if n < 40 %}{{ arbre(n + 1) }}{{ arbre(n + 1) }}{% endif %}"
    "{% endmacro %}"
)


def letter(attacks: dict[str, tuple[str, str]]) -> str:
    branches = "".join(
        f"{'{% if' if i == 0 else '{% elif'} contact.first_name == {name!r} %}}{jinja}"
        for i, (name, (jinja, _)) in enumerate(attacks.items())
    )
    return (
        '---\nsubject: "Bonjour {{ contact.first_name }}"\n---\n' + MACROS + "\n"
        "<p>Bonjour {{ contact.first_name }}</p>\n" + branches + "{% endif %}\n"
        '<a href="{{ unsubscribe_url }}">stop</a>\n'
    )


def workspace(root: Path, server: SmtpServer | None, names: list[str]) -> None:
    make_workspace(root, 0, server)
    rows = [f"c{i},c{i}@clients.example,{name},Nom,true" for i, name in enumerate(names)]
    (root / "data" / "contacts.csv").write_text(
        "contact_id,email,first_name,last_name,subscribed\n" + "\n".join(rows) + "\n"
    )
    (root / "templates" / "tous" / "_default.html.j2").write_text(letter(ATTACKS))
    config = root / "segmerge.toml"
    config.write_text(
        config.read_text().replace(
            'message_id_domain = "boutique.example"',
            'message_id_domain = "boutique.example"\nrender_timeout = 0.3',
        )
    )


NAMES = ["Alice", *ATTACKS, "Zoé"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`segmerge run lettre` once: its exit code, output, time, and what arrived."""
    root = tmp_path_factory.mktemp("limits")
    with SmtpServer() as server:
        workspace(root, server, NAMES)
        started = time.monotonic()
        done = segmerge("run", "lettre", "--as-of", AS_OF, "-w", str(root))
        took = time.monotonic() - started
        mailed = sorted(m.rcpt_tos[0] for m in server.messages)
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        skipped = dict(
            db.execute(
                "SELECT contact_id, detail FROM actions WHERE kind='send' AND status='skipped'"
            )
        )
    return {"done": done, "took": took, "mailed": mailed, "skipped": skipped}


def test_the_run_goes_on_and_exits_0_in_seconds(ran):
    done = ran["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran["took"] < 60  # five hostile letters: 0.3 s for the clock's, the others at once
    assert "Traceback" not in done.stdout + done.stderr


def test_the_other_contacts_are_mailed(ran):
    assert ran["mailed"] == ["c0@clients.example", "c6@clients.example"]


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_hostile_letter_skips_its_contact_with_the_reason(ran, name):
    cid = f"c{NAMES.index(name)}"
    assert cid in ran["skipped"], ran["skipped"]
    assert ATTACKS[name][1] in ran["skipped"][cid]
    assert "_default.html.j2" in ran["skipped"][cid]  # where to look


def test_the_summary_tells_the_user_which_contacts_were_skipped(ran):
    said = " ".join(ran["done"].stdout.split())
    assert "could not be filled" in said and "5" in said


def test_validate_does_not_hang_on_a_letter_that_never_ends(tmp_path):
    with SmtpServer() as server:
        workspace(tmp_path, server, ["Boucle"])
        started = time.monotonic()
        done = segmerge("validate", "-w", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "_default.html.j2" in said and "loops over more than" in said
    assert time.monotonic() - started < 60


def test_render_and_preview_of_a_hostile_contact_stop_with_the_reason(tmp_path):
    """`segmerge render --contact` and the preview page build the message here."""
    with SmtpServer() as server:  # opening the campaign checks the relay answers
        workspace(tmp_path, server, ["Alice", "Arbre"])
        camp = open_campaign(load(tmp_path), "lettre", as_of=AS_OF)
    try:
        assert "Bonjour Alice" in message_for(camp, 0).html
        started = time.monotonic()
        with pytest.raises(TemplateError, match="took more than 0.3 s"):
            message_for(camp, 1)
        assert time.monotonic() - started < 10
    finally:
        camp.close()


@pytest.mark.parametrize(
    "jinja, reason",
    [
        ("{% set s = 'x' * 4000000 %}{% set s = s ~ s %}{{ s }}", "size limit"),
        ("{{ 'x' | center(10**9) }}", "too large"),
        ("{{ '{:>999999999}'.format(1) }}", "size limit"),
        ("{{ '%999999999d' % 1 }}", "size limit"),
        ("{{ 10 ** (10 ** 8) }}", "too large"),
        ("{% set s = 'x' * 100000 %}{{ s | replace('', s) }}", "size limit"),
        ("{{ lipsum(10**9) }}", "too large"),
        (
            "{% macro m() %}{% for i in range(99999) %}{{ 'a' * 4000 }}{% endfor %}{% endmacro %}"
            "{% set x = m() %}",
            "size limit",
        ),
        ("{{ (['x' * 1000] * 100000) | join }}", "size limit"),
        (
            "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
            "loops over more than",
        ),
        ("{{ (('x' * 4999999).encode() * 3000) | length }}", "size limit"),
        ("{{ ('a' * 50000).replace('a', 'b' * 99999) | length }}", "size limit"),
        ("{{ ('\t' * 50000).expandtabs(99999) | length }}", "size limit"),
        ("{{ ('b' * 99999).join(('a' * 50000) | list) | length }}", "size limit"),
        ("{{ ('\n' * 50000) | indent(99999, true) | length }}", "size limit"),
        ("{{ ('%99999s' * 50000) % (('x',) * 50000) }}", "size limit"),
        ("{{ '%*d' % (10**9, 1) }}", "too large"),
        ("{{ '{:{}}'.format(1, 10**9) }}", "too large"),
        ("{{ lipsum(100000, False, 1000, 1000) }}", "too many"),
        ("{{ ('x' * 1000000) | wordwrap(1) }}", "too long"),
        ("{{ (range(100000) | batch(1) | list) | sum(start=[]) }}", "too long"),
        (
            "{% set ns = namespace(s='x' * 1000) %}{% for i in range(30) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "size limit",
        ),
    ],
)
def test_other_ways_to_blow_a_letter_up_are_refused_at_once(tmp_path, jinja, reason):
    (tmp_path / "_default.html.j2").write_text(f"---\nsubject: hi\n---\n{jinja}\n")
    ts = TemplateSet.load(
        tmp_path,
        [("tous", "Tous")],
        tz=ZoneInfo("Europe/Paris"),
        known_columns=None,
        limits=Limits(seconds=30),
    )
    started = time.monotonic()
    with pytest.raises(TemplateError, match=reason):
        ts.render("tous", {"contact_id": "c1"}, RenderContext({}, date(2026, 12, 1), "https://x/u"))
    assert time.monotonic() - started < 5  # the size checks come before the clock's 30 s


def test_a_normal_letter_near_the_limit_still_renders(tmp_path):
    """The limits stop abuse, not a long catalogue (2,000 products in a loop) nor the
    usual formats, joins and replacements."""
    (tmp_path / "_default.html.j2").write_text(
        "---\nsubject: hi\n---\n{% for i in range(2000) %}<p>Produit {{ i }} : "
        "{{ 'description ' * 20 }}</p>{% endfor %}\n"
        "{{ '%d €' | format(1500000) }} {{ '{} €'.format(1500000) }} {{ '%.2f' % 3.14159 }} "
        "{{ 'a,b'.replace(',', ';') }} {{ ['a', 'b'] | join(', ') }} {{ [2, 3] | sum }}\n"
    )
    ts = TemplateSet.load(
        tmp_path, [("tous", "Tous")], tz=ZoneInfo("Europe/Paris"), known_columns=None
    )
    r = ts.render("tous", {"contact_id": "c1"}, RenderContext({}, date(2026, 12, 1), "https://x/u"))
    assert r.html.count("<p>Produit") == 2000
    assert "1500000 € 1500000 € 3.14 a;b a, b 5" in r.html


def test_a_letter_that_hangs_for_many_contacts_gets_less_time_after_three(tmp_path, monkeypatch):
    """Hostile data in 10 contacts costs 3 full limits and 7 short ones, not 10 full
    ones; a sound contact after them is still mailed."""
    monkeypatch.setattr(render_pool, "SLOW_SECONDS", 0.05)  # 0.5 s in a run: kept short here
    (tmp_path / "_default.html.j2").write_text(f"---\nsubject: hi\n---\n{letter(ATTACKS)}")
    ts = TemplateSet.load(
        tmp_path,
        [("tous", "Tous")],
        tz=ZoneInfo("Europe/Paris"),
        known_columns=None,
        limits=Limits(seconds=0.2),
    )
    contacts = [{"contact_id": f"c{i}", "first_name": "Arbre"} for i in range(10)]
    contacts.append({"contact_id": "ok", "first_name": "Alice"})
    ctx = RenderContext({}, date(2026, 12, 1), "https://x/u")
    out = ts.render_many([("tous", c) for c in contacts], ctx, workers=1)
    errors = [str(x) for x in out if isinstance(x, TemplateError)]
    assert len(errors) == 10 and "Bonjour Alice" in out[-1].html
    assert sum("took more than 0.2 s" in e for e in errors) == 3
    assert sum("took more than 0.05 s" in e for e in errors) == 7


def test_html_that_the_text_part_parser_would_chew_on_for_ever_is_stopped(tmp_path):
    """No .txt twin: the text part is derived from the HTML, under the same clock."""
    (tmp_path / "_default.html.j2").write_text(
        "---\nsubject: hi\n---\n{{ ('<p a=\"' * 600000) | safe }}\n"
    )
    ts = TemplateSet.load(
        tmp_path,
        [("tous", "Tous")],
        tz=ZoneInfo("Europe/Paris"),
        known_columns=None,
        limits=Limits(seconds=0.3),
    )
    started = time.monotonic()
    with pytest.raises(TemplateError, match="took more than 0.3 s"):
        ts.render("tous", {"contact_id": "c1"}, RenderContext({}, date(2026, 12, 1), "https://x/u"))
    assert time.monotonic() - started < 10  # the parser alone takes ~20 s on this
