"""Opening the database: URL checks, engine set-up per backend, and migrations.

The schema is versioned with Alembic; the scripts ship inside the package
(`bot/jobs/migrations`) and run programmatically on start-up, so an installed wheel
upgrades its own database. Every upgrade runs in one transaction that first takes a lock:
a PostgreSQL advisory lock, or SQLite's write lock (`BEGIN IMMEDIATE`). Replicas that
start together therefore migrate one after the other, and the later ones find nothing
left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib.util
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL  # re-exported
from bot.errors import DatabaseUnavailable, InvalidDatabaseURL, SchemaTooNew, StoreClosed

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")

#: Execution option: run this transaction with a plain (deferred) BEGIN on SQLite.
#: Everything else takes the write lock up front, see `_sqlite_begin`.
SQLITE_DEFERRED = "threadscribe_sqlite_deferred"
#: Execution option: this transaction's commit must survive a power loss (fsync on SQLite).
SQLITE_DURABLE = "threadscribe_sqlite_durable"

# Any fixed 64-bit number; it only has to be the same in every replica.
_MIGRATION_LOCK = 0x7468_7265_6164_7363  # "threadsc"


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, OSError, TimeoutError, sqlite3.Error]
    try:
        from asyncpg import exceptions as asyncpg_errors
    except ImportError:  # PostgreSQL support is an optional extra
        pass
    else:
        # SQLAlchemy 2.0 lets asyncpg's errors out of connect() unwrapped (bad password,
        # unknown database, too many connections).
        errors += [asyncpg_errors.PostgresError, asyncpg_errors.InterfaceError]
    return tuple(errors)


#: What opening or using the database raises when it cannot be reached or opened.
UNAVAILABLE_ERRORS = _unavailable_errors()


def parse_database_url(raw: str | URL) -> URL:
    """Check a DATABASE_URL and pin it to the asyncio driver of its backend.

    `postgres://` and `postgresql://` become `postgresql+asyncpg://`, and `sqlite://`
    becomes `sqlite+aiosqlite://`. Anything else is refused with a message that says
    what to write instead.
    """
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        # The parser's message repeats the raw string, password and all.
        raise InvalidDatabaseURL(None, "it does not parse as a database URL") from None
    backend, _, driver = url.drivername.partition("+")
    safe = safe_url(url)
    if backend == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise InvalidDatabaseURL(safe, f"the {driver} driver is not asyncio-capable")
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise InvalidDatabaseURL(safe, "an in-memory SQLite database loses every job")
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg"):
            raise InvalidDatabaseURL(safe, f"the {driver} driver is not asyncio-capable")
        if importlib.util.find_spec("asyncpg") is None:
            raise InvalidDatabaseURL(
                safe, "the asyncpg driver is not installed (pip install 'threadscribe[postgres]')"
            )
        return url.set(drivername="postgresql+asyncpg")
    raise InvalidDatabaseURL(safe, f"the {backend} backend is not supported")


def check_sqlite_folder(url: URL) -> None:
    """Refuse a SQLite path whose folder is missing or read-only, before connecting.

    Clearer than SQLite's "unable to open database file", and it keeps a failed
    aiosqlite connect (whose worker thread outlives the attempt) out of the common case.
    """
    if url.get_backend_name() != "sqlite" or url.query.get("uri") or not url.database:
        return
    folder = Path(url.database).expanduser().absolute().parent
    if not folder.is_dir():
        raise DatabaseUnavailable(safe_url(url), f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailable(safe_url(url), f"the folder {folder} is not writable")


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def describe(exc: BaseException, url: URL) -> str:
    """The driver's own words for what went wrong, never the password."""
    inner: BaseException = exc
    if isinstance(inner, DBAPIError) and inner.orig is not None:
        inner = inner.orig
    # SQLAlchemy's asyncio adapters wrap the driver's exception: report the driver's.
    while inner.__cause__ is not None and type(inner).__module__.startswith("sqlalchemy"):
        inner = inner.__cause__
    reason = str(inner).strip() or type(inner).__name__
    if isinstance(inner, TimeoutError):
        reason = "timed out"
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def make_engine(url: URL, *, connect_timeout: float, busy_timeout: float) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        _configure_sqlite(engine, busy_timeout)
        return engine
    return create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": connect_timeout})


