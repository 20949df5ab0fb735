"""Discord, end to end: a reply to a result (or a mention in its thread) is a question,
answered in reply from the transcript with the quote, its speaker and timestamp; a
follow-up keeps the conversation; a deleted transcript and a failing gateway are said;
`/transcribe search:` finds words in this channel's recordings only, in an ephemeral
answer. Real discord.py against the Discord fake (message_reference, flags 64), the
engine on SQLite and the AssemblyAI emulator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.assemblyai import AssemblyAIClient, RetryPolicy, Timeouts
from bot.config import Secret
from bot.jobs import JobStore
from bot.render import format_timestamp
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.discord_harness import Harness, running_bot, shown
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.meeting import write_meeting

pytestmark = pytest.mark.timeout(60)
EPHEMERAL = 1 << 6


@pytest.fixture
def meeting(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    sample = audio_library.dialogue("ogg")
    write_meeting(emulator.scripts_dir, sample, {"A": "Alice", "B": "Morgan"})
    return sample


async def share(bot: Harness, meeting: AudioSample, channel: Any = None) -> dict[str, Any]:
    message = await bot.fake.dispatch_message(
        channel,
        content=f"standup with {bot.fake.world.mod.mention}",  # who Morgan is
        uploads=[Upload("standup.ogg", meeting.path.read_bytes(), "audio/ogg")],
    )
    await bot.settle()
    await bot.drain()
    return message


async def ask(bot: Harness, thread: int, text: str, reply_to: dict[str, Any] | None) -> str:
    """Post `text` in the thread (a reply to `reply_to`); the bot's answer, as shown."""
    before = {m["id"] for m in bot.bot_messages(thread)}
    question = await bot.fake.dispatch_message(thread, content=text, reply_to=reply_to)
    await bot.settle()
    [answer] = [m for m in bot.bot_messages(thread) if m["id"] not in before]
    assert answer["message_reference"]["message_id"] == question["id"]  # a reply to it
    assert not answer["flags"] & EPHEMERAL
    return shown(answer)


async def test_a_reply_to_the_result_is_answered_with_the_quote_and_a_follow_up(
    bot: Harness, meeting: AudioSample
) -> None:
    message = await share(bot, meeting)
    thread = int(message["id"])
    [_status, result] = bot.in_thread(message)
    at = await starts_in(bot, bot.fake.world.general.id)

    said = await ask(bot, thread, "What will Morgan send to the board?", reply_to=result)
    assert said.startswith("Morgan said at")
    assert f"> **Morgan** `{at[3]}` “I will send the figures to the board by Friday.”" in said
    follow_up = await ask(bot, thread, "By when?", reply_to=result)
    assert f"`{at[3]}` “I will send the figures to the board by Friday.”" in follow_up
    # A mention in the thread asks too, without replying to anything.
    me = bot.fake.world.bot
    said = await ask(bot, thread, f"<@{me.id}> what did Alice decide about the office?", None)
    assert f"> **Alice** `{at[2]}` “Great news. We decided to open the new office in March.”" in (
        said
    )
    nothing = await ask(bot, thread, "what about the budget?", reply_to=result)
    assert nothing == "The recording does not say."
    assert len(bot.fake.calls_to("POST /channels/{channel_id}/typing")) == 4
    # A reply to someone else's message is no question.
    other = await bot.fake.dispatch_message(thread, content="hello")
    before = len(bot.bot_messages(thread))
    await bot.fake.dispatch_message(thread, content="what did she say?", reply_to=other)
    await bot.settle()
    assert len(bot.bot_messages(thread)) == before


