"""The `postgres` source: contacts, orders and events from a PostgreSQL database.

Each stream is a table, a view or a SELECT giving the canonical columns
(segmerge/ports/schema.py); the connector checks them against the server's own
description before anything runs and hands the engine one canonical relation per
stream (:meth:`PostgresConnector.relations`) in the ``postgres`` dialect, with
:meth:`~PostgresConnector.execute` to run a statement there: the engine segments
inside the database (segmerge/segment/in_database.py) and only per-contact rows come
back. :meth:`~PostgresConnector.pull` still reads the rows of the three relations
(one read-only snapshot, COPY into Arrow) for what needs them (`segmerge kpi`).

The DSN names the server, the database and the user, never the password: that comes
from the workspace's secrets (`segmerge auth set NAME`, ``SEGMERGE_<NAME>_TOKEN`` or
``.env``), and libpq's own ~/.pgpass or PGPASSWORD when none is stored there.
See docs/connectors/postgres.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import errors as pg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator

from segmerge.ports import (
    Action,
    ConfigError,
    ConnectorSettings,
    Destination,
    Outcome,
    Source,
    Tables,
    _,
    empty_events,
    empty_orders,
    frame_from_arrow,
)

from .postgres_arrow import describe, fetch
from .postgres_assignments import ONE_TRANSACTION, Assignments, assignments_table
from .postgres_canon import Canon, Mismatch, as_relation, canonical, is_query
from .postgres_errors import connect_error, relation_error

#: a password in a URI's user part (postgresql://user:secret@host) or a key=value DSN
_URI_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@]*:[^/?#@]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=", re.IGNORECASE)
STREAMS = ("contacts", "orders", "events")
#: a table name, schema-qualified or not, written without quotes
_TABLE = re.compile(r"^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$")


def check_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parts; a password in it or a malformed one is refused without quoting it."""
    holds_password = _(
        "the DSN holds a password: take it out and store it with `segmerge auth set NAME` "
        "(or SEGMERGE_<NAME>_TOKEN), so segmerge.toml can be shared"
    )
    if _URI_PASSWORD.search(dsn.strip()) or _KV_PASSWORD.search(dsn):
        raise ValueError(holds_password)
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = " ".join(str(exc).split())
        raise ValueError(_("is not a PostgreSQL DSN: {reason}").format(reason=reason)) from None
    if "password" in parts:  # a spelling the patterns above missed (percent-encoded…)
        raise ValueError(holds_password)
    for port in str(parts.get("port", "5432")).split(","):
        if not port.strip().isdigit():
            said = _("is not a PostgreSQL DSN: its port {port} is not a number")
            raise ValueError(said.format(port=repr(port.strip())))
    return parts


def _session_settings(server_version: int) -> list[str]:
    """What the engine's one big statement per command needs of the session.

    - TimeZone UTC: the plan writes every local day with an explicit zone; a bare cast
      of an instant to a date must be UTC's, as in DuckDB.
    - work_mem 64MB: the plan's sorts (RFM ranks over every contact) stay in memory
      instead of merging on disk (200,000 contacts: the statement 7.5 -> 5 s).
    - jit off: compiling a statement that runs once per command cost 4 s of 12 on the
      same base (PostgreSQL 15, its default jit_above_cost).
    """
    settings = ["SET TimeZone = 'UTC'", "SET work_mem = '64MB'"]
    if server_version >= 110000:  # jit exists from PostgreSQL 11 on
        settings.append("SET jit = off")
    return settings


class PostgresSettings(ConnectorSettings):
    #: postgresql://USER@HOST:PORT/DATABASE (or libpq's key=value form), no password
    dsn: str
    contacts: str = "contacts"
    orders: str = "orders"
    events: str | None = None
    #: a table the runs write each contact's segments into (postgres_assignments.py)
    assignments: str | None = None
    connect_timeout: int = Field(10, ge=1)

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, v: str) -> str:
        check_dsn(v)
        return v

    @field_validator("assignments")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is not None and not _TABLE.match(v):
            raise ValueError(
                _("is not a table name: write name or schema.name (lower-case letters, digits, _)")
            )
        return v

    @field_validator("contacts", "orders", "events")
    @classmethod
    def _relation(cls, v: str | None) -> str | None:
        if v is not None and not v.strip().rstrip(";").strip():
            raise ValueError(_("is empty: give a table or view name, or a SELECT"))
        return v