_SYNCHRONOUS = "threadscribe.synchronous"  # a connection's mode, in its .info


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    # pysqlite's legacy transaction handling issues BEGIN late and never for DDL. Take
    # that job over (SQLAlchemy's documented recipe), and make the BEGIN IMMEDIATE: the
    # write lock is then taken, waiting up to busy_timeout, before anything is read, so
    # a read-then-write transaction can never fail half-way on a lock upgrade.

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers never wait for the writer, and the writer never waits for readers.
        # The mode is kept in the file, so only the first connection to a new file really
        # switches it. Another connection that is already writing to the new file makes
        # the switch wait for a lock that it may never get (the writer in turn waits for
        # us): give up quickly then, as this connection follows the file's mode anyway.
        cursor.execute("PRAGMA busy_timeout = 100")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # A commit in WAL mode survives the process being killed either way; FULL also
        # waits for the disk (an fsync: milliseconds), so that a power cut cannot take it
        # back. That is what an acknowledgement to a platform promises, so intakes are
        # FULL; everything else is NORMAL (SQLite's advice for WAL): a power cut may undo
        # its last moments, and the job resumes from an earlier step, which every step is
        # made to survive (idempotency keys, the lost-submission recovery). A FULL commit
        # makes every NORMAL one before it durable too.
        # The mode stays with the connection: it is set only when it changes (a PRAGMA is
        # a statement, a round trip to the driver's thread, like any other).
        mode = "FULL" if options.get(SQLITE_DURABLE, False) else "NORMAL"
        if conn.info.get(_SYNCHRONOUS) != mode:
            conn.exec_driver_sql(f"PRAGMA synchronous = {mode}")
            conn.info[_SYNCHRONOUS] = mode
        conn.exec_driver_sql("BEGIN" if options.get(SQLITE_DEFERRED, False) else "BEGIN IMMEDIATE")


def _alembic_config(connection: Connection | None = None) -> Config:
    # Alembic is imported where it is used: a third of a second that `threadscribe
    # transcribe`, `--help` and `doctor` need not pay.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def _sqlite_read_only(url: URL) -> URL | None:
    """The URL to open a SQLite file read-only (neither the file nor its journal mode is
    touched), None if the file does not exist; other URLs as they are."""
    if url.get_backend_name() != "sqlite" or not url.database or url.query.get("uri"):
        return url
    path = Path(url.database).expanduser().absolute()
    if not path.exists():
        return None
    return url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})


def read_only_engine(raw: str | URL, *, connect_timeout: float = 5.0) -> AsyncEngine | None:
    """An engine that reads the database without changing it (for `threadscribe doctor`);
    None when it is a SQLite file that does not exist yet (it is not created)."""
    url = _sqlite_read_only(parse_database_url(raw))
    if url is None:
        return None
    if url.get_backend_name() == "sqlite":
        return create_async_engine(url)
    return make_engine(url, connect_timeout=connect_timeout, busy_timeout=connect_timeout)


