"""Run ids and idempotency keys: one module builds and reads them, byte for byte as before."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from segmerge.ledger import keys
from segmerge.ledger.health import signing_key
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.run.pipeline import RunOptions, run, run_id_for
from segmerge.workspace import config as wsmod

PARIS = ZoneInfo("Europe/Paris")


def test_keys_are_the_texts_earlier_versions_wrote():
    """The old f-strings, copied here as they were: a ledger they wrote must resume."""
    run_id, cid, name, seg, v, letter = (
        "bienvenue@2026-12-01",
        "c|42",
        "seg:vip",
        "vip",
        "B",
        "vip.B",
    )
    assert keys.send_key(run_id, cid) == f"{run_id}|{cid}|send"
    assert keys.member_key(run_id, cid) == f"{run_id}|{cid}|member"
    assert keys.test_key(run_id, letter) == f"{run_id}|{letter}|test"
    for kind in ("tag", "untag", "add_to_list", "remove_from_list"):
        assert keys.membership_key(run_id, cid, kind, name) == f"{run_id}|{cid}|{kind}:{name}"
    assert keys.draft_key(run_id, seg, v) == f"{run_id}|-|create_campaign:{seg}" + f".{v}"
    assert keys.draft_key(run_id, seg, None) == f"{run_id}|-|create_campaign:{seg}"
    at = datetime(2026, 12, 1, 9, 5, 7, tzinfo=UTC)
    assert keys.test_run_id("bienvenue", at) == f"bienvenue@test-{at:%Y%m%dT%H%M%S}"
    assert keys.rerun_job("bienvenue", "2026-12-01") == "bienvenue@2026-12-01 rerun"


def test_a_run_id_is_the_campaign_and_its_day_in_the_workspace_zone():
    late = pd.Timestamp("2026-11-30T23:30Z")  # already 1 December in Paris
    assert keys.run_id_at("bienvenue", late, PARIS) == "bienvenue@2026-12-01"
    old = f"bienvenue@{late.tz_convert(PARIS).strftime('%Y-%m-%d')}"  # the old f-string
    assert keys.run_id_at("bienvenue", late, PARIS) == old
    parsed = keys.parse_run_id("bienvenue@2026-12-01")
    assert (parsed.campaign, parsed.day, parsed.is_test) == ("bienvenue", "2026-12-01", False)
    assert str(parsed) == "bienvenue@2026-12-01"
    assert keys.parse_run_id(keys.test_run_id("b", datetime.now(UTC))).is_test
    for bad in ("bienvenue", "@2026-12-01", "b@", "b@1|c|send"):
        with pytest.raises(ValueError, match="not a run id"):
            keys.parse_run_id(bad)


@pytest.mark.parametrize(
    ("key", "subject", "kind", "target", "contact"),
    [
        (keys.send_key("b@2026-12-01", "42"), "42", "send", None, "42"),
        (keys.send_key("b@2026-12-01", "a|b"), "a|b", "send", None, "a|b"),
        (keys.member_key("b@2026-12-01", "7"), "7", "member", None, "7"),
        (keys.test_key("b@test-20261201T090000", "vip.B"), "vip.B", "test", None, None),
        (
            keys.membership_key("b@2026-12-01", "7", "untag", "seg:a|b"),
            "7",
            "untag",
            "seg:a|b",
            "7",
        ),
        (keys.draft_key("b@2026-12-01", "vip", "B"), "-", "create_campaign", "vip.B", None),
    ],
)
def test_parse_reads_back_what_a_builder_made(key, subject, kind, target, contact):
    parsed = keys.parse_key(key)
    assert (parsed.subject, parsed.kind, parsed.target, parsed.contact_id) == (
        subject,
        kind,
        target,
        contact,
    )
    assert str(parsed) == key
    assert parsed.run_id == key.split("|", 1)[0]


def test_a_draft_key_gives_its_segment_and_variant_and_nonsense_is_refused():
    assert keys.parse_key(keys.draft_key("b@1", "vip", "B")).group == ("vip", "B")
    assert keys.parse_key(keys.draft_key("b@1", "vip")).group == ("vip", None)
    for bad in ("b@1", "b@1|42|sent", "b@1||send", "|42|send", "b@1|42|tag"):
        with pytest.raises(ValueError, match="not an action key"):
            keys.parse_key(bad)
    with pytest.raises(ValueError, match="not a membership change"):
        keys.membership_key("b@1", "42", "send", "x")


def outbox_workspace(root) -> wsmod.Workspace:
    data = root / "data"
    data.mkdir()
    rows = ["contact_id,email,first_name,subscribed"]
    rows += [f"{i},c{i}@exemple.fr,Prénom{i},oui" for i in range(1, 6)]
    (data / "contacts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "segrules").mkdir()
    (root / "segrules" / "b.yaml").write_text(
        "version: 1\nname: b\nexclude: not subscribed\nsegments:\n  - name: tous\n    when: true\n",
        encoding="utf-8",
    )
    tpl = root / "templates" / "b"
    tpl.mkdir(parents=True)
    (tpl / "_default.html.j2").write_text(
        '---\nsubject: "Lettre"\n---\n<p>Bonjour {{ contact.first_name }}</p>\n', encoding="utf-8"
    )
    (root / "segmerge.toml").write_text(
        textwrap.dedent("""\
        timezone = "Europe/Paris"
        [mail]
        from = "Boutique <bonjour@boutique.fr>"
        unsubscribe_url = "https://boutique.fr/u?t={token}"
        [sources.fichiers]
        connector = "files"
        path = "data"
        [destinations.outbox]
        connector = "outbox"
        path = "outbox"
        [campaigns.b]
        source = "fichiers"
        rules = "segrules/b.yaml"
        destination = "outbox"
        """),
        encoding="utf-8",
    )
    return wsmod.load(root)


def test_a_run_resumes_a_ledger_written_with_the_old_key_texts(tmp_path):
    """Two letters an older Segmerge recorded sent, under its own f-string keys: the run of
    the same day resumes that run and sends the three others only."""
    ws = outbox_workspace(tmp_path)
    as_of = pd.Timestamp("2026-12-01T12:00", tz=PARIS)
    old_run = f"b@{as_of.tz_convert(ws.tz).strftime('%Y-%m-%d')}"
    signing_key(ws.state_dir, create=True)  # its letters' links were signed
    with Ledger(ws.ledger_path) as ledger:
        ledger.begin_run(old_run, "b", as_of.isoformat())
        sent = [f"{old_run}|{i}|send" for i in (1, 2)]
        ledger.plan(
            old_run,
            [
                PlannedAction(k, str(i), "send", "outbox", "tous", f"c{i}@exemple.fr")
                for i, k in zip((1, 2), sent, strict=True)
            ],
        )
        ledger.record([(k, "done", "sent before the upgrade") for k in sent])
        ledger.end_run(old_run, "done", {})
    assert run_id_for("b", as_of, ws) == old_run
    s = run(ws, "b", RunOptions(as_of="2026-12-01"))
    assert s.run_id == old_run and s.resumed
    assert s.outcome["send"] == {"done": 5}
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 3
    with Ledger(ws.ledger_path) as ledger:
        rows = ledger.actions(old_run, ["done"])
    assert {r["key"] for r in rows} == {f"{old_run}|{i}|send" for i in range(1, 6)} | {
        f"{old_run}|{i}|tag:seg:tous"
        for i in range(1, 6)  # the files source takes tags
    }
    assert {r["detail"] for r in rows if r["key"] in sent} == {"sent before the upgrade"}
