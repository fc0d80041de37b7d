"""`segmerge run` end to end with HubSpot as both source and destination (the fake on loopback).

The CLI runs through its entry point in this process (tests/cli.py), as a user runs
it; the fake runs on loopback, so the test can look at what the run changed in "HubSpot".
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli import Ran, segmerge
from tests.fakes.hubspot import TOKEN, HubSpotFake, populate

AS_OF = "2026-12-01"


def sm(*args: str) -> Ran:
    return segmerge(*args, env={"SEGMERGE_CRM_TOKEN": TOKEN})


@pytest.fixture
def world(tmp_path):
    """A fake HubSpot with 40 contacts (some big spenders, some small) and a workspace on it."""
    with HubSpotFake(limit=1000, window=1.0, search_limit=100) as fake:
        fake.add_property("civilite", "string")
        ids = populate(fake, 40)
        for cid in ids:
            fake.contacts[cid].props["civilite"] = "Mme"
        day = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
        for cid in ids[:5]:  # fonceurs: 3 recent orders of 100
            for n in range(3):
                fake.add_deal([cid], "100", (day - dt.timedelta(days=n)).isoformat())
        for cid in ids[5:12]:  # prudents: one small order
            fake.add_deal([cid], "20", day.isoformat())
        root = tmp_path / "ws"
        proc = sm("init", str(root))
        assert proc.returncode == 0, proc.stderr
        with open(root / "segmerge.toml", "a", encoding="utf-8") as fh:
            fh.write(f"""
[sources.crm]
connector = "hubspot"
base_url = "{fake.url}"
rate_limit = 1000
rate_window_seconds = 1.0
search_rate_limit = 100

[campaigns.hs]
source = "crm"
rules = "segrules/profils-vpc.yaml"
templates = "templates/profils-vpc"
destination = "crm"
tag_prefix = "seg:"
""")
        yield fake, ids, root
        assert fake.violations == [], fake.violations


def updates(fake: HubSpotFake) -> int:
    return sum(1 for m, p, _ in fake.log if p.endswith("/batch/update"))


def test_run_tags_the_segments_in_hubspot_and_keeps_other_tags(world):
    fake, ids, root = world
    dry = sm("run", "hs", "-w", str(root), "--as-of", AS_OF, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert updates(fake) == 0 and not fake.lists and not fake.emails  # a dry run writes nothing

    proc = sm("run", "hs", "-w", str(root), "--as-of", AS_OF)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "seg:fonceurs" in fake.tags_of(ids[1])  # ids[0] is also "vip;seg:old"
    assert fake.tags_of(ids[0])[:1] == ["vip"] and "seg:fonceurs" in fake.tags_of(ids[0])
    assert "seg:old" in fake.tags_of(ids[0])  # not a segment of this rule set: not ours
    assert "seg:prudents" in fake.tags_of(ids[6])
    assert fake.tags_of(ids[3]) == []  # opted out: in no segment, never tagged
    assert "SECRET" not in proc.stdout + proc.stderr


def test_run_creates_lists_and_a_draft_once_then_pulls_incrementally(world):
    fake, ids, root = world
    proc = sm("run", "hs", "-w", str(root), "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fonceurs = fake.list_named("seg:fonceurs")
    assert fonceurs is not None and {ids[0], ids[1], ids[2], ids[4]} <= fonceurs.members
    # the demo's fonceurs letter shows Segmerge's own metrics, which a draft cannot carry
    # per contact: the engine skips that draft; the others use HubSpot fields only
    drafts = {e["name"]: e for e in fake.emails.values()}
    assert "hs 2026-12-01 · zens" in drafts and not any("fonceurs" in n for n in drafts)
    assert all(e["state"] == "DRAFT" for e in drafts.values())
    zens = drafts["hs 2026-12-01 · zens"]
    assert zens["state"] == "DRAFT" and zens["sendOnPublish"] is False
    assert zens["to"]["contactIlsLists"]["include"] == [str(fake.list_named("seg:zens").id)]
    assert "{{ contact.firstname }}" in str(zens["content"]) + zens["subject"]

    rerun = sm("run", "hs", "-w", str(root), "--as-of", AS_OF)  # the same run: nothing twice
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(fake.emails) == len(drafts) and len(fake.lists) == 3

    later = sm("run", "hs", "-w", str(root), "--as-of", "2026-12-02")
    assert later.returncode == 0, later.stdout + later.stderr
    searches = [s for m, p, s in fake.log if p.endswith("/contacts/search")]
    assert searches and set(searches) == {200}  # the second and later runs search
    assert "incremental pull" in later.stdout + later.stderr


def test_validate_checks_the_token_and_a_wrong_one_exits_2_without_it(world):
    fake, _, root = world
    ok = sm("validate", "hs", "-w", str(root), "--as-of", AS_OF)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    fake.token = "pat-eu1-rotated-0000"  # the stored token was revoked
    bad = sm("run", "hs", "-w", str(root), "--as-of", AS_OF)
    out = bad.stdout + bad.stderr
    assert bad.returncode == 2, out
    assert "crm" in out and "401" in out and "segmerge auth set crm" in out
    assert TOKEN not in out and "SECRET" not in out