@asynccontextmanager
async def schema_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds the migration lock until it ends."""
    async with engine.begin() as conn:  # on SQLite this BEGIN takes the write lock
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
        yield conn


async def migrate(engine: AsyncEngine, url: URL) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""
    async with schema_lock(engine) as conn:
        await conn.run_sync(_upgrade, safe_url(url))


def _upgrade(connection: Connection, url: str) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _alembic_config(connection)
    scripts = ScriptDirectory.from_config(config)
    known = {script.revision for script in scripts.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    for revision in current:
        if revision not in known:
            raise SchemaTooNew(url, revision)
    head = scripts.get_current_head()
    if head in current:
        return
    command.upgrade(config, "head")
    before = ", ".join(current) or "an empty database"
    log.info("database schema upgraded from %s to %s", before, head, extra={"database": url})


async def inspect_schema(raw: str | URL, *, connect_timeout: float = 5.0) -> str:
    """Describe the database without changing it (for `threadscribe doctor`): whether it
    can be reached and whether `threadscribe run` would create or upgrade its schema.

    A SQLite file that does not exist yet is not created: its folder is checked instead.
    Raises the store's errors (InvalidDatabaseURL, DatabaseUnavailable, SchemaTooNew).
    """
    url = parse_database_url(raw)
    safe = safe_url(url)
    check_sqlite_folder(url)
    engine = read_only_engine(url, connect_timeout=connect_timeout)
    if engine is None:
        return f"{safe} does not exist yet: `threadscribe run` creates it"
    from alembic.runtime.migration import MigrationContext

    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(safe, describe(exc, url)) from exc
    finally:
        await engine.dispose()
    if not heads:
        return f"{safe} is reachable; `threadscribe run` will create the tables"
    scripts = _scripts()
    known = {script.revision for script in scripts.walk_revisions()}
    for revision in heads:
        if revision not in known:
            raise SchemaTooNew(safe, revision)
    if scripts.get_current_head() in heads:
        return f"{safe} is reachable and its schema is up to date"
    return f"{safe} is reachable; `threadscribe run` will upgrade its schema"


# -- the connection the store's parts share ------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]


class _Lifecycle(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


# Losing the database mid-run: SQLAlchemy's connection-level errors, and the driver's own
# where SQLAlchemy lets them through. Anything else (an IntegrityError, say) is a bug.
_LOST: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    *(e for e in UNAVAILABLE_ERRORS if not issubclass(e, SQLAlchemyError | sqlite3.Error)),
)
# Executing ORM UPDATE/INSERT ... RETURNING: take the returned rows as they are.
RETURNING: Final = {"synchronize_session": False, "populate_existing": True}


class Database:
    """One engine and its transactions, shared by the store's parts (records, queue,
    admission, settings). Using it after `close()` raises StoreClosed."""

    def __init__(
        self,
        engine: AsyncEngine,
        url: URL,
        *,
        clock: Clock = utcnow,
        database_clock: bool | None = None,
    ) -> None:
        self.engine = engine
        self._url = url
        self.clock = clock
        #: whether leases are timed by the database's clock rather than this process's:
        #: by default on PostgreSQL (replicas on several machines, whose clocks differ)
        #: unless a clock is injected; SQLite's replicas share one machine's clock.
        if database_clock is None:
            database_clock = engine.dialect.name == "postgresql" and clock is utcnow
        self.database_clock = database_clock
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._lifecycle = _Lifecycle.OPEN
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return safe_url(self._url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def closed(self) -> bool:
        return self._lifecycle is _Lifecycle.CLOSED

    async def close(self) -> None:
        if self._lifecycle is _Lifecycle.OPEN:
            self._lifecycle = _Lifecycle.CLOSED
            await self.engine.dispose()

    @asynccontextmanager
    async def session(
        self, *, write: bool = True, durable: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """One transaction. Losing the database mid-run becomes `DatabaseUnavailable`.
        `durable`: its commit must survive a power cut, not only a crash (an intake the
        platform is then told is taken); see `_sqlite_begin`."""
        if self._lifecycle is _Lifecycle.CLOSED:
            raise StoreClosed()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if write and self._write_lock is not None:
                    # SQLite takes one writer at a time; queueing writers here, in order,
                    # costs a lock hand-over instead of SQLite's busy-wait sleeps (up to
                    # 100 ms each), which dominate under a burst of intakes.
                    await stack.enter_async_context(self._write_lock)
                session = await stack.enter_async_context(self._sessions())
                await stack.enter_async_context(session.begin())
                if not write:
                    await session.connection(execution_options={SQLITE_DEFERRED: True})
                elif durable:
                    await session.connection(execution_options={SQLITE_DURABLE: True})
                yield session
        except _LOST as exc:
            raise DatabaseUnavailable(self.url, describe(exc, self._url)) from exc

    def insert(self, model: type[Any]) -> Any:
        """INSERT ... ON CONFLICT is spelled the same on both, but built per dialect."""
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(model)

    async def ping(self) -> None:
        async with self.session(write=False) as session:
            await session.execute(text("SELECT 1"))
