"""`threadscribe run` with Discord, as a real process: killed with SIGKILL in the middle of
a job, started again, and the thread gets exactly one result; SIGTERM then stops it
cleanly. The process reaches the Discord fake and the AssemblyAI emulator (both in this
test process) only through the documented environment variables."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs import JobState, JobStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_gateway import Session
from tests.fakes.discord_harness import shown
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import (
    BotProcess,
    assemblyai_lines,
    environment,
    free_port,
    threadscribe,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def bot(
    fake_discord: FakeDiscord, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    env = environment(
        **assemblyai_lines(emulator),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'threadscribe.db'}",
        PORT=str(free_port()),
        JOB_LEASE_SECONDS="2",
        LOG_LEVEL="INFO",
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
    )
    process = BotProcess(env, tmp_path, "threadscribe")
    try:
        yield process
    finally:
        await process.close()


async def connected(fake: FakeDiscord, known: list[Session], bot: BotProcess) -> Session:
    """Wait for a new gateway session with a live connection (or the process to die)."""

    def ready() -> Session | None:
        if not bot.running:
            raise AssertionError(f"threadscribe run exited:\n{bot.log()}")
        fresh = [s for s in fake.gateway.sessions if s not in known and s.connection]
        return fresh[0] if fresh else None

    session = await fake.wait_for(ready)
    known.append(session)
    return session


async def test_kill_9_mid_job_then_restart_delivers_exactly_once(
    fake_discord: FakeDiscord,
    bot: BotProcess,
    audio_library: AudioLibrary,
    emulator: EmulatorServer,
) -> None:
    audio = audio_library.dialogue("ogg", scripts_dir=emulator.scripts_dir)
    sessions: list[Session] = []
    store = await JobStore.open(bot.env["DATABASE_URL"])  # to watch the job's state

    def in_thread() -> list[dict]:
        thread = int(voice["id"])
        if thread not in fake_discord.world.channels:
            return []
        return fake_discord.messages(thread, from_bot=True)

    try:
        await bot.start()
        await connected(fake_discord, sessions, bot)
        voice = await fake_discord.dispatch_voice_message(
            audio=audio.path.read_bytes(), duration_secs=audio.duration
        )
        await wait_for_job(store, JobState.SUBMITTED)  # at AssemblyAI, not yet done
        await bot.kill()
        assert bot.process is not None and bot.process.returncode == -signal.SIGKILL
        (status,) = in_thread()
        assert shown(status) != "✅ Transcribed"

        await bot.start()
        await connected(fake_discord, sessions, bot)
        await fake_discord.wait_for(lambda: shown(in_thread()[0]) == "✅ Transcribed")
        code, _took = await bot.terminate()
        assert code == 0, bot.log()
        assert (await store.counts_by_state())[JobState.DELIVERED] == 1
    finally:
        await store.close()

    status, result = in_thread()
    assert shown(result).startswith("Speaker A [00:00]: Good morning.")
    assert len(fake_discord.threads()) == 1
    assert [r.emoji for r in fake_discord.reactions(voice)] == ["✅"]
    assert "Traceback" not in bot.logs(tail=None)


async def wait_for_job(store: JobStore, state: JobState) -> None:
    async with asyncio.timeout(30):
        while True:
            if any(job.state is state for job in await store.unfinished()):
                return
            await asyncio.sleep(0.05)


async def test_a_bad_token_stops_run_with_one_line_naming_discord_token(
    bot: BotProcess, tmp_path: Path
) -> None:
    env = bot.env | {"DISCORD_TOKEN": "not-the-token", "LOG_LEVEL": "ERROR"}
    status, _out, stderr = await threadscribe("run", cwd=tmp_path, env=env, timeout=30)
    assert status == 2
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "DISCORD_TOKEN" in errors[0], stderr
    assert "not-the-token" not in stderr


async def test_kill_9_after_the_result_was_posted_but_not_recorded_restart_past_the_nonce(
    fake_discord: FakeDiscord,
    bot: BotProcess,
    audio_library: AudioLibrary,
    emulator: EmulatorServer,
) -> None:
    """The result is in the thread, the bot never learns its id (killed while Discord's
    answer is on its way), and it comes back after Discord forgot the nonce: the result
    is found in the thread by its reference line, not posted again."""
    audio = audio_library.dialogue("ogg", scripts_dir=emulator.scripts_dir)
    sessions: list[Session] = []
    store = await JobStore.open(bot.env["DATABASE_URL"])

    def in_thread() -> list[dict]:
        thread = int(voice["id"])
        if thread not in fake_discord.world.channels:
            return []
        return fake_discord.messages(thread, from_bot=True)

    lost = fake_discord.lose_answers(
        "POST /channels/{channel_id}/messages",
        advance=6 * 60,  # Discord honours enforce_nonce for a few minutes
        hold=30,
        match=lambda body: "Good morning." in str(body.get("content", "")),
    )
    try:
        await bot.start()
        await connected(fake_discord, sessions, bot)
        voice = await fake_discord.dispatch_voice_message(
            audio=audio.path.read_bytes(), duration_secs=audio.duration
        )
        async with asyncio.timeout(30):
            await lost.lost.wait()  # the result is posted; the answer is held
        await bot.kill()
        lost.release.set()
        assert len(in_thread()) == 2  # the status and the unrecorded result

        await bot.start()
        await connected(fake_discord, sessions, bot)
        await fake_discord.wait_for(lambda: shown(in_thread()[0]) == "✅ Transcribed")
        code, _took = await bot.terminate()
        assert code == 0, bot.log()
        assert (await store.counts_by_state())[JobState.DELIVERED] == 1
    finally:
        await store.close()
    _status, result = in_thread()
    assert shown(result).startswith("Speaker A [00:00]: Good morning.")
    assert "was made before; not posting it again" in bot.logs(tail=None)
