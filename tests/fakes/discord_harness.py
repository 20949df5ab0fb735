"""The Discord adapter running against the Discord fake, with a real store and engine.

    async def test_x(bot: Harness) -> None:
        voice = await bot.fake.dispatch_voice_message(audio=..., duration_secs=4.0)
        await bot.drain()
        thread = bot.fake.messages(int(voice["id"]))   # a thread takes its message's id

The adapter is built by `adapters.discord.create` from `Settings` whose two Discord URLs
point at the fake (the only seam); the engine is the real one, on a SQLite store in the
test's tmp_path, talking to the AssemblyAI emulator. The fixtures are in
tests/component/conftest.py (`store`, `assemblyai`) and tests/component/discord/conftest.py
(`bot`, made with a module's `bot_options`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.discord import DiscordAdapter, create
from bot.assemblyai import AssemblyAIClient
from bot.chat import Core
from bot.config import Secret, Settings
from bot.engine import Engine, EngineConfig
from bot.jobs import Job, JobState, JobStore
from bot.run import compose
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_model import JSON
from tests.helpers.engine import FAST_ENGINE, fast_polls

__all__ = ["Harness", "discord_settings", "running_bot", "states"]


def discord_settings(fake: FakeDiscord, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": Secret(fake.token),
        "discord_api_url": fake.api_url,
        "discord_gateway_url": fake.gateway_url,
    }
    return Settings(**(values | overrides))


class _Errors(logging.Handler):
    """Errors the adapter logged: a handler that failed shows up only in the log."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Harness:
    fake: FakeDiscord
    store: JobStore
    adapter: DiscordAdapter
    engine: Engine
    #: set by a test that provokes errors; otherwise any logged error fails the test
    errors_expected: bool = False

    async def drain(self, seconds: float = 20.0) -> None:
        """Run the engine until no job is due or running."""
        async with asyncio.timeout(seconds):
            await self.engine.run_until_idle()

    async def jobs(self) -> list[Job]:
        """Every job not yet delivered."""
        return await self.store.unfinished()

    async def settle(self) -> None:
        """Let handlers for events already sent finish (their intakes, their replies)."""
        await asyncio.sleep(0.05)
        await self.adapter.intake.drain(5.0)

    def bot_messages(self, channel: Any = None) -> list[JSON]:
        return self.fake.messages(channel, from_bot=True)

    def in_thread(self, message: JSON) -> list[JSON]:
        """The bot's messages in the thread started from `message` ([] until it exists)."""
        if int(message["id"]) not in self.fake.world.channels:
            return []
        return self.bot_messages(int(message["id"]))


@asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    store: JobStore,
    client: AssemblyAIClient,
    *,
    config: EngineConfig = FAST_ENGINE,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """Start the adapter (commands synced to the fake's guild) with an engine that is
    driven by `drain()`; stop both in two phases afterwards. `settings` override the
    Discord settings (`discord_auto_transcribe=False`, say)."""

    def make(settings: Settings, core: Core) -> DiscordAdapter:
        return create(settings, core, guild_ready_timeout=0.05)

    chosen = discord_settings(fake, **({"discord_dev_guild": fake.world.guild.id} | settings))
    engine, core, [adapter] = compose(
        chosen, store, client, [make], config=config, schedule=fast_polls()
    )
    assert isinstance(adapter, DiscordAdapter)
    errors = _Errors()
    logger = logging.getLogger("adapters")
    logger.addHandler(errors)
    harness = Harness(fake, store, adapter, engine)
    try:
        await adapter.start()
        yield harness
    finally:
        await adapter.stop()
        await engine.stop()
        await adapter.close()
        await core.close()
        logger.removeHandler(errors)
    if errors.records and not harness.errors_expected:
        logged = "\n".join(f"{r.name}: {r.getMessage()} {r.exc_info!r}" for r in errors.records)
        raise AssertionError(f"the adapter logged errors:\n{logged}")


def states(jobs: list[Job]) -> list[JobState]:
    return [job.state for job in jobs]


def shown(message: JSON) -> str:
    """A bot message's content as a reader takes it in: without the reference line in
    small print that ends every post (`adapters.discord.format.marker`)."""
    content = str(message["content"])
    head, _, last = content.rpartition("\n")
    if last.startswith("-# ref "):
        return head
    return "" if content.startswith("-# ref ") else content
