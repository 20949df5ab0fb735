"""kill -9 of a real `threadscribe run` (Slack, HTTP mode) at each stage of a job, then a
restart: the thread ends with exactly one status message, one result and its files.

The bot runs as a subprocess, reaching the Slack fake and the AssemblyAI emulator of this
test over loopback, exactly as configured from the environment in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.chat import POST_EVENT
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    GENERAL,
    SIGNING_SECRET,
    FakeSlack,
)
from tests.fakes.slack_state import Message
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import BotProcess, assemblyai_lines, environment, free_port, until


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    env = environment(
        **assemblyai_lines(emulator),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'threadscribe.db'}",
        PORT=str(free_port()),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        LOG_LEVEL="INFO",
        # A killed holder's jobs are taken over after this (the shortest lease accepted).
        JOB_LEASE_SECONDS="2",
    )
    running = BotProcess(env, tmp_path, "run")
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    return audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)


def keyed(messages: list[Message], suffix: str) -> list[Message]:
    return [
        m
        for m in messages
        if m.metadata
        and m.metadata["event_type"] == POST_EVENT
        and m.metadata["event_payload"]["key"].endswith(suffix)
    ]


@pytest.mark.parametrize(
    "stage",
    [
        "after intake",
        # Transcription takes long enough to kill the bot while it waits.
        pytest.param("while transcribing", marks=pytest.mark.emulator(processing_time=1.5)),
        "during delivery",
    ],
)
async def test_kill_9_then_restart_delivers_exactly_once(
    stage: str,
    bot: BotProcess,
    fake_slack: FakeSlack,
    emulator: EmulatorServer,
    dialogue: AudioSample,
) -> None:
    file = fake_slack.add_file("standup.mp3", dialogue.path.read_bytes())
    msg = fake_slack.events.post(GENERAL, ALICE, "srt", files=[file])
    envelope = fake_slack.events.message(msg)
    envelope["event"]["text"] = f"<@{BOT_USER_ID}> srt"  # ask for subtitles too
    mention = fake_slack.events.app_mention(msg)
    mention["event"]["text"] = f"<@{BOT_USER_ID}> srt"
    await bot.start()

    if stage == "during delivery":
        fake_slack.slow("files.getUploadURLExternal", 60)  # the result is posted, its file hangs
    answer = await fake_slack.send_to_app(
        f"{bot.url}/slack/events", fake_slack.events.http_event(mention)
    )
    assert answer.status == 200
    if stage == "while transcribing":
        await until(lambda: any(r["path"] == "/v2/transcript" for r in emulator.requests()))
    elif stage == "during delivery":
        await until(lambda: keyed(fake_slack.bot_messages(GENERAL, thread_ts=msg.ts), ":result"))
    await bot.kill()
    fake_slack.slow("files.getUploadURLExternal", None)
    await bot.start()

    await until(lambda: fake_slack.reactions(GENERAL, msg.ts).get("white_check_mark"))
    await until(lambda: [u for u in fake_slack.uploaded_files() if u.thread_ts == msg.ts])
    await bot.terminate()

    thread = fake_slack.bot_messages(GENERAL, thread_ts=msg.ts)
    assert len(keyed(thread, ":status")) == 1, bot.log()
    assert len(keyed(thread, ":result")) == 1, bot.log()
    assert [u.filename for u in fake_slack.uploaded_files()] == ["transcript.srt"]
    assert fake_slack.reactions(GENERAL, msg.ts) == {"white_check_mark": [BOT_USER_ID]}
