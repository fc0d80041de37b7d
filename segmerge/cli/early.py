"""`segment`'s source opened, and its own checks started, while the engine imports.

Why: the files source's checks (``Source.dialect``: DuckDB scans every contact and
order once) release the GIL, and the engine's imports (sqlglot, the relational plan,
the rules, the metrics) are Python alone: done one after the other, a core idled
through each. Once the connector itself is imported (it needs pandas, as the engine
does), a thread opens the source and asks its dialect while the command goes on
importing.

The early start only ever saves time: whatever it meets (no such source, a connector
that will not open, a file its checks refuse, a rule set missing) is left to the
command, which then opens the source itself and says so where it always has. The rule
set is loaded first, on the command's thread: a broken one fails before the source is
read at all, as it does without the early start.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from segmerge.ports.connector import Source
from segmerge.workspace.config import Workspace

if TYPE_CHECKING:
    from segmerge.rules import RuleSet


class Early:
    """A source being opened on a thread; :meth:`take` hands it over once its dialect
    is known, or None (the command opens it as usual). Closed when not taken."""

    def __init__(self, ws: Workspace, name: str, ruleset: RuleSet) -> None:
        self.name = name
        self.ruleset = ruleset  # loaded before the source is touched, read once
        self._ws = ws
        self._lock = threading.Lock()
        self._source: Source | None = None
        self._taken = False
        self._dropped = False
        self._thread = threading.Thread(target=self._open, name="segmerge-early", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        from segmerge.segment.opened import open_source

        source = None
        try:
            source = open_source(self._ws, self.name)
            source.dialect  # noqa: B018 - the checks, which decide how the engine reads it
        except Exception:  # noqa: BLE001 - the command meets it again, and says it
            if source is not None:
                _close(source)
            source = None
        with self._lock:
            if self._dropped:
                if source is not None:
                    _close(source)
                return
            self._source = source

    def take(self, name: str) -> Source | None:
        """The opened source when it is ``name``'s and opened cleanly, else None."""
        self._thread.join()
        with self._lock:
            if name != self.name or self._taken:
                return None
            self._taken = True
            return self._source

    def __enter__(self) -> Early:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Not taken (the command failed before): closed now, or by the thread when done."""
        with self._lock:
            self._dropped = True
            left = None if self._taken else self._source
            self._source = None
        if left is not None:
            _close(left)


def _close(source: Source) -> None:
    with contextlib.suppress(Exception):  # a source failing to close changes nothing here
        source.close()


def early_source(ws: Workspace, rules: Path, source: str | None) -> Early | None:
    """The source ``segment RULES [--source NAME]`` reads, opening on a thread once its
    connector is imported; None when that name is not plain to find (the command says
    why)."""
    from segmerge.ports import registry
    from segmerge.segment.opened import default_source_for

    rules_path = Path(
        rules
    ).resolve()  # as the command reads it (segmerge.cli.segmenting.segmented)
    try:
        name = source or default_source_for(ws, rules_path)
    except Exception:  # noqa: BLE001 - the command raises it in its turn
        return None
    if name not in ws.config.sources or not rules_path.is_file():
        return None
    paused = gc.isenabled()
    gc.disable()
    try:  # on this thread: no import runs on both at once
        from segmerge.rules import load_ruleset

        ruleset = load_ruleset(rules_path)
        registry.load_class(ws.config.sources[name].connector)
    except Exception:  # noqa: BLE001 - a broken rule set or a connector that does not
        # import: the command says it, and a broken rule set before any read of the source
        return None
    finally:
        if paused:
            gc.enable()
    return Early(ws, name, ruleset)
