"""What the controls keep, on SQLite and a real PostgreSQL: a channel's settings set one at
a time, opt-outs, notices said once, the usage ledger and the monthly budget checked in
the admission's transaction (two replicas at once admit exactly the budget), and
migration 0005 carrying the old auto-transcribe switch over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.jobs import (
    Budget,
    ChannelPolicy,
    IntakeRecord,
    JobOptions,
    JobState,
    JobStore,
    Limits,
    Platform,
    Refusal,
    UrlSource,
    month_start,
    next_month,
)
from bot.jobs.database import parse_database_url

T0 = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[JobStore]:
    opened = await JobStore.open(database_url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


def record(
    n: int, *, minutes: float | None = None, workspace: str = "T01", **more: Any
) -> IntakeRecord:
    fields: dict[str, Any] = {
        "platform": Platform.SLACK,
        "workspace": workspace,
        "channel": "C01",
        "requester": f"U{n % 3}",
        "message": f"1700000000.{n:06d}",
        "source": UrlSource(f"https://media.example/{n}.mp3"),
        "audio_duration": None if minutes is None else minutes * 60,
    }
    return IntakeRecord(**(fields | more))


async def test_a_channels_settings_are_set_one_at_a_time(store: JobStore, clock: Clock) -> None:
    settings = store.settings
    on = await settings.set_redaction(
        Platform.SLACK, "T01", "C01", updated_by="U1", text=True, audio=None
    )
    assert (on.policy, on.redact_pii, on.redact_pii_audio) == (None, True, None)
    clock.now += timedelta(minutes=1)
    off = await settings.set_policy(
        Platform.SLACK, "T01", "C01", ChannelPolicy.OFF, updated_by="U2"
    )
    # Setting the policy leaves the redaction as it was, and the other way round.
    assert (off.policy, off.redact_pii, off.updated_by) == (ChannelPolicy.OFF, True, "U2")
    assert off.updated_at == T0 + timedelta(minutes=1) and off.auto_transcribe is False
    back = await settings.set_policy(Platform.SLACK, "T01", "C01", None, updated_by="U2")
    assert (back.policy, back.redact_pii, back.auto_transcribe) == (None, True, None)
    old = await settings.set_auto_transcribe(Platform.SLACK, "T01", "C02", False, updated_by="U3")
    assert old.policy is ChannelPolicy.ON_REQUEST  # the old switch, as a policy
    assert {s.channel for s in await settings.of_workspace(Platform.SLACK, "T01")} == {
        "C01",
        "C02",
    }


async def test_a_burst_of_triggers_asks_the_database_about_opt_outs_once(
    store: JobStore,
) -> None:
    """200 people's shares at once (each asks about its sharer before the acknowledgement):
    one read of the platform's opt-outs, not 200; a change is seen at once after it."""
    await store.opt_outs.set(Platform.SLACK, "U7", True)
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "opt_outs" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        people = [f"U{n}" for n in range(200)]
        answers = await asyncio.gather(
            *(store.opt_outs.opted_out(Platform.SLACK, person) for person in people)
        )
        assert [p for p, out in zip(people, answers, strict=True) if out] == ["U7"]
        assert len(reads) == 1
        assert await store.opt_outs.opted_out(Platform.SLACK, "U8") is False
        assert len(reads) == 1  # kept
        await store.opt_outs.set(Platform.SLACK, "U8", True)
        assert await store.opt_outs.opted_out(Platform.SLACK, "U8") is True
        assert len(reads) == 2  # read again after the change
    finally:
        event.remove(store.db.engine.sync_engine, "before_cursor_execute", seen)


