"""The console script leaves quickly (segmerge.cli.leave) without losing anything.

A user's script reads the exit code and the output, and relies on a run's temporary
files being gone: leaving with ``os._exit`` must keep all three. Each check is a tiny
interpreter that imports only segmerge.cli.leave (the quick exit itself, not the CLI).
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from segmerge.cli.leave import engine_imported
from segmerge.workspace.config import load

#: a process armed as the console script is: QuickExit first, then what a command registers
PROCESS = """
import atexit, sys, tempfile, weakref
from pathlib import Path
from segmerge.cli.leave import QuickExit

leave = QuickExit()


class Heap:
    def __init__(self, path, open=open):
        self.path, self.open = path, open

    def __del__(self):  # runs when the interpreter tears its modules down
        with self.open(self.path, "w") as fh:
            fh.write("freed")


heap = Heap(sys.argv[1] + ".freed")
folder = tempfile.TemporaryDirectory()  # a run's spill folder, removed at exit
Path(sys.argv[1]).write_text(folder.name)
atexit.register(lambda: Path(sys.argv[2]).write_text("ran"))  # a command's own handler
sys.stdout.write("x" * 100_000)  # buffered, no newline: flushed before leaving
sys.stderr.write("said")
leave.finished(eval(sys.argv[3]))
raise SystemExit(eval(sys.argv[3]))
"""


def _leave(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    folder, handler = tmp_path / "folder", tmp_path / "handler"
    ran = subprocess.run(
        [sys.executable, "-c", PROCESS, str(folder), str(handler), code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return ran, Path(folder.read_text()), handler


def test_the_exit_code_the_output_and_the_exit_handlers_survive_leaving_early(tmp_path) -> None:
    ran, spill, handler = _leave(tmp_path, "2")
    assert ran.returncode == 2
    assert ran.stdout == "x" * 100_000 and ran.stderr == "said"
    assert handler.read_text() == "ran"
    assert not spill.exists()
    assert not (tmp_path / "folder.freed").exists()  # no teardown: the time it took is saved


def test_a_command_that_exits_with_a_message_leaves_as_python_does(tmp_path) -> None:
    ran, spill, handler = _leave(tmp_path, "'stopped'")
    assert ran.returncode == 1
    assert ran.stderr == "saidstopped\n"
    assert handler.read_text() == "ran" and not spill.exists()
    assert (tmp_path / "folder.freed").exists()


CONFIG = """
[sources.shop]
connector = "files"
path = "data"

[sources.other]
connector = "nobody-wrote-this"

[destinations.outbox]
connector = "outbox"
path = "outbox"

[campaigns.c]
source = "shop"
rules = "segrules/c.yaml"
templates = "templates/c"
destination = "outbox"
"""


def test_the_engine_is_imported_and_the_collector_runs_again(tmp_path) -> None:
    (tmp_path / "segmerge.toml").write_text(CONFIG)
    (tmp_path / "segrules").mkdir()
    (tmp_path / "segrules" / "c.yaml").write_text("name: c\n")
    (tmp_path / "templates" / "c").mkdir(parents=True)
    ws = load(tmp_path)  # an unknown connector is the command's to report, not the import's
    frozen = gc.get_freeze_count()
    engine_imported(ws, campaigns=["nope", *ws.config.campaigns])
    assert gc.isenabled()
    assert gc.get_freeze_count() <= frozen  # in process: the tests' garbage is not kept for good
    assert "segmerge.segment.segmentation" in sys.modules
    gc.disable()
    try:
        engine_imported(ws)
        assert not gc.isenabled()  # a caller's own pause is kept
    finally:
        gc.enable()
