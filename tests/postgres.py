"""A real PostgreSQL server for the tests, started once per session: never a mock.

Why our own server: the `postgres` source talks to PostgreSQL through libpq, and what
a user meets (a refused password, a missing GRANT, a view whose column is text where a
date is needed) is the server's own behaviour; a fake would answer what we think it
says. The Debian package's binaries (/usr/lib/postgresql/*/bin) are used, not its
cluster: ``initdb`` builds a throw-away cluster in a temporary directory, owned by a
non-root user (PostgreSQL refuses to run as root; as root we run it as ``postgres``,
the user the package creates, or a system user made for it), listening on a free
port of 127.0.0.1 (password logins, scram-sha-256) and on a unix socket in that
directory (the superuser, trusted, for the tests' own setup). ``pg_ctl start -w``
returns once the server accepts connections (no guessed delay); the session's end
stops it and removes the directory.

Tests that need it take the ``postgres_server`` fixture (registered in
tests/conftest.py); they skip only when the binaries are absent and
tests/postgres_setup.sh could not install them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SETUP = Path(__file__).with_name("postgres_setup.sh")
#: the login the sources use in the tests, with a password (the superuser has none)
USER = "segmerge"
#: long and plain enough to be registered by segmerge.redact and found in any output
PASSWORD = "pg-" + secrets.token_hex(12)
START_SECONDS = 60


def server_bin() -> Path | None:
    """The newest PostgreSQL server's bin directory Debian installed, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "segmerge-pg"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "segmerge-pg"],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("segmerge-pg")


@dataclass
class PgServer:
    """A running server: TCP for the code under test, the socket for the tests' setup."""

    bin: Path
    base: Path
    port: int
    owner: pwd.struct_passwd | None
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    _databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def dsn(self, dbname: str, user: str = USER) -> str:
        """The DSN a workspace writes: no password in it."""
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A server binary, as the server's owner."""
        kwargs: dict[str, Any] = {}
        if self.owner is not None:
            kwargs = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.base,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            **kwargs,
        )

    def admin(self, dbname: str = "postgres") -> Any:
        """A superuser connection over the socket (autocommit), for the tests' setup."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """A fresh database ``name`` (dropped first if a test left it) the test login may
        connect to; the tables are the test's to create and grant."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO PUBLIC')
        self._databases.append(name)
        return name

    def create_login(self, name: str, password: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')
            conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")

    def start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-c unix_socket_directories={self.socket_dir}",
                # a throw-away cluster: durability costs time and protects nothing
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ]
        )
        start = ("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options)
        self.run(*start, "-w", "-t", str(START_SECONDS), "start")

    def stop(self) -> None:
        # immediate: no shutdown checkpoint, the cluster is thrown away with its directory
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)


def start_server(bin_dir: Path) -> PgServer:
    """initdb into a fresh directory, then start on a free port (another if that one
    was taken between finding it and binding it)."""
    owner = _owner()
    base = Path(tempfile.mkdtemp(prefix="segmerge-pg-"))
    (base / "run").mkdir()
    if owner is not None:
        for p in (base, base / "run"):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    server = PgServer(bin_dir, base, free_port(), owner)
    try:
        server.run(
            "initdb",
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        )
        for attempt in range(3):
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                log = server.log.read_text(errors="replace") if server.log.exists() else ""
                if attempt == 2 or "could not bind" not in log:
                    raise
                server.port = free_port()
        server.create_login(USER, PASSWORD)
    except subprocess.CalledProcessError as exc:
        log = server.log.read_text(errors="replace") if server.log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


def ensure_binaries() -> Path | None:
    """The server's binaries, installed by tests/postgres_setup.sh when missing and possible."""
    found = server_bin()
    if found is None and shutil.which("bash"):
        subprocess.run(["bash", str(SETUP)], check=False, capture_output=True)
        found = server_bin()
    return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    bin_dir = ensure_binaries()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server in /usr/lib/postgresql/*/bin and tests/postgres_setup.sh "
            "could not install it"
        )
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)
