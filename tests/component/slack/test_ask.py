"""Slack, end to end: questions asked by mentioning the bot in a transcript's thread are
answered there from the transcript (the quote, its speaker and timestamp), follow-ups
keep the thread's conversation, a deleted transcript and a failing gateway are said, a
person asking too often is told so privately; `/transcribe search` finds words in the
channel's recordings and only there, for the asker only. The real adapter in HTTP mode
(every request signed as Slack signs it), the Slack fake's Web API, the engine on SQLite
and the AssemblyAI emulator (its LLM Gateway answers from the transcript it is sent)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import BOT_SCOPES
from bot.chat import Reaction
from bot.jobs import JobState
from bot.render import format_timestamp
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    DANA,
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.fakes.slack_state import Message
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.engine import FAST_ENGINE

ADA = "U0ADA00001"
GRACE = "U0GRACE001"
STANDUP = "C0STANDUP1"


def people(fake: FakeSlack) -> None:
    fake.set_scopes(BOT_TOKEN, BOT_SCOPES)  # exactly what slack-manifest.yml grants
    fake.add_user(ADA, "ada", real_name="Ada Lovelace", display_name="")
    fake.add_user(GRACE, "grace", real_name="Grace Hopper", display_name="")
    fake.add_channel("standup", STANDUP, members={ADA, GRACE, ALICE, BOT_USER_ID})


@pytest.fixture
def bot_options(fake_slack: FakeSlack, emulator: EmulatorServer) -> dict[str, Any]:
    people(fake_slack)
    return {"emulator": emulator}


async def drain(bot: SlackBot) -> None:
    async with asyncio.timeout(30):
        await bot.engine.run_until_idle()
        await asyncio.gather(*bot.adapter.tasks.tasks())


async def send_event(bot: SlackBot, envelope: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))
    assert answer.status == 200, answer.text


async def answered(bot: SlackBot, before: int) -> Any:
    """The newest answer through the command's response_url after the first `before`:
    the search answers after its acknowledgement, in a task of its own."""
    await drain(bot)
    return (await bot.fake.until(lambda: bot.fake.response_posts()[before:]))[-1]


async def command(bot: SlackBot, text: str, user: str, channel: str = STANDUP) -> str:
    form = bot.fake.events.slash_command(text, channel=channel, user=user)
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_command(form))
    assert answer.status == 200, answer.text
    return str(json.loads(answer.text)["text"])


async def shared_in_a_thread(bot: SlackBot, meeting: AudioSample, channel: str = STANDUP) -> str:
    root = bot.fake.events.post(channel, GRACE, "Standup, recorded")
    file = bot.fake.add_file("standup.mp3", meeting.path.read_bytes(), user=ADA)
    await send_event(
        bot, bot.fake.events.file_share(channel, ADA, [file], "here", thread_ts=root.ts)
    )
    await drain(bot)
    return root.ts


async def ask(bot: SlackBot, thread: str, text: str, user: str = ALICE) -> Message | None:
    """Mention the bot in the thread with `text`; the bot's answer in the thread, if any."""
    before = {m.ts for m in bot.fake.bot_messages(STANDUP, thread_ts=thread)}
    msg = bot.fake.events.post(STANDUP, user, f"<@{BOT_USER_ID}> {text}", thread_ts=thread)
    await send_event(bot, bot.fake.events.app_mention(msg))
    await drain(bot)
    new = [m for m in bot.fake.bot_messages(STANDUP, thread_ts=thread) if m.ts not in before]
    assert len(new) <= 1
    return new[0] if new else None


def text_of(message: Message) -> str:
    parts = []
    for block in message.blocks or ():
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", ()) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


async def starts(bot: SlackBot) -> list[str]:
    """The timestamps of the meeting's four turns, as the result shows them."""
    [job, *_] = await bot.jobs()
    assert job.transcript_id is not None
    transcript = await bot.engine.client.get(job.transcript_id)
    return [format_timestamp(u.start) for u in transcript.utterances]


