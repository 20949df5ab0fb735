"""The usage ledger: what each job reserved when it was taken in, then what AssemblyAI
billed for it, by workspace, channel, person and model.

A row is written with its job, in the admission's transaction (`reserve`), holding the
seconds the job may bill at most: its length when the platform measured it, else what
the limits and the monthly budget let it run to. It is settled once AssemblyAI's answer is
known (`settle`): the seconds billed (the audio's duration within the requested window)
and the model, or 0 for a transcript that failed (AssemblyAI bills only completed ones).
Until then the reservation counts, so that jobs in flight cannot overrun a budget
together. Rows outlive their jobs (JOB_RETENTION_DAYS) and are pruned after
USAGE_RETENTION_DAYS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs.database import Database
from bot.jobs.models import LlmUsageRow, UsageRow
from bot.jobs.records import Platform


def month_start(moment: datetime) -> datetime:
    """The first instant of `moment`'s calendar month, in UTC (budgets reset then)."""
    utc = moment.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A workspace's usage since `since` (the start of the month)."""

    platform: Platform
    workspace: str
    since: datetime
    #: seconds AssemblyAI billed, in all and by channel, person and model (largest first)
    billed: float
    by_channel: tuple[tuple[str, float], ...]
    by_person: tuple[tuple[str, float], ...]
    by_model: tuple[tuple[str | None, float], ...]
    #: jobs not settled yet, and the seconds they hold in reserve
    in_progress: int
    reserved: float
    #: jobs taken in, settled or not
    jobs: int
    #: questions answered through the LLM Gateway, and the tokens it counted for them
    answers: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    async def used(
        session: AsyncSession, keys: Iterable[tuple[Platform, str]], since: datetime
    ) -> dict[tuple[Platform, str], float]:
        """Seconds used or held in reserve per (platform, workspace) since `since`, in the
        caller's transaction (the admission's)."""
        wanted = set(keys)
        if not wanted:
            return {}
        spent = func.coalesce(UsageRow.billed_seconds, UsageRow.reserved_seconds)
        query = (
            select(UsageRow.platform, UsageRow.workspace, func.sum(spent))
            .where(
                UsageRow.created_at >= since,
                UsageRow.workspace.in_({workspace for _p, workspace in wanted}),
            )
            .group_by(UsageRow.platform, UsageRow.workspace)
        )
        found = {
            (platform, workspace): float(total or 0.0)
            for platform, workspace, total in await session.execute(query)
        }
        return {key: found.get(key, 0.0) for key in wanted}

    @staticmethod
    def row(
        job_id: str,
        *,
        platform: Platform,
        workspace: str,
        channel: str,
        person: str,
        created_at: datetime,
        reserved: float,
    ) -> dict[str, Any]:
        """The ledger row of a new job (inserted with the job by the admission)."""
        return {
            "job_id": job_id,
            "platform": platform,
            "workspace": workspace,
            "channel": channel,
            "person": person,
            "created_at": created_at,
            "reserved_seconds": reserved,
            "billed_seconds": None,
            "speech_model": None,
        }

    async def settle(
        self, job_id: str, billed: float, model: str | None, *, only_unsettled: bool = False
    ) -> bool:
        """Record what the job cost; with `only_unsettled`, leave a settled row alone (a
        job that fails after its transcript was billed). Idempotent; whether a row
        changed."""
        statement = update(UsageRow).where(UsageRow.job_id == job_id)
        if only_unsettled:
            statement = statement.where(UsageRow.billed_seconds.is_(None))
        values: dict[str, Any] = {"billed_seconds": max(0.0, billed)}
        if model is not None:
            values["speech_model"] = model
        async with self._db.session() as session:
            result = await session.execute(statement.values(values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def billed_since(self, platform: Platform, workspace: str, since: datetime) -> float:
        """Seconds AssemblyAI billed the workspace since `since` (settled rows only)."""
        query = select(func.coalesce(func.sum(UsageRow.billed_seconds), 0.0)).where(
            UsageRow.platform == platform,
            UsageRow.workspace == workspace,
            UsageRow.created_at >= since,
        )
        async with self._db.session(write=False) as session:
            return float((await session.scalar(query)) or 0.0)

    async def report(self, platform: Platform, workspace: str, since: datetime) -> UsageReport:
        mine = (
            UsageRow.platform == platform,
            UsageRow.workspace == workspace,
            UsageRow.created_at >= since,
        )
        billed = func.coalesce(func.sum(UsageRow.billed_seconds), 0.0)

        async def grouped(column: Any, session: AsyncSession) -> tuple[tuple[Any, float], ...]:
            query = (
                select(column, billed)
                .where(*mine, UsageRow.billed_seconds > 0)
                .group_by(column)
                .order_by(billed.desc(), column)
            )
            return tuple((key, float(total)) for key, total in await session.execute(query))

        pending = select(
            func.count(), func.coalesce(func.sum(UsageRow.reserved_seconds), 0.0)
        ).where(*mine, UsageRow.billed_seconds.is_(None))
        totals = select(func.count(), billed).where(*mine)
        llm = select(
            func.count(),
            func.coalesce(func.sum(LlmUsageRow.input_tokens), 0),
            func.coalesce(func.sum(LlmUsageRow.output_tokens), 0),
        ).where(
            LlmUsageRow.platform == platform,
            LlmUsageRow.workspace == workspace,
            LlmUsageRow.created_at >= since,
        )
        async with self._db.session(write=False) as session:
            jobs, total = (await session.execute(totals)).one()
            waiting, reserved = (await session.execute(pending)).one()
            answers, input_tokens, output_tokens = (await session.execute(llm)).one()
            return UsageReport(
                platform=platform,
                workspace=workspace,
                since=since,
                billed=float(total or 0.0),
                by_channel=await grouped(UsageRow.channel, session),
                by_person=await grouped(UsageRow.person, session),
                by_model=await grouped(UsageRow.speech_model, session),
                in_progress=int(waiting),
                reserved=float(reserved or 0.0),
                jobs=int(jobs),
                answers=int(answers),
                input_tokens=int(input_tokens),
                output_tokens=int(output_tokens),
            )

    async def tokens(
        self,
        *,
        platform: Platform,
        workspace: str,
        channel: str,
        person: str,
        purpose: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        """Record what one LLM Gateway answer used (a question's)."""
        row = {
            "platform": platform,
            "workspace": workspace,
            "channel": channel,
            "person": person,
            "purpose": purpose,
            "model": model,
            "input_tokens": max(0, input_tokens),
            "output_tokens": max(0, output_tokens),
            "created_at": self._db.clock(),
        }
        async with self._db.session() as session:
            await session.execute(self._db.insert(LlmUsageRow).values(row))

    async def prune(self, older_than: timedelta) -> int:
        cutoff = self._db.clock() - older_than
        async with self._db.session() as session:
            result = await session.execute(delete(UsageRow).where(UsageRow.created_at < cutoff))
            await session.execute(delete(LlmUsageRow).where(LlmUsageRow.created_at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
