"""`segmerge run` and `explain` tell the whole truth: no campaign given is refused unless
`--all`, a dry run of a finished run says it is finished, `explain 42` suggests `00042`."""

from __future__ import annotations

import pandas as pd
import pytest
from order_shop import AS_OF, shop
from typer.testing import CliRunner

from bot import app
from segmerge.cli.contact_ids import likely_ids
from segmerge.errors import SegmergeError


@pytest.fixture
def root(tmp_path):
    ids = ["00001", "00002", "00042", "00420"]
    return shop(
        tmp_path / "ws",
        ids,
        [("o1", "00001", 150.0, "paid")],
        extra='[campaigns.bis]\nsource = "shop"\nrules = "segrules/lettre.yaml"\n'
        'templates = "templates/lettre"\ndestination = "outbox"\n',
    )


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def refused(*args: str) -> str:
    """The user error a command stops on (exit 2 through segmerge's main), as shown."""
    r = CliRunner().invoke(app, list(args))
    assert isinstance(r.exception, SegmergeError), r.output
    assert r.exception.exit_code == 2
    return str(r.exception)


def test_run_without_a_campaign_is_refused_and_names_the_campaigns(root):
    said = refused("run", "-w", str(root), "--as-of", AS_OF)
    assert "--all" in said and "lettre, bis" in said
    assert not (root / "outbox").exists()  # nothing was sent
    both = refused("run", "lettre", "--all", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert "not both" in both


def test_run_all_runs_every_campaign(root):
    r = cli("run", "--all", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "lettre@2026-12-01" in r.output and "bis@2026-12-01" in r.output


def test_a_dry_run_of_a_finished_run_says_it_is_finished(root):
    before = cli("run", "lettre", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert before.exit_code == 0 and "finished" not in before.output
    assert cli("run", "lettre", "-w", str(root), "--as-of", AS_OF).exit_code == 0
    again = cli("run", "lettre", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert again.exit_code == 0, again.output
    assert "run lettre@2026-12-01 is finished" in again.output
    assert "nothing is left to do" in again.output
    # a contact new since: the run is finished, and the dry run says what is left
    contacts = root / "data" / "contacts.csv"
    contacts.write_text(contacts.read_text() + "00007,c7@example.org,Client 7,oui\n")
    grown = cli("run", "lettre", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert "would only do the 2 actions above" in grown.output, grown.output  # a send, a tag


def test_explain_suggests_the_id_with_its_leading_zeros(root):
    said = refused(
        "explain", str(root / "segrules" / "lettre.yaml"), "42", "-w", str(root), "--as-of", AS_OF
    )
    assert "did you mean 00042?" in said, said
    ok = cli(
        "explain",
        str(root / "segrules" / "lettre.yaml"),
        "00042",
        "-w",
        str(root),
        "--as-of",
        AS_OF,
    )
    assert ok.exit_code == 0, ok.output


def test_likely_ids_on_the_whole_column():
    ids = pd.Series(["00042", "00420", "A-7", "0042", None], dtype="string")
    assert likely_ids(ids, "42") == ["00042", "0042"]
    assert likely_ids(ids, "a-7 ") == ["A-7"]
    assert likely_ids(ids, "99999") == []