async def test_a_question_a_follow_up_and_what_the_recording_does_not_say(
    bot: SlackBot, meeting: AudioSample
) -> None:
    thread = await shared_in_a_thread(bot, meeting)
    at = await starts(bot)

    answer = await ask(bot, thread, "what did Ada say about the new office?")
    assert answer is not None
    text = text_of(answer)
    assert (
        f"> *Ada Lovelace* `{at[2]}` “Great news. We decided to open the new office in March.”"
        in (text)
    )
    assert answer.thread_ts == thread
    assert "Grace" not in text  # one quote: the line the answer rests on

    first = await ask(bot, thread, "What will Grace send to the board?")
    assert first is not None
    assert f"> *Grace Hopper* `{at[3]}` “I will send the figures to the board by Friday.”" in (
        text_of(first)
    )
    # A follow-up with nothing of its own to go on: answered from the conversation so far.
    follow_up = await ask(bot, thread, "By when?")
    assert follow_up is not None
    assert "by Friday" in text_of(follow_up) and f"`{at[3]}`" in text_of(follow_up)
    [*_, request] = [
        r for r in bot.fake.calls("chat.postMessage") if r.params.get("thread_ts") == thread
    ]
    assert request.ok

    nothing = await ask(bot, thread, "what about the budget?")
    assert nothing is not None
    assert text_of(nothing) == "The recording does not say."

    # The tokens of every answer are counted (what issue 12's usage figures take).
    registry = bot.engine.metrics.registry
    sent = registry.get_sample_value(
        "threadscribe_llm_tokens_total", {"purpose": "question", "direction": "input"}
    )
    answered = registry.get_sample_value(
        "threadscribe_questions_total", {"platform": "slack", "outcome": "answered"}
    )
    assert sent is not None and sent > 4 * 50 and answered == 4
    # ... and shown to the admins with the month's seconds.
    said = await command(bot, "usage", user=DANA)
    assert f"Questions answered: 4 (LLM Gateway: {int(sent):,} tokens in, " in said

    # "is reading the transcript…" under the thread while each answer was made.
    statuses = bot.fake.calls("assistant.threads.setStatus")
    assert [(c.ok, c.params["thread_ts"], c.params["status"]) for c in statuses] == [
        (True, thread, "is reading the transcript…")
    ] * 4


async def test_the_question_is_not_a_new_transcription(bot: SlackBot, meeting: AudioSample) -> None:
    thread = await shared_in_a_thread(bot, meeting)
    answer = await ask(bot, thread, "who spoke first?")
    assert answer is not None
    assert len(await bot.jobs()) == 1
    assert not bot.fake.ephemerals(STANDUP)  # no "already transcribed"
    # Slack delivering the event again (a slow acknowledgement) is not a second answer.
    msg = bot.fake.events.post(
        STANDUP, ALICE, f"<@{BOT_USER_ID}> who spoke last?", thread_ts=thread
    )
    envelope = bot.fake.events.app_mention(msg)
    await send_event(bot, envelope)
    await send_event(bot, envelope)
    await drain(bot)
    replies = bot.fake.bot_messages(STANDUP, thread_ts=thread)
    assert len([m for m in replies if not m.metadata]) == 2  # two questions, two answers


async def test_a_deleted_transcript_is_said(bot: SlackBot, meeting: AudioSample) -> None:
    thread = await shared_in_a_thread(bot, meeting)
    [job] = await bot.jobs()
    assert job.transcript_id is not None
    await bot.engine.client.delete(job.transcript_id)
    answer = await ask(bot, thread, "what did Ada decide?")
    assert answer is not None
    assert text_of(answer).startswith("I can't answer questions about this recording any more")
    assert "deleted at AssemblyAI" in text_of(answer)


