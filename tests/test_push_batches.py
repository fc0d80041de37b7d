"""Pushing batches: the ledger records each batch, with one or two batches in flight at once
(two ramped: small batches first and last)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from segmerge.errors import ConnectorError
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.ports.connector import Action, ConnectorContext, Destination, Outcome
from segmerge.run.push import batch_sizes, push_in_batches

RUN = "c@2026-12-02"


class Recorder(Destination):
    """A destination that notes how many of its batches overlap, and fails on demand."""

    accepts = frozenset({"tag"})
    idempotent = True
    batch_size = 10

    def __init__(
        self,
        ctx: ConnectorContext,
        *,
        overlap: int,
        fail_at: int | None = None,
        bug_at: int | None = None,
    ) -> None:
        super().__init__(ctx)
        self.concurrent_batches = overlap
        self.fail_at, self.bug_at = fail_at, bug_at
        self.calls = 0
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def push(self, actions):
        with self.lock:
            call = self.calls
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.05 if call % 2 == 0 else 0.01)  # uneven batches, as on a network
            if call == self.fail_at:
                raise ConnectorError("the platform is down")
            if call == self.bug_at:
                raise KeyError("a bug")
            return [Outcome(a.key, "done", f"batch {call}") for a in actions]
        finally:
            with self.lock:
                self.active -= 1


def setup(tmp_path: Path, n: int = 55) -> tuple[Ledger, list[Action]]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.begin_run(RUN, "c", "2026-12-02")
    actions = [Action(f"{RUN}|{i}|tag", "tag", str(i), {"tag": "seg:x"}) for i in range(n)]
    ledger.plan(
        RUN, [PlannedAction(a.key, a.contact_id, "tag", "d", "x", "seg:x") for a in actions]
    )
    return ledger, actions


def ctx(tmp_path: Path) -> ConnectorContext:
    return ConnectorContext(
        name="d",
        root=tmp_path,
        config_file=tmp_path / "segmerge.toml",
        settings={},
        secret=lambda: None,
    )


@pytest.mark.parametrize(
    "overlap, recorded",
    [
        (1, [0, 10, 20, 30, 40, 50, 55]),
        # ramped: 1, 2, 5, then the odd 9 and whole batches, then 5, 2, 1
        (2, [0, 1, 3, 8, 17, 27, 37, 47, 52, 54, 55]),
    ],
)
def test_every_action_is_recorded_and_progress_counts_up(tmp_path, overlap, recorded):
    ledger, actions = setup(tmp_path)
    dest = Recorder(ctx(tmp_path), overlap=overlap)
    seen: list[int] = []
    push_in_batches(ledger, dest, actions, "tag", lambda phase, done, total: seen.append(done))
    assert ledger.counts(RUN) == {"tag": {"done": 55}}
    assert dest.calls == len(recorded) - 1 and dest.peak == overlap
    assert seen == recorded  # batches recorded in order
    details = {r["key"]: r["detail"] for r in ledger.actions(RUN)}
    last = f"batch {len(recorded) - 2}"
    assert details[actions[0].key] == "batch 0" and details[actions[54].key] == last


@pytest.mark.parametrize("total", [0, 1, 7, 499, 500, 7500, 8000, 20_000, 100_000, 100_001])
def test_ramped_batches_cover_everything_in_whole_units_with_small_ends(total):
    sizes = batch_sizes(total, 8000, ramp=True)
    assert sum(sizes) == total and all(0 < n <= 8000 for n in sizes)
    if total >= 8000:  # the first call waits for a 16th of a batch to be marked, not all
        assert sizes[:4] == [500, 1000, 2000, 4000]
    if total >= 2 * 7500 + 8000:  # and the last answer is followed by a short record
        assert sizes[-4:] == [4000, 2000, 1000, 500]
    if total % 500 == 0:  # whole Mailchimp calls of 500 e-mails
        assert all(n % 500 == 0 for n in sizes)
    assert batch_sizes(total, 8000, ramp=False) == [8000] * (total // 8000) + (
        [total % 8000] if total % 8000 else []
    )


def test_a_platform_failure_records_what_came_back_and_leaves_the_rest_planned(tmp_path):
    ledger, actions = setup(tmp_path)
    dest = Recorder(ctx(tmp_path), overlap=2, fail_at=2)
    with pytest.raises(ConnectorError, match="down"):
        push_in_batches(ledger, dest, actions, "tag", None)
    counts = ledger.counts(RUN)["tag"]
    # batches 0, 1 and 3 (1, 2 and 9 actions; 3 was handed over while 2 was in flight)
    # are done; 2 went back to planned; nothing after 3 was handed over, nothing is left
    # in flight
    assert dest.calls == 4
    assert counts == {"done": 12, "planned": 43}
    assert ledger.keys_with_status(RUN, ["in_flight"]) == set()


def test_a_connector_bug_is_uncertain_when_a_repeat_could_duplicate(tmp_path):
    ledger, actions = setup(tmp_path)
    dest = Recorder(ctx(tmp_path), overlap=2, bug_at=0)
    type(dest).idempotent = False
    try:
        with pytest.raises(KeyError):
            push_in_batches(ledger, dest, actions, "tag", None)
    finally:
        type(dest).idempotent = True
    counts = ledger.counts(RUN)["tag"]
    assert counts["uncertain"] == 1 and counts["done"] == 2 and counts["planned"] == 52


def test_a_stop_at_a_checkpoint_still_records_the_batches_in_flight(tmp_path):
    """`serve` stops a run by raising from the progress callback: the batches already
    handed over are recorded (not left in flight), the rest stays planned."""
    ledger, actions = setup(tmp_path)
    dest = Recorder(ctx(tmp_path), overlap=2)

    class Stop(Exception):
        pass

    def checkpoint(phase, done, total):
        if done:
            raise Stop(f"{phase} {done}/{total}")

    with pytest.raises(Stop):
        push_in_batches(ledger, dest, actions, "tag", checkpoint)
    assert ledger.keys_with_status(RUN, ["in_flight"]) == set()
    assert ledger.counts(RUN)["tag"] == {"done": 3, "planned": 52}  # batches 0 and 1
