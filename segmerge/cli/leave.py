"""How the `segmerge` process starts its engine and leaves once a command is done.

Why, leaving: after the command, Python's finalization frees every object and clears
every module one by one. With pandas, pyarrow, DuckDB and sqlglot loaded that took
0.15-0.5 s of CPU (one to two seconds of wall time on a busy machine) on every
command, the demo's `segment` included, while the user waits for nothing. The console
script instead leaves with ``os._exit`` once the command's exit handlers have run
(thread pools joined, temporary folders removed, multiprocessing's workers ended: all
registered during the command, so before :class:`QuickExit`'s own), logging is shut
down and both streams are flushed. A command that ends any other way (a signal, an
exception escaping ``main``, a stream that cannot be flushed) leaves as Python does.

Why, starting: a data command imports about a second of modules (pandas, pyarrow,
sqlglot, DuckDB, the engine, its connectors). Everything they create lives until the
process ends, yet the collector's passes traversed all of it, during the imports
(two full passes) and after: ~0.2 s of CPU per command on the demo. Pausing the
collector only moved that work after the imports; :func:`engine_imported` imports
them with the collector paused and, in the console script's process (whose objects
at that point are modules, the workspace and the command line, all kept to the
end), freezes what exists (``gc.freeze``): GC time on the demo's `segment` 0.21-0.29
-> 0.04 s. A process that calls ``main`` among other things (the tests, in process)
is not frozen: its uncollected garbage would be kept for good.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmerge.workspace.config import ConnectorRef, Workspace


#: whether this process is the console script (a :class:`QuickExit` is armed)
_whole_process = False


class QuickExit:
    """Armed at the start of the console script's ``main``: registered then, its
    handler runs after every handler registered during the command."""

    def __init__(self) -> None:
        global _whole_process
        self.code: int | None = None
        atexit.register(self._leave)
        _whole_process = True

    def finished(self, code: object) -> None:
        """The command's exit code (``SystemExit.code``); a message instead of a number
        is left to Python, which prints it."""
        if code is None or isinstance(code, int):
            self.code = int(code or 0)

    def _leave(self) -> None:
        if self.code is None:
            return
        logging.shutdown()
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python reports it as it always has
            return
        os._exit(self.code)


def leaving(main: Callable[[], None], command: Callable[[], None]) -> None:
    """Run ``command``; when ``main`` is the console script's (its ``__main__`` imported
    it), the process then leaves through :class:`QuickExit`."""
    leave = QuickExit() if getattr(sys.modules.get("__main__"), "main", None) is main else None
    try:
        command()
    except SystemExit as stop:
        if leave is not None:
            leave.finished(stop.code)
        raise
    if leave is not None:
        leave.finished(0)


def engine_imported(
    ws: Workspace, sources: Iterable[str] | None = None, campaigns: Iterable[str] = ()
) -> None:
    """Import the segmentation engine and the connectors a command will open, the
    collector paused: ``sources``' (None: every source of the workspace) and, for a
    run, its ``campaigns``' sources and destinations; the in-database engine (sqlglot)
    too when a source may have a SQL dialect, the run's pipeline for a run.

    Only imports: a connector that is not installed or does not import is left for the
    command to report where it always has."""
    from segmerge.ports import registry
    from segmerge.ports.connector import Source

    config = ws.config
    names = list(config.sources) if sources is None else list(sources)
    refs: list[ConnectorRef] = [config.sources[n] for n in names if n in config.sources]
    campaigns = [c for c in campaigns if c in config.campaigns]
    for c in (config.campaigns[c] for c in campaigns):
        pushed = config.destinations.get(c.destination) or config.sources.get(c.destination)
        refs += [r for r in (config.sources.get(c.source), pushed) if r is not None]
    paused = gc.isenabled()
    gc.disable()
    try:
        import segmerge.segment.rows
        import segmerge.segment.segmentation  # noqa: F401

        if campaigns:
            import segmerge.run.pipeline  # noqa: F401
        for connector in dict.fromkeys(r.connector for r in refs):
            try:
                cls = registry.load_class(connector)
            except Exception:  # noqa: BLE001 - reported by the command itself, in its place
                continue
            if issubclass(cls, Source) and cls.dialect is not Source.dialect:
                import segmerge.segment.in_database  # noqa: F401
    finally:
        if _whole_process:
            gc.freeze()
        if paused:
            gc.enable()
