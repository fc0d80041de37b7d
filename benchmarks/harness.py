"""What the platform benchmarks share: pull and push exactly as a run does.

The pull is the engine's (`segmerge.segment.segmentation.pull`: the connector's pull,
then the contract check), and the tags go through the engine's batch loop
(`segmerge.run.push`) and a real ledger in a scratch folder: each batch
marked in flight, pushed, recorded. So a benchmark's seconds include the
engine's own work between the calls, as a user's run would.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from segmerge.ledger.store import Ledger, PlannedAction
from segmerge.ports.connector import Action
from segmerge.ports.schema import Tables
from segmerge.run.push import plan_while_preparing, push_in_batches
from segmerge.segment.segmentation import pull

RUN = "bench@2026-12-02"


def timed_pull(conn: Any) -> tuple[Tables, float]:
    """The engine's pull of ``conn`` and its seconds."""
    t0 = time.perf_counter()
    tables = pull(conn)
    return tables, time.perf_counter() - t0


def tag_actions(
    contact_ids: Iterable[Any],
    tag: str = "seg:bench",
    emails: Iterable[Any] | None = None,
    **payload: Any,
) -> list[Action]:
    """One ``tag`` action per contact, keyed as a run keys them; with ``emails``, each
    carries its contact's e-mail, as a run's actions do (segmerge.run.plan), else None."""
    ids = [str(cid) for cid in contact_ids]
    mails = list(emails) if emails is not None else [None] * len(ids)
    return [
        Action(
            f"{RUN}|{cid}|tag:{tag}",
            "tag",
            cid,
            {"tag": tag, "segment": "bench", "email": mail, **payload},
        )
        for cid, mail in zip(ids, mails, strict=True)
    ]


def timed_push(
    conn: Any, actions: list[Action], before_push: Callable[[], object] | None = None
) -> tuple[int, float, float, float]:
    """Push ``actions`` through the ledger as a run does: how many are done, when the
    push started (perf_counter), its seconds and the CPU seconds it took here.

    As in a run, the connector prepares for the actions (a first run's new tags)
    while the ledger writes the plan; the push is timed from its first batch, as
    the plan always was not, and ``before_push`` runs just before (a benchmark
    resets its fake's counters there, so both figures cover the same time)."""
    with tempfile.TemporaryDirectory(prefix="segmerge-bench-") as scratch:
        ledger = Ledger(Path(scratch) / "ledger.sqlite")
        try:
            ledger.begin_run(RUN, "bench", "2026-12-02")
            planned = [
                PlannedAction(a.key, a.contact_id, a.kind, conn.name, "bench", a.payload["tag"])
                for a in actions
            ]
            plan_while_preparing(lambda: ledger.plan(RUN, planned), [(conn, actions)])
            if before_push is not None:
                before_push()
            t0, c0 = time.perf_counter(), time.process_time()
            push_in_batches(ledger, conn, actions, "tag", None)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            return ledger.counts(RUN).get("tag", {}).get("done", 0), t0, seconds, cpu
        finally:
            ledger.close()
