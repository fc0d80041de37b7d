"""The ledger's state machine: intent before, outcome after, crashes leave a clear record."""

from __future__ import annotations

import sqlite3

import pytest

from segmerge.ledger.store import Ledger, PlannedAction


def _plan(ledger: Ledger, run_id: str, n: int, dest: str = "smtp") -> list[str]:
    keys = [f"{run_id}|c{i}|send" for i in range(n)]
    ledger.plan(
        run_id,
        [PlannedAction(k, f"c{i}", "send", dest, "s", f"c{i}@x.fr") for i, k in enumerate(keys)],
    )
    return keys


def test_plan_is_idempotent_and_keeps_done_status(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.begin_run("r@1", "r", "2026-01-01") is False
    keys = _plan(ledger, "r@1", 3)
    ledger.mark_in_flight(keys[:1])
    ledger.record([(keys[0], "done", "ok")])
    _plan(ledger, "r@1", 3)  # planning again must not reset a done action
    assert ledger.keys_with_status("r@1", ["done"]) == {keys[0]}
    assert ledger.keys_with_status("r@1", ["planned"]) == set(keys[1:])
    assert ledger.begin_run("r@1", "r", "2026-01-01") is True
    assert ledger.run("r@1")["attempts"] == 2


def test_in_flight_becomes_uncertain_for_non_idempotent_destination(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.begin_run("r@1", "r", "2026-01-01")
    keys = _plan(ledger, "r@1", 2)
    ledger.mark_in_flight(keys)  # process "dies" here
    ledger.close()
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.recover("r@1", {"smtp": False}) == 2
    assert ledger.keys_with_status("r@1", ["uncertain"]) == set(keys)
    assert ledger.keys_with_status("r@1", ["planned"]) == set()
    assert ledger.requeue("r@1", ["uncertain"]) == 2  # only an explicit flag resends
    assert ledger.keys_with_status("r@1", ["planned"]) == set(keys)


def test_in_flight_is_redone_for_idempotent_destination(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.begin_run("r@1", "r", "2026-01-01")
    keys = _plan(ledger, "r@1", 2, dest="outbox")
    ledger.mark_in_flight(keys)
    assert ledger.recover("r@1", {"outbox": True}) == 0
    assert ledger.keys_with_status("r@1", ["planned"]) == set(keys)


def test_retry_outcome_goes_back_to_planned_and_counts(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.begin_run("r@1", "r", "2026-01-01")
    keys = _plan(ledger, "r@1", 3)
    ledger.mark_in_flight(keys)
    ledger.record(
        [
            (keys[0], "done", ""),
            (keys[1], "failed", "550 no such user"),
            (keys[2], "retry", "421 try later"),
        ]
    )
    assert ledger.counts("r@1") == {"send": {"done": 1, "failed": 1, "planned": 1}}
    failed = ledger.actions("r@1", ["failed"])
    assert failed[0]["detail"] == "550 no such user" and failed[0]["attempts"] == 1


def test_skipped_action_can_be_planned_again(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.begin_run("r@1", "r", "2026-01-01")
    ledger.plan("r@1", [PlannedAction("k", "c", "send", "o", "s", "a@b.fr", "skipped", "no name")])
    ledger.plan("r@1", [PlannedAction("k", "c", "send", "o", "s", "a@b.fr")])
    assert ledger.keys_with_status("r@1", ["planned"]) == {"k"}


def test_suppression_list_is_case_insensitive_and_deduplicated(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.suppress([("  Jean@Exemple.FR ", "manual"), ("jean@exemple.fr", "x")]) == 1
    assert ledger.suppressed_addresses() == {"jean@exemple.fr"}
    assert ledger.unsuppress("JEAN@exemple.fr") is True
    assert ledger.suppressed_addresses() == set()


def test_open_existing_creates_nothing(tmp_path):
    assert Ledger.open_existing(tmp_path / "none.sqlite") is None
    assert not (tmp_path / "none.sqlite").exists()


def test_large_batches_are_marked_and_recorded_exactly_as_small_ones(tmp_path):
    """Past BULK_ROWS, one statement updates the batch: same result, row for row, as
    the statement per row it replaces, accents, quotes and a key given twice included."""
    from segmerge.ledger.bulk import BULK_ROWS

    results = []
    for n, name in ((BULK_ROWS - 1, "small"), (BULK_ROWS * 3, "large")):
        ledger = Ledger(tmp_path / f"{name}.sqlite")
        ledger.begin_run("r@1", "r", "2026-01-01")
        keys = [f"r@1|cliént-{i}\"'|send" for i in range(n)]
        ledger.plan(
            "r@1",
            [
                PlannedAction(k, f"c{i}", "send", "smtp", "s", f"c{i}@x.fr")
                for i, k in enumerate(keys)
            ],
        )
        ledger.mark_in_flight(keys[1:])  # the first stays planned, never attempted
        ledger.mark_in_flight(keys[-1:])  # already in flight: not counted as a new attempt
        outcomes = [
            (k, ["done", "failed", "retry"][i % 3], f"détail {i % 3}")
            for i, k in enumerate(keys[1:], 1)
        ]
        ledger.record(outcomes)
        rows = {r["key"]: (r["status"], r["detail"], r["attempts"]) for r in ledger.actions("r@1")}
        assert rows[keys[0]] == ("planned", "", 0)
        for i, k in enumerate(keys[1:], 1):
            assert rows[k] == (["done", "failed", "planned"][i % 3], f"détail {i % 3}", 1)
        ledger.record([(keys[2], "failed", "first"), (keys[2], "done", "last")] * BULK_ROWS)
        assert {r["key"]: r["detail"] for r in ledger.actions("r@1")}[keys[2]] == "last"
        results.append(ledger.counts("r@1"))
    assert sum(results[1]["send"].values()) == BULK_ROWS * 3


def test_an_older_ledger_loses_its_status_heavy_index_and_keeps_its_history(tmp_path):
    """Ledgers written before the contact index dropped `status` are mended in place:
    the old index (rewritten by every status change of a push) goes, history stays,
    and the unsubscribe lookup still finds a contact's sends by index."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.begin_run("c@2026-12-01", "c", "2026-12-01")
    ledger.plan("c@2026-12-01", [PlannedAction("k1", "42", "send", "outbox", "s", "a@b.fr")])
    ledger.record([("k1", "done", "sent")])
    ledger.db.execute("DROP INDEX actions_by_contact_kind")
    ledger.db.execute("CREATE INDEX actions_by_contact ON actions(contact_id, kind, status)")
    ledger.close()

    ledger = Ledger(path)
    try:
        names = {
            r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert "actions_by_contact" not in names and "actions_by_contact_kind" in names
        assert ledger.counts("c@2026-12-01") == {"send": {"done": 1}}
        plan = " ".join(
            str(r[-1])
            for r in ledger.db.execute(
                "EXPLAIN QUERY PLAN SELECT target FROM actions WHERE contact_id=? AND kind='send'",
                ("42",),
            )
        )
        assert "actions_by_contact_kind" in plan
    finally:
        ledger.close()


# the only door: every open closed, a reader that writes nothing, the cursors table gone ----


@pytest.fixture
def connections(monkeypatch) -> list[sqlite3.Connection]:
    """Every SQLite connection the test opens (Python 3.11 does not warn about one left open)."""
    made: list[sqlite3.Connection] = []
    real = sqlite3.connect

    def connect(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    return made


def _open(connections: list[sqlite3.Connection]) -> int:
    left = 0
    for db in connections:
        try:
            db.total_changes  # noqa: B018 - raises on a closed connection
        except sqlite3.ProgrammingError:
            continue
        left += 1
    return left


def test_the_commands_that_read_or_write_the_ledger_close_every_connection(tmp_path, connections):
    """run, a dry run's note, history, suppress, kpi, test-send, the preview and the
    unsubscribe endpoint: each goes through the ledger's door, at ws.ledger_path, and
    leaves no connection open behind it."""
    from test_keys import outbox_workspace
    from typer.testing import CliRunner

    from bot import app
    from segmerge.preview.live import _suppressed
    from segmerge.report.kpi import kpi
    from segmerge.run.checks import finished_note
    from segmerge.run.pipeline import RunOptions, run
    from segmerge.run.testsend import test_send
    from segmerge.serve.endpoint.record import Recorder

    ws = outbox_workspace(tmp_path)
    summary = run(ws, "b", RunOptions(as_of="2026-12-01"))
    assert ws.ledger_path == ws.state_dir / "ledger.sqlite" and ws.ledger_path.is_file()
    assert "is finished" in (finished_note(ws, summary) or "")
    w = ["-w", str(tmp_path)]
    cli = CliRunner()
    for args in (
        ["history"],
        ["history", summary.run_id, "--csv"],
        ["suppress", "add", "c2@exemple.fr"],
        ["suppress", "list", "--format", "csv"],
    ):
        assert cli.invoke(app, [*args, *w]).exit_code == 0, args
    assert kpi(ws, "b").run_id == summary.run_id
    assert [status for _, status, _ in test_send(ws, "b", "moi@exemple.fr")] == ["done"]
    recorder = Recorder(ws)
    assert recorder.record("3").addresses == ["c3@exemple.fr"]  # found in the ledger's sends
    assert recorder.record("3").replay  # read only: the ledger's reader
    addresses, ids = _suppressed(ws)
    assert {"c2@exemple.fr", "c3@exemple.fr"} <= addresses and ids == {"3"}
    assert len(connections) > 10 and _open(connections) == 0


def test_a_reader_changes_nothing_even_in_a_ledger_from_before_contact_suppressions(
    tmp_path, connections
):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # the first ledgers: no suppressed_contacts
        db.execute(
            "CREATE TABLE suppressions (address TEXT PRIMARY KEY, "
            "reason TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL)"
        )
        db.execute("INSERT INTO suppressions VALUES ('alice@example.org', 'old', '2025-01-01')")
    db.close()
    before = path.read_bytes()
    assert Ledger.reader(tmp_path / "none.sqlite") is None
    assert not (tmp_path / "none.sqlite").exists()
    reader = Ledger.reader(path)
    assert reader is not None
    with reader:
        assert reader.suppressed_addresses() == {"alice@example.org"}
        assert reader.suppressed_contact_ids() == set()
        assert reader.is_suppressed_contact("C1") is False
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.suppress([("bob@example.org", "x")])
    assert path.read_bytes() == before and _open(connections) == 0


def test_the_write_only_cursors_table_goes_and_the_history_stays(tmp_path):
    """Nothing read it (a source's progress is in its snapshot's manifest): an old
    ledger loses it when opened, a new one never has it."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.begin_run("c@2026-12-01", "c", "2026-12-01")
        ledger.db.execute(
            "CREATE TABLE cursors (source TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)"
        )
        ledger.db.execute("INSERT INTO cursors VALUES ('crm', '2026-11-30', '2026-11-30')")
    with Ledger(path) as ledger:
        tables = {r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master")}
        assert "cursors" not in tables and ledger.run("c@2026-12-01") is not None
    with Ledger(tmp_path / "new.sqlite") as fresh:
        assert "cursors" not in {r[0] for r in fresh.db.execute("SELECT name FROM sqlite_master")}


def test_runs_opening_a_new_ledger_at_the_same_moment_all_open_it(tmp_path):
    """Two campaigns started together on a fresh workspace both migrate the ledger: one
    does it, the other finds it done (it used to fail with "duplicate column name")."""
    import threading

    from segmerge.ledger.store import Ledger

    for attempt in range(15):
        path = tmp_path / f"l{attempt}" / "ledger.sqlite"
        start = threading.Barrier(4)
        failures: list[BaseException] = []

        def open_it(path=path, start=start, failures=failures):
            start.wait(timeout=30)
            try:
                Ledger(path).close()
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever broke
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not failures, failures
