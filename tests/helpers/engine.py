"""The engine as the tests run it: quick timings, and a harness in burst mode.

    async with running_engine(tmp_path, emulator, per_user=1) as h:
        outcome = await h.engine.intake(url_intake(url))
        await h.drain()                 # run until nothing is due or running
        [result] = h.platform.results(outcome.job.id)

The harness is the real Engine on a real SQLite store in `tmp_path`, the real client
talking to the emulator, and the in-memory RecordingPlatform. `FAST_ENGINE` has short
leases, waits and retries; `fast_polls()` asks the emulator about a transcript soon and
often, where production's schedule is aimed at AssemblyAI's real turnaround (a second or
more), which the tests would otherwise sit out on every job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.assemblyai import AssemblyAIClient, RetryPolicy
from bot.config import Secret
from bot.engine import Engine, EngineConfig
from bot.jobs import JobStore, Platform
from bot.polling import PollSchedule
from bot.urls import UrlPolicy
from tests.fakes.recording import RecordingPlatform
from tests.helpers.emulator_server import EmulatorServer

#: Engine timings for tests: short leases and waits, quick retries.
FAST_ENGINE = EngineConfig(
    lease=5.0,
    idle=0.05,
    retry_base=0.05,
    retry_cap=0.2,
    status_interval=0.0,
    shutdown_grace=2.0,
    # The tests serve media on loopback: let the bot fetch it (the default refuses).
    urls=UrlPolicy(allow_private=True),
)
#: The client's own retries, quick.
FAST_RETRY = RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.1)


def fast_polls() -> PollSchedule:
    """A poll schedule for the emulator's quick jobs (0.05 s in the `emulator` fixture): the
    first poll just after the expected finish, then short gaps, and a job AssemblyAI still
    has queued (its concurrency limit) looked at again soon rather than after production's
    5 s. A new one for each engine, since a schedule learns from what it sees finish."""
    return PollSchedule(
        base=0.05, ratio=0.0, prior_sigma=0.3, max_gap=0.05, queued_gap=0.1,
        webhook_margin=0.1, webhook_max_gap=0.5,
    )  # fmt: skip


def emulator_client(
    emulator: EmulatorServer, retry: RetryPolicy = FAST_RETRY, **kwargs: Any
) -> AssemblyAIClient:
    """The real client, pointed at the emulator for the v2 API and the LLM Gateway."""
    return AssemblyAIClient(
        Secret(emulator.api_key),
        base_url=emulator.base_url,
        llm_base_url=emulator.base_url,
        retry=retry,
        **kwargs,
    )


async def open_store(tmp_path: Path) -> JobStore:
    """A SQLite store in `tmp_path` (the same file for every store opened there)."""
    return await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")


@dataclass
class EngineHarness:
    engine: Engine
    platform: RecordingPlatform
    emulator: EmulatorServer

    @property
    def store(self) -> JobStore:
        return self.engine.store

    async def drain(self, timeout: float = 30.0) -> None:
        """Burst mode: run the engine until every job is delivered and nothing runs."""
        async with asyncio.timeout(timeout):
            await self.engine.run_until_idle()


@contextlib.asynccontextmanager
async def running_engine(
    tmp_path: Path,
    emulator: EmulatorServer,
    config: EngineConfig = FAST_ENGINE,
    *,
    retry: RetryPolicy = FAST_RETRY,
    schedule: PollSchedule | None = None,
    **overrides: Any,
) -> AsyncIterator[EngineHarness]:
    """An engine on a store in `tmp_path` (opened again by a second harness there, as a
    restarted process would), `config` with `overrides`, delivering to a new
    RecordingPlatform, polling on `schedule` (else `fast_polls()`); stopped, with its client
    and store closed, on the way out."""
    store = await open_store(tmp_path)
    client = emulator_client(emulator, retry)
    platform = RecordingPlatform()
    engine = Engine(
        store,
        client,
        {Platform.SLACK: platform},
        dataclasses.replace(config, **overrides),
        schedule=schedule or fast_polls(),
    )
    try:
        yield EngineHarness(engine, platform, emulator)
    finally:
        await engine.stop()
        await client.close()
        await store.close()
