"""Restarts: a second process (a new adapter and engine on the same database) finishes
what the first left, and the thread still gets exactly one result. The first "process"
is cut off abruptly: its engine cancels work in flight (shutdown grace 0) and leaves its
leases to run out; its interaction tokens die with it."""

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from adapters.discord import DiscordAdapter, create
from bot.assemblyai import AssemblyAIClient
from bot.chat import Core
from bot.config import Settings
from bot.jobs import JobState, JobStore
from bot.run import compose
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.discord_harness import (
    discord_settings,
    shown,
)
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import FAST_ENGINE, fast_polls

pytestmark = pytest.mark.timeout(40)

CRASHY = dataclasses.replace(FAST_ENGINE, lease=0.5, shutdown_grace=0.0)


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> Callable[[str], bytes]:
    def make(fmt: str) -> bytes:
        return audio_library.dialogue(fmt, scripts_dir=emulator.scripts_dir).path.read_bytes()

    return make


class Process:
    """One run of the bot: an adapter and an engine on the shared store."""

    def __init__(self, fake: FakeDiscord, store: JobStore, client: AssemblyAIClient) -> None:
        def make(settings: Settings, core: Core) -> DiscordAdapter:
            return create(settings, core, guild_ready_timeout=0.05)

        settings = discord_settings(fake, discord_dev_guild=fake.world.guild.id)
        self.engine, self.core, [adapter] = compose(
            settings, store, client, [make], config=CRASHY, schedule=fast_polls()
        )
        assert isinstance(adapter, DiscordAdapter)
        self.adapter = adapter

    async def start(self) -> None:
        # The order of `threadscribe run`: the engine resumes jobs while Discord connects,
        # and the adapter holds their posts until it is ready.
        await self.engine.start()
        await self.adapter.start()

    async def crash(self) -> None:
        """Stop dead: work in flight is cancelled, leases are left to expire."""
        await self.engine.stop()
        await self.adapter.close()

    async def finish(self, store: JobStore) -> None:
        async with asyncio.timeout(20):
            while True:
                if not await store.unfinished():
                    break
                await asyncio.sleep(0.05)
        await self.adapter.stop()
        await self.engine.stop()
        await self.adapter.close()


async def wait_state(store: JobStore, *states: JobState) -> None:
    async with asyncio.timeout(15):
        while True:
            if any(j.state in states for j in await store.unfinished()):
                return
            await asyncio.sleep(0.01)


async def test_a_voice_message_is_delivered_once_after_a_crash_mid_job(
    fake_discord: FakeDiscord, store: JobStore, assemblyai, dialogue
) -> None:
    first = Process(fake_discord, store, assemblyai)
    await first.start()
    voice = await fake_discord.dispatch_voice_message(audio=dialogue("ogg"), duration_secs=9.5)
    await wait_state(store, JobState.SUBMITTED)
    await first.crash()
    assert [j.state for j in await store.unfinished()] == [JobState.SUBMITTED]

    second = Process(fake_discord, store, assemblyai)
    await second.start()
    await second.finish(store)

    counts = await store.counts_by_state()
    assert counts[JobState.DELIVERED] == 1
    status, result = fake_discord.messages(int(voice["id"]), from_bot=True)
    assert shown(status) == "✅ Transcribed"
    assert shown(result).startswith("Speaker A [00:00]: Good morning.")
    assert len(fake_discord.threads()) == 1
    assert [r.emoji for r in fake_discord.reactions(voice)] == ["✅"]


async def test_a_slash_command_is_finished_with_the_bot_token_after_a_restart(
    fake_discord: FakeDiscord, store: JobStore, assemblyai, dialogue
) -> None:
    first = Process(fake_discord, store, assemblyai)
    await first.start()
    audio = Upload("meeting.ogg", dialogue("ogg"), "audio/ogg")
    ix = await fake_discord.dispatch_slash_command("transcribe", {"file": audio})
    await wait_state(store, JobState.SUBMITTED, JobState.FETCHING)
    await first.crash()
    assert len(await store.unfinished()) == 1

    second = Process(fake_discord, store, assemblyai)
    await second.start()
    await second.finish(store)

    original = fake_discord.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    # The new process never had the token: it edited the response with the bot token.
    edits = fake_discord.calls_to("PATCH /channels/{channel_id}/messages/{message_id}")
    assert edits and {c.params["message_id"] for c in edits} == {original["id"]}
    (result,) = fake_discord.messages(int(original["id"]), from_bot=True)
    assert shown(result).startswith("Speaker A [00:00]: Good morning.")
