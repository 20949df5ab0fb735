"""The queue side of the job store: leases, due times and state changes.

Every change that could race is a compare-and-set: an UPDATE whose WHERE clause says what
the row must still look like (its state, its lease holder). Two writers racing for the
same change therefore end with exactly one winner, who gets the new `Job` back, while the
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

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final, Unpack

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    Update,
    and_,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.jobs.database import RETURNING, Database
from bot.jobs.models import JobRow, UTCDateTime, job_of
from bot.jobs.records import DeliveryStep, Job, JobFields, JobState, Platform

log = logging.getLogger(__name__)

#: Delivery step names: they become JSON keys (and, on SQLite, part of a JSON path).
_STEP = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


#: The lock PostgreSQL replicas take to count the slots towards AssemblyAI and claim
#: new jobs in one step (any fixed 64-bit number, the same in every replica).
_GATE_LOCK: Final = 0x7468_7265_6164_6761  # "threadga"
#: What holds a slot towards AssemblyAI: a job uploading or at AssemblyAI, and a new one
#: a worker has leased to start it.
_IN_SLOT: Final = (JobState.FETCHING, JobState.SUBMITTED)

Moment = datetime | ColumnElement[datetime]


class JobQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _now(self, now: datetime | None) -> datetime:
        return aware(now or self._db.clock())

    def _lease_now(self, now: datetime | None) -> Moment:
        """The time leases are measured against: `now` when given (tests), else the
        database's clock where replicas may run on several machines, else ours."""
        if now is not None:
            return aware(now)
        if self._db.database_clock:
            return func.now()
        return aware(self._db.clock())

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
        async with self._db.session() as session:
            return await self._claim(
                session, owner, lease_seconds, list(states), limit, self._lease_now(now), platforms
            )

    async def claim_new(
        self,
        owner: str,
        *,
        lease_seconds: float,
        cap: int,
        limit: int,
        now: datetime | None = None,
        platforms: Iterable[Platform] | None = None,
    ) -> list[Job]:
        """Lease new jobs, oldest first, as many as the `cap` of slots towards AssemblyAI
        leaves (and `limit` at most). The slots are counted, and the jobs claimed, in one
        transaction that every replica serialises on, so the cap holds across replicas."""
        jobs, _free = await self.claim_new_counted(
            owner, lease_seconds=lease_seconds, cap=cap, limit=limit, now=now, platforms=platforms
        )
        return jobs

    async def claim_new_counted(
        self,
        owner: str,
        *,
        lease_seconds: float,
        cap: int,
        limit: int,
        now: datetime | None = None,
        platforms: Iterable[Platform] | None = None,
    ) -> tuple[list[Job], int]:
        """`claim_new`, and the slots still free after it (the worker's loop needs both,
        and counting them again would be another query)."""
        moment = self._lease_now(now)
        async with self._db.session() as session:
            if self._db.dialect == "postgresql":
                await session.execute(select(func.pg_advisory_xact_lock(_GATE_LOCK)))
            free = cap - await self._slots_taken(session, moment)
            if free <= 0 or limit <= 0:
                return [], max(0, free)
            jobs = await self._claim(
                session,
                owner,
                lease_seconds,
                [JobState.RECEIVED],
                min(free, limit),
                moment,
                platforms,
            )
            return jobs, free - len(jobs)

    async def slots_taken(self, *, now: datetime | None = None) -> int:
        """Slots towards AssemblyAI in use, by every replica."""
        async with self._db.session(write=False) as session:
            return await self._slots_taken(session, self._lease_now(now))

    @staticmethod
    async def _slots_taken(session: AsyncSession, moment: Moment) -> int:
        """Jobs uploading or at AssemblyAI, plus new ones leased to start: two counts on
        (state, lease_expires_at), neither reading the jobs that wait (a lease is always
        set and cleared together with its owner)."""
        in_slot = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.state.in_(_IN_SLOT))
            .scalar_subquery()
        )
        starting = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.state == JobState.RECEIVED, JobRow.lease_expires_at > moment)
            .scalar_subquery()
        )
        return (await session.scalar(select(in_slot + starting))) or 0

    async def _claim(
        self,
        session: AsyncSession,
        owner: str,
        lease_seconds: float,
        states: list[JobState],
        limit: int,
        moment: Moment,
        platforms: Iterable[Platform] | None,
    ) -> list[Job]:
        # The new jobs are taken in arrival order, walking (state, created_at) from the
        # oldest; the others are those due, found by (state, next_attempt_at), then
        # sorted (few). SQLite keeps no statistics to choose by: the terms that must not
        # pick its index are marked (`unindexed`).
        arrival = states == [JobState.RECEIVED]
        due = and_(
            JobRow.state == states[0] if len(states) == 1 else JobRow.state.in_(states),
            (unindexed(JobRow.next_attempt_at) if arrival else JobRow.next_attempt_at) <= moment,
            free(moment),
            *of_platforms(platforms),
        )
        pick = (
            select(JobRow.id)
            .where(due)
            .order_by(JobRow.created_at, JobRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock
        )
        # The same, as a compare-and-set on the rows picked: found by their ids only.
        still_due = and_(
            unindexed(JobRow.state).in_(states),
            unindexed(JobRow.next_attempt_at) <= moment,
            free(moment),
            *of_platforms(platforms),
        )
        lease = {
            "lease_owner": owner,
            "lease_expires_at": moment + timedelta(seconds=lease_seconds),
            "updated_at": self._db.clock(),
        }
        ids = list((await session.scalars(pick)).all())
        if not ids:
            return []
        # `due` again: the UPDATE is a compare-and-set on its own, whatever the locking.
        claim = update(JobRow).where(JobRow.id.in_(ids), still_due).values(lease).returning(JobRow)
        rows = (await session.scalars(claim, execution_options=RETURNING)).all()
        return sorted((job_of(row) for row in rows), key=lambda job: (job.created_at, job.id))

    async def lease(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Lease one job, due or not, if nobody holds it; None if somebody does."""
        moment = self._lease_now(now)
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state != JobState.DELIVERED, free(moment))
            .values(lease_owner=owner, lease_expires_at=moment + timedelta(seconds=lease_seconds))
        )

    async def renew(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Extend `owner`'s lease; None if the job is no longer leased to it."""
        moment = self._lease_now(now)
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner)
            .values(lease_expires_at=moment + timedelta(seconds=lease_seconds))
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
            "next_attempt_at": aware(next_attempt_at),
            "updated_at": self._db.clock(),
        }
        if error is not None:
            values |= {"attempts": JobRow.attempts + 1, "last_error": error}
        return await self._update_one(
            update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner).values(values)
        )

    async def poll_later(self, job_id: str, owner: str, when: datetime) -> Job | None:
        """Release a submitted job until its next poll, counting the poll just made."""
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner)
            .values(
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=aware(when),
                polls=JobRow.polls + 1,
                updated_at=self._db.clock(),
            )
        )

    async def claim_now(
        self, job_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> Job | None:
        """Lease a submitted job at once, due now, if nobody holds it (a webhook said its
        transcript is done); None if somebody does or it is no longer submitted."""
        moment = self._lease_now(now)
        return await self._update_one(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == JobState.SUBMITTED, free(moment))
            .values(
                next_attempt_at=self._now(now),
                lease_owner=owner,
                lease_expires_at=moment + timedelta(seconds=lease_seconds),
            )
        )

    async def make_due(self, job_id: str, *, now: datetime | None = None) -> Job | None:
        """Bring the job's next attempt forward to now (a webhook said it is done)."""
        now = self._now(now)
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
            aware(fields["next_attempt_at"])
        values: dict[str, Any] = {**fields, "state": to_state, "updated_at": self._db.clock()}
        condition = and_(JobRow.id == job_id, JobRow.state.in_(sources))
        if owner is not None:
            condition = and_(condition, JobRow.lease_owner == owner)
        if owner is None or release:
            values |= {"lease_owner": None, "lease_expires_at": None}
        job = await self._update_one(update(JobRow).where(condition).values(values))
        if job is not None:
            log.info("job %s -> %s", job.id, to_state.value, extra={"job": job.id})
        return job

    async def adopt_transcript(
        self, job_id: str, owner: str, parent_id: str, *, now: datetime | None = None
    ) -> Job | None:
        """Hand the transcript of the job `parent_id` (a delivered one) to `job_id`, a redo
        that needs no new transcription, which becomes submitted with it; in one
        transaction, so that one job holds a transcript at a time. None when the redo is
        no longer leased to `owner`, or the parent has no transcript to give."""
        now = self._now(now)
        try:
            async with self._db.session() as session:
                pick = select(JobRow.transcript_id, JobRow.people, JobRow.audio_duration).where(
                    JobRow.id == parent_id
                )
                found = (await session.execute(pick.with_for_update())).one_or_none()
                if found is None or found.transcript_id is None:
                    return None
                transcript_id = found.transcript_id
                await session.execute(
                    update(JobRow).where(JobRow.id == parent_id).values(transcript_id=None)
                )
                moved = (
                    update(JobRow)
                    .where(
                        JobRow.id == job_id,
                        JobRow.lease_owner == owner,
                        JobRow.state.in_((JobState.RECEIVED, JobState.FETCHING)),
                    )
                    .values(
                        state=JobState.SUBMITTED,
                        transcript_id=transcript_id,
                        submitted_at=now,
                        next_attempt_at=now,
                        people=found.people,
                        attempts=0,
                        polls=0,
                        audio_duration=found.audio_duration,
                        updated_at=self._db.clock(),
                    )
                    .returning(JobRow)
                )
                row = (await session.scalars(moved, execution_options=RETURNING)).one_or_none()
                if row is None:
                    raise _Undone  # roll the parent back too
                job = job_of(row)
        except _Undone:
            return None
        log.info("job %s took over transcript %s from job %s", job_id, transcript_id, parent_id)
        return job

    async def record_posted(
        self, job_id: str, step: DeliveryStep | str, message_id: str, *, owner: str | None = None
    ) -> Job | None:
        """Record that delivery step `step` posted message `message_id`, merged into
        `posted` in one statement (other steps' entries are kept). None if the job is
        gone or, with an `owner`, no longer leased to it."""
        step = str(step)
        if not _STEP.fullmatch(step):
            raise ValueError(f"delivery step names match {_STEP.pattern}, got {step!r}")
        if self._db.dialect == "postgresql":
            entry = func.jsonb_build_object(literal(step, String), literal(message_id, String))
            merged: ColumnElement[Any] = JobRow.posted.op("||", return_type=postgresql.JSONB)(entry)
        else:
            merged = func.json_set(JobRow.posted, f'$."{step}"', message_id)
        condition = JobRow.id == job_id
        if owner is not None:
            condition = and_(condition, JobRow.lease_owner == owner)
        return await self._update_one(
            update(JobRow).where(condition).values(posted=merged, updated_at=self._db.clock())
        )

    async def count(self, *states: JobState) -> int:
        """Jobs in any of `states` (the slots towards AssemblyAI that are taken)."""
        query = select(func.count()).select_from(JobRow).where(JobRow.state.in_(states))
        async with self._db.session(write=False) as session:
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
        moment = self._lease_now(now)
        states = list(states)
        if not states:
            return None
        # Per state, the first job nobody holds, walking (state, next_attempt_at) from
        # the earliest (it skips only the jobs held: a few hundred at most, never the
        # thousands waiting); and the held ones, by (state, lease_expires_at), ready
        # when both their attempt and their lease have come.
        parts: list[Any] = []
        for state in states:
            first = (
                select(JobRow.next_attempt_at.label("ready"))
                .where(JobRow.state == state, free(moment), *of_platforms(platforms))
                .order_by(JobRow.next_attempt_at)
                .limit(1)
                .subquery()
            )
            parts.append(select(first.c.ready))
        later = func.greatest if self._db.dialect == "postgresql" else func.max  # of two values
        parts.append(
            select(later(JobRow.next_attempt_at, JobRow.lease_expires_at).label("ready")).where(
                JobRow.state.in_(states),
                JobRow.lease_expires_at > moment,
                unindexed(JobRow.lease_owner).is_not(None),
                *of_platforms(platforms),
            )
        )
        ready = union_all(*parts).subquery()
        query = select(type_coerce(func.min(ready.c.ready), UTCDateTime()))
        async with self._db.session(write=False) as session:
            return await session.scalar(query)

    async def _update_one(self, statement: Update) -> Job | None:
        async with self._db.session() as session:
            result = await session.scalars(statement.returning(JobRow), execution_options=RETURNING)
            row = result.one_or_none()
            return None if row is None else job_of(row)


class _Undone(Exception):
    """Raised inside a transaction to roll all of it back."""


def free(now: Moment) -> ColumnElement[bool]:
    """Nobody holds the job: no lease, or one that has run out."""
    return or_(JobRow.lease_owner.is_(None), JobRow.lease_expires_at <= now)


def of_platforms(platforms: Iterable[Platform] | None) -> list[ColumnElement[bool]]:
    """Jobs of these platforms: a filter SQLite must not pick an index for (the platform
    leads the per-person and per-channel indexes, and says little)."""
    if platforms is None:
        return []
    return [unindexed(JobRow.platform).in_(list(platforms))]


class unindexed(FunctionElement[Any]):
    """A column SQLite is not to choose an index for: its documented unary `+`
    ("disqualifying WHERE clause terms"); the plain column on other databases, whose
    planners keep statistics."""

    inherit_cache = True

    def __init__(self, column: SQLColumnExpression[Any]) -> None:
        super().__init__(column)
        self.type = self.clauses.clauses[0].type


@compiles(unindexed)
def _plain(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unary_plus(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the job store takes aware datetimes only")
    return moment
