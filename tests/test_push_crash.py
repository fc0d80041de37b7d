"""A run pushing lists and drafts to a platform, killed with SIGKILL again and again.

The platform (the Brevo fake, in this test's process, so it outlives every
killed run) must end exactly as one clean run would leave it: every contact in
the list of its segment and no other Segmerge list, the marketer's own lists
untouched, one folder, one draft per segment — no membership lost, none added
twice, nothing created twice.

Where the kills land. The fake holds one request until the test has killed the
run (a real process, forked by tests/forked_cli.py) that sent it, at the moment
that matters for each kind of change a push makes; in the order of ``KILLS``:

- the Segmerge folder, then the first segment's list, created at the platform
  with the answer never read: the next run must find them by name, not create
  them again;
- the first batch of list additions in flight (marked in the ledger, then sent
  as calls of 150, several at a time): one call the platform never processed
  (the fake drops it once its sender is dead), the others applied; the next run
  redoes the batch and those contacts must still end in their list;
- the redone batch killed again, a call applied and its answer lost: what is
  already in a list must cost no second addition (Brevo refuses it, "already in
  list"), and nothing may be lost;
- a draft created and its answer lost, every membership recorded done: the next
  run must find the draft by name, create only the other one, and redo no batch.

The twelve kills after a random count of changes this replaces landed in these
same places (mostly an answer lost after a change), at random; here each lands
where it is meant to, and the ledger read after each kill shows what was in flight.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from forked_cli import PRELOAD, Child, forks

from tests.cli import segmerge
from tests.fakes import specs
from tests.fakes.base import Reply, Request
from tests.fakes.brevo import KEY, BrevoFake, populate
from tests.workspaces import two_segment_workspace

N = 1000  # 900 subscribed: one batch of six calls of at most 150
ADD = r"/contacts/lists/\d+/contacts/add"
#: (hold the request before the fake processes it, or its answer after; method, path, nth)
KILLS = [
    ("after", "POST", "/contacts/folders", 1),
    ("after", "POST", "/contacts/lists", 1),
    ("before", "POST", ADD, 1),
    ("after", "POST", ADD, 1),
    ("after", "POST", "/emailCampaigns", 1),
]
IMPORTS = (*PRELOAD, "connectors.brevo")


class Gate:
    """Holds the ``nth`` request matching ``arm(...)`` until ``release`` is set.

    "after": the fake has processed it (a 2xx) and the answer waits; "before": it
    waits unprocessed, then is dropped (answered 503, to a sender that is gone).
    """

    def __init__(self, fake: BrevoFake) -> None:
        self._rate_limit, self._decorate = fake.rate_limit, fake.decorate
        fake.rate_limit = self.rate_limit  # type: ignore[method-assign]
        fake.decorate = self.decorate  # type: ignore[method-assign]
        self.lock = threading.Lock()
        self.armed: tuple[str, str, str] | None = None
        self.left = 0
        self.held: Request | None = None
        self.reached = threading.Event()
        self.release = threading.Event()

    def arm(self, when: str, method: str, path: str, nth: int) -> None:
        with self.lock:
            self.armed, self.left, self.held = (when, method, path), nth, None
        self.reached.clear()
        self.release.clear()

    def _hold(self, when: str, req: Request) -> bool:
        with self.lock:
            if self.armed is None or self.armed[:2] != (when, req.method):
                return False
            if not re.fullmatch(self.armed[2], req.path):
                return False
            self.left -= 1
            if self.left:
                return False
            self.armed, self.held = None, req
        self.reached.set()
        self.release.wait()
        return True

    def rate_limit(self, req: Request) -> Reply | None:
        if self._hold("before", req):
            return Reply(503, {"message": "dropped: its sender was killed"})
        return self._rate_limit(req)

    def decorate(self, req: Request, reply: Reply) -> None:
        self._decorate(req, reply)
        if 200 <= reply.status < 300:
            self._hold("after", req)


@pytest.fixture
def fake():
    with BrevoFake(specs.brevo()) as server:
        yield server
    assert not server.violations, server.violations[:5]


def workspace(root: Path, url: str) -> None:
    two_segment_workspace(
        root,
        {"SEGMERGE_SHOP_TOKEN": KEY},
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


MEMBERS = ("tag", "add_to_list")  # the memberships a run plans: its tag, its campaign's list


def statuses(root: Path, *kinds: str) -> set[str]:
    """The statuses the ledger holds for actions of ``kinds`` (default: all)."""
    with sqlite3.connect(root / ".segmerge" / "ledger.sqlite") as db:
        rows = db.execute("SELECT kind, status FROM actions").fetchall()
    return {status for kind, status in rows if not kinds or kind in kinds}


def wait_for(child: Child, gate: Gate, what: Any) -> None:
    deadline = time.monotonic() + 120
    while not gate.reached.wait(0.05):
        assert child.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"the run never reached {what}"


@pytest.mark.timeout(300)
def test_pushes_killed_at_each_kind_of_change_end_as_one_clean_run(fork_server, fake, tmp_path):
    populate(fake, N)  # odd ids are in the marketer's own "Newsletter" list
    own_lists = {c.id: [lid for lid in c.list_ids] for c in fake.contacts.values()}
    root = tmp_path / "ws"
    workspace(root, fake.url)
    args = ["run", "niveaux", "-w", str(root), "--as-of", "2026-12-01"]
    gate = Gate(fake)
    dropped: list[Any] = []  # the contacts of the call the platform never processed
    try:
        with forks(fork_server, tmp_path / "runs.log", IMPORTS, SEGMERGE_SHOP_TOKEN=KEY) as runs:
            for kill in KILLS:
                gate.arm(*kill)
                child = runs.start(*args)
                wait_for(child, gate, kill)
                child.kill()
                assert child.wait() == -9
                gate.release.set()
                held = gate.held
                assert held is not None
                if kill[2] == ADD:  # killed between the batch's intent and its outcome
                    assert "in_flight" in statuses(root, *MEMBERS), statuses(root, *MEMBERS)
                if kill[0] == "before":  # not in the list, until a later run adds them
                    body, lid = held.json or {}, int(held.path.split("/")[3])
                    dropped = [fake._find(str(i)) for i in body.get("ids", body.get("emails", []))]
                    assert dropped and not [c for c in dropped if c is None or lid in c.list_ids]
                if kill[2] == "/emailCampaigns":  # every membership recorded, drafts in flight
                    assert statuses(root, *MEMBERS) == {"done"}, statuses(root, *MEMBERS)
                    assert statuses(root, "create_campaign") == {"in_flight"}
    finally:
        gate.release.set()  # a server thread waiting on it would outlive the test
        gate.arm("", "", "", 0)

    before = len(fake.mutations)
    final = segmerge(*args, env={"SEGMERGE_SHOP_TOKEN": KEY})  # no kill: in this process
    assert final.returncode == 0, final.stdout + final.stderr
    assert fake.mutations[before:] == ["campaign niveaux 2026-12-01 · autres"]  # only what was left

    vip, autres = fake.list_named("seg:vip"), fake.list_named("seg:autres")
    subscribed = {c.id for c in fake.contacts.values() if not c.blacklisted}
    assert fake.members(vip) == {i for i in subscribed if i % 3 == 0}
    assert fake.members(autres) == subscribed - fake.members(vip)
    assert {c.id for c in dropped} <= fake.members(vip) | fake.members(autres)
    owned = {lid for lid, x in fake.lists.items() if x["name"].startswith("seg:")}
    assert owned == {vip, autres}  # no list created twice
    assert list(fake.folders.values()).count("Segmerge") == 1  # nor the folder
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
    assert statuses(root) == {"done"}, statuses(root)
