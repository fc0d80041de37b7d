"""What a PostgreSQL refusal means for the user: which exit code, which words, which fix.

libpq reports a failed connection as one OperationalError with no SQLSTATE, so the
connection's failures are told apart by libpq's and the server's English wording
(a server set to another language for its messages falls back to "cannot connect",
exit 1). Errors from statements carry their SQLSTATE and are classed by it. No
message is built from the DSN's text or from the password: the DSN holds none (the
settings refuse one) and libpq never quotes a password.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import errors as pg

from segmerge.ports import (
    ConfigError,
    ConnectorError,
    CredentialError,
    DataError,
    SegmergeError,
    _,
    secret_env_var,
)

#: libpq's and the server's words for a refused login (password, role, pg_hba.conf)
_LOGIN_REFUSED = re.compile(
    r"password authentication failed|no password supplied|authentication failed"
    r"|role \"[^\"]*\" does not exist|no pg_hba\.conf entry|peer authentication failed",
    re.IGNORECASE,
)
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist', re.IGNORECASE)


def server_words(exc: BaseException) -> str:
    """libpq's message without its "connection failed:" prefix, on one line."""
    text = str(exc).strip()
    text = re.sub(r"^connection failed:\s*", "", text)
    return " ".join(text.split())


def connect_error(
    source: str, where: str, exc: psycopg.Error, *, config_file: Path, origin: str | None
) -> SegmergeError:
    """A failed connection: refused login and unknown database are the user's settings
    (exit 2), anything else is the server being out of reach (exit 1)."""
    said = server_words(exc)
    if _LOGIN_REFUSED.search(said):
        if origin:
            text = _(
                "{source}: PostgreSQL at {where} refused the login with the password "
                "from {origin}: {said}"
            )
        else:
            text = _("{source}: PostgreSQL at {where} refused the login without a password: {said}")
        return CredentialError(
            text.format(source=source, where=where, origin=origin, said=said),
            field=source,
            hint=_(
                "store the password with `segmerge auth set {source}` or set {var}; "
                "the DSN names the user"
            ).format(source=source, var=secret_env_var(source)),
        )
    if _NO_DATABASE.search(said):
        return ConfigError(
            _("{field}: PostgreSQL at {where}: {said}").format(
                field=f"{source}.dsn", where=where, said=said
            ),
            file=config_file,
            field=f"{source}.dsn",
            hint=_("the DSN's path (…/DATABASE) names the database"),
        )
    return ConnectorError(
        _("{source}: cannot connect to PostgreSQL at {where}: {said}").format(
            source=source, where=where, said=said
        ),
        field=source,
        hint=_(
            "check that the server runs and that this machine may reach it "
            "(host, port, firewall); the run can be started again"
        ),
    )


def relation_error(
    source: str,
    stream: str,
    relation: str,
    exc: psycopg.Error,
    *,
    user: str,
    config_file: Path,
) -> SegmergeError:
    """A statement reading ``relation`` (the ``stream`` setting) failed: a missing
    GRANT, a relation or column that is not there, a SELECT that does not parse, a value
    the server could not convert; the connection lost mid-way is exit 1."""
    said = server_words(exc).split(" LINE ")[0]
    field = f"{source}.{stream}"
    if isinstance(exc, pg.InsufficientPrivilege):
        return CredentialError(
            _("{field}: the relation {relation}: the user {user} may not read it ({said})").format(
                field=field, relation=relation, user=user, said=said
            ),
            field=field,
            hint=_("GRANT SELECT ON {relation} TO {user}  (as the table's owner)").format(
                relation=relation, user=user
            ),
        )
    where = _("{field}: the relation {relation}: {said}").format(
        field=field, relation=relation, said=said
    )
    if isinstance(exc, psycopg.OperationalError | pg.AdminShutdown | pg.QueryCanceled):
        return ConnectorError(where, field=field, hint=_("the run can be started again"))
    if isinstance(exc, psycopg.DataError):
        return DataError(where, field=field)
    return ConfigError(
        where,
        file=config_file,
        field=field,
        hint=_("a table or view name (schema.name), or a SELECT giving the canonical columns"),
    )
