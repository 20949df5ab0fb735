"""A private, throwaway PostgreSQL server for the tests, started from the binaries.

Once per test session: `initdb` into a fresh temporary folder, then `pg_ctl start` with
the server listening on 127.0.0.1 on a free port and on a unix socket in that folder,
fsync off (the data is thrown away). It is stopped and removed when the session ends.
PostgreSQL refuses to run as root, so under uid 0 its commands run as the `postgres`
system user (`runuser`). TCP connections need the superuser's random password, so the
URLs the tests get are realistic; the local socket is trusted, for set-up only.

Without binaries (looked for: `pg_ctl` on PATH, then /usr/lib/postgresql/*/bin) the
tests that need the server skip, saying why, unless THREADSCRIBE_REQUIRE_POSTGRES=1 (CI
sets it): then they fail.

Fixtures:
    postgres_server   the running server (session)
    pg_url            postgresql+asyncpg URL of a new, empty database for one test
    database_url      parametrised "sqlite" / "postgres": run a test on both backends

tests/conftest.py loads them as a plugin, for every test.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import NoReturn

import pytest

from tests.helpers.processes import free_port

REQUIRE_ENV = "THREADSCRIBE_REQUIRE_POSTGRES"
SERVER_USER = "postgres"  # the system user the server runs as when the tests run as root
SUPERUSER = "postgres"  # the database superuser that initdb creates

_database_numbers = count(1)


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, newest version first."""
    candidates: list[Path] = []
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    return None


@dataclass
class PostgresServer:
    bindir: Path
    root: Path  # holds data/, the socket, the log
    port: int
    password: str
    run_as: str | None  # system user the server runs as, None for ourselves

    @classmethod
    def start(cls, bindir: Path) -> PostgresServer:
        run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL will not run as root, and there is no {SERVER_USER!r} "
                    "system user to run it as: create one or run the tests as another user"
                ) from None
            run_as = SERVER_USER
        # As root, stay out of a TMPDIR the server user may not be able to enter.
        root = Path(tempfile.mkdtemp(prefix="threadscribe-pg-", dir="/tmp" if run_as else None))
        server = cls(bindir, root, 0, secrets.token_urlsafe(16), run_as)
        try:
            server._initdb()
            for _ in range(3):  # the free port may be taken before the server binds it
                server.port = free_port()
                if server._start():
                    return server
            raise RuntimeError(f"PostgreSQL did not start:\n{server.log_tail()}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"test_{os.getpid()}_{next(_database_numbers)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser over the trusted local socket."""
        argv = [str(self.bindir / "psql"), "-X", "-q", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", str(self.root), "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"]
        done = subprocess.run([*argv, "-c", sql], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {sql!r}: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in (self.root, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()

    def _start(self) -> bool:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        # postgresql.auto.conf is read last, so each start's port wins.
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.data / "postgresql.auto.conf").write_text(conf)
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start",
            check=False,
        )  # fmt: skip
        return done.returncode == 0

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / tool), *args]
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        done = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done


def _unavailable(why: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{why} ({REQUIRE_ENV}=1: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(f"{why}; set {REQUIRE_ENV}=1 to make this a failure")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL tests skipped: no PostgreSQL binaries (initdb, pg_ctl, postgres, psql) "
            "on PATH or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)"
        )
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'threadscribe.db'}"
    return str(request.getfixturevalue("pg_url"))
