"""Taking jobs in: one row per dedupe key, with the per-person and per-channel limits
checked in the same transaction.

Calls that arrive while a transaction is under way are grouped into the next one (group
commit), so a burst of events costs a few transactions instead of one per event; each
call still returns only once its job is committed (persist before acknowledging).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Final
from uuid import uuid4

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StoreClosed
from bot.jobs.database import Database
from bot.jobs.models import JobRow, UsageRow, job_of
from bot.jobs.records import (
    _IN_FLIGHT,
    Admission,
    Budget,
    IntakeRecord,
    Job,
    JobState,
    Limits,
    Platform,
    Refusal,
)
from bot.jobs.usage import UsageLedger, month_start

log = logging.getLogger(__name__)

# Intakes grouped into one transaction at most (20-odd parameters a row stays far below
# SQLite's and asyncpg's limits on bound parameters).
_ADMIT_BATCH = 200
#: The lock PostgreSQL replicas take to read a month's usage and add to it in one step
#: (any fixed 64-bit number, the same in every replica); SQLite's writer lock does that.
_BUDGET_LOCK: Final = 0x7468_7265_6164_6275  # "threadbu"

_Pending = tuple[IntakeRecord, Limits | None, "Budget | None", "asyncio.Future[Admission]"]


def needed_seconds(record: IntakeRecord, longest: float) -> tuple[float, bool]:
    """The most seconds `record` can bill, and whether that is its length (measured by the
    platform) rather than the limit of what any job may run."""
    if record.options.reuse_transcript:
        # A redo that takes over the transcript it redoes (renamed speakers, a
        # translation) has AssemblyAI transcribe nothing: nothing to reserve.
        return 0.0, True
    start = (record.options.audio_start_from or 0) / 1000
    end = record.options.audio_end_at
    if record.audio_duration is None:
        span = longest if end is None else min(longest, end / 1000 - start)
        return max(0.0, span), False
    stop = record.audio_duration if end is None else min(record.audio_duration, end / 1000)
    return max(0.0, min(longest, stop - start)), True


class Admissions:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[_Pending] = []
        table = JobRow.__table__
        self._insert = (
            db.insert(table)  # type: ignore[arg-type]
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.dedupe_key)
        )
        self._admitter: asyncio.Task[None] | None = None

    async def intake(self, record: IntakeRecord) -> tuple[Job, bool]:
        """Persist a new job, or find the one already made for the same dedupe key.

        Returns the job and whether this call created it. Concurrent intakes of one
        key make one row, and every caller gets that row back.
        """
        admission = await self.admit(record)
        assert admission.job is not None  # no limits, so never refused
        return admission.job, admission.created

    async def admit(
        self, record: IntakeRecord, limits: Limits | None = None, budget: Budget | None = None
    ) -> Admission:
        """`intake` with the limits and the workspace's monthly budget checked in the same
        transaction, grouped with the intakes arriving meanwhile. Within a budget a job
        reserves what it may bill; one whose length is not known gets what is left when
        that is less (and is transcribed up to it: `Job.budget_seconds`)."""
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._pending.append((record, limits, budget, future))
        if self._admitter is None or self._admitter.done():
            self._admitter = asyncio.create_task(self._admit_pending())
        return await asyncio.shield(future)

    async def drain(self, grace: float) -> None:
        """Let queued intakes commit (before the database closes), `grace` seconds at most."""
        if self._admitter is not None and not self._admitter.done():
            await asyncio.wait([self._admitter], timeout=grace)

    async def _admit_pending(self) -> None:
        while self._pending:
            batch = self._pending[:_ADMIT_BATCH]
            del self._pending[:_ADMIT_BATCH]
            try:
                outcomes = await self._admit_batch(batch)
            except BaseException as exc:
                for _record, _limits, _budget, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else StoreClosed())
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_record, _limits, _budget, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _admit_batch(self, batch: list[_Pending]) -> list[Admission]:
        records = [record for record, _limits, _budget, _future in batch]
        keys = {record.dedupe_key for record in records}
        now = self._db.clock()
        budgeted = {
            (r.platform, r.workspace) for r, _l, budget, _f in batch if budget and budget.limited
        }
        async with self._db.session(durable=True) as session:
            if budgeted and self._db.dialect == "postgresql":
                await session.execute(select(func.pg_advisory_xact_lock(_BUDGET_LOCK)))
            found = await session.scalars(_EXISTING, {"keys": list(keys)})
            existing = {row.dedupe_key: job_of(row) for row in found}
            users, channels = await _in_flight_counts(session, records)
            used = await UsageLedger.used(session, budgeted, month_start(now))
            decided: list[Admission | str] = []  # an Admission, or the key of a new row
            new_rows: dict[str, dict[str, Any]] = {}
            ledger: list[dict[str, Any]] = []
            for index, (record, limits, budget, _future) in enumerate(batch):
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
                longest = budget.longest if budget is not None else float("inf")
                need, measured = needed_seconds(record, longest)
                reserve, cap = need, None
                if budget is not None and budget.limited:
                    spent = (record.platform, record.workspace)
                    left = max(0.0, budget.seconds - used[spent])
                    if need > left and (measured or left < budget.min_slice):
                        refused = Admission(
                            None,
                            False,
                            Refusal.BUDGET,
                            left=left,
                            needed=need if measured else None,
                        )
                        decided.append(refused)
                        continue
                    reserve = min(need, left)
                    cap = None if measured else reserve
                    used[spent] += reserve
                users[user] = users.get(user, 0) + 1
                channels[channel] = channels.get(channel, 0) + 1
                row = _new_row(record, now, order=index, budget_seconds=cap)
                new_rows[key] = row
                ledger.append(
                    UsageLedger.row(
                        row["id"],
                        platform=record.platform,
                        workspace=record.workspace,
                        channel=record.channel,
                        person=record.requester,
                        created_at=now,
                        reserved=reserve if reserve != float("inf") else 0.0,  # no limits
                    )
                )
                decided.append(key)
            created: dict[str, Job] = {}
            if new_rows:
                # One cached statement executed for many rows (SQLAlchemy's "insertmany
                # values"), on the table rather than the ORM entity: what a new row holds
                # is known, so only the keys that went in come back.
                inserted = await session.execute(self._insert, list(new_rows.values()))
                went_in = set(inserted.scalars())
                created = {key: _job_of_new(new_rows[key]) for key in went_in}
                made = {job.id for job in created.values()}
                entries = [entry for entry in ledger if entry["job_id"] in made]
                if entries:
                    await session.execute(self._db.insert(UsageRow).values(entries))
                lost = set(new_rows) - went_in
                if lost:
                    # Another replica committed these keys meanwhile (PostgreSQL waited).
                    again = select(JobRow).where(JobRow.dedupe_key.in_(lost))
                    existing |= {
                        row.dedupe_key: job_of(row) for row in await session.scalars(again)
                    }
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
    session: AsyncSession, records: list[IntakeRecord]
) -> tuple[dict[tuple[Platform, str, str], int], dict[tuple[Platform, str, str], int]]:
    """Jobs in flight per (platform, workspace, requester) and per channel, for the
    people and channels of `records`."""
    users: dict[tuple[Platform, str, str], int] = {}
    channels: dict[tuple[Platform, str, str], int] = {}
    params = {
        "platforms": list({r.platform for r in records}),
        "workspaces": list({r.workspace for r in records}),
    }
    for query, key, into in ((_PER_USER, "requester", users), (_PER_CHANNEL, "channel", channels)):
        values = {"values": list({getattr(r, key) for r in records})}
        for platform, workspace, value, count in await session.execute(query, params | values):
            into[(platform, workspace, value)] = count
    return users, channels


def _in_flight_query(column: Any) -> Select[Any]:
    """Unfinished jobs per (platform, workspace, `column`), for the values bound: every
    column of (platform, workspace, person or channel, state) constrained, so the count
    reads those people's unfinished jobs only, whatever else the table holds (the lists'
    cross product may count a few more groups than asked: read by key, harmless)."""
    return (
        select(JobRow.platform, JobRow.workspace, column, func.count())
        .where(
            JobRow.platform.in_(bindparam("platforms", expanding=True)),
            JobRow.workspace.in_(bindparam("workspaces", expanding=True)),
            column.in_(bindparam("values", expanding=True)),
            JobRow.state.in_(_IN_FLIGHT),
        )
        .group_by(JobRow.platform, JobRow.workspace, column)
    )


# Built once: a burst's small batches each pay only for binding their values.
_EXISTING = select(JobRow).where(JobRow.dedupe_key.in_(bindparam("keys", expanding=True)))
_PER_USER = _in_flight_query(JobRow.requester)
_PER_CHANNEL = _in_flight_query(JobRow.channel)


def _job_of_new(values: dict[str, Any]) -> Job:
    """The job a new row makes, from the values inserted (no read back)."""
    return job_of(SimpleNamespace(**values))  # type: ignore[arg-type]


def _new_row(
    record: IntakeRecord, now: datetime, *, order: int, budget_seconds: float | None = None
) -> dict[str, Any]:
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
        "options": record.options.to_json(),
        "state": JobState.RECEIVED,
        "attempts": 0,
        "polls": 0,
        "created_at": now + timedelta(microseconds=order),
        "updated_at": now,
        "next_attempt_at": now,
        "audio_duration": record.audio_duration,
        "posted": dict(record.posted),
        "direct_failed": False,
        "lease_owner": None,
        "lease_expires_at": None,
        "transcript_id": None,
        "submitted_at": None,
        "audio_url": None,
        "submit_started_at": None,
        "last_error": None,
        "redo_of": record.redo_of,
        "people": None,
        "speakers": None,
        "author": record.author if record.author != record.requester else None,
        "billed_seconds": None,
        "speech_model": None,
        "budget_seconds": budget_seconds,
        "transcript_deleted_at": None,
    }
