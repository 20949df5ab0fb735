"""The job store, on SQLite and on a real throwaway PostgreSQL server (tests/helpers/pg.py).

"Replicas" are separate JobStore instances, each with its own engine and connection
pool, on one database: what two `threadscribe run` processes would be.
"""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.errors import (
    DatabaseUnavailable,
    IllegalTransition,
    InvalidDatabaseURL,
    SchemaTooNew,
    StoreClosed,
)
from bot.jobs import (
    DEFAULT_DATABASE_URL,
    Admission,
    FileSource,
    Job,
    JobOptions,
    JobState,
    JobStore,
    Limits,
    Platform,
    Refusal,
    UrlSource,
    parse_database_url,
)
from bot.jobs.database import head_revision
from bot.jobs.models import Base
from tests.helpers.jobs import T0, Clock, record
from tests.helpers.pg import PostgresServer

RECEIVED, SUBMITTED, COMPLETED, FAILED, DELIVERED = (
    JobState.RECEIVED,
    JobState.SUBMITTED,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.DELIVERED,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


OpenStore = Callable[..., Awaitable[JobStore]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def open_store(database_url: str, clock: Clock) -> AsyncIterator[OpenStore]:
    """Open stores (replicas) on the test database; all are closed afterwards."""
    opened: list[JobStore] = []

    async def open_(url: str | None = None) -> JobStore:
        store = await JobStore.open(url or database_url, clock=clock)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> JobStore:
    return await open_store()


async def raw_query(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(parse_database_url(url))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql))
            return list(result.scalars()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def finish(store: JobStore, job: Job, state: JobState = COMPLETED) -> Job:
    """Walk a new job to `state` the way the engine would (without a lease)."""
    path = {COMPLETED: [SUBMITTED, COMPLETED], DELIVERED: [SUBMITTED, COMPLETED, DELIVERED]}
    for step in path[state]:
        moved = await store.queue.transition(job.id, None, job.state, step)
        assert moved is not None
        job = moved
    return job


# -- intake --------------------------------------------------------------------------


async def test_intake_persists_the_job_and_a_replay_finds_it(store: JobStore) -> None:
    job, created = await store.admission.intake(record(1, audio_duration=12.5))
    assert created
    assert job.state is RECEIVED
    assert job.platform is Platform.SLACK
    assert (job.workspace, job.channel, job.requester) == ("T01", "C01", "U01")
    assert (job.thread, job.message) == ("1700000000.000100", "1700000000.000001")
    assert job.source == record(1).source
    assert job.options == JobOptions(speakers_expected=2, language_code="en", formats=("srt",))
    assert (job.attempts, job.posted, job.transcript_id, job.lease_owner) == (0, {}, None, None)
    assert job.created_at == job.updated_at == job.next_attempt_at == T0
    assert job.audio_duration == 12.5
    assert job.dedupe_key == "slack:T01:C01:1700000000.000001:file:F0001"

    again, created = await store.admission.intake(record(1))
    assert not created
    assert again == job
    assert await store.get(job.id) == job
    assert await store.get("no-such-job") is None


async def test_concurrent_identical_intakes_make_one_job(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    results = await asyncio.gather(*(store.admission.intake(record(7)) for store in [a, b] * 10))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert (await a.counts_by_state())[RECEIVED] == 1


async def test_dedupe_key_tells_files_links_and_events_apart(store: JobStore) -> None:
    first, _ = await store.admission.intake(record(1))
    other_file = record(1, source=FileSource({"id": "F9999"}))
    link = record(1, source=UrlSource("https://example.org/talk.mp3"))
    command = record(1, message=None, event_id="trigger-123", source=link.source)
    command_replay = record(1, message=None, event_id="trigger-123", source=link.source)
    ids = {first.id}
    for intake in (other_file, link, command):
        job, created = await store.admission.intake(intake)
        assert created
        ids.add(job.id)
    assert len(ids) == 4
    assert (await store.admission.intake(command_replay))[1] is False
    with pytest.raises(ValueError, match="message id or the id of the triggering event"):
        record(1, message=None)


# -- claiming and leases -----------------------------------------------------------------


async def test_claim_is_exclusive_across_replicas(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    await asyncio.gather(*(a.admission.intake(record(n)) for n in range(200)))
    claims: dict[str, list[str]] = defaultdict(list)

    async def worker(store: JobStore, owner: str) -> None:
        while jobs := await store.queue.claim(owner, lease_seconds=60, states=[RECEIVED], limit=7):
            for job in jobs:
                assert job.lease_owner == owner
                claims[job.id].append(owner)

    await asyncio.gather(*(worker(s, f"{s_name}{i}") for s, s_name in [(a, "a"), (b, "b")]
                           for i in range(3)))  # fmt: skip
    assert len(claims) == 200
    assert all(len(owners) == 1 for owners in claims.values())


async def test_claim_takes_due_jobs_oldest_first(store: JobStore, clock: Clock) -> None:
    jobs = []
    for n in range(5):
        jobs.append((await store.admission.intake(record(n)))[0])
        clock.advance(1)
    first = await store.queue.claim(
        "w1", lease_seconds=1000, states=[RECEIVED], limit=2, now=at(10)
    )
    assert [job.id for job in first] == [jobs[0].id, jobs[1].id]
    # jobs[0] goes back with a backoff; jobs[1] stays leased.
    assert await store.queue.release(jobs[0].id, "w1", at(100), error="429 from AssemblyAI")
    rest = await store.queue.claim(
        "w2", lease_seconds=1000, states=[RECEIVED], limit=10, now=at(10)
    )
    assert [job.id for job in rest] == [job.id for job in jobs[2:]]
    assert await store.queue.claim("w2", lease_seconds=10, states=[RECEIVED], now=at(99)) == []
    (retry,) = await store.queue.claim("w3", lease_seconds=10, states=[RECEIVED], now=at(100))
    assert (retry.id, retry.attempts, retry.last_error) == (jobs[0].id, 1, "429 from AssemblyAI")
    assert await store.queue.claim("w4", lease_seconds=10, states=[SUBMITTED], now=at(5000)) == []


async def test_expired_lease_is_reclaimed(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    job, _ = await a.admission.intake(record())
    (mine,) = await a.queue.claim("a", lease_seconds=30, states=[RECEIVED], now=at(0))
    assert mine.lease_expires_at == at(30)
    assert await b.queue.claim("b", lease_seconds=30, states=[RECEIVED], now=at(10)) == []
    renewed = await a.queue.renew(job.id, "a", lease_seconds=30, now=at(10))
    assert renewed is not None and renewed.lease_expires_at == at(40)
    assert await b.queue.claim("b", lease_seconds=30, states=[RECEIVED], now=at(39)) == []
    # "a" died: once its lease runs out, "b" takes the job over.
    (taken,) = await b.queue.claim("b", lease_seconds=30, states=[RECEIVED], now=at(40))
    assert taken.lease_owner == "b"
    assert await a.queue.renew(job.id, "a", lease_seconds=30, now=at(41)) is None
    assert await a.queue.transition(job.id, "a", RECEIVED, SUBMITTED, transcript_id="t-a") is None
    assert await a.queue.release(job.id, "a", at(50)) is None
    moved = await b.queue.transition(job.id, "b", RECEIVED, SUBMITTED, transcript_id="t-b")
    assert moved is not None and moved.transcript_id == "t-b" and moved.lease_owner == "b"
    assert await b.get_by_transcript_id("t-b") == moved
    assert await b.get_by_transcript_id("t-a") is None


async def test_lease_poll_later_and_make_due(store: JobStore) -> None:
    job, _ = await store.admission.intake(record())
    await store.queue.claim("w", lease_seconds=10, states=[RECEIVED], now=at(0))
    later = await store.queue.poll_later(job.id, "w", at(100))
    assert later is not None
    # A poll is not a failed attempt: it has its own counter.
    assert (later.lease_owner, later.next_attempt_at, later.attempts, later.polls) == (
        None,
        at(100),
        0,
        1,
    )
    assert await store.queue.poll_later(job.id, "w", at(200)) is None  # no longer held by "w"
    # lease(): one named job, due or not, if nobody holds it.
    leased = await store.queue.lease(job.id, "x", lease_seconds=30, now=at(1))
    assert leased is not None and leased.lease_owner == "x"
    assert await store.queue.lease(job.id, "y", lease_seconds=30, now=at(2)) is None
    taken = await store.queue.lease(job.id, "y", lease_seconds=30, now=at(31))
    assert taken is not None and taken.lease_owner == "y"
    # make_due(): a webhook brings the next attempt forward, once.
    await store.queue.release(job.id, "y", at(100))
    due = await store.queue.make_due(job.id, now=at(5))
    assert due is not None and due.next_attempt_at == at(5)
    assert await store.queue.make_due(job.id, now=at(6)) is None
    delivered = await finish(store, job, DELIVERED)
    assert await store.queue.lease(delivered.id, "z", lease_seconds=30, now=at(500)) is None


async def test_queue_views(store: JobStore, clock: Clock) -> None:
    jobs = []
    for n in range(3):
        jobs.append((await store.admission.intake(record(n)))[0])
        clock.advance(1)
    other, _ = await store.admission.intake(record(9, platform=Platform.DISCORD, requester="U02"))
    assert await store.find(jobs[1].dedupe_key) == jobs[1]
    assert await store.find("slack:nothing") is None
    assert await store.queue.count(RECEIVED) == 4
    assert [await store.ahead_of(job) for job in jobs] == [0, 1, 2]
    await finish(store, jobs[0], DELIVERED)
    assert await store.queue.count(RECEIVED, DELIVERED) == 4
    assert await store.ahead_of(jobs[2]) == 1
    assert [job.id for job in await store.jobs_of(Platform.SLACK, "T01", "U01")] == [
        jobs[1].id,
        jobs[2].id,
    ]
    # next_due(): when the next job becomes claimable, leases included.
    assert await store.queue.next_due([RECEIVED], now=at(10)) == at(1)
    assert await store.queue.next_due([RECEIVED], platforms=[Platform.DISCORD], now=at(10)) == at(3)
    assert await store.queue.next_due([SUBMITTED], now=at(10)) is None
    slack = [Platform.SLACK]
    assert len(await store.queue.claim("w", lease_seconds=100, states=[RECEIVED], limit=5,
                                 platforms=slack, now=at(10))) == 2  # fmt: skip
    assert (await store.get(other.id)).lease_owner is None  # type: ignore[union-attr]
    assert await store.queue.next_due([RECEIVED], platforms=slack, now=at(10)) == at(110)


async def test_deployment_secret_is_made_once_and_shared(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    values = await asyncio.gather(*(s.secrets.get("webhook") for s in [a, b] * 5))
    assert len(set(values)) == 1
    assert len(values[0]) >= 32
    assert await a.secrets.get("another") != values[0]


# -- transitions ---------------------------------------------------------------------------


async def test_racing_transitions_have_exactly_one_winner(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    jobs = [await finish(a, (await a.admission.intake(record(n)))[0]) for n in range(10)]
    results = await asyncio.gather(
        *(s.queue.transition(job.id, None, COMPLETED, DELIVERED) for job in jobs for s in (a, b))
    )
    for job_index in range(len(jobs)):
        pair = results[2 * job_index : 2 * job_index + 2]
        assert sum(result is not None for result in pair) == 1
    assert (await a.counts_by_state())[DELIVERED] == 10


async def test_webhook_beats_poller_and_revokes_its_lease(open_store: OpenStore) -> None:
    web, poller = await open_store(), await open_store()
    job, _ = await web.admission.intake(record())
    job = await web.queue.transition(job.id, None, RECEIVED, SUBMITTED, transcript_id="t1")
    assert job is not None
    (polled,) = await poller.queue.claim("poller", lease_seconds=60, states=[SUBMITTED], now=at(5))
    assert polled.lease_owner == "poller"
    done = await web.queue.transition(job.id, None, SUBMITTED, COMPLETED, next_attempt_at=at(6))
    assert done is not None and done.state is COMPLETED and done.lease_owner is None
    # The poller's view is stale: its compare-and-set loses, its lease is gone.
    assert await poller.queue.transition(job.id, "poller", SUBMITTED, COMPLETED) is None
    assert await poller.queue.release(job.id, "poller", at(60)) is None
    # ...so the result is deliverable at once, not after the poller's next poll.
    (deliver,) = await poller.queue.claim("worker", lease_seconds=60, states=[COMPLETED], now=at(6))
    assert deliver.id == job.id


async def test_transitions_follow_the_lifecycle(store: JobStore) -> None:
    job, _ = await store.admission.intake(record())
    with pytest.raises(IllegalTransition, match="received to completed"):
        await store.queue.transition(job.id, None, RECEIVED, COMPLETED)
    with pytest.raises(TypeError, match="lease_owner"):
        await store.queue.transition(job.id, None, RECEIVED, SUBMITTED, lease_owner="x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="aware"):
        await store.queue.transition(
            job.id, None, RECEIVED, FAILED, next_attempt_at=datetime(2025, 1, 1)
        )
    # from_states is part of the compare-and-set.
    assert await store.queue.transition(job.id, None, SUBMITTED, COMPLETED) is None
    failed = await store.queue.transition(job.id, None, RECEIVED, FAILED, last_error="no audio")
    assert failed is not None and failed.last_error == "no audio"
    delivered = await store.queue.transition(job.id, None, [COMPLETED, FAILED], DELIVERED)
    assert delivered is not None and delivered.state is DELIVERED
    for state in JobState:
        # Only `/transcribe forget` changes a delivered job (its row then goes).
        assert DELIVERED.can_become(state) is (state is JobState.FORGOTTEN)
        assert not JobState.FORGOTTEN.can_become(state) or state is JobState.FORGOTTEN
    assert FAILED.can_become(DELIVERED) and SUBMITTED.can_become(SUBMITTED)
    assert RECEIVED.can_become(SUBMITTED)  # a URL needs no fetching


async def test_transition_by_owner_can_keep_or_release_the_lease(store: JobStore) -> None:
    job, _ = await store.admission.intake(record())
    await store.queue.claim("w", lease_seconds=60, states=[RECEIVED], now=at(0))
    fetching = await store.queue.transition(job.id, "w", RECEIVED, JobState.FETCHING)
    assert fetching is not None and fetching.lease_owner == "w"
    submitted = await store.queue.transition(
        job.id, "w", JobState.FETCHING, SUBMITTED, release=True, transcript_id="t", attempts=0
    )
    assert submitted is not None and submitted.lease_owner is None
    assert submitted.lease_expires_at is None


# -- delivery bookkeeping ------------------------------------------------------------------


async def test_record_posted_merges(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    job, _ = await a.admission.intake(record())
    first = await a.queue.record_posted(job.id, "status", "1700000001.000200")
    assert first is not None and first.posted == {"status": "1700000001.000200"}
    steps = [f"chunk-{n}" for n in range(10)]
    await asyncio.gather(
        *(s.queue.record_posted(job.id, step, f"m{n}") for n, (s, step) in
          enumerate(zip([a, b] * 5, steps, strict=True)))
    )  # fmt: skip
    stored = await a.get(job.id)
    assert stored is not None
    assert stored.posted == {"status": "1700000001.000200"} | {
        step: f"m{n}" for n, step in enumerate(steps)
    }
    with pytest.raises(ValueError, match="delivery step names"):
        await a.queue.record_posted(job.id, 'x"y', "m")
    assert await a.queue.record_posted(job.id, "result", "m", owner="not-the-holder") is None
    assert await a.queue.record_posted("no-such-job", "result", "m") is None


async def test_unfinished_counts_and_limits(store: JobStore, clock: Clock) -> None:
    mine = []
    for n in range(3):
        mine.append((await store.admission.intake(record(n)))[0])
        clock.advance(1)
    other, _ = await store.admission.intake(record(9, requester="U02", channel="C02"))
    await finish(store, mine[0], DELIVERED)
    await finish(store, mine[1], COMPLETED)

    unfinished = await store.unfinished()  # what resumes after a restart, oldest first
    assert [job.id for job in unfinished] == [mine[1].id, mine[2].id, other.id]
    counts = await store.counts_by_state()
    assert counts == {
        RECEIVED: 2,
        JobState.FETCHING: 0,
        SUBMITTED: 0,
        COMPLETED: 1,
        FAILED: 0,
        DELIVERED: 1,
        JobState.FORGOTTEN: 0,
    }
    # The limits count jobs in flight only (not completed or delivered), per platform:
    # U01 has exactly one, and so do C01 and C02; Discord's C01 has none.
    user_full = await store.admission.admit(record(20), Limits(per_user=1, per_channel=100))
    assert user_full == Admission(None, False, Refusal.USER_LIMIT)
    c01_full = await store.admission.admit(record(21, requester="U03"), Limits(100, 1))
    c02_full = await store.admission.admit(
        record(22, requester="U03", channel="C02"), Limits(100, 1)
    )
    assert c01_full.refusal is c02_full.refusal is Refusal.CHANNEL_LIMIT
    discord = await store.admission.admit(
        record(23, requester="U03", platform=Platform.DISCORD), Limits(100, 1)
    )
    assert discord.created and discord.refusal is None
    room = await store.admission.admit(record(24), Limits(per_user=2, per_channel=2))
    assert room.created and room.job is not None


async def test_channel_settings(store: JobStore, clock: Clock) -> None:
    assert await store.settings.get(Platform.DISCORD, "G1", "C1") is None
    on = await store.settings.set_auto_transcribe(
        Platform.DISCORD, "G1", "C1", True, updated_by="U1"
    )
    assert on.auto_transcribe and on.updated_by == "U1" and on.updated_at == T0
    clock.advance(60)
    off = await store.settings.set_auto_transcribe(
        Platform.DISCORD, "G1", "C1", False, updated_by="U2"
    )
    assert (off.auto_transcribe, off.updated_by, off.updated_at) == (False, "U2", at(60))
    assert await store.settings.get(Platform.DISCORD, "G1", "C1") == off
    assert await store.settings.get(Platform.SLACK, "G1", "C1") is None


# -- schema --------------------------------------------------------------------------------


async def test_migrations_are_idempotent_and_match_the_models(
    database_url: str,
) -> None:
    first = await JobStore.open(database_url)
    job, _ = await first.admission.intake(record())
    await first.close()
    second = await JobStore.open(database_url)  # an existing database: nothing to do
    assert await second.get(job.id) == job
    await second.close()

    assert await raw_query(database_url, "SELECT version_num FROM alembic_version") == [
        head_revision()
    ]
    engine = create_async_engine(parse_database_url(database_url))
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diffs == []


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    stores = await asyncio.gather(*(JobStore.open(database_url) for _ in range(4)))
    try:
        jobs = await asyncio.gather(*(s.admission.intake(record()) for s in stores))
        assert len({job.id for job, _ in jobs}) == 1
    finally:
        for store in stores:
            await store.close()
    assert await raw_query(database_url, "SELECT version_num FROM alembic_version") == [
        head_revision()
    ]


async def test_a_newer_schema_is_refused(database_url: str) -> None:
    await (await JobStore.open(database_url)).close()
    await raw_query(database_url, "UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(SchemaTooNew, match="9999_future") as info:
        await JobStore.open(database_url)
    assert info.value.revision == "9999_future"


# -- URLs, errors and secrets -----------------------------------------------------------------


def all_text(exc: BaseException) -> str:
    """Everything a log line or traceback could show about `exc`, causes included."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_the_password_never_shows(
    pg_url: str,
    postgres_server: PostgresServer,
) -> None:
    password = postgres_server.password
    store = await JobStore.open(pg_url)
    shown = [repr(store), str(store), store.url]
    await store.close()
    assert "***" in store.url

    wrong = "Wr0ng-Pa55word-42"
    with pytest.raises(DatabaseUnavailable, match="password authentication failed") as info:
        await JobStore.open(pg_url.replace(password, wrong))
    assert "***" in info.value.url
    shown.append(all_text(info.value))
    for text_ in shown:
        assert password not in text_
        assert wrong not in text_


async def test_unreachable_and_unusable_urls_explain_themselves(tmp_path: Any) -> None:
    secret = "hunter2-secret"
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(DatabaseUnavailable, match="Check that the database server") as info:
            await JobStore.open(f"postgresql://app:{secret}@127.0.0.1:{port}/threadscribe")
    assert info.value.url == f"postgresql+asyncpg://app:***@127.0.0.1:{port}/threadscribe"
    assert secret not in all_text(info.value)

    with pytest.raises(DatabaseUnavailable, match=r"folder .*/missing does not exist") as info:
        await JobStore.open(f"sqlite:///{tmp_path}/missing/threadscribe.db")
    assert "folder exists" in str(info.value)

    unusable = {
        f"postgresql+asyncpg://app:{secret}@db:notaport/x": "does not parse",
        f"mysql://app:{secret}@db/x": "mysql backend is not supported",
        f"postgresql+psycopg2://app:{secret}@db/x": "not asyncio-capable",
        "sqlite+aiosqlite://": "in-memory",
        "sqlite+aiosqlite:///:memory:": "in-memory",
    }
    for url, reason in unusable.items():
        with pytest.raises(InvalidDatabaseURL, match=reason) as bad:
            await JobStore.open(url)
        assert "postgresql+asyncpg://user:password@host:5432/dbname" in str(bad.value)
        assert secret not in all_text(bad.value)

    assert DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./threadscribe.db"
    assert str(parse_database_url("postgres://u@h/d")) == "postgresql+asyncpg://u@h/d"
    assert str(parse_database_url("sqlite:///x.db")) == "sqlite+aiosqlite:///x.db"


async def test_closed_store_refuses_work(store: JobStore) -> None:
    await store.close()
    await store.close()  # closing twice is fine
    assert "closed" in repr(store)
    with pytest.raises(StoreClosed):
        await store.get("x")


# -- what a job may hold -------------------------------------------------------------------------


async def test_sources_hold_references_never_bytes_or_tokens(
    store: JobStore,
    database_url: str,
) -> None:
    with pytest.raises(TypeError, match="never its bytes"):
        FileSource({"id": "F1", "content": b"RIFF...."})
    with pytest.raises(TypeError, match="JSON scalars"):
        FileSource({"id": "F1", "headers": {"Authorization": "Bearer xoxb-1"}})
    for key in ("token", "bot_token", "Authorization", "client_secret", "x-api-key"):
        with pytest.raises(ValueError, match="credentials"):
            FileSource({"id": "F1", key: "xoxb-123"})
    with pytest.raises(ValueError, match="ref\\['id'\\]"):
        FileSource({"name": "a.mp3"})
    with pytest.raises(ValueError, match="credentials"):
        UrlSource("https://user:pa55@example.org/a.mp3")
    with pytest.raises(ValueError, match="http"):
        UrlSource("file:///etc/passwd")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        record(options=JobOptions(platform={"raw": b"bytes"}))

    job, _ = await store.admission.intake(record(3))
    (stored,) = await raw_query(database_url, "SELECT source FROM jobs")
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored == {"kind": "file", "ref": dict(record(3).source.ref)}  # type: ignore[union-attr]
    assert job.source == record(3).source


async def test_naive_datetimes_are_refused(store: JobStore) -> None:
    job, _ = await store.admission.intake(record())
    with pytest.raises(ValueError, match="aware"):
        await store.queue.claim("w", lease_seconds=1, states=[RECEIVED], now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        await store.queue.release(job.id, "w", datetime(2025, 1, 1))


async def test_the_slot_cap_holds_across_replicas(database_url: str) -> None:
    """Two replicas claim new jobs at once, each as many as it has room for: together they
    never start more than the cap, because the slots are counted and the jobs claimed in
    one serialised step."""
    stores = [await JobStore.open(database_url) for _ in range(2)]
    try:
        for n in range(20):
            await stores[0].admission.intake(record(n))
        claimed = await asyncio.gather(
            *(
                s.queue.claim_new(f"replica-{i}", lease_seconds=60, cap=5, limit=20)
                for i, s in enumerate(stores)
                for _ in range(3)
            )
        )
        assert sum(len(batch) for batch in claimed) == 5
        assert await stores[1].queue.slots_taken() == 5
        # A job that moves on keeps its slot; one that is given back frees it.
        first = claimed[0][0] if claimed[0] else next(b for b in claimed if b)[0]
        owner = first.lease_owner
        assert owner is not None
        await stores[0].queue.transition(first.id, owner, RECEIVED, JobState.FETCHING, release=True)
        assert await stores[0].queue.claim_new("late", lease_seconds=60, cap=5, limit=5) == []
        await stores[0].queue.transition(first.id, None, JobState.FETCHING, RECEIVED)
        assert len(await stores[0].queue.claim_new("late", lease_seconds=60, cap=5, limit=5)) == 1
    finally:
        for s in stores:
            await s.close()


async def test_leases_follow_the_databases_clock_on_postgresql(pg_url: str) -> None:
    """A replica whose clock is an hour fast must not take a job another replica holds:
    leases are timed by the database, not by each replica's clock."""
    fast = datetime.now(UTC) + timedelta(hours=1)
    honest = await JobStore.open(pg_url)
    skewed = await JobStore.open(pg_url, clock=lambda: fast, database_clock=True)
    naive = await JobStore.open(pg_url, clock=lambda: fast, database_clock=False)
    try:
        job, _ = await honest.admission.intake(record(1))
        [held] = await honest.queue.claim("honest", lease_seconds=30, states=[RECEIVED])
        assert held.id == job.id
        assert await skewed.queue.claim("skewed", lease_seconds=30, states=[RECEIVED]) == []
        assert await skewed.queue.lease(job.id, "skewed", lease_seconds=30) is None
        # What the database clock prevents: by its own clock the lease ran out long ago.
        [stolen] = await naive.queue.claim("naive", lease_seconds=30, states=[RECEIVED])
        assert stolen.id == job.id
    finally:
        for s in (honest, skewed, naive):
            await s.close()


# -- retention -----------------------------------------------------------------------


async def test_delivered_jobs_past_their_retention_are_pruned_in_batches(
    store: JobStore, clock: Clock
) -> None:
    old = [
        await finish(store, (await store.admission.intake(record(n)))[0], DELIVERED)
        for n in range(3)
    ]
    waiting, _ = await store.admission.intake(record(10))
    waiting = await finish(store, waiting, COMPLETED)  # old, but not delivered yet
    clock.advance(31 * 86400)
    recent = await finish(store, (await store.admission.intake(record(20)))[0], DELIVERED)

    assert await store.prune(timedelta(days=30), batch=2) == 3
    for job in old:
        assert await store.get(job.id) is None
    assert await store.get(waiting.id) is not None  # unfinished work is never pruned
    assert await store.get(recent.id) is not None
    assert await store.prune(timedelta(days=30)) == 0
    # The dedupe key went with the record: the same message again is a new job.
    again, created = await store.admission.intake(record(0))
    assert created and again.id != old[0].id


async def test_the_engine_prunes_as_it_runs(store: JobStore, clock: Clock) -> None:
    from bot import assemblyai as aai
    from bot.config import Secret
    from bot.engine import Engine, EngineConfig

    done = await finish(store, (await store.admission.intake(record(1)))[0], DELIVERED)
    clock.advance(8 * 86400)
    client = aai.AssemblyAIClient(Secret("unused"), base_url="http://127.0.0.1:9")
    config = EngineConfig(retention=timedelta(days=7), idle=0.05)
    engine = Engine(store, client, {}, config)
    try:
        await engine.start()
        async with asyncio.timeout(10):
            while await store.get(done.id) is not None:  # noqa: ASYNC110 (the engine's loop)
                await asyncio.sleep(0.02)
    finally:
        await engine.stop()
        await client.close()
