"""The files source's DuckDB side: the engine's plan scans the files (files_duckdb).

Kept apart from connectors/files.py (the pandas pull and the tags' push): what a
source with a SQL dialect gives the engine, once decide has found DuckDB reads these
files as the pull does. The orders naming no contact are counted by the plan's own
scan of the orders (:meth:`DuckdbFiles.orders_met`), not by a second grouping of
every order before it: 1.5 s of a 1 M contacts / 10 M orders segmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segmerge.ports import (
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    ORDER_COLUMNS,
    ORDER_OPTIONAL,
    PullInstead,
    Source,
)

from .files_duckdb import (
    Connection,
    Decided,
    NotEligible,
    OrderCounts,
    count_unmatched,
    decide,
    judge_unmatched,
    refuse,
)
from .files_duckdb_examples import first_unmatched
from .files_tables import FilesSettings, Plan, Role

CANONICAL: dict[str, tuple[str, ...]] = {
    "contacts": CONTACT_COLUMNS,
    "orders": ORDER_COLUMNS + ORDER_OPTIONAL,
    "events": EVENT_COLUMNS,
}


class DuckdbFiles(Source):
    """The DuckDB methods of the files source (connectors.files.FilesConnector)."""

    settings: FilesSettings
    _con: Connection
    _decided: Decided | None
    _why: str | None

    def plans(self) -> dict[Role, Plan]:  # pragma: no cover - the files source's own
        raise NotImplementedError

    def display(self, path: Path) -> str:  # pragma: no cover - the files source's own
        raise NotImplementedError

    @property
    def dialect(self) -> str | None:
        """ "duckdb" when DuckDB reads these files exactly as the pull would (decided once)."""
        if self.settings.engine == "pandas":
            return None
        if self._decided is None and self._why is None:
            import duckdb

            try:  # the checks' scans done, what they held goes back (files_duckdb.Connection)
                tz = self.ctx.timezone.key
                self._decided = decide(self._con.get(), self.plans(), self.settings, tz, CANONICAL)
                self._con.close()
            except (NotEligible, duckdb.Error) as exc:
                self._why = str(exc).splitlines()[0]
                self.close()
        if self._why is not None and self.settings.engine == "duckdb":
            raise refuse(self._why, self.ctx.config_file, self.name)
        return "duckdb" if self._decided is not None else None

    def relations(self) -> dict[str, str]:
        assert self.dialect == "duckdb" and self._decided is not None
        return {role: scan.relation() for role, scan in self._decided.scans.items()}

    def order_counts(self, in_plan: bool = False) -> OrderCounts | None:
        """The checks' scan's (decide); the orders of nobody by the plan (``in_plan``) or,
        for a command that runs none, by a statement of their own."""
        done = self._decided
        if done is None or in_plan or done.order_counts[1] is not None:
            return done.order_counts if done is not None else None
        total, _n, statuses = done.order_counts
        return self.orders_met(total - count_unmatched(self._con.get(), done))

    def orders_met(self, met: int) -> tuple[int, int, list[tuple[object, int]] | None]:
        """The counts once the orders of the contacts met are known; too many orders of
        nobody and the pull reads the files (PullInstead), as decide would have chosen."""
        assert self._decided is not None
        total, _n, statuses = self._decided.order_counts
        try:
            judge_unmatched(total, total - met)
        except NotEligible as exc:
            self._why, self._decided = str(exc), None
            self.close()
            if self.settings.engine == "duckdb":
                raise refuse(self._why, self.ctx.config_file, self.name) from None
            raise PullInstead(self._why) from None
        self._decided.order_counts = (total, total - met, statuses)
        return total, total - met, statuses

    def unmatched_orders(self, limit: int) -> Any:  # the file's first (files_duckdb_examples)
        done = self._decided
        return None if done is None else first_unmatched(self._con.rows, done, limit)

    def origins(self) -> dict[str, str]:  # DuckDB reads one file per stream
        return {role: self.display(p.path) for role, p in self.plans().items() if p.path}

    def execute(self, sql: str) -> Any:
        assert self.dialect == "duckdb"
        return self._con.rows(sql)

    def close(self) -> None:
        """The DuckDB connection goes; a later use decides again (the files may change)."""
        self._con.close()
        if self._why is None:
            self._decided = None