async def test_a_gateway_failure_gets_a_clear_reply(
    bot: SlackBot, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    thread = await shared_in_a_thread(bot, meeting)
    emulator.inject({"status": 500, "path": "/v1/chat"}, {"status": 500, "path": "/v1/chat"})
    answer = await ask(bot, thread, "what did Ada decide?")
    assert answer is not None
    assert text_of(answer) == (
        "I could not answer that: the LLM Gateway answered 500: Internal Server Error. "
        "Ask again in a minute."
    )
    emulator.inject({"status": 503, "path": "/v1/chat"}, {"status": 503, "path": "/v1/chat"})
    answer = await ask(bot, thread, "what did Ada decide?")
    assert (
        answer is not None
        and "the LLM Gateway answered HTTP 503 Service Unavailable." in text_of(answer)
    )
    # The bot stays up: the next question is answered.
    answer = await ask(bot, thread, "what did Ada decide about the office?")
    assert answer is not None and "new office in March" in text_of(answer)


async def test_asking_too_often_is_told_privately(
    fake_slack: FakeSlack, tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample
) -> None:
    people(fake_slack)
    config = dataclasses.replace(FAST_ENGINE, questions_per_hour=2)
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, config=config) as bot:
        thread = await shared_in_a_thread(bot, meeting)
        assert await ask(bot, thread, "what did Ada decide?") is not None
        assert await ask(bot, thread, "what will Grace send?") is not None
        assert await ask(bot, thread, "and the cluster?") is None
        [told] = bot.fake.ephemerals(STANDUP)
        assert told.user == ALICE and told.thread_ts == thread
        assert told.text.startswith("You have asked 2 questions in the last hour")
        # Someone else may still ask.
        assert await ask(bot, thread, "and the cluster?", user=GRACE) is not None


async def test_search_finds_the_words_in_this_channels_recordings_only(
    bot: SlackBot, meeting: AudioSample
) -> None:
    other = bot.fake.add_channel("elsewhere", "C0ELSEWHRE", members={ADA, GRACE, BOT_USER_ID})
    bot.fake.add_channel("empty", "C0EMPTY001", members={ALICE, BOT_USER_ID})
    first = await shared_in_a_thread(bot, meeting)
    second = await shared_in_a_thread(bot, meeting)
    await shared_in_a_thread(bot, meeting, channel=other.id)
    assert len(await bot.jobs()) == 3
    [job, *_] = await bot.jobs()
    assert job.transcript_id is not None
    transcript = await bot.engine.client.get(job.transcript_id)
    spoken = sorted(
        w.start
        for w in transcript.words
        if w.text.strip(".,?").lower() in ("board", "thessaloniki")
    )
    times = ", ".join(f"`{format_timestamp(ms)}`" for ms in spoken)

    said = await command(bot, "search board, thessaloniki", user=ALICE)
    assert said == "Searching this channel's recordings for “board, thessaloniki”…"
    post = await answered(bot, 0)
    assert len(bot.fake.response_posts()) == 1
    assert post.status == 200 and post.payload["response_type"] == "ephemeral"
    text = "\n".join(b["text"]["text"] for b in post.payload["blocks"] if "text" in b)
    assert text.startswith(
        "“board”, “thessaloniki”: found in 2 of this channel's 2 recordings of the last 30 days"
    )
    results = [m for m in bot.fake.bot_messages(STANDUP) if m.thread_ts in (first, second)]
    links = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(links) == 2
    # Newest first: the second recording's thread, then the first's.
    assert f"thread_ts={second}" in links[0] and f"thread_ts={first}" in links[1]
    assert all(STANDUP in line and other.id not in line for line in links)
    assert results
    # When each word is said (the same meeting twice).
    assert all(f"2 times at {times}" in line for line in links)

    await command(bot, "search board", user=ALICE, channel="C0EMPTY001")
    elsewhere = await answered(bot, 1)
    assert len(bot.fake.response_posts()) == 2
    assert elsewhere.payload["text"] == (
        "No recording of this channel was transcribed in the last 30 days."
    )
    assert "thread_ts" not in json.dumps(elsewhere.payload)

    await command(bot, "search budget", user=ALICE)
    assert (await answered(bot, 2)).payload["text"] == (
        "“budget” is not said in this channel's 2 recordings of the last 30 days."
    )
    too_long = await command(bot, "search one two three four five six", user=ALICE)
    assert too_long.startswith("Searching")
    assert (await answered(bot, 3)).payload["text"].startswith("A phrase may have at most 5 words")


