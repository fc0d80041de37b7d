"""`segmerge run` end to end with HubSpot as both source and destination (the fake on loopback).

The CLI runs through its entry point in this process (tests/cli.py), as a user runs
it; the fake runs on loopback, so the test can look at what the run changed in "HubSpot".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import Ran, segmerge
from tests.fakes.hubspot import TOKEN, HubSpotFake, populate

AS_OF = "2026-12-01"


def sm(*args: str) -> Ran:
    return segmerge(*args, env={"SEGMERGE_CRM_TOKEN": TOKEN})


@contextmanager
def _world(root: Path) -> Iterator[tuple[HubSpotFake, list[str], Path]]:
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


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[HubSpotFake, list[str], Path]]:
    with _world(tmp_path / "ws") as w:
        yield w


@dataclass
class FirstRun:
    """A dry run, then the first real run, on one world: what each left in "HubSpot"
    is kept as it was then, so that a test rerunning on the world changes none of it."""

    fake: HubSpotFake
    ids: list[str]
    root: Path
    dry: Ran
    updates_after_dry: int
    lists_after_dry: int
    emails_after_dry: int
    proc: Ran
    tags: dict[int, list[str]]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """One world run once for the two tests that read its first run (a run costs a
    second of CPU); the second then reruns it."""
    with _world(tmp_path_factory.mktemp("hubspot") / "ws") as (fake, ids, root):
        dry = sm("run", "hs", "-w", str(root), "--as-of", AS_OF, "--dry-run")
        counts = updates(fake), len(fake.lists), len(fake.emails)
        proc = sm("run", "hs", "-w", str(root), "--as-of", AS_OF)
        tags = {i: list(fake.tags_of(ids[i])) for i in (0, 1, 3, 6)}
        yield FirstRun(fake, ids, root, dry, *counts, proc, tags)


def updates(fake: HubSpotFake) -> int:
    return sum(1 for m, p, _ in fake.log if p.endswith("/batch/update"))


def test_run_tags_the_segments_in_hubspot_and_keeps_other_tags(first_run: FirstRun) -> None:
    dry, proc, tags = first_run.dry, first_run.proc, first_run.tags
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (first_run.updates_after_dry, first_run.lists_after_dry) == (0, 0)
    assert first_run.emails_after_dry == 0  # a dry run writes nothing

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "seg:fonceurs" in tags[1]  # ids[0] is also "vip;seg:old"
    assert tags[0][:1] == ["vip"] and "seg:fonceurs" in tags[0]
    assert "seg:old" in tags[0]  # not a segment of this rule set: not ours
    assert "seg:prudents" in tags[6]
    assert tags[3] == []  # opted out: in no segment, never tagged
    assert "SECRET" not in proc.stdout + proc.stderr


def test_run_creates_lists_and_a_draft_once_then_pulls_incrementally(first_run: FirstRun) -> None:
    fake, ids, root, proc = first_run.fake, first_run.ids, first_run.root, first_run.proc
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
