"""`validate` fills every letter for every contact and says which contact pressure applies;
without `[pressure]`, one message per address per day is the cap, all campaigns together."""

from __future__ import annotations

from pathlib import Path

import pytest
from order_shop import AS_OF, LETTER, shop
from typer.testing import CliRunner

from bot import app
from segmerge.errors import SegmergeError, TemplateError
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import config as wsmod

BIS = (
    '[campaigns.bis]\nsource = "shop"\nrules = "segrules/lettre.yaml"\n'
    'templates = "templates/lettre"\ndestination = "outbox"\n'
)
NAMED = "---\nsubject: Bonjour {{ contact.first_name }}\n---\n<p>{{ contact.first_name }}</p>\n"


def refused(*args: str) -> SegmergeError:
    r = CliRunner().invoke(app, list(args))
    assert isinstance(r.exception, SegmergeError), r.output
    return r.exception


def with_first_names(root: Path, names: dict[str, str]) -> None:
    rows = [f"{i},c{i}@example.org,{n},oui" for i, n in names.items()]
    (root / "data" / "contacts.csv").write_text(
        "contact_id,email,first_name,subscribed\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    (root / "templates" / "lettre" / "_default.html.j2").write_text(NAMED, encoding="utf-8")


def test_validate_fills_every_contacts_letter_and_names_three_of_those_it_cannot(tmp_path):
    ids = [f"{i:03d}" for i in range(1, 11)]
    root = shop(tmp_path / "ws", ids, [])
    with_first_names(root, {i: ("" if i in ("002", "005", "007", "009") else "Ana") for i in ids})
    exc = refused("validate", "lettre", "-w", str(root), "--as-of", AS_OF)
    assert isinstance(exc, TemplateError) and exc.exit_code == 2
    said = str(exc)
    assert "campaign lettre: 4 of 10 letters cannot be filled" in said, said
    examples = [line.strip() for line in said.splitlines()[1:4]]
    assert [e.split(" ")[0] for e in examples] == ["002", "005", "007"]  # three, in base order
    assert "009" not in said and "first_name" in said and "default(" in said


def test_validate_passes_and_says_how_many_letters_and_the_pressure(tmp_path):
    root = shop(tmp_path / "ws", ["001", "002", "003"], [("o1", "001", 150.0, "paid")])
    r = CliRunner().invoke(app, ["validate", "lettre", "-w", str(root), "--as-of", AS_OF])
    assert r.exit_code == 0, r.output
    assert "3 letters filled for 3 contacts" in r.output
    assert "the default cap applies, at most one message per address per day" in r.output
    (root / "segmerge.toml").write_text(
        (root / "segmerge.toml").read_text() + "\n[pressure]\nmax_messages = 0\n"
    )
    r = CliRunner().invoke(app, ["validate", "lettre", "-w", str(root), "--as-of", AS_OF])
    assert r.exit_code == 0 and "contact pressure: no cap" in r.output


def test_each_variant_letter_is_filled_for_every_contact(tmp_path):
    root = shop(tmp_path / "ws", ["001", "002"], [])
    with_first_names(root, {"001": "Ana", "002": ""})
    letters = root / "templates" / "lettre"
    (letters / "_default.html.j2").unlink()
    (letters / "autres.A.html.j2").write_text(LETTER, encoding="utf-8")  # no first name
    (letters / "autres.B.html.j2").write_text(NAMED, encoding="utf-8")
    (letters / "vip.html.j2").write_text(LETTER, encoding="utf-8")
    exc = refused("validate", "lettre", "-w", str(root), "--as-of", AS_OF)
    # 2 contacts x 2 letters: whichever variant 002 draws today, B cannot be filled for it
    assert "1 of 4 letters cannot be filled" in str(exc) and "002 (autres.B)" in str(exc)


@pytest.mark.parametrize("setting", ["", "\n[pressure]\nmax_messages = 0\n"])
def test_without_pressure_a_second_campaign_the_same_day_waits(tmp_path, setting):
    root = shop(tmp_path / "ws", ["001", "002"], [], extra=BIS + setting)
    ws = wsmod.load(root)
    first = run(ws, "lettre", RunOptions(as_of=AS_OF))
    assert first.outcome["send"] == {"done": 2}
    second = run(ws, "bis", RunOptions(as_of=AS_OF))
    if setting:  # max_messages = 0: no cap, on purpose
        assert second.outcome["send"] == {"done": 2} and not second.deferred
    else:
        assert second.outcome["send"] == {"deferred": 2}, second.outcome
        assert second.deferred == {"frequency_cap": 2}
        assert second.pressure_policy == "at most 1 message per 1 day"
        again = run(ws, "lettre", RunOptions(as_of=AS_OF, resend_uncertain=True))
        assert again.outcome["send"] == {"done": 2}  # a run never caps itself