async def test_a_deleted_transcript_and_a_failing_gateway_are_said(
    bot: Harness, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    message = await share(bot, meeting)
    thread = int(message["id"])
    [_status, result] = bot.in_thread(message)
    emulator.inject({"status": 500, "path": "/v1/chat"}, {"status": 500, "path": "/v1/chat"})
    said = await ask(bot, thread, "What did Alice decide?", reply_to=result)
    assert said == (
        "I could not answer that: the LLM Gateway answered 500: Internal Server Error. "
        "Ask again in a minute."
    )
    # The bot stays up: the next question is answered.
    said = await ask(bot, thread, "What did Alice decide about the office?", reply_to=result)
    assert "new office in March" in said

    # Another recording, whose transcript was deleted at AssemblyAI before anyone asked.
    other = await share(bot, meeting)
    [job, *_] = await bot.store.delivered_in(*_where(await bot.store.recent(1)))
    assert job.message == other["id"] and job.transcript_id is not None
    await bot.engine.client.delete(job.transcript_id)
    [_status, result] = bot.in_thread(other)
    said = await ask(bot, int(other["id"]), "What did Alice decide?", reply_to=result)
    assert said == (
        "I can't answer questions about this recording any more: its transcript was deleted "
        "at AssemblyAI (for privacy), and threadscribe keeps no copy."
    )


def _where(jobs: list[Any]) -> tuple[Any, str, list[str]]:
    job = jobs[0]
    return job.platform, job.workspace, [job.channel]


async def test_search_finds_words_in_this_channels_recordings_only(
    bot: Harness, meeting: AudioSample
) -> None:
    world = bot.fake.world
    first = await share(bot, meeting)
    second = await share(bot, meeting)
    await share(bot, meeting, channel=world.thread)  # a recording in another channel
    said = await words_at(bot, world.general.id, ("thessaloniki", "board"))

    ix = await bot.fake.dispatch_slash_command("transcribe", {"search": "board, thessaloniki"})
    [answer] = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert answer["flags"] & EPHEMERAL
    content = answer["content"]
    assert content.startswith(
        "“board”, “thessaloniki”: found in 2 of this channel's 2 recordings of the last 30 days"
    )
    lines = [line for line in content.splitlines() if line.startswith("- ")]
    guild = world.guild.id
    results = [bot.in_thread(m)[-1]["id"] for m in (second, first)]  # newest first
    pairs = zip((second, first), results, strict=True)
    for line, (message, result) in zip(lines, pairs, strict=True):
        link = f"https://discord.com/channels/{guild}/{message['id']}/{result}"
        assert link in line and f"2 times at {said}" in line
    assert str(world.thread.id) not in content

    ix = await bot.fake.dispatch_slash_command(
        "transcribe", {"search": "board"}, channel=world.thread
    )
    [answer] = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert answer["flags"] & EPHEMERAL
    assert "found in 1 of this channel's 1 recording of" in answer["content"]
    assert str(first["id"]) not in answer["content"] and str(second["id"]) not in answer["content"]

    ix = await bot.fake.dispatch_slash_command("transcribe", {"search": "budget"})
    [answer] = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert answer["content"] == (
        "“budget” is not said in this channel's 2 recordings of the last 30 days."
    )
    assert json.dumps(answer).count("discord.com/channels") == 0


async def words_at(bot: Harness, channel: int, words: tuple[str, ...]) -> str:
    """When the transcript says these words (each word's start), as a search lists them."""
    job = (await bot.store.recent(10))[-1]
    [newest, *_] = await bot.store.delivered_in(job.platform, job.workspace, [str(channel)])
    assert newest.transcript_id is not None
    transcript = await bot.engine.client.get(newest.transcript_id)
    starts = sorted(w.start for w in transcript.words if w.text.strip(".,?").lower() in words)
    return ", ".join(f"`{format_timestamp(ms)}`" for ms in starts)


async def starts_in(bot: Harness, channel: int) -> list[str]:
    job = (await bot.store.recent(10))[-1]
    jobs = await bot.store.delivered_in(job.platform, job.workspace, [str(channel)])
    assert jobs and jobs[0].transcript_id is not None
    transcript = await bot.engine.client.get(jobs[0].transcript_id)
    return [format_timestamp(u.start) for u in transcript.utterances]


async def test_a_slow_gateway_and_an_edge_error_page_get_a_clear_reply(
    fake_discord: FakeDiscord, store: JobStore, emulator: EmulatorServer, meeting: AudioSample
) -> None:
    client = AssemblyAIClient(
        Secret(emulator.api_key),
        base_url=emulator.base_url,
        llm_base_url=emulator.base_url,
        retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.1),
        timeouts=Timeouts(llm=0.5),
    )
    async with client, running_bot(fake_discord, store, client) as bot:
        message = await share(bot, meeting)
        [_status, result] = bot.in_thread(message)
        thread = int(message["id"])
        emulator.inject(*[{"delay": 1.0, "path": "/v1/chat"}] * 2)
        said = await ask(bot, thread, "What did Alice decide?", reply_to=result)
        assert said == (
            "I could not answer that: the LLM Gateway did not answer in time. "
            "Ask again in a minute."
        )
        emulator.inject(*[{"status": 502, "path": "/v1/chat"}] * 2)  # an edge: no JSON
        said = await ask(bot, thread, "What did Alice decide?", reply_to=result)
        assert said == (
            "I could not answer that: the LLM Gateway answered HTTP 502 Bad Gateway. "
            "Ask again in a minute."
        )
        # The emulator answers the requests the client gave up on: let it, before it stops.
        async with asyncio.timeout(5):
            while len(chat_calls(emulator)) < 5:  # noqa: ASYNC110 - its log is another thread's
                await asyncio.sleep(0.05)


def chat_calls(emulator: EmulatorServer) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"] == "/v1/chat/completions"]


async def test_a_reply_to_an_answer_is_a_follow_up(bot: Harness, meeting: AudioSample) -> None:
    """In the thread, people reply to the answer they ask more about, not to the result."""
    message = await share(bot, meeting)
    thread = int(message["id"])
    [_status, result] = bot.in_thread(message)
    at = await starts_in(bot, bot.fake.world.general.id)
    await ask(bot, thread, "What will Morgan send to the board?", reply_to=result)
    [*_, answer] = bot.bot_messages(thread)
    follow_up = await ask(bot, thread, "By when?", reply_to=answer)
    assert f"> **Morgan** `{at[3]}` “I will send the figures to the board by Friday.”" in (
        follow_up
    )
