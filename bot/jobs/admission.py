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
from typing import Any
from uuid import uuid4

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StoreClosed
from bot.jobs.database import Database
from bot.jobs.models import JobRow, job_of
from bot.jobs.records import (
    _IN_FLIGHT,
    Admission,
    IntakeRecord,
    Job,
    JobState,
    Limits,
    Platform,
    Refusal,
)

log = logging.getLogger(__name__)

# Intakes grouped into one transaction at most (20-odd parameters a row stays far below
# SQLite's and asyncpg's limits on bound parameters).
_ADMIT_BATCH = 200

_Pending = tuple[IntakeRecord, Limits | None, "asyncio.Future[Admission]"]


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

    async def admit(self, record: IntakeRecord, limits: Limits | None = None) -> Admission:
        """`intake` with the limits checked in the same transaction, grouped with the
        intakes arriving meanwhile."""
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._pending.append((record, limits, future))
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
                for _record, _limits, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else StoreClosed())
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_record, _limits, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _admit_batch(self, batch: list[_Pending]) -> list[Admission]:
        records = [record for record, _limits, _future in batch]
        keys = {record.dedupe_key for record in records}
        now = self._db.clock()
        async with self._db.session(durable=True) as session:
            found = await session.scalars(_EXISTING, {"keys": list(keys)})
            existing = {row.dedupe_key: job_of(row) for row in found}
            users, channels = await _in_flight_counts(session, records)
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
                # One cached statement executed for many rows (SQLAlchemy's "insertmany
                # values"), on the table rather than the ORM entity: what a new row holds
                # is known, so only the keys that went in come back.
                inserted = await session.execute(self._insert, list(new_rows.values()))
                went_in = set(inserted.scalars())
                created = {key: _job_of_new(new_rows[key]) for key in went_in}
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
        "options": record.options.to_json(),
        "state": JobState.RECEIVED,
        "attempts": 0,
        "polls": 0,
        "created_at": now + timedelta(microseconds=order),
        "updated_at": now,
        "next_attempt_at": now,
        "audio_duration": record.audio_duration,
        "posted": {},
        "direct_failed": False,
        "lease_owner": None,
        "lease_expires_at": None,
        "transcript_id": None,
        "submitted_at": None,
        "audio_url": None,
        "submit_started_at": None,
        "last_error": None,
    }
