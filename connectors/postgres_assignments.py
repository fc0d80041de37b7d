"""The `postgres` source writing each run's segments back into its database.

Why a table and not only tags on a platform: a shop whose contacts live in
PostgreSQL reads its segments where it reads everything else (a BI tool, a CRM
sync, a SQL join with its orders). With ``assignments = "segmerge_assignments"``
in the source's settings, the source is also a destination that takes ``tag`` and
``untag`` (segmerge/run/plan.py): a contact gets one row per group it is in
(its segment, or its variant's group of a tested segment; a held-out contact is in
none), and leaves it when it leaves the segment. The source's contacts read those
rows back as their ``tags`` (connectors/postgres_canon.py), exactly as a platform's
tags read back what a run pushed, so each run writes only what moved.

One transaction per run: the whole run's changes are one :meth:`push` (the batch
size is larger than any base), written with COPY into a temporary table, then one
DELETE and one upsert. A failure anywhere rolls everything back, the previous
assignments stay as they were, and the ledger puts every change back to planned:
the run started again writes them (docs/state.md). Writing a change again is
harmless (an upsert, a delete), so the destination is idempotent.

The table (created at the first run when missing; docs/connectors/postgres.md)::

    contact_id  text         the contact
    tag         text         the group's name: tag_prefix + segment (+ .variant)
    campaign    text         the campaign whose run put the contact there
    segment     text         the segment
    variant     text         the A/B variant's group, else NULL
    run_id      text         that run (campaign@day, as `segmerge history` names it)
    as_of       date         that run's reference day: in this group since then
    updated_at  timestamptz  when that run wrote it
    PRIMARY KEY (contact_id, tag)

The source's own connection stays read-only; writes go through a second
connection, opened at the first push.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

from segmerge.ports import Action, ConnectorError, CredentialError, Outcome, _

from .postgres_errors import server_words


def _write_grant() -> str:
    """The statement that gives the missing rights, to run as the table's owner."""
    return _("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {user}  (as the table's owner)")


def _create_grant() -> str:
    """The statement that lets the user create the table, to run as the schema's owner."""
    return _("GRANT CREATE ON SCHEMA {schema} TO {user}  (as the schema's owner)")


#: larger than any base: every change of a run is one push, so one transaction
ONE_TRANSACTION = 1_000_000_000
CREATE = """CREATE TABLE IF NOT EXISTS {table} (
    contact_id text NOT NULL,
    tag text NOT NULL,
    campaign text NOT NULL,
    segment text NOT NULL,
    variant text,
    run_id text NOT NULL,
    as_of date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, tag)
)"""
STAGE = """CREATE TEMPORARY TABLE segmerge_changes (
    kind text, contact_id text, tag text, campaign text, segment text, variant text,
    run_id text, as_of date
) ON COMMIT DROP"""
REMOVE = """DELETE FROM {table} AS t USING segmerge_changes AS c
WHERE c.kind = 'untag' AND t.contact_id = c.contact_id AND t.tag = c.tag"""
UPSERT = """INSERT INTO {table} (contact_id, tag, campaign, segment, variant, run_id, as_of)
SELECT DISTINCT ON (contact_id, tag) contact_id, tag, campaign, segment, variant, run_id, as_of
FROM segmerge_changes WHERE kind = 'tag'
ON CONFLICT (contact_id, tag) DO UPDATE SET campaign = EXCLUDED.campaign,
    segment = EXCLUDED.segment, variant = EXCLUDED.variant, run_id = EXCLUDED.run_id,
    as_of = EXCLUDED.as_of, updated_at = now()"""


class Owner(Protocol):
    """The `postgres` source whose database the assignments are written into."""

    name: str

    def connect(self) -> Any: ...

    def connection(self) -> Any: ...

    def user(self) -> str: ...

    def where(self) -> str: ...


def assignments_table(name: str | None) -> sql.Composable | None:
    """The ``assignments`` setting as an identifier (``schema.name`` or ``name``)."""
    if name is None:
        return None
    return sql.Identifier(*name.split("."))


class Assignments:
    """The writes of :class:`connectors.postgres.PostgresAssignments`: its check, its
    push and its own connection (the source's stays read-only)."""

    def __init__(self, owner: Owner, table: str) -> None:
        self.owner = owner
        self.name = table
        self.table = sql.Identifier(*table.split("."))
        self._writer: Any = None

    def lock_identity(self) -> str:
        """The table written: two workspaces writing it push one after the other."""
        return f"postgres:{self.owner.where()}:{self.name}"

    def writer(self) -> Any:
        if self._writer is None:
            self._writer = self.owner.connect()
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None

    def check(self) -> list[str]:
        """The login may write the table, or create it."""
        conn = self.owner.connection()
        name, user = self.name, self.owner.user()
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]
        schema, _dot, _rest = name.rpartition(".")
        if exists:
            missing = [
                p
                for p in ("INSERT", "UPDATE", "DELETE")
                if not conn.execute("SELECT has_table_privilege(%s, %s)", [name, p]).fetchone()[0]
            ]
            grant = _write_grant().format(table=name, user=user)
        else:
            allowed = conn.execute(
                "SELECT has_schema_privilege(coalesce(%s, current_schema()), 'CREATE')",
                [schema or None],
            ).fetchone()[0]
            missing = [] if allowed else ["CREATE"]
            grant = _create_grant().format(schema=schema or "public", user=user)
        conn.rollback()
        field = f"{self.owner.name}.assignments"
        if missing:
            raise CredentialError(
                _("{field}: the user {user} may not write the table {table} ({why})").format(
                    field=field, user=user, table=name, why=", ".join(missing)
                ),
                field=field,
                hint=grant,
            )
        if exists:
            said = _("{source}: the assignments are written to {table}")
        else:
            said = _(
                "{source}: the assignments will be written to {table} (created at the first run)"
            )
        return [said.format(source=self.owner.name, table=name)]

    def push(self, actions: Sequence[Action]) -> list[Outcome]:
        """Every change of the run in one transaction: all of them, or none."""
        rows = [_row(a) for a in actions if a.kind in ("tag", "untag")]
        if rows:
            table = self.table
            conn = self.writer()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(sql.SQL(CREATE).format(table=table))
                    cur.execute(STAGE)
                    with cur.copy("COPY segmerge_changes FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    cur.execute(sql.SQL(REMOVE).format(table=table))
                    cur.execute(sql.SQL(UPSERT).format(table=table))
            except psycopg.Error as exc:
                raise self._refused(exc) from None
        return [Outcome(a.key, "done") for a in actions]

    def _refused(self, exc: psycopg.Error) -> Exception:
        """Nothing was written (the transaction rolled back): a missing right is the
        user's to grant (exit 2); anything else leaves the changes planned for the
        run started again (exit 1)."""
        field = f"{self.owner.name}.assignments"
        said = server_words(exc).split(" LINE ")[0]
        table, user = self.name, self.owner.user()
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return CredentialError(
                _("{field}: the user {user} may not write the table {table} ({why})").format(
                    field=field, user=user, table=table, why=said
                ),
                field=field,
                hint=_write_grant().format(table=table, user=user),
            )
        return ConnectorError(
            _("{field}: the assignments were not written to {table}: {said}").format(
                field=field, table=table, said=said
            ),
            field=field,
            hint=_("the previous assignments are unchanged; the run can be started again"),
        )


def _row(a: Action) -> tuple[Any, ...]:
    p = a.payload
    return (
        a.kind,
        a.contact_id,
        p["tag"],
        p["campaign"],
        p["segment"],
        p.get("variant"),
        p["run_id"],
        p["as_of"],
    )
