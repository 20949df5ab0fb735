"""`/readyz` over a real socket: not ready, naming why, when the database does not answer,
a platform connection stays down past READINESS_GRACE_SECONDS, or AssemblyAI rejects the
key; ready again when that passes. Each check is also the gauge `threadscribe_ready`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import assemblyai as aai
from bot.config import Secret
from bot.engine import Engine, EngineConfig
from bot.health import Health
from bot.jobs import JobState, JobStore, Platform
from bot.urls import UrlPolicy
from bot.web import create_app
from tests.fakes.recording import RecordingPlatform, url_intake
from tests.helpers.audio import make_dialogue
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.engine import fast_polls

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ConnectedPlatform(RecordingPlatform):
    """A platform that keeps a connection (as Socket Mode or the Discord gateway do)."""

    up: bool = True

    async def connected(self) -> bool | None:
        return self.up


@dataclass
class Served:
    base: str
    engine: Engine
    platform: ConnectedPlatform
    clock: Clock
    http: aiohttp.ClientSession

    async def ready(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.base}/readyz") as response:
            return response.status, await response.json()

    async def gauges(self) -> dict[str, float]:
        async with self.http.get(f"{self.base}/metrics") as response:
            text = await response.text()
        found = {}
        for line in text.splitlines():
            if line.startswith("threadscribe_ready{"):
                labels, value = line.rsplit(" ", 1)
                found[labels.split('"')[1]] = float(value)
        return found


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, emulator: EmulatorServer, key: str) -> AsyncIterator[Served]:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    client = aai.AssemblyAIClient(
        Secret(key),
        base_url=emulator.base_url,
        retry=aai.RetryPolicy(attempts=1, initial_delay=0.01, max_delay=0.01),
    )
    clock = Clock()
    platform = ConnectedPlatform()
    config = EngineConfig(
        retry_base=0.01, retry_cap=0.05, idle=0.2, urls=UrlPolicy(allow_private=True)
    )
    engine = Engine(
        store,
        client,
        {Platform.SLACK: platform},
        config,
        health=Health(30, monotonic=clock),
        schedule=fast_polls(),
    )
    runner = web.AppRunner(create_app(engine))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield Served(f"http://127.0.0.1:{port}", engine, platform, clock, http)
    finally:
        await runner.cleanup()
        await engine.stop()
        await client.close()
        with contextlib.suppress(Exception):
            await store.close()


async def test_a_connection_down_longer_than_the_grace_is_not_ready_and_named(tmp_path, emulator):
    async with serving(tmp_path, emulator, emulator.api_key) as served:
        assert await served.ready() == (200, {"status": "ready"})
        assert await served.gauges() == {"database": 1.0, "assemblyai": 1.0, "slack": 1.0}
        served.platform.up = False
        assert (await served.ready())[0] == 200  # the first check that sees it down
        served.clock.now += 29  # a reconnect takes a moment: still ready
        assert (await served.ready())[0] == 200
        served.clock.now += 2
        status, body = await served.ready()
        assert status == 503
        assert body == {"status": "unavailable", "checks": {"slack": "disconnected for 31 s"}}
        assert (await served.gauges())["slack"] == 0.0
        served.platform.up = True
        assert (await served.ready())[0] == 200
        served.platform.up = False  # a new outage counts from zero
        assert (await served.ready())[0] == 200
        served.clock.now += 10
        assert (await served.ready())[0] == 200


async def test_a_rejected_key_is_not_ready_until_assemblyai_accepts_it_again(
    tmp_path, emulator, media_server
):
    dialogue = make_dialogue(tmp_path / "audio", "mp3", emulator.scripts_dir)
    # The key was rotated in the dashboard after the bot started (start-up checks it).
    async with serving(tmp_path, emulator, "a-rotated-key") as served:
        outcome = await served.engine.intake(url_intake(media_server(dialogue.path)))
        await served.engine.start()
        async with asyncio.timeout(20):
            while (await served.ready())[0] == 200:  # noqa: ASYNC110 (polling the route)
                await asyncio.sleep(0.02)
        status, body = await served.ready()
        assert status == 503
        assert body["checks"] == {"assemblyai": "the API key was rejected (ASSEMBLYAI_API_KEY)"}
        assert "rotated" not in str(body)
        assert (await served.gauges())["assemblyai"] == 0.0
        async with asyncio.timeout(10):  # the retry is recorded just after the 401
            while not (job := await served.engine.store.get(outcome.job.id)).last_error:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert job.state is JobState.RECEIVED  # kept for when the key is fixed, not failed
        assert "rejected the API key" in (job.last_error or "")


async def test_a_key_accepted_again_makes_it_ready(tmp_path, emulator, media_server):
    dialogue = make_dialogue(tmp_path / "audio", "mp3", emulator.scripts_dir)
    emulator.inject({"status": 401, "path": "/v2/transcript"})  # one rejection, then fine
    async with serving(tmp_path, emulator, emulator.api_key) as served:
        outcome = await served.engine.intake(url_intake(media_server(dialogue.path)))
        await served.engine.start()
        async with asyncio.timeout(30):
            while (await served.engine.store.get(outcome.job.id)).state is not JobState.DELIVERED:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert served.engine.health.key_rejected is False
        assert await served.ready() == (200, {"status": "ready"})


async def test_a_database_that_does_not_answer_is_named(tmp_path, emulator):
    async with serving(tmp_path, emulator, emulator.api_key) as served:
        await served.engine.store.close()
        status, body = await served.ready()
        assert (status, body["checks"]) == (503, {"database": "unreachable"})
        assert (await served.gauges())["database"] == 0.0


def test_a_platform_that_keeps_no_connection_is_never_the_reason() -> None:
    clock = Clock()
    health = Health(5, monotonic=clock)
    assert health.connection("slack", None) is None
    clock.now += 100
    assert health.connection("slack", None) is None
    assert health.connection("discord", False) is None
    clock.now += 5
    assert health.connection("discord", False) is None
    clock.now += 0.5
    assert health.connection("discord", False) == "disconnected for 6 s"
