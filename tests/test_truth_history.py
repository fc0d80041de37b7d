"""`segmerge history RUN` reads at 80 columns: every contact, address and status whole."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from order_shop import AS_OF, shop
from rich.console import Console
from typer.testing import CliRunner

from bot import app
from segmerge.cli.history import actions_view, runs_view
from segmerge.ledger.store import Ledger
from segmerge.workspace import config as wsmod

PARIS = ZoneInfo("Europe/Paris")


def at_80(view) -> list[str]:
    console = Console(width=80, record=True, color_system=None)
    console.print(view)
    return console.export_text().splitlines()


def test_history_of_a_run_reads_at_80_columns(tmp_path):
    ids = [f"{i:05d}" for i in range(1, 13)]
    root = shop(tmp_path / "ws", ids, [("o1", "00001", 150.0, "paid")])
    ok = CliRunner().invoke(app, ["run", "lettre", "-w", str(root), "--as-of", AS_OF])
    assert ok.exit_code == 0, ok.output
    ledger = Ledger.open_existing(wsmod.load(root).ledger_path)
    assert ledger is not None
    run_id = "lettre@2026-12-01"
    try:
        rows, run, counts = ledger.actions(run_id), ledger.run(run_id), ledger.counts(run_id)
        runs = ledger.runs()
    finally:
        ledger.close()
    lines = at_80(actions_view(run, counts, rows, PARIS))
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text  # nothing cut to an ellipsis
    assert text.splitlines()[0].startswith(f"{run_id}: done, started 2026-12-")
    assert "send: 12 done; tag: 12 done" in text
    body = [line.split() for line in lines[3:] if line.strip()]
    sends = [cells for cells in body if cells[1:2] == ["send"]]
    assert len(sends) == 12
    for cid, cells in zip(ids, sends, strict=True):  # whole ids, segment, status, address
        assert cells[0] == cid and cells[3] == "done" and cells[4] == f"c{cid}@example.org"
    assert {cells[2] for cells in sends} == {"vip", "autres"}
    # the list of runs too
    listing = at_80(runs_view(runs, {run_id: counts}, PARIS))
    assert max(len(line) for line in listing) <= 80 and "…" not in "\n".join(listing)
    assert any(line.split()[:2] == [run_id, "done"] for line in listing)


def test_history_csv_keeps_every_column(tmp_path):
    root = shop(tmp_path / "ws", ["00001", "00002"], [])
    assert (
        CliRunner().invoke(app, ["run", "lettre", "-w", str(root), "--as-of", AS_OF]).exit_code == 0
    )
    csv = CliRunner().invoke(app, ["history", "lettre@2026-12-01", "--csv", "-w", str(root)])
    head = csv.output.splitlines()[0].split(",")
    assert {"key", "run_id", "contact_id", "kind", "target", "status", "updated_at"} <= set(head)
    table = CliRunner().invoke(app, ["history", "lettre@2026-12-01", "-w", str(root)])
    assert table.exit_code == 0 and "c00002@example.org" in table.output
