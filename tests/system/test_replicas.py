"""Two `threadscribe run` replicas on one PostgreSQL database share 200 jobs; one is
killed with SIGKILL mid-run; every job is delivered exactly once, none is lost.

Both replicas take intakes from the same recorder inbox (every trigger reaches both, as
a retried event might), so the dedupe key decides which intake makes the job. The
server is the private throwaway one from tests/helpers/pg.py: without PostgreSQL binaries the
test skips locally and fails in CI (THREADSCRIBE_NO_SKIPS=1, see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot import messages
from bot.jobs import Job, JobState, JobStore
from bot.jobs.models import JobRow
from tests.fakes.recorder import Recorder
from tests.fakes.recording import url_intake
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import BotProcess, bot_env, free_port

JOBS = 200
KILL_AFTER = 60  # results delivered before one replica is killed

# The emulator's quick jobs, wide enough for every job at once; mutagen instead of an
# ffprobe process per transcript keeps the two CPUs of a CI runner for the bots.
pytestmark = pytest.mark.emulator(concurrency=JOBS, ffprobe=None)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as running:
        yield running


@pytest.fixture
async def replicas(
    tmp_path: Path,
    emulator: EmulatorServer,
    recorder: Recorder,
    pg_url: str,
) -> AsyncIterator[list[BotProcess]]:
    bots = []
    for name in ("a", "b"):
        env = bot_env(
            assemblyai_url=emulator.base_url,
            api_key=emulator.api_key,
            recorder_url=recorder.url,
            database_url=pg_url,
            port=free_port(),
            MAX_CONCURRENT_JOBS="50",
            MAX_JOBS_PER_USER="1000",
            MAX_JOBS_PER_CHANNEL="10000",
            # The dead replica's jobs go to the survivor when their lease runs out; long
            # enough that a busy live replica always renews its own in time.
            JOB_LEASE_SECONDS="5",
        )
        bots.append(BotProcess(env, tmp_path, name))
    try:
        yield bots
    finally:
        for bot in bots:
            await bot.close()


async def leased_by(database_url: str, pid: int) -> dict[str, JobState]:
    """The jobs a (dead) process holds, by id: engines are named `host:pid:random`."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(JobRow.id, JobRow.state).where(JobRow.lease_owner.like(f"%:{pid}:%"))
            )
            return {job_id: state for job_id, state in rows}
    finally:
        await engine.dispose()


async def until_all_delivered(store: JobStore, replicas: list[BotProcess]) -> None:
    try:
        async with asyncio.timeout(40):
            while (await store.counts_by_state())[JobState.DELIVERED] < JOBS:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    except TimeoutError:
        counts = await store.counts_by_state()
        logs = "\n".join(bot.logs() for bot in replicas)
        raise AssertionError(f"not all delivered: {counts}\n{logs}") from None


async def test_two_replicas_one_killed_deliver_200_jobs_exactly_once(
    replicas: list[BotProcess],
    recorder: Recorder,
    emulator: EmulatorServer,
    pg_url: str,
    audio_library: AudioLibrary,
    media_server: Callable[[Path], str],
) -> None:
    sample = audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)
    url = media_server(sample.path)
    doomed, survivor = replicas
    await asyncio.gather(doomed.start(), survivor.start())
    # The doomed replica's results reach the thread, but it never hears back: it dies
    # mid-delivery with those jobs leased, and the survivor must finish them.
    stuck = recorder.hold_post(":result", answer=True, pid=doomed.pid)
    for i in range(JOBS):
        recorder.send(url_intake(url, message=f"1700000000.{i:06d}"))

    await recorder.until(
        lambda: len(recorder.results()) >= KILL_AFTER and len(stuck.caught) >= 3, timeout=30
    )
    killed = doomed.pid
    await doomed.kill()
    stuck.release()
    held = await leased_by(pg_url, killed)
    assert len(held) >= len(stuck.caught)

    async with await JobStore.open(pg_url) as store:
        await until_all_delivered(store, replicas)
        await asyncio.sleep(0.5)  # room for a late duplicate to show
        counts = await store.counts_by_state()
        ids = {ack["job_id"] for intake in recorder.inbox for ack in intake.acks}
        jobs: dict[str, Job] = {}
        for job_id in ids:
            job = await store.get(job_id)
            assert job is not None
            jobs[job_id] = job

    # None lost: one job per trigger, every job delivered.
    assert counts[JobState.DELIVERED] == sum(counts.values()) == JOBS
    assert len(jobs) == JOBS
    for intake in recorder.inbox:
        assert intake.acked, intake
        assert len({ack["job_id"] for ack in intake.acks}) == 1, intake.acks
        assert sum(ack["created"] for ack in intake.acks) <= 1, intake.acks
    # Exactly once: one result and one status message per job, ids recorded.
    results = {m.job_id: m for m in recorder.results()}
    statuses = {m.job_id: m for m in recorder.statuses()}
    assert len(recorder.results()) == len(recorder.statuses()) == JOBS
    assert results.keys() == statuses.keys() == jobs.keys()
    for job_id, job in jobs.items():
        assert job.posted == {"status": statuses[job_id].id, "result": results[job_id].id}
        assert statuses[job_id].current == messages.status_done()
        assert sample.script["utterances"][0]["text"] in results[job_id].text  # type: ignore[index]
    # No process ever posted the same key twice; a repeat comes only after the kill, of a
    # post the dead replica made without living to record its id.
    per_process = Counter((attempt.key, attempt.pid) for attempt in recorder.attempts)
    assert max(per_process.values()) == 1
    first_by: dict[str, int | None] = {}
    for attempt in recorder.attempts:
        first_by.setdefault(attempt.key, attempt.pid)
    assert {first_by[d.key] for d in recorder.duplicates()} <= {killed}
    assert {d.key for d in recorder.duplicates(":result")} >= set(stuck.caught)
    # Both replicas did part of the work.
    by_pid = defaultdict(set)
    for message in recorder.messages:
        by_pid[message.pid].add(message.key)
    assert by_pid[killed] and by_pid[survivor.pid], by_pid.keys()
    # AssemblyAI was asked twice at most for jobs the dead replica was submitting.
    submissions = [
        r for r in emulator.requests() if r["method"] == "POST" and r["path"] == "/v2/transcript"
    ]
    submitting = [
        state for state in held.values() if state in (JobState.RECEIVED, JobState.FETCHING)
    ]
    assert JOBS <= len(submissions) <= JOBS + len(submitting)
    assert len({job.transcript_id for job in jobs.values()}) == JOBS
    assert survivor.running, survivor.log()
