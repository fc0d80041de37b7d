"""Two runs writing to one destination never drop each other's writes.

The files connector rewrites the whole contacts file for each batch of tags; two
campaigns (or two workspaces) doing that at once used to lose one side's tags.
These tests race real processes on a real file and count every tag afterwards.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from state_ws import DAY1, make_workspace, run_campaign

from connectors.files import FilesConnector
from segmerge.ports import locks
from segmerge.ports.connector import Action, ConnectorContext
from segmerge.run.campaign import open_source
from segmerge.workspace import config as wsmod

FORK = multiprocessing.get_context("fork")


def tags_by_contact(path: Path) -> dict[str, set[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return {ln.split(";")[0]: set(filter(None, ln.split(";")[4].split("|"))) for ln in lines}


def _run_at_once(
    root: str, campaign: str, barrier: threading.Barrier, out: multiprocessing.Queue
) -> None:
    barrier.wait(timeout=60)
    s = run_campaign(Path(root), campaign, DAY1)
    out.put((campaign, s.outcome.get("tag", {}), s.notes))


def test_two_campaigns_tagging_one_contacts_file_at_once_keep_every_tag(tmp_path, monkeypatch):
    # six batches of tags a run, each rewriting the file (the processes inherit the size)
    monkeypatch.setattr(FilesConnector, "batch_size", 10)
    root = make_workspace(tmp_path / "ws", contacts=60)
    barrier = FORK.Barrier(2)
    results = FORK.Queue()
    procs = [
        FORK.Process(target=_run_at_once, args=(str(root), c, barrier, results))
        for c in ("news", "promo")
    ]
    for p in procs:
        p.start()
    outcomes = {}
    for _ in procs:
        campaign, counts, _notes = results.get(timeout=240)
        outcomes[campaign] = counts
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert outcomes == {"news": {"done": 60}, "promo": {"done": 60}}
    tags = tags_by_contact(root / "data" / "contacts.csv")
    assert len(tags) == 60
    assert all(t == {"news:tous", "promo:tous"} for t in tags.values())
    assert not list((root / "data").glob(".*"))  # no lock or temp file left in the shop's data


def _tag_in_batches(data: str, prefix: str, barrier: threading.Barrier) -> None:
    root = Path(data).parent
    ctx = ConnectorContext(
        name="crm", settings={"path": "data"}, root=root, config_file=root / "segmerge.toml"
    )
    conn = FilesConnector(ctx)
    barrier.wait(timeout=60)
    # 10 rewrites of the whole file, racing the other side's (without the file's lock,
    # tags were lost in 5 runs of 5 at this count)
    for start in range(1, 101, 10):
        batch = [
            Action(f"{prefix}{i}", "tag", str(i), {"tag": f"{prefix}{i % 3}"})
            for i in range(start, start + 10)
        ]
        assert all(o.status == "done" for o in conn.push(batch))


def test_two_workspaces_rewriting_one_shared_contacts_file_lose_nothing(tmp_path):
    """Below the run: two processes with their own connector (as two workspaces sharing
    one export would have) rewrite the same file ten times each."""
    root = make_workspace(tmp_path / "ws", contacts=100)
    barrier = FORK.Barrier(2)
    data = str(root / "data")
    procs = [FORK.Process(target=_tag_in_batches, args=(data, p, barrier)) for p in ("a:", "b:")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    tags = tags_by_contact(root / "data" / "contacts.csv")
    assert all(tags[str(i)] == {f"a:{i % 3}", f"b:{i % 3}"} for i in range(1, 101))


def test_a_run_waits_for_whoever_holds_its_destination_and_says_who(tmp_path):
    root = make_workspace(tmp_path / "ws")
    ws = wsmod.load(root)
    dest = open_source(ws, "crm")
    waiting = threading.Event()
    result: dict[str, object] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase.startswith("waiting for"):
            waiting.set()

    def go() -> None:
        result["summary"] = run_campaign(root, "news", DAY1, progress=progress)

    with locks.destination_lock(dest, "campaign promo of the other workspace"):
        worker = threading.Thread(target=go)
        worker.start()
        assert waiting.wait(timeout=120), "the run did not wait for the destination's holder"
        assert tags_by_contact(root / "data" / "contacts.csv")["1"] == set()  # not yet
        time.sleep(0)  # the lock is released as the block ends
    worker.join(timeout=120)
    summary = result["summary"]
    assert any("campaign promo of the other workspace (pid" in n for n in summary.notes)  # type: ignore[attr-defined]
    assert summary.outcome["tag"] == {"done": 12}  # type: ignore[attr-defined]
    assert all(t == {"news:tous"} for t in tags_by_contact(root / "data" / "contacts.csv").values())


def test_a_lock_is_never_held_twice_even_as_its_file_is_removed(tmp_path):
    """The lock file is removed on release; a waiter that opened the removed file must
    not think it holds the lock while a third process holds the new one."""
    path = tmp_path / "x.lock"
    inside = FORK.Value("i", 0)
    most = FORK.Value("i", 0)

    def worker() -> None:
        for _ in range(200):
            with locks.hold(path, "worker"):
                with inside.get_lock():
                    inside.value += 1
                    most.value = max(most.value, inside.value)
                with inside.get_lock():
                    inside.value -= 1

    procs = [FORK.Process(target=worker) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert most.value == 1
