"""The durable job store (SQLite by default, PostgreSQL for several replicas).

Every change is one transaction that either happens whole or not at all, and every
change that could race is a compare-and-set: an UPDATE whose WHERE clause says what the
row must still look like (its state, its lease holder). Two writers racing for the same
change therefore end with exactly one winner, who gets the new `Job` back, while the
other gets None. This holds on both backends:

- PostgreSQL: row locks; `claim` picks rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so
  replicas claiming at once skip each other's rows instead of queueing behind them.
- SQLite: one writer at a time. Write transactions begin with `BEGIN IMMEDIATE` (see
  `bot.jobs.database`), so each takes the write lock, waiting up to the busy timeout,
  before it reads anything.

Leases: `claim` hands a job to one owner until `lease_expires_at`. The owner keeps it
with `renew`, gives it back with `release` or a transition with `release=True`. A job
whose owner died is claimable again once its lease has run out. A transition made with
`owner=None` (a webhook, say) ignores the lease and revokes it, so a holder that lost the
race finds out at its next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, Unpack
from uuid import uuid4

from sqlalchemy import (
    ColumnElement,
    String,
    Update,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.errors import DatabaseUnavailable, StoreClosed
from bot.jobs.database import (
    DEFAULT_DATABASE_URL,
    SQLITE_DEFERRED,
    UNAVAILABLE_ERRORS,
    check_sqlite_folder,
    describe,
    make_engine,
    migrate,
    parse_database_url,
    safe_url,
)
from bot.jobs.models import (
    Base,
    ChannelSettingsRow,
    DeploymentSecretRow,
    JobRow,
    UTCDateTime,
)
from bot.jobs.records import (
    _IN_FLIGHT,
    Admission,
    ChannelSettings,
    IntakeRecord,
    Job,
    JobFields,
    JobState,
    Limits,
    Platform,
    Refusal,
    source_from_json,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Delivery step names: they become JSON keys (and, on SQLite, part of a JSON path).
_STEP = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


# Intakes grouped into one transaction at most (20-odd parameters a row stays far below
# SQLite's and asyncpg's limits on bound parameters).
_ADMIT_BATCH = 200

#: Seconds a channel's settings are reused before they are read again.
SETTINGS_TTL: Final = 10.0

# Executing ORM UPDATE/INSERT ... RETURNING: take the returned rows as they are.
_RETURNING = {"synchronize_session": False, "populate_existing": True}

# Losing the database mid-run: SQLAlchemy's connection-level errors, and the driver's own
# where SQLAlchemy lets them through. Anything else (an IntegrityError, say) is a bug.
_LOST: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    *(e for e in UNAVAILABLE_ERRORS if not issubclass(e, SQLAlchemyError | sqlite3.Error)),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Lifecycle(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class JobStore:
    """Open with `await JobStore.open(url)`; close with `await store.close()` (or use it
    as an async context manager). Using a closed store raises `StoreClosed`."""

    def __init__(self, engine: AsyncEngine, url: URL, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._url = url
        self._clock = clock
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._lifecycle = _Lifecycle.OPEN
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._admissions: list[tuple[IntakeRecord, Limits | None, asyncio.Future[Admission]]] = []
        self._admitter: asyncio.Task[None] | None = None
        self._settings_cache: dict[
            tuple[Platform, str, str], tuple[float, ChannelSettings | None]
        ] = {}

    @classmethod
    async def open(
        cls,
        url: str | URL = DEFAULT_DATABASE_URL,
        *,
        clock: Clock = utcnow,
        connect_timeout: float = 10.0,
        busy_timeout: float = 30.0,
    ) -> JobStore:
        """Connect, create or upgrade the schema, and return a ready store.

        Raises `InvalidDatabaseURL` for a URL that cannot work, `DatabaseUnavailable`
        when the database cannot be reached or opened, `SchemaTooNew` when a newer
        release has already upgraded it.
        """
        parsed = parse_database_url(url)
        check_sqlite_folder(parsed)
        engine = make_engine(parsed, connect_timeout=connect_timeout, busy_timeout=busy_timeout)
        try:
            await migrate(engine, parsed)
        except UNAVAILABLE_ERRORS as exc:
            await engine.dispose()
            raise DatabaseUnavailable(safe_url(parsed), describe(exc, parsed)) from exc
        except BaseException:
            await engine.dispose()
            raise
        store = cls(engine, parsed, clock=clock)
        log.info("job store open", extra={"database": store.url})
        return store

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return safe_url(self._url)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def __repr__(self) -> str:
        return f"<JobStore {self.url} {self._lifecycle.value}>"

    async def close(self) -> None:
        if self._admitter is not None and not self._admitter.done():
            await asyncio.wait([self._admitter], timeout=10)  # let queued intakes commit
        if self._lifecycle is _Lifecycle.OPEN:
            self._lifecycle = _Lifecycle.CLOSED
            await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers (for readiness)."""
        async with self._session(write=False) as session:
            await session.execute(text("SELECT 1"))

    # -- jobs ------------------------------------------------------------------------

    async def intake(self, record: IntakeRecord) -> tuple[Job, bool]:
        """Persist a new job, or find the one already made for the same dedupe key.

        Returns the job and whether this call created it. Concurrent intakes of one
        key make one row, and every caller gets that row back.
        """
        admission = await self.admit(record)
        assert admission.job is not None  # no limits, so never refused
        return admission.job, admission.created

    async def admit(self, record: IntakeRecord, limits: Limits | None = None) -> Admission:
        """`intake` with the per-person and per-channel limits checked in the same
        transaction. Calls that arrive while a transaction is under way are grouped into
        the next one (group commit), so a burst of events costs a few transactions instead
        of one per event; each call still returns only once its job is committed."""
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._admissions.append((record, limits, future))
        if self._admitter is None or self._admitter.done():
            self._admitter = asyncio.create_task(self._admit_pending())
        return await asyncio.shield(future)

    async def _admit_pending(self) -> None:
        while self._admissions:
            batch = self._admissions[:_ADMIT_BATCH]
            del self._admissions[:_ADMIT_BATCH]
            try:
                outcomes = await self._admit_batch(batch)
            except BaseException as exc:
                for _record, _limits, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else StoreClosed())
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_record, _limits, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _admit_batch(
        self, batch: list[tuple[IntakeRecord, Limits | None, asyncio.Future[Admission]]]
    ) -> list[Admission]:
        records = [record for record, _limits, _future in batch]
        keys = {record.dedupe_key for record in records}
        now = self._clock()
        async with self._session() as session:
            found = await session.scalars(select(JobRow).where(JobRow.dedupe_key.in_(keys)))
            existing = {row.dedupe_key: _job(row) for row in found}
            users, channels = await self._in_flight_counts(session, records)
            decided: list[Admission | str] = []  # an Admission, or the key of a new row
            new_rows: dict[str, dict[str, Any]] = {}
            for index, (record, limits, _future) in enumerate(batch):
                key = record.dedupe_key
                if key in existing:
                    decided.append(Admission(existing[key], False))
                    continue
                if key in new_rows:
                    decided.append(key)
                    continue
                user = (record.platform, record.workspace, record.requester)
                channel = (record.platform, record.workspace, record.channel)
                if limits is not None and users.get(user, 0) >= limits.per_user:
                    decided.append(Admission(None, False, Refusal.USER_LIMIT))
                    continue
                if limits is not None and channels.get(channel, 0) >= limits.per_channel:
                    decided.append(Admission(None, False, Refusal.CHANNEL_LIMIT))
                    continue
                users[user] = users.get(user, 0) + 1
                channels[channel] = channels.get(channel, 0) + 1
                new_rows[key] = _new_row(record, now, order=index)
                decided.append(key)
            created: dict[str, Job] = {}
            if new_rows:
                insert = (
                    self._insert(JobRow)
                    .values(list(new_rows.values()))
                    .on_conflict_do_nothing(index_elements=["dedupe_key"])
                    .returning(JobRow)
                )
                rows = await session.scalars(insert, execution_options=_RETURNING)
                created = {row.dedupe_key: _job(row) for row in rows}
                lost = set(new_rows) - set(created)
                if lost:
                    # Another replica committed these keys meanwhile (PostgreSQL waited).
                    again = select(JobRow).where(JobRow.dedupe_key.in_(lost))
                    existing |= {row.dedupe_key: _job(row) for row in await session.scalars(again)}
        outcomes: list[Admission] = []
        first_use: set[str] = set()
        for item in decided:
            if isinstance(item, Admission):
                outcomes.append(item)
            elif item in created:
                outcomes.append(Admission(created[item], item not in first_use))
                first_use.add(item)
            else:
                outcomes.append(Admission(existing[item], False))
        log.debug("admitted %d intakes (%d new)", len(batch), len(created))
        return outcomes

    async def _in_flight_counts(
        self, session: AsyncSession, records: list[IntakeRecord]
    ) -> tuple[dict[tuple[Platform, str, str], int], dict[tuple[Platform, str, str], int]]:
        """Jobs in flight per (platform, workspace, requester) and per channel, for the
        people and channels of `records`."""
        users: dict[tuple[Platform, str, str], int] = {}
        channels: dict[tuple[Platform, str, str], int] = {}
        for column, into in ((JobRow.requester, users), (JobRow.channel, channels)):
            values = {getattr(r, column.key) for r in records}
            query = (
                select(JobRow.platform, JobRow.workspace, column, func.count())
                .where(JobRow.state.in_(_IN_FLIGHT), column.in_(values))
                .group_by(JobRow.platform, JobRow.workspace, column)
            )
            for platform, workspace, value, count in await session.execute(query):
                into[(platform, workspace, value)] = count
        return users, channels

    async def get(self, job_id: str) -> Job | None:
        return await self._get_one(JobRow.id == job_id)

    async def get_by_transcript_id(self, transcript_id: str) -> Job | None:
        return await self._get_one(JobRow.transcript_id == transcript_id)

    async def claim(
        self,
        owner: str,
        *,
        lease_seconds: float,
        states: Iterable[JobState],
        limit: int = 1,
        now: datetime | None = None,
        platforms: Iterable[Platform] | None = None,
    ) -> list[Job]:
        """Lease up to `limit` due jobs in `states` to `owner`, oldest first.

        Due: `next_attempt_at <= now`, and no lease or an expired one. Each job goes to
        one claimer only, however many stores (replicas) claim at once. With `platforms`,
        only jobs of those platforms (a replica runs the adapters it is configured for).
        """
        now = _aware(now or self._clock())
        due = and_(
            JobRow.state.in_(list(states)),
            JobRow.next_attempt_at <= now,
            _free(now),
            *_of_platforms(platforms),
        )
        pick = (
            select(JobRow.id)
            .where(due)
            .order_by(JobRow.created_at, JobRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock
        )
        lease = {
            "lease_owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        }
        async with self._session() as session:
            ids = list((await session.scalars(pick)).all())
            if not ids:
                return []
            # `due` again: the UPDATE is a compare-and-set on its own, whatever the locking.
            claim = update(JobRow).where(JobRow.id.in_(ids), due).values(lease).returning(JobRow)
            rows = (await session.scalars(claim, execution_options=_RETURNING)).all()
            jobs = [_job(row) for row in rows]
        return sorted(jobs, key=lambda job: (job.created_at, job.id))

    async def lease(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Lease one job, due or not, if nobody holds it; None if somebody does."""
        now = _aware(now or self._clock())
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state != JobState.DELIVERED, _free(now))
            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
        )

    async def renew(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Extend `owner`'s lease; None if the job is no longer leased to it."""
        now = _aware(now or self._clock())
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner)
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )

    async def release(
        self,
        job_id: str,
        owner: str,
        next_attempt_at: datetime,
        *,
        error: str | None = None,
    ) -> Job | None:
        """Give the job back, due again at `next_attempt_at` (backoff, the next poll).

        With `error`, the attempt counts as failed: `attempts` goes up by one and the
        error is kept in `last_error`. None if the job is no longer leased to `owner`.
        """
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_expires_at": None,
            "next_attempt_at": _aware(next_attempt_at),
            "updated_at": self._clock(),
        }
        if error is not None:
            values |= {"attempts": JobRow.attempts + 1, "last_error": error}
        return await self._update_one(
            update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner).values(values)
        )

    async def poll_later(self, job_id: str, owner: str, when: datetime) -> Job | None:
        """Release a submitted job until its next poll; `attempts` counts the polls."""
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner)
            .values(
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=_aware(when),
                attempts=JobRow.attempts + 1,
                updated_at=self._clock(),
            )
        )

    async def claim_now(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Lease a submitted job at once, due now, if nobody holds it (a webhook said its
        transcript is done); None if somebody does or it is no longer submitted."""
        now = _aware(now or self._clock())
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == JobState.SUBMITTED, _free(now))
            .values(
                next_attempt_at=now,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
        )

    async def make_due(self, job_id: str, *, now: datetime | None = None) -> Job | None:
        """Bring the job's next attempt forward to now (a webhook said it is done)."""
        now = _aware(now or self._clock())
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.next_attempt_at > now)
            .values(next_attempt_at=now)
        )

    async def transition(
        self,
        job_id: str,
        owner: str | None,
        from_states: JobState | Iterable[JobState],
        to_state: JobState,
        *,
        release: bool = False,
        **fields: Unpack[JobFields],
    ) -> Job | None:
        """Move the job to `to_state` if it is in one of `from_states` (and, with an
        `owner`, still leased to it), setting `fields` in the same statement.

        Returns the updated job, or None when the compare-and-set lost: another writer
        got there first. `owner=None` is for writers that hold no lease (a webhook); it
        revokes any lease. `release=True` ends `owner`'s lease with the change.
        Raises `IllegalTransition` for a change the lifecycle does not allow.
        """
        sources = [from_states] if isinstance(from_states, JobState) else list(from_states)
        for state in sources:
            state.check(to_state)
        unknown = set(fields) - JobFields.__optional_keys__
        if unknown:
            raise TypeError(f"transition() cannot set {sorted(unknown)}")
        if "next_attempt_at" in fields:
            _aware(fields["next_attempt_at"])
        values: dict[str, Any] = {**fields, "state": to_state, "updated_at": self._clock()}
        condition = and_(JobRow.id == job_id, JobRow.state.in_(sources))
        if owner is not None:
            condition = and_(condition, JobRow.lease_owner == owner)
        if owner is None or release:
            values |= {"lease_owner": None, "lease_expires_at": None}
        job = await self._update_one(update(JobRow).where(condition).values(values))
        if job is not None:
            log.info("job %s -> %s", job.id, to_state.value, extra={"job": job.id})
        return job

    async def record_posted(
        self, job_id: str, step: str, message_id: str, *, owner: str | None = None
    ) -> Job | None:
        """Record that delivery step `step` posted message `message_id`, merged into
        `posted` in one statement (other steps' entries are kept). None if the job is
        gone or, with an `owner`, no longer leased to it."""
        if not _STEP.fullmatch(step):
            raise ValueError(f"delivery step names match {_STEP.pattern}, got {step!r}")
        if self.dialect == "postgresql":
            entry = func.jsonb_build_object(literal(step, String), literal(message_id, String))
            merged: ColumnElement[Any] = JobRow.posted.op("||", return_type=postgresql.JSONB)(entry)
        else:
            merged = func.json_set(JobRow.posted, f'$."{step}"', message_id)
        condition = JobRow.id == job_id
        if owner is not None:
            condition = and_(condition, JobRow.lease_owner == owner)
        return await self._update_one(
            update(JobRow).where(condition).values(posted=merged, updated_at=self._clock())
        )

    async def unfinished(self) -> list[Job]:
        """Every job not yet delivered, oldest first (what resumes after a restart)."""
        query = (
            select(JobRow)
            .where(JobRow.state != JobState.DELIVERED)
            .order_by(JobRow.created_at, JobRow.id)
        )
        async with self._session(write=False) as session:
            return [_job(row) for row in (await session.scalars(query)).all()]

    async def find(self, dedupe_key: str) -> Job | None:
        """The job made for this dedupe key, if any."""
        return await self._get_one(JobRow.dedupe_key == dedupe_key)

    async def count(self, *states: JobState) -> int:
        """Jobs in any of `states`."""
        query = select(func.count()).select_from(JobRow).where(JobRow.state.in_(states))
        async with self._session(write=False) as session:
            return (await session.scalar(query)) or 0

    async def ahead_of(self, job: Job) -> int:
        """Jobs received before this one and still waiting to start (queue position)."""
        query = (
            select(func.count())
            .select_from(JobRow)
            .where(
                JobRow.state == JobState.RECEIVED,
                or_(
                    JobRow.created_at < job.created_at,
                    and_(JobRow.created_at == job.created_at, JobRow.id < job.id),
                ),
            )
        )
        async with self._session(write=False) as session:
            return (await session.scalar(query)) or 0

    async def next_due(
        self,
        states: Iterable[JobState],
        *,
        platforms: Iterable[Platform] | None = None,
        now: datetime | None = None,
    ) -> datetime | None:
        """When the next job in `states` becomes claimable (its attempt is due and its
        lease, if any, has run out); None when there is no such job."""
        now = _aware(now or self._clock())
        held = and_(JobRow.lease_owner.is_not(None), JobRow.lease_expires_at > now)
        later = func.greatest if self.dialect == "postgresql" else func.max  # of two values
        ready_at = case(
            (held, later(JobRow.next_attempt_at, JobRow.lease_expires_at)),
            else_=JobRow.next_attempt_at,
        )
        query = select(type_coerce(func.min(ready_at), UTCDateTime())).where(
            JobRow.state.in_(list(states)), *_of_platforms(platforms)
        )
        async with self._session(write=False) as session:
            return await session.scalar(query)

    async def jobs_of(self, platform: Platform, workspace: str, requester: str) -> list[Job]:
        """This person's jobs not yet delivered, oldest first (`/transcribe status`)."""
        query = (
            select(JobRow)
            .where(
                JobRow.platform == platform,
                JobRow.workspace == workspace,
                JobRow.requester == requester,
                JobRow.state != JobState.DELIVERED,
            )
            .order_by(JobRow.created_at, JobRow.id)
        )
        async with self._session(write=False) as session:
            return [_job(row) for row in (await session.scalars(query)).all()]

    async def recent(self, limit: int = 50) -> list[Job]:
        """The newest jobs, delivered or not, newest first."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        async with self._session(write=False) as session:
            return [_job(row) for row in (await session.scalars(query)).all()]

    async def counts_by_state(self) -> dict[JobState, int]:
        """Jobs per state, every state present (for metrics)."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        counts = dict.fromkeys(JobState, 0)
        async with self._session(write=False) as session:
            for state, count in await session.execute(query):
                counts[state] = count
        return counts

    # -- deployment secrets --------------------------------------------------------------

    async def deployment_secret(self, name: str) -> str:
        """A random secret made the first time it is asked for and the same ever after,
        for every replica on this database (the AssemblyAI webhook's auth header)."""
        insert = (
            self._insert(DeploymentSecretRow)
            .values(name=name, value=secrets.token_urlsafe(32), created_at=self._clock())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(DeploymentSecretRow.value).where(DeploymentSecretRow.name == name)
        async with self._session() as session:
            await session.execute(insert)
            value: str = (await session.scalars(query)).one()
        return value

    # -- per-channel settings ----------------------------------------------------------

    async def channel_settings(
        self, platform: Platform, workspace: str, channel: str
    ) -> ChannelSettings | None:
        """The channel's settings, None if nobody set them. Every message in a channel asks,
        so answers are kept for `SETTINGS_TTL` seconds: a change made through this store
        shows at once, one made by another replica within that time."""
        key = (platform, workspace, channel)
        cached = self._settings_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        query = select(ChannelSettingsRow).where(
            ChannelSettingsRow.platform == platform,
            ChannelSettingsRow.workspace == workspace,
            ChannelSettingsRow.channel == channel,
        )
        async with self._session(write=False) as session:
            row = (await session.scalars(query)).one_or_none()
            found = None if row is None else _settings(row)
        if len(self._settings_cache) > 10_000:
            self._settings_cache.clear()
        self._settings_cache[key] = (time.monotonic() + SETTINGS_TTL, found)
        return found

    async def set_auto_transcribe(
        self, platform: Platform, workspace: str, channel: str, enabled: bool, *, updated_by: str
    ) -> ChannelSettings:
        """Turn automatic transcription in a channel on or off (`/transcribe on|off`)."""
        insert = self._insert(ChannelSettingsRow).values(
            platform=platform,
            workspace=workspace,
            channel=channel,
            auto_transcribe=enabled,
            updated_by=updated_by,
            updated_at=self._clock(),
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_={
                "auto_transcribe": insert.excluded.auto_transcribe,
                "updated_by": insert.excluded.updated_by,
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(ChannelSettingsRow)
        async with self._session() as session:
            row = (await session.scalars(upsert, execution_options=_RETURNING)).one()
            saved = _settings(row)
        self._settings_cache[(platform, workspace, channel)] = (
            time.monotonic() + SETTINGS_TTL,
            saved,
        )
        return saved

    # -- plumbing ------------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction. Losing the database mid-run becomes `DatabaseUnavailable`."""
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
                yield session
        except _LOST as exc:
            raise DatabaseUnavailable(self.url, describe(exc, self._url)) from exc

    def _insert(self, model: type[Base]) -> Any:
        # INSERT ... ON CONFLICT is spelled the same on both, but built per dialect.
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(model)

    async def _get_one(self, condition: ColumnElement[bool]) -> Job | None:
        async with self._session(write=False) as session:
            row = (await session.scalars(select(JobRow).where(condition))).one_or_none()
            return None if row is None else _job(row)

    async def _update_one(self, statement: Update) -> Job | None:
        async with self._session() as session:
            result = await session.scalars(
                statement.returning(JobRow), execution_options=_RETURNING
            )
            row = result.one_or_none()
            return None if row is None else _job(row)


def _new_row(record: IntakeRecord, now: datetime, *, order: int) -> dict[str, Any]:
    # created_at a few microseconds apart keeps arrival order within one batch (the queue
    # is ordered by it); the job is due at once all the same.
    return {
        "id": str(uuid4()),
        "dedupe_key": record.dedupe_key,
        "platform": record.platform,
        "workspace": record.workspace,
        "channel": record.channel,
        "thread": record.thread,
        "message": record.message,
        "requester": record.requester,
        "source": record.source.to_json(),
        "options": dict(record.options),
        "state": JobState.RECEIVED,
        "attempts": 0,
        "created_at": now + timedelta(microseconds=order),
        "updated_at": now,
        "next_attempt_at": now,
        "audio_duration": record.audio_duration,
        "posted": {},
        "direct_failed": False,
        "lease_owner": None,
        "lease_expires_at": None,
        "transcript_id": None,
        "last_error": None,
    }


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the job: no lease, or one that has run out."""
    return or_(JobRow.lease_owner.is_(None), JobRow.lease_expires_at <= now)


def _of_platforms(platforms: Iterable[Platform] | None) -> list[ColumnElement[bool]]:
    return [] if platforms is None else [JobRow.platform.in_(list(platforms))]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the job store takes aware datetimes only")
    return moment


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        thread=row.thread,
        message=row.message,
        requester=row.requester,
        source=source_from_json(row.source),
        options=dict(row.options),
        state=row.state,
        transcript_id=row.transcript_id,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_attempt_at=row.next_attempt_at,
        audio_duration=row.audio_duration,
        posted=dict(row.posted),
        direct_failed=row.direct_failed,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        dedupe_key=row.dedupe_key,
    )


def _settings(row: ChannelSettingsRow) -> ChannelSettings:
    return ChannelSettings(
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        auto_transcribe=row.auto_transcribe,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
