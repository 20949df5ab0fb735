"""The durable job store (SQLite by default, PostgreSQL for several replicas).

    store = await JobStore.open("sqlite+aiosqlite:///./threadscribe.db")
    admission = await store.admission.admit(record, limits)      # before acknowledging
    for job in await store.queue.claim("worker-1", lease_seconds=60, states=[...]):
        ...
    job = await store.get(job_id)

`JobStore` opens the database (creating or upgrading its schema) and answers the reads;
its parts do the rest: `queue` (leases, due times, state changes: `bot.jobs.queue`),
`admission` (taking jobs in under the limits: `bot.jobs.admission`), `settings` and
`secrets` (per channel, per deployment: `bot.jobs.settings`), `opt_outs` and `notices`
(`bot.jobs.privacy`), `usage` (the ledger of what jobs cost: `bot.jobs.usage`). Every
change is one transaction that happens whole or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.engine import URL

from bot.errors import DatabaseUnavailable
from bot.jobs.admission import Admissions
from bot.jobs.database import (
    DEFAULT_DATABASE_URL,
    UNAVAILABLE_ERRORS,
    Clock,
    Database,
    check_sqlite_folder,
    describe,
    make_engine,
    migrate,
    parse_database_url,
    safe_url,
    utcnow,
)
from bot.jobs.models import JobRow, job_of
from bot.jobs.preferences import ChannelPreferencesStore
from bot.jobs.privacy import Notices, OptOuts
from bot.jobs.queue import JobQueue
from bot.jobs.records import DeliveryStep, Job, JobState, Platform
from bot.jobs.settings import ChannelSettingsStore, DeploymentSecrets
from bot.jobs.usage import UsageLedger

log = logging.getLogger(__name__)


class JobStore:
    """Open with `await JobStore.open(url)`; close with `await store.close()` (or use it
    as an async context manager). Using a closed store raises `StoreClosed`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue = JobQueue(db)
        self.admission = Admissions(db)
        self.settings = ChannelSettingsStore(db)
        self.preferences = ChannelPreferencesStore(db)
        self.secrets = DeploymentSecrets(db)
        self.opt_outs = OptOuts(db)
        self.notices = Notices(db)
        self.usage = UsageLedger(db)

    @classmethod
    async def open(
        cls,
        url: str | URL = DEFAULT_DATABASE_URL,
        *,
        clock: Clock = utcnow,
        database_clock: bool | None = None,
        connect_timeout: float = 10.0,
        busy_timeout: float = 30.0,
    ) -> JobStore:
        """Connect, create or upgrade the schema, and return a ready store.

        `database_clock`: time leases by the database's clock (default: on PostgreSQL,
        unless a `clock` is given). Raises `InvalidDatabaseURL` for a URL that cannot
        work, `DatabaseUnavailable` when the database cannot be reached or opened,
        `SchemaTooNew` when a newer release has already upgraded it.
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
        store = cls(Database(engine, parsed, clock=clock, database_clock=database_clock))
        log.info("job store open", extra={"database": store.url})
        return store

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return self.db.url

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def __repr__(self) -> str:
        return f"<JobStore {self.url} {'closed' if self.db.closed else 'open'}>"

    async def close(self) -> None:
        await self.admission.drain(10.0)  # let queued intakes commit
        await self.db.close()

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
        await self.db.ping()

    # -- reads -------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._get_one(JobRow.id == job_id)

    async def get_by_transcript_id(self, transcript_id: str) -> Job | None:
        return await self._get_one(JobRow.transcript_id == transcript_id)

    async def redos_of(self, job_id: str) -> list[Job]:
        """The jobs that redo this one, oldest first."""
        return await self._jobs(
            select(JobRow).where(JobRow.redo_of == job_id).order_by(JobRow.created_at, JobRow.id)
        )

    async def find(self, dedupe_key: str) -> Job | None:
        """The job made for this dedupe key, if any."""
        return await self._get_one(JobRow.dedupe_key == dedupe_key)

    async def unfinished(self) -> list[Job]:
        """Every job not yet delivered, oldest first (what resumes after a restart)."""
        return await self._jobs(
            select(JobRow)
            .where(JobRow.state != JobState.DELIVERED)
            .order_by(JobRow.created_at, JobRow.id)
        )

    async def jobs_of(self, platform: Platform, workspace: str, requester: str) -> list[Job]:
        """This person's jobs not yet delivered, oldest first (`/transcribe status`)."""
        return await self._jobs(
            select(JobRow)
            .where(
                JobRow.platform == platform,
                JobRow.workspace == workspace,
                JobRow.requester == requester,
                JobRow.state.not_in((JobState.DELIVERED, JobState.FORGOTTEN)),
            )
            .order_by(JobRow.created_at, JobRow.id)
        )

    async def recent_of(
        self, platform: Platform, workspace: str, person: str, limit: int = 10
    ) -> list[Job]:
        """The person's newest jobs (asked for or shared by them), newest first, without
        those being forgotten (the Slack Home tab, Discord's overview)."""
        return await self._jobs(
            select(JobRow)
            .where(
                JobRow.platform == platform,
                JobRow.workspace == workspace,
                or_(JobRow.requester == person, JobRow.author == person),
                JobRow.state != JobState.FORGOTTEN,
            )
            .order_by(JobRow.created_at.desc(), JobRow.id)
            .limit(limit)
        )

    async def of_messages(
        self, platform: Platform, workspace: str, channels: list[str], messages: list[str]
    ) -> list[Job]:
        """The jobs of a message: made from it (its files and links), or whose thread it
        is in or whose posts it is (a status or a result, the root of a command's thread),
        in one of `channels` (on Discord a thread and its parent). Oldest first."""
        posted = [JobRow.posted[step.value].as_string() for step in DeliveryStep]
        return await self._jobs(
            select(JobRow)
            .where(
                JobRow.platform == platform,
                JobRow.workspace == workspace,
                JobRow.channel.in_(channels),
                JobRow.state != JobState.FORGOTTEN,
                or_(
                    JobRow.message.in_(messages),
                    JobRow.thread.in_(messages),
                    *(value.in_(messages) for value in posted),
                ),
            )
            .order_by(JobRow.created_at, JobRow.id)
        )

    async def delete(self, job_id: str) -> bool:
        """Delete a job's row (a forgotten job, once purged); whether it was there."""
        async with self.db.session() as session:
            result = await session.execute(delete(JobRow).where(JobRow.id == job_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delivered_in(
        self,
        platform: Platform,
        workspace: str,
        channels: Sequence[str],
        *,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """Jobs with a transcript in these channels whose result is out (created since
        `since`), newest first, at most `limit`: the recordings a question or a search is
        about. Delivered jobs, and completed ones whose result is posted while the rest of
        their delivery (the final status, the reaction, a deletion) is still under way: a
        person may answer the result the moment it shows."""
        query = select(JobRow).where(
            JobRow.platform == platform,
            JobRow.workspace == workspace,
            JobRow.channel.in_(list(channels)),
            JobRow.state.in_([JobState.DELIVERED, JobState.COMPLETED]),
            JobRow.transcript_id.is_not(None),
        )
        if since is not None:
            query = query.where(JobRow.created_at >= since)
        jobs = await self._jobs(
            query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        )
        return [
            job
            for job in jobs
            if job.state is JobState.DELIVERED or job.step_posted(DeliveryStep.RESULT) is not None
        ]

    async def recent(self, limit: int = 50) -> list[Job]:
        """The newest jobs, delivered or not, newest first."""
        return await self._jobs(
            select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        )

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
        async with self.db.session(write=False) as session:
            return (await session.scalar(query)) or 0

    async def counts_by_state(self) -> dict[JobState, int]:
        """Jobs per state, every state present (for metrics)."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        counts = dict.fromkeys(JobState, 0)
        async with self.db.session(write=False) as session:
            for state, count in await session.execute(query):
                counts[state] = count
        return counts

    # -- upkeep ------------------------------------------------------------------------

    async def prune(self, older_than: timedelta, *, batch: int = 500) -> int:
        """Delete delivered jobs (a failure ends delivered too: its notice was posted)
        last changed more than `older_than` ago, `batch` rows per transaction so that a
        large backlog never holds the database for long. Returns how many went."""
        cutoff = self.now() - older_than
        pruned = 0
        while True:
            async with self.db.session() as session:
                ids = list(
                    await session.scalars(
                        select(JobRow.id)
                        .where(JobRow.state == JobState.DELIVERED, JobRow.updated_at < cutoff)
                        .limit(batch)
                    )
                )
                if ids:
                    await session.execute(delete(JobRow).where(JobRow.id.in_(ids)))
            pruned += len(ids)
            if len(ids) < batch:
                return pruned

    def now(self) -> datetime:
        """The store's clock (injected in tests)."""
        return self.db.clock()

    async def _get_one(self, condition: ColumnElement[bool]) -> Job | None:
        async with self.db.session(write=False) as session:
            row = (await session.scalars(select(JobRow).where(condition))).one_or_none()
            return None if row is None else job_of(row)

    async def _jobs(self, query: Select[Any]) -> list[Job]:
        async with self.db.session(write=False) as session:
            return [job_of(row) for row in (await session.scalars(query)).all()]