async def test_an_opt_out_holds_until_the_person_opts_back_in(store: JobStore) -> None:
    opt_outs = store.opt_outs
    assert not await opt_outs.opted_out(Platform.SLACK, "U1")
    assert await opt_outs.set(Platform.SLACK, "U1", True)
    assert not await opt_outs.set(Platform.SLACK, "U1", True)  # already
    assert await opt_outs.opted_out(Platform.SLACK, "U1")
    assert not await opt_outs.opted_out(Platform.DISCORD, "U1")  # per platform
    assert await opt_outs.set(Platform.SLACK, "U1", False)
    assert not await opt_outs.opted_out(Platform.SLACK, "U1")


async def test_a_notice_is_new_exactly_once_across_replicas(
    database_url: str, clock: Clock
) -> None:
    a = await JobStore.open(database_url, clock=clock)
    b = await JobStore.open(database_url, clock=clock)
    try:
        firsts = await asyncio.gather(*(s.notices.first("budget:T01:80") for s in (a, b, a, b)))
        assert sorted(firsts) == [False, False, False, True]
        clock.now += timedelta(days=500)
        assert await a.notices.prune(timedelta(days=400)) == 1
        assert await b.notices.first("budget:T01:80")  # pruned: new again
    finally:
        await a.close()
        await b.close()


async def test_the_ledger_settles_what_each_job_cost(store: JobStore, clock: Clock) -> None:
    budget = Budget(None, longest=4 * HOUR)
    one = (await store.admission.admit(record(1, minutes=30), None, budget)).job
    two = (await store.admission.admit(record(2, channel="C02"), None, budget)).job
    three = (await store.admission.admit(record(3), None, budget)).job
    assert one and two and three
    start = month_start(T0)
    report = await store.usage.report(Platform.SLACK, "T01", start)
    # Nothing billed yet; the three hold their length, or the most they may run.
    assert (report.billed, report.in_progress, report.reserved) == (0.0, 3, 30 * 60 + 8 * HOUR)
    assert await store.usage.settle(one.id, 1795.0, "assemblyai-stt-3-7")
    assert await store.usage.settle(two.id, 600.0, "universal-2")
    assert await store.usage.settle(three.id, 0.0, None)  # failed: nothing billed
    # A job that fails after its transcript was billed keeps what it cost.
    assert not await store.usage.settle(one.id, 0.0, None, only_unsettled=True)
    report = await store.usage.report(Platform.SLACK, "T01", start)
    assert report.billed == 2395.0 and report.in_progress == 0 and report.jobs == 3
    assert report.by_channel == (("C01", 1795.0), ("C02", 600.0))
    assert report.by_person == (("U1", 1795.0), ("U2", 600.0))
    assert report.by_model == (("assemblyai-stt-3-7", 1795.0), ("universal-2", 600.0))
    # The ledger outlives the jobs (JOB_RETENTION_DAYS) until USAGE_RETENTION_DAYS.
    await store.delete(one.id)
    assert (await store.usage.report(Platform.SLACK, "T01", start)).billed == 2395.0
    clock.now += timedelta(days=401)
    assert await store.usage.prune(timedelta(days=400)) == 3


async def test_a_budget_admits_measured_recordings_that_fit_and_cuts_unmeasured_ones(
    store: JobStore,
) -> None:
    budget = Budget(1.0, longest=4 * HOUR)  # one hour a month
    admit = store.admission.admit
    forty = await admit(record(1, minutes=40), None, budget)
    assert forty.job is not None and forty.job.budget_seconds is None  # measured: not cut
    thirty = await admit(record(2, minutes=30), None, budget)
    assert (thirty.refusal, thirty.left, thirty.needed) == (Refusal.BUDGET, 20 * 60, 30 * 60)
    link = await admit(record(3), None, budget)  # length unknown: what is left
    assert link.job is not None and link.job.budget_seconds == 20 * 60
    used_up = await admit(record(4), None, budget)
    assert (used_up.refusal, used_up.left, used_up.needed) == (Refusal.BUDGET, 0.0, None)
    # Another workspace has its own budget; a retried event finds its job, refused or not.
    elsewhere = await admit(record(5, minutes=59, workspace="T02"), None, budget)
    assert elsewhere.job is not None
    again = await admit(record(1, minutes=40), None, budget)
    assert again.job == forty.job and not again.created
    # What a link did not use comes back when it is settled.
    await store.usage.settle(link.job.id, 5 * 60, "universal-2")
    assert (await admit(record(6, minutes=15), None, budget)).job is not None
    # Next month starts afresh.
    assert next_month(T0) == datetime(2026, 4, 1, tzinfo=UTC)