async def test_without_the_assistant_status_the_answer_still_comes(
    bot: SlackBot, meeting: AudioSample
) -> None:
    thread = await shared_in_a_thread(bot, meeting)
    bot.fake.fail("assistant.threads.setStatus", "not_allowed", times=5)
    assert await ask(bot, thread, "what did Ada decide?") is not None
    assert await ask(bot, thread, "what will Grace send?") is not None
    # Refused once: not asked again in that channel.
    assert [c.ok for c in bot.fake.calls("assistant.threads.setStatus")] == [False]


async def test_after_delivery_deletion_nothing_is_asked_of_assemblyai(
    fake_slack: FakeSlack, tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample
) -> None:
    people(fake_slack)
    config = dataclasses.replace(FAST_ENGINE, delete_after_delivery=True)
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, config=config) as bot:
        thread = await shared_in_a_thread(bot, meeting)
        emulator.clear_requests()
        answer = await ask(bot, thread, "what did Ada decide?")
        assert answer is not None
        assert text_of(answer).startswith("I can't answer questions about this recording")
        said = await command(bot, "search board", user=ALICE)
        assert said.startswith("Searching")
        assert (await answered(bot, 0)).payload["text"] == (
            "None of this channel's 1 recording of the last 30 days can be searched: their "
            "transcripts were deleted at AssemblyAI (for privacy), or AssemblyAI did not answer."
        )
        # The job record said the transcript is gone: AssemblyAI was not asked again.
        assert [r["path"] for r in emulator.requests()] == []


async def test_a_question_asked_the_moment_the_result_shows_is_answered(
    bot: SlackBot, meeting: AudioSample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result is up, the rest of its delivery (the final status, the ✅) not yet done:
    a person who asks at once is answered, not ignored."""
    held, release = asyncio.Event(), asyncio.Event()
    react = bot.adapter.react

    async def slow_react(where: Any, reaction: Reaction) -> None:
        if reaction is Reaction.DONE:  # the last of the delivery before it is recorded
            held.set()
            await release.wait()
        await react(where, reaction)

    monkeypatch.setattr(bot.adapter, "react", slow_react)
    file = bot.fake.add_file("standup.mp3", meeting.path.read_bytes(), user=ADA)
    shared = bot.fake.events.post(STANDUP, ADA, "standup", files=[file])
    await send_event(bot, bot.fake.events.message(shared))
    delivering = asyncio.create_task(drain(bot))
    try:
        async with asyncio.timeout(20):
            await held.wait()
        assert bot.fake.bot_messages(STANDUP, thread_ts=shared.ts)  # the result is up
        [job] = await bot.jobs()
        assert job.state is JobState.COMPLETED  # and not yet delivered

        msg = bot.fake.events.post(
            STANDUP, ALICE, f"<@{BOT_USER_ID}> What will Grace send?", thread_ts=shared.ts
        )
        await send_event(bot, bot.fake.events.app_mention(msg))
        async with asyncio.timeout(20):
            await asyncio.gather(*bot.adapter.tasks.tasks())
        at = await starts(bot)
        quote = f"> *Grace Hopper* `{at[3]}` “I will send the figures to the board by Friday.”"
        [*_, answer] = bot.fake.bot_messages(STANDUP, thread_ts=shared.ts)
        assert quote in text_of(answer)
        assert not bot.fake.ephemerals(STANDUP)  # no "already being transcribed"
    finally:
        release.set()
        await delivering
