"""A run pushing tags, lists and drafts to a platform, killed with SIGKILL again and again.

The platform (the Brevo fake, in this test's process, so it outlives every
killed run) must end exactly as one clean run would leave it: every contact in
the list of its segment and no other Segmerge list, the marketer's own lists
untouched, one draft per segment — no membership lost, none added twice, no
campaign created twice.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli import script_env, segmerge
from tests.fakes import specs
from tests.fakes.brevo import KEY, BrevoFake, populate
from tests.workspaces import SEGMERGE, two_segment_workspace

N = 3000


@pytest.fixture
def fake():
    with BrevoFake(specs.brevo()) as server:
        yield server
    assert not server.violations, server.violations[:5]


def workspace(root: Path, url: str, env: dict[str, str]) -> None:
    two_segment_workspace(
        root,
        env,
        "niveaux",
        "vip == true",
        f"""
        [sources.shop]
        connector = "brevo"
        base_url = "{url}"
        events = "none"
        orders = false
        contacts_requests_per_second = 100.0
        other_requests_per_hour = 360000.0

        [campaigns.niveaux]
        source = "shop"
        rules = "segrules/niveaux.yaml"
        destination = "shop"
        """,
    )


def _mutations(fake: BrevoFake) -> int:
    with fake.lock:
        return len(fake.mutations)


@pytest.mark.timeout(600)
def test_pushes_killed_at_random_end_as_one_clean_run(fake, tmp_path):
    populate(fake, N)  # odd ids are in the marketer's own "Newsletter" list
    own_lists = {c.id: [lid for lid in c.list_ids] for c in fake.contacts.values()}
    root = tmp_path / "ws"
    env = script_env(SEGMERGE_SHOP_TOKEN=KEY)
    workspace(root, fake.url, env)
    cmd = [SEGMERGE, "run", "niveaux", "-w", str(root), "--as-of", "2026-12-01"]
    rnd = random.Random(7)
    kills = 0
    for _ in range(12):
        start = _mutations(fake)
        wait_for = rnd.randint(1, 4)  # kill after this many more changes at the platform
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 120
        while (
            proc.poll() is None
            and _mutations(fake) < start + wait_for
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if proc.returncode == 0:
            break
    assert kills >= 5, f"only {kills} kills landed during the pushes: the test proves little"

    final = segmerge(*cmd[1:], env={"SEGMERGE_SHOP_TOKEN": KEY})  # no kill: in this process
    assert final.returncode == 0, final.stdout + final.stderr

    vip, autres = fake.list_named("seg:vip"), fake.list_named("seg:autres")
    subscribed = {c.id for c in fake.contacts.values() if not c.blacklisted}
    assert fake.members(vip) == {i for i in subscribed if i % 3 == 0}
    assert fake.members(autres) == subscribed - fake.members(vip)
    owned = {lid for lid, x in fake.lists.items() if x["name"].startswith("seg:")}
    assert owned == {vip, autres}  # no list created twice
    for c in fake.contacts.values():  # the marketer's own lists are exactly as they were
        assert [lid for lid in c.list_ids if lid not in owned] == own_lists[c.id]
    # every membership was added once: a killed batch redone costs no second add
    added: dict[tuple[str, str], int] = {}
    for m in fake.mutations:
        if m.startswith("add "):
            _, lid, ids = m.split(" ", 2)
            for i in ids.strip("[]").split(", "):
                if i:
                    added[(lid, i)] = added.get((lid, i), 0) + 1
    assert added and max(added.values()) == 1
    drafts = sorted(c["name"] for c in fake.campaigns.values())
    assert drafts == ["niveaux 2026-12-01 · autres", "niveaux 2026-12-01 · vip"]
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM actions GROUP BY status"))
    assert set(statuses) == {"done"}, statuses