class PostgresConnector(Source):
    Settings = PostgresSettings
    description = "PostgreSQL: contacts, orders and events from tables, views or SELECTs"
    needs_secret: ClassVar[bool] = True
    dialect: ClassVar[str | None] = "postgres"

    def __new__(cls, ctx: Any) -> PostgresConnector:
        """With ``assignments`` set, the source is also a destination: an instance of
        :class:`~connectors.postgres_assignments.PostgresAssignments`. Without it, it is
        none, so a campaign pushing tags to its source never writes to a database that
        was not given a table for it."""
        settings = ctx.settings if isinstance(ctx.settings, dict) else {}
        if cls is PostgresConnector and settings.get("assignments") is not None:
            return super().__new__(PostgresAssignments)
        return super().__new__(cls)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._conn: Any = None
        self._canons: dict[str, Canon] | None = None
        self._parts = check_dsn(self.cfg.dsn)

    @property
    def cfg(self) -> PostgresSettings:
        assert isinstance(self.settings, PostgresSettings)
        return self.settings

    # connection ----------------------------------------------------------------------
    def where(self) -> str:
        """host:port/database, for messages (no user's secret is in a DSN we accept)."""
        p = self._parts
        return f"{p.get('host') or 'localhost'}:{p.get('port') or 5432}/{p.get('dbname', '')}"

    def user(self) -> str:
        if self._conn is not None:
            return str(self._conn.info.user)
        return str(self._parts.get("user") or "the DSN's user")

    def connect(self) -> Any:
        """A new session with the engine's settings, its transaction not yet begun."""
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._parts:
            extra["connect_timeout"] = self.cfg.connect_timeout
        if "application_name" not in self._parts:
            extra["application_name"] = "segmerge"
        password = self.ctx.secret()
        if password:
            extra["password"] = password
        try:
            conn = psycopg.connect(self.cfg.dsn, **extra)
        except psycopg.Error as exc:
            raise connect_error(
                self.name,
                self.where(),
                exc,
                config_file=self.ctx.config_file,
                origin=self.ctx.secret_origin() if password else None,
            ) from None
        for setting in _session_settings(conn.info.server_version):
            conn.execute(setting)
        conn.commit()
        return conn

    def connection(self) -> Any:
        """One read-only connection for the run; each read is one snapshot of the data."""
        if self._conn is None:
            conn = self.connect()
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._canons = None

    # relations -----------------------------------------------------------------------
    def _settings(self) -> dict[str, str]:
        c = self.cfg
        given = {"contacts": c.contacts, "orders": c.orders, "events": c.events}
        return {s: v for s, v in given.items() if v is not None}

    @staticmethod
    def _label(text: str) -> str:
        one = " ".join(text.split())
        return one if len(one) <= 60 else one[:57] + "…"

    def _fail(self, stream: str, text: str, exc: psycopg.Error) -> Exception:
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.rollback()
        return relation_error(
            self.name,
            stream,
            self._label(text),
            exc,
            user=self.user(),
            config_file=self.ctx.config_file,
        )

    def _resolve(self, stream: str, text: str) -> str:
        """A name as the server resolves it (search_path, quoting), or the SELECT."""
        if is_query(text):
            return as_relation(text)
        name = text.strip().rstrip(";").strip()
        try:
            row = self.connection().execute("SELECT to_regclass(%s)::text", [name]).fetchone()
        except pg.InvalidName as exc:
            raise self._fail(stream, text, exc) from None
        if row is None or row[0] is None:
            self.connection().rollback()
            said = _(
                "{field}: the relation {relation}: no table or view of that name in {where} "
                "(as the user {user} sees it)"
            )
            raise ConfigError(
                said.format(
                    field=f"{self.name}.{stream}",
                    relation=self._label(text),
                    where=self.where(),
                    user=self.user(),
                ),
                file=self.ctx.config_file,
                field=f"{self.name}.{stream}",
                hint=_("a schema other than public is written schema.name; a SELECT works too"),
            )
        return str(row[0])

    def canons(self) -> dict[str, Canon]:
        """Each stream's canonical SELECT, its columns checked (no row read)."""
        if self._canons is None:
            conn = self.connection()
            tz = self.ctx.timezone.key
            assigned = self._assigned(conn)
            canons = {}
            for stream, text in self._settings().items():
                relation = self._resolve(stream, text)
                try:
                    columns = describe(conn, relation)
                except psycopg.Error as exc:
                    raise self._fail(stream, text, exc) from None
                try:
                    canons[stream] = canonical(stream, relation, columns, tz, assigned)
                except Mismatch as exc:
                    conn.rollback()
                    said = _("{field}: the relation {relation} {problem}")
                    field = f"{self.name}.{stream}"
                    raise ConfigError(
                        said.format(field=field, relation=self._label(text), problem=exc),
                        file=self.ctx.config_file,
                        field=f"{self.name}.{stream}",
                        hint=exc.hint,
                    ) from None
            conn.rollback()  # a description only: end the transaction
            self._canons = canons
        return self._canons

    def _assigned(self, conn: Any) -> sql.Composable | None:
        """The assignments table, once a run has created it (else no tags come from it)."""
        name = self.cfg.assignments
        if name is None:
            return None
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
        return assignments_table(name) if row and row[0] else None

    def relations(self) -> dict[str, str]:
        conn = self.connection()
        return {stream: canon.as_string(conn) for stream, canon in self.canons().items()}

    def execute(self, sql: str) -> pa.Table:
        conn = self.connection()
        body = sql.strip().rstrip(";").strip()
        try:
            table = fetch(conn, f"({body})")
        except psycopg.Error as exc:
            raise self._fail("query", body, exc) from None
        conn.commit()
        return table

    # check and pull ------------------------------------------------------------------
    def check(self) -> list[str]:
        """The server answers, the login works and every stream's relation is readable."""
        streams = ", ".join(self.canons())
        info = self.connection().info
        version = f"{info.server_version // 10000}.{info.server_version % 10000}"
        said = _("{source}: PostgreSQL {version} at {where} as {user}; {streams} readable")
        return [
            said.format(
                source=self.name,
                version=version,
                where=self.where(),
                user=self.user(),
                streams=streams,
            )
        ]

    def pull(self, since: str | None = None) -> Tables:
        """Every row of each stream, in one snapshot; no cursor: each pull reads all."""
        canons = self.canons()
        conn = self.connection()
        frames: dict[str, pd.DataFrame] = {}
        for stream, canon in canons.items():
            try:
                table = fetch(conn, canon.as_string(conn))
            except psycopg.Error as exc:
                raise self._fail(stream, self._settings()[stream], exc) from None
            frames[stream] = frame_from_arrow(table)
        conn.commit()
        labels = {s: f"PostgreSQL {self._label(t)}" for s, t in self._settings().items()}
        return Tables(
            frames["contacts"],
            frames.get("orders", empty_orders()),
            frames.get("events", empty_events()),
            origins=labels,
        )


class PostgresAssignments(PostgresConnector, Destination):
    """A `postgres` source with ``assignments`` set (see :meth:`PostgresConnector.__new__`):
    each run's tags are that table's rows (connectors/postgres_assignments.py), all of a
    run's changes in one push, so in one transaction."""

    accepts: ClassVar[frozenset[str]] = frozenset({"tag", "untag"})
    idempotent: ClassVar[bool] = True
    batch_size: int = ONE_TRANSACTION

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        assert self.cfg.assignments is not None  # this class is only made with the setting
        self.writes = Assignments(self, self.cfg.assignments)

    def lock_identity(self) -> str:
        return self.writes.lock_identity()

    def check(self) -> list[str]:
        return [*super().check(), *self.writes.check()]

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        return self.writes.push(actions)

    def close(self) -> None:
        self.writes.close()
        super().close()
