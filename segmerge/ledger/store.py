"""The ledger: a local SQLite record of every run and every action.

Every action is keyed (run, contact, action: :mod:`segmerge.ledger.keys`) and moves through
``planned -> in_flight -> done | failed | planned (retry)``. The intent is
committed before the destination is called and the outcome after, so a
process killed at any instant leaves a ledger that says exactly what may have
happened: ``in_flight`` rows of a non-idempotent destination (SMTP) become
``uncertain`` and are never resent without an explicit flag; those of an
idempotent one (an outbox file named by its key) are simply redone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from segmerge.errors import LedgerError, SegmergeError
from segmerge.i18n import _
from segmerge.ledger.bulk import update_keys
from segmerge.ledger.health import ledger_id
from segmerge.ledger.reads import ReadsMixin
from segmerge.ledger.schema import SCHEMA, SCHEMA_VERSION, migrate, use_wal
from segmerge.ledger.suppression import SuppressionMixin
from segmerge.ledger.tracking import TrackingMixin
from segmerge.ports.addresses import normalise_all
from segmerge.redact import redact
from segmerge.workspace.state import missing_ledger, note_ledger, refuse_foreign_file
from segmerge.workspace.storage import RESTORE_HINT, StateError, is_corrupt, storage_error


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class PlannedAction:
    key: str
    contact_id: str | None
    kind: str
    destination: str
    segment: str | None
    target: str | None
    status: str = "planned"
    detail: str = ""
    not_before: str | None = None  # ISO UTC, for a `deferred` action
    variant: str | None = None  # the A/B variant of the letter, if the segment has some


class Ledger(SuppressionMixin, TrackingMixin, ReadsMixin):
    """One SQLite file per workspace, in WAL mode so `history` can read during a run.

    The only code that opens it (its path: ``Workspace.ledger_path``); use it as a
    context manager, so that every open is closed, an exception included.
    ``durable``: each commit is on disk before it returns, for an endpoint that
    answers a person only once their unsubscribe or click is recorded.
    """

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        self.path = path
        refuse_foreign_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise _open_error(exc, path) from None
        try:
            self.db.row_factory = sqlite3.Row
            use_wal(self.db)
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.db.execute("PRAGMA foreign_keys=ON")
            # a push updates 10,000 rows a batch scattered over the whole table: with the
            # default 2 MiB of cache each batch re-reads most of its pages
            self.db.execute("PRAGMA cache_size=-32768")
            # two runs opening one ledger at once: one creates and migrates it, the other
            # waits and finds it done (the write lock taken first, never upgraded to)
            self.db.executescript("BEGIN IMMEDIATE;\n" + SCHEMA)
            try:
                self._check_version()
                migrate(self.db)
                self.ledger_id = ledger_id(self.db)  # the marker names it, never a new one
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise _open_error(exc, path) from None
        except BaseException:
            self.db.close()
            raise
        note_ledger(path, self.ledger_id)  # the workspace's marker names its ledger

    @classmethod
    def open_existing(cls, path: Path) -> Ledger | None:
        """The ledger if there is one (reading history must not create files); a lost one
        is an error, not "no run yet"."""
        if not path.exists():
            missing_ledger(path)
            return None
        return cls(path)

    @classmethod
    def reader(cls, path: Path, *, timeout: float = 30) -> Ledger | None:
        """The ledger opened read only, for a page or a replayed request that must write
        nothing, not even a migration (an old ledger keeps its shape: its reads say
        "nothing" for a table it does not have yet); None when there is no ledger."""
        if not path.exists():
            return None
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout)
        except sqlite3.Error:
            return None
        db.row_factory = sqlite3.Row
        ledger = cls.__new__(cls)
        ledger.path, ledger.db, ledger.ledger_id = path, db, ""
        return ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row["value"]) > SCHEMA_VERSION:
            raise LedgerError(
                _("the ledger was written by a newer segmerge (schema {value})").format(
                    value=row["value"]
                ),
                file=self.path,
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(
                _("the ledger is locked: {exc}").format(exc=exc), file=self.path
            ) from None
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:  # SQLite may have rolled back already (a full disk)
                self.db.execute("ROLLBACK")
            problem = storage_error(exc, self.path)
            if problem is not None:
                raise problem from None
            raise

    # runs -----------------------------------------------------------------

    def begin_run(self, run_id: str, campaign: str, as_of: str) -> bool:
        """Start or resume a run; True when it already existed (a resume)."""
        with self.transaction() as db:
            row = db.execute("SELECT run_id FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row:
                db.execute(
                    "UPDATE runs SET attempts=attempts+1, status='running', ended_at=NULL "
                    "WHERE run_id=?",
                    (run_id,),
                )
                return True
            db.execute(
                "INSERT INTO runs(run_id, campaign, as_of, started_at, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (run_id, campaign, as_of, now_iso()),
            )
            return False

    def end_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, ended_at=?, summary=? WHERE run_id=?",
                (status, now_iso(), json.dumps(summary, ensure_ascii=False), run_id),
            )

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return _run_dict(row) if row else None

    def runs(self, campaign: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if campaign:
            sql += " WHERE campaign=?"
            args = (campaign,)
        sql += " ORDER BY started_at DESC LIMIT ?"
        return [_run_dict(r) for r in self.db.execute(sql, (*args, limit))]

    # actions --------------------------------------------------------------

    def plan(self, run_id: str, actions: Iterable[PlannedAction]) -> None:
        """Record intent; a key keeps its status unless it was `skipped` and can now run."""
        ts = now_iso()
        rows = [
            (
                a.key,
                run_id,
                a.contact_id,
                a.kind,
                a.destination,
                a.segment,
                a.target,
                a.status,
                a.detail,
                a.not_before,
                a.variant,
                ts,
                ts,
            )
            for a in actions
        ]
        # a skipped or deferred action is planned again when it can now run; a planned one
        # left by an interrupted run can be deferred (quiet hours began meanwhile)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO actions(key, run_id, contact_id, kind, destination, segment, target, "
                "status, detail, not_before, variant, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET status=excluded.status, detail=excluded.detail, "
                "not_before=excluded.not_before, variant=excluded.variant, "
                "updated_at=excluded.updated_at "
                "WHERE actions.status IN ('skipped', 'deferred', 'planned') "
                "AND excluded.status!='skipped'",
                rows,
            )

    def recover(self, run_id: str, idempotent: dict[str, bool]) -> int:
        """After a crash: `in_flight` becomes `planned` (idempotent destination) or `uncertain`."""
        rows = self.db.execute(
            "SELECT key, destination FROM actions WHERE run_id=? AND status='in_flight'", (run_id,)
        ).fetchall()
        if not rows:
            return 0
        with self.transaction() as db:
            for r in rows:
                new = "planned" if idempotent.get(r["destination"], False) else "uncertain"
                db.execute(
                    "UPDATE actions SET status=?, detail=?, updated_at=? WHERE key=?",
                    (new, "interrupted while in flight", now_iso(), r["key"]),
                )
        return sum(1 for r in rows if not idempotent.get(r["destination"], False))

    def requeue(self, run_id: str, statuses: Sequence[str]) -> int:
        """Explicitly retry `failed` or resend `uncertain` actions (never done implicitly)."""
        marks = ",".join("?" for _ in statuses)
        with self.transaction() as db:
            cur = db.execute(
                f"UPDATE actions SET status='planned', updated_at=? "
                f"WHERE run_id=? AND status IN ({marks})",
                (now_iso(), run_id, *statuses),
            )
        return cur.rowcount

    def keys_with_status(self, run_id: str, statuses: Sequence[str]) -> set[str]:
        marks = ",".join("?" for _ in statuses)
        return {
            r[0]
            for r in self.db.execute(
                f"SELECT key FROM actions WHERE run_id=? AND status IN ({marks})",
                (run_id, *statuses),
            )
        }

    def mark_in_flight(self, keys: Sequence[str]) -> None:
        ts = now_iso()
        with self.transaction() as db:
            update_keys(
                db,
                "status='in_flight', attempts=attempts+1, updated_at=?",
                (ts,),
                list(keys),
                only_if="status='planned'",
            )

    def record(
        self,
        outcomes: Iterable[tuple[str, str, str]],
        platform_ids: Mapping[str, str] | None = None,
    ) -> None:
        """Store (key, status, detail) outcomes; `retry` goes back to `planned`.
        ``platform_ids`` (key -> the platform's id of what the action made, from its
        outcome) are stored in the same transaction, so a done draft never lacks its id."""
        ts = now_iso()
        rows = [(k, "planned" if s == "retry" else s, redact(d)) for k, s, d in outcomes]
        groups: dict[tuple[str, str], list[str]] = {}
        for k, s, d in rows:
            groups.setdefault((s, d), []).append(k)
        with self.transaction() as db:
            if platform_ids:
                db.executemany(
                    "UPDATE actions SET platform_id=? WHERE key=?",
                    [(pid, k) for k, pid in platform_ids.items()],
                )
            if len({k for k, _, _ in rows}) < len(rows):  # a key twice: the last one wins
                db.executemany(
                    "UPDATE actions SET status=?, detail=?, updated_at=? WHERE key=?",
                    [(s, d, ts, k) for k, s, d in rows],
                )
                return
            for (status, detail), keys in groups.items():
                update_keys(db, "status=?, detail=?, updated_at=?", (status, detail, ts), keys)

    def counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """kind -> status -> count for one run."""
        out: dict[str, dict[str, int]] = {}
        for r in self.db.execute(
            "SELECT kind, status, COUNT(*) AS n FROM actions WHERE run_id=? GROUP BY kind, status",
            (run_id,),
        ):
            out.setdefault(r["kind"], {})[r["status"]] = r["n"]
        return out

    def actions(
        self, run_id: str | None = None, statuses: Sequence[str] | None = None, limit: int = 0
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM actions WHERE 1=1"
        args: list[Any] = []
        if run_id:
            sql += " AND run_id=?"
            args.append(run_id)
        if statuses:
            sql += f" AND status IN ({','.join('?' for _ in statuses)})"
            args.extend(statuses)
        sql += " ORDER BY updated_at, key"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [dict(r) for r in self.db.execute(sql, args)]

    def sent_since(self, since: str, other_than: str = "") -> list[tuple[str, str]]:
        """(address, when) of every message sent, or maybe sent, since ``since`` (ISO UTC),
        by runs other than ``other_than`` (a run resumed or resending is not its own rival).

        Uncertain sends count: for contact pressure, a message that may have
        arrived must be assumed to have.
        """
        rows = self.db.execute(
            "SELECT target, updated_at FROM actions WHERE kind='send' AND "
            "status IN ('done', 'uncertain') AND updated_at>=? AND target IS NOT NULL "
            "AND run_id<>?",
            (since, other_than),
        ).fetchall()
        if not rows:
            return []
        # older runs recorded the address as the contacts file spelled it
        normal = normalise_all([str(r[0]) for r in rows])
        return [(n or str(r[0]).strip().lower(), r[1]) for n, r in zip(normal, rows, strict=True)]

    def deferred_until(self, run_id: str) -> str | None:
        """The earliest time a deferred action of this run may go (ISO UTC), if any."""
        row = self.db.execute(
            "SELECT MIN(not_before) FROM actions WHERE run_id=? AND status='deferred'", (run_id,)
        ).fetchone()
        return row[0] if row and row[0] else None

    # suppression lists: segmerge.ledger.suppression; tracked events: .tracking; what
    # kpi and the endpoint ask: .reads


def _open_error(exc: sqlite3.DatabaseError, path: Path) -> SegmergeError:
    if is_corrupt(exc):
        return StateError(
            _("the ledger is damaged: {exc}").format(exc=exc), file=path, hint=_(RESTORE_HINT)
        )
    return LedgerError(
        _("cannot open the ledger: {exc}").format(exc=exc),
        file=path,
        hint=_("if another segmerge holds it, wait; {restore_hint}").format(
            restore_hint=_(RESTORE_HINT)
        ),
    )


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["summary"] = json.loads(d["summary"]) if d.get("summary") else {}
    return d
