"""A run's tags and list memberships are planned and pushed a chunk at a time.

At a million contacts a first run tags everyone: the whole plan made at once, an
action, a key and a ledger row per contact, was some 300 MiB held until the last push.
Now each chunk is recorded as intent just before it is handed to the destination, and
the crash guarantees hold: a push stopped half-way leaves the rest unplanned or
planned, and the run started again pushes each change exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segmerge.errors import ConnectorError
from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.ports.connector import Action, ConnectorContext, Destination, Outcome
from segmerge.run import pipeline
from segmerge.run.groups import Phase

RUN = "c@2026-12-02"
N = 23


class Platform(Destination):
    """Takes tags; notes what the ledger held when each batch came, and fails on demand."""

    accepts = frozenset({"tag"})
    idempotent = True
    batch_size = 4

    def __init__(self, ctx: ConnectorContext, ledger: Ledger, fail_at: int | None = None):
        super().__init__(ctx)
        self.ledger, self.fail_at = ledger, fail_at
        self.pushed: list[str] = []
        self.rows_seen: list[int] = []

    def push(self, actions):
        self.rows_seen.append(len(self.ledger.actions(RUN)))
        if len(self.pushed) >= (self.fail_at if self.fail_at is not None else N + 1):
            raise ConnectorError("the platform is down")
        self.pushed.extend(a.key for a in actions)
        return [Outcome(a.key, "done", "") for a in actions]


def _phase(dest: Destination) -> Phase:
    def make(each_once: bool):
        for i in range(1 if each_once else N):
            key = f"{RUN}|{i}|tag|seg:x"
            yield (
                PlannedAction(key, str(i), "tag", dest.name, "x", "seg:x"),
                Action(key, "tag", str(i), {"tag": "seg:x"}),
            )

    return Phase("tag", dest, make, [((0, 0, 0), "x", "tag", N)])


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.begin_run(RUN, "c", "2026-12-02")
    yield ledger
    ledger.close()


def ctx(tmp_path: Path) -> ConnectorContext:
    return ConnectorContext(name="shop", settings={}, root=tmp_path, config_file=tmp_path)


def test_each_chunk_is_intent_before_it_is_pushed_and_the_rest_is_not_made_yet(
    tmp_path, ledger, monkeypatch
):
    monkeypatch.setattr(pipeline, "CHUNK", 8)
    dest = Platform(ctx(tmp_path), ledger)
    pipeline._push(ledger, RUN, _phase(dest), None)
    assert dest.pushed == [f"{RUN}|{i}|tag|seg:x" for i in range(N)]
    # the first batch went with only the first chunk in the ledger, not the whole plan
    assert dest.rows_seen[0] == 8 and max(dest.rows_seen) == N
    assert ledger.counts(RUN) == {"tag": {"done": N}}


def test_a_push_stopped_half_way_is_finished_by_the_next_run_each_tag_once(
    tmp_path, ledger, monkeypatch
):
    monkeypatch.setattr(pipeline, "CHUNK", 8)
    down = Platform(ctx(tmp_path), ledger, fail_at=12)
    with pytest.raises(ConnectorError):
        pipeline._push(ledger, RUN, _phase(down), None)
    assert len(down.pushed) == 12
    assert ledger.counts(RUN)["tag"]["done"] == 12

    again = Platform(ctx(tmp_path), ledger)
    pipeline._push(ledger, RUN, _phase(again), None)
    assert sorted(down.pushed + again.pushed) == sorted(f"{RUN}|{i}|tag|seg:x" for i in range(N))
    assert ledger.counts(RUN) == {"tag": {"done": N}}
