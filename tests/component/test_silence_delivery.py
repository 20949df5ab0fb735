"""A recording without speech, end to end: the emulator answers as AssemblyAI does, and the
bot says "no speech detected" once, with no empty sections or embeds, in Slack and in
Discord. The audio is real digital silence made by ffmpeg. (The renderers alone:
tests/unit/test_silence_rendering.py; the command line: tests/system/test_cli_transcribe.py.)

AssemblyAI (and so the emulator) completes such a job with `text` "" only when the
request names the language; with automatic language detection, the bot's default, it
ends in the error "language_detection cannot be performed on files with no spoken
audio." The engine and the CLI turn that error into the empty transcript it stands for
(`render.without_speech`), so both paths end in the same "no speech detected".
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import BOT_SCOPES
from bot.jobs import JobState, JobStore
from bot.render import NO_SPEECH
from emulator.processing import NO_SPOKEN_AUDIO
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.discord_harness import Harness, running_bot, shown
from tests.fakes.slack import (
    ALICE,
    BOB,
    BOT_TOKEN,
    BOT_USER_ID,
    GENERAL,
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.fakes.slack_state import Message
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.engine import FAST_ENGINE
from tests.helpers.silence import HEADER, SECONDS, UNDETECTED, silent_mp3

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return silent_mp3(tmp_path_factory.mktemp("silence"))


@pytest.fixture(scope="module")
def silence_data(silence: Path) -> bytes:
    return silence.read_bytes()


# --- Slack -----------------------------------------------------------------------------


@pytest.fixture
async def slack(
    fake_slack: FakeSlack, tmp_path: Path, emulator: EmulatorServer
) -> AsyncIterator[SlackBot]:
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)
    config = dataclasses.replace(FAST_ENGINE, ai_summary=True)
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, config=config) as running:
        yield running


async def slack_send(bot: SlackBot, request: Any) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, request)
    assert answer.status == 200, answer.text
    async with asyncio.timeout(25):
        await bot.engine.run_until_idle()


def slack_post(bot: SlackBot, what: str, thread_ts: str | None = None) -> Message:
    """The bot's one `:status` or `:result` message (the status of a slash command is the
    thread's parent)."""
    found = [
        m
        for m in bot.fake.bot_messages(GENERAL, thread_ts=thread_ts)
        if m.metadata and m.metadata["event_payload"]["key"].endswith(f":{what}")
    ]
    assert len(found) == 1, [m.text for m in bot.fake.bot_messages(GENERAL)]
    return found[0]


def assert_slack_no_speech(status: Message, result: Message, header: str = HEADER) -> None:
    assert status.text == "✅ Transcribed"
    assert result.text == f"{header}\n\n{NO_SPEECH}"
    blocks = result.blocks or []
    # The result's actions close it: Redo (a language, say) works on silence too.
    assert [b["type"] for b in blocks] == ["header", "context", "section", "actions"]
    assert blocks[2]["text"]["text"] == NO_SPEECH
    assert [e["type"] for e in blocks[3]["elements"]] == ["static_select"]  # nobody to rename
    assert all(b["text"]["text"].strip() for b in blocks if "text" in b)  # nothing empty


async def test_slack_command_with_a_language_says_no_speech(
    slack: SlackBot, silence: Path, media_server: Callable[[Path], str]
) -> None:
    form = slack.fake.events.slash_command(
        f"{media_server(silence)} lang=en", channel=GENERAL, user=BOB
    )
    await slack_send(slack, slack.fake.events.http_command(form))
    root = slack_post(slack, "status")
    assert not root.is_reply
    assert_slack_no_speech(root, slack_post(slack, "result", thread_ts=root.ts))
    [job] = await slack.jobs()
    assert job.state is JobState.DELIVERED


async def test_slack_shared_silent_recording_says_no_speech(
    slack: SlackBot, silence_data: bytes
) -> None:
    file = slack.fake.add_file("silence.mp3", silence_data)
    envelope = slack.fake.events.file_share(GENERAL, ALICE, [file], "is this on?")
    await slack_send(slack, slack.fake.events.http_event(envelope))
    ts = envelope["event"]["ts"]
    status, result = slack_post(slack, "status", ts), slack_post(slack, "result", ts)
    assert NO_SPOKEN_AUDIO not in (result.text or "")  # today: the bot passes the error on
    assert_slack_no_speech(status, result, UNDETECTED)
    assert slack.fake.reactions(GENERAL, ts) == {"white_check_mark": [BOT_USER_ID]}


# --- Discord ---------------------------------------------------------------------------


@pytest.fixture
async def discord_bot(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any
) -> AsyncIterator[Harness]:
    config = dataclasses.replace(FAST_ENGINE, ai_summary=True)
    async with running_bot(fake_discord, store, assemblyai, config=config) as harness:
        yield harness


async def discord_run(bot: Harness) -> None:
    await bot.settle()
    await bot.drain()
    counts = await bot.store.counts_by_state()
    assert counts[JobState.DELIVERED] == 1 and sum(counts.values()) == 1


def assert_discord_no_speech(
    status: dict[str, Any], result: dict[str, Any], header: str = HEADER
) -> None:
    assert shown(status) == "✅ Transcribed"
    (embed,) = result["embeds"]
    assert embed["title"] == header
    assert "description" not in embed and not embed.get("fields")  # no empty summary
    assert shown(result) == NO_SPEECH


async def test_discord_command_with_a_language_says_no_speech(
    discord_bot: Harness, silence_data: bytes
) -> None:
    upload = Upload("silence.mp3", silence_data, "audio/mpeg")
    ix = await discord_bot.fake.dispatch_slash_command(
        "transcribe", {"file": upload, "language": "en"}
    )
    await discord_run(discord_bot)
    original = discord_bot.fake.original_response(ix)
    assert original is not None
    (result,) = discord_bot.bot_messages(int(original["id"]))
    assert_discord_no_speech(original, result)


async def test_discord_silent_voice_message_says_no_speech(
    discord_bot: Harness, silence_data: bytes
) -> None:
    voice = await discord_bot.fake.dispatch_voice_message(audio=silence_data, duration_secs=SECONDS)
    await discord_run(discord_bot)
    status, result = discord_bot.bot_messages(int(voice["id"]))
    assert NO_SPOKEN_AUDIO not in shown(result)
    assert_discord_no_speech(status, result, UNDETECTED)
    assert [r.emoji for r in discord_bot.fake.reactions(voice)] == ["✅"]