async def test_two_replicas_crossing_the_budget_at_once_admit_exactly_the_budget(
    database_url: str, clock: Clock
) -> None:
    """Forty recordings of 10 minutes against 3 hours, from two replicas at once: 18 are
    taken, the others refused, and the ledger holds exactly 3 hours."""
    replicas = [await JobStore.open(database_url, clock=clock) for _ in range(2)]
    budget = Budget(3.0, longest=4 * HOUR)
    limits = Limits(per_user=1000, per_channel=1000)
    try:
        outcomes = await asyncio.gather(
            *(
                replicas[n % 2].admission.admit(record(n, minutes=10), limits, budget)
                for n in range(40)
            )
        )
        taken = [o for o in outcomes if o.job is not None]
        refused = [o for o in outcomes if o.refusal is Refusal.BUDGET]
        assert (len(taken), len(refused)) == (18, 22)
        report = await replicas[0].usage.report(Platform.SLACK, "T01", month_start(T0))
        assert report.reserved == 3 * HOUR and report.jobs == 18
    finally:
        for replica in replicas:
            await replica.close()


async def test_forgotten_jobs_and_the_jobs_of_a_message(store: JobStore) -> None:
    made = (await store.admission.admit(record(1, thread="1700000000.000009"))).job
    assert made is not None
    await store.queue.record_posted(made.id, "status", "1700000099.000001")
    found = store.of_messages
    assert [j.id for j in await found(Platform.SLACK, "T01", ["C01"], [made.message or ""])] == [
        made.id
    ]
    # Its thread, or one of its posts, names it too; another channel does not.
    assert await found(Platform.SLACK, "T01", ["C01"], ["1700000000.000009"])
    assert await found(Platform.SLACK, "T01", ["C01"], ["1700000099.000001"])
    assert not await found(Platform.SLACK, "T01", ["C02"], ["1700000099.000001"])
    forgotten = await store.queue.transition(made.id, None, JobState.RECEIVED, JobState.FORGOTTEN)
    assert forgotten is not None
    assert not await found(Platform.SLACK, "T01", ["C01"], [made.message or ""])
    assert await store.jobs_of(Platform.SLACK, "T01", made.requester) == []
    assert await store.delete(made.id) and await store.get(made.id) is None


async def test_migration_0005_turns_the_switch_into_a_policy(tmp_path: Path) -> None:
    """A database at 0003 with a channel switched off and one on: after the upgrade the
    first is on-request, the second auto, and nothing else is set."""
    from alembic import command

    from bot.jobs.database import _alembic_config

    url = parse_database_url(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0003"))
        await conn.execute(
            text(
                "INSERT INTO channel_settings VALUES "
                "('slack', 'T01', 'C-off', 0, 'U1', '2025-01-01 00:00:00.000000'), "
                "('slack', 'T01', 'C-on', 1, 'U1', '2025-01-01 00:00:00.000000')"
            )
        )
    await engine.dispose()
    store = await JobStore.open(url)
    try:
        off = await store.settings.get(Platform.SLACK, "T01", "C-off")
        on = await store.settings.get(Platform.SLACK, "T01", "C-on")
        assert off is not None and on is not None
        assert (off.policy, on.policy) == (ChannelPolicy.ON_REQUEST, ChannelPolicy.AUTO)
        assert (off.redact_pii, off.redact_pii_audio) == (None, None)
    finally:
        await store.close()
    assert JobOptions.from_json({"redaction": {"policies": ["phone_number"]}}).redaction
