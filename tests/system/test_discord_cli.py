"""`threadscribe run` with Discord, as a real process: killed with SIGKILL in the middle of
a job, started again, and the thread gets exactly one result; SIGTERM then stops it
cleanly. The process reaches the Discord fake and the AssemblyAI emulator (both in this
test process) only through the documented environment variables."""

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.jobs import JobState, JobStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_gateway import Session
from tests.fakes.discord_harness import fake_discord_fixture  # noqa: F401
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def environment(
    fake_discord: FakeDiscord, emulator: EmulatorServer, tmp_path: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    return env | {
        "ASSEMBLYAI_API_KEY": emulator.api_key,
        "ASSEMBLYAI_BASE_URL": emulator.base_url,
        "ASSEMBLYAI_LLM_GATEWAY_URL": emulator.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'threadscribe.db'}",
        "PORT": str(free_port()),
        "JOB_LEASE_SECONDS": "2",
        "LOG_LEVEL": "INFO",
        "DISCORD_TOKEN": fake_discord.token,
        "DISCORD_API_URL": fake_discord.api_url,
        "DISCORD_GATEWAY_URL": fake_discord.gateway_url,
    }


@asynccontextmanager
async def threadscribe_run(
    env: dict[str, str], cwd: Path, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", env=env, cwd=cwd, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def connected(
    fake: FakeDiscord, known: list[Session], process: asyncio.subprocess.Process
) -> Session:
    """Wait for a new gateway session with a live connection (or the process to die)."""

    def ready() -> Session | None:
        if process.returncode is not None:
            raise AssertionError(f"threadscribe run exited with {process.returncode}")
        fresh = [s for s in fake.gateway.sessions if s not in known and s.connection]
        return fresh[0] if fresh else None

    session = await fake.wait_for(ready)
    known.append(session)
    return session


async def test_kill_9_mid_job_then_restart_delivers_exactly_once(
    fake_discord: FakeDiscord,
    environment: dict[str, str],
    tmp_path: Path,
    audio_library: AudioLibrary,
    emulator: EmulatorServer,
) -> None:
    audio = audio_library.dialogue("ogg", scripts_dir=emulator.scripts_dir)
    log = tmp_path / "threadscribe.log"
    sessions: list[Session] = []
    store = await JobStore.open(environment["DATABASE_URL"])  # to watch the job's state

    def in_thread() -> list[dict]:
        thread = int(voice["id"])
        if thread not in fake_discord.world.channels:
            return []
        return fake_discord.messages(thread, from_bot=True)

    try:
        async with threadscribe_run(environment, tmp_path, log) as first:
            await connected(fake_discord, sessions, first)
            voice = await fake_discord.dispatch_voice_message(
                audio=audio.path.read_bytes(), duration_secs=audio.duration
            )
            await wait_for_job(store, JobState.SUBMITTED)  # at AssemblyAI, not yet done
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
        (status,) = in_thread()
        assert status["content"] != "✅ Transcribed"

        async with threadscribe_run(environment, tmp_path, log) as second:
            await connected(fake_discord, sessions, second)
            await fake_discord.wait_for(lambda: in_thread()[0]["content"] == "✅ Transcribed")
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await second.wait() == 0, log.read_text()
        assert (await store.counts_by_state())[JobState.DELIVERED] == 1
    finally:
        await store.close()

    status, result = in_thread()
    assert result["content"].startswith("Speaker A [00:00]: Good morning.")
    assert len(fake_discord.threads()) == 1
    assert [r.emoji for r in fake_discord.reactions(voice)] == ["✅"]
    assert "Traceback" not in log.read_text()


async def wait_for_job(store: JobStore, state: JobState) -> None:
    async with asyncio.timeout(30):
        while True:
            if any(job.state is state for job in await store.unfinished()):
                return
            await asyncio.sleep(0.05)


async def test_a_bad_token_stops_run_with_one_line_naming_discord_token(
    fake_discord: FakeDiscord, environment: dict[str, str], tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=environment | {"DISCORD_TOKEN": "not-the-token", "LOG_LEVEL": "ERROR"},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    errors = [line for line in stderr.decode().splitlines() if "error:" in line]
    assert len(errors) == 1 and "DISCORD_TOKEN" in errors[0], stderr.decode()
    assert "not-the-token" not in stderr.decode()
