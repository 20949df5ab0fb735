"""End to end: the Slack fake, the real adapter, store and engine, the AssemblyAI emulator,
and real two-voice audio. Every job ends with exactly one result in its thread."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import BOT_SCOPES
from adapters.slack.chat import POST_EVENT
from bot.jobs import JobState
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
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import FAST_ENGINE

FULL = replace(FAST_ENGINE, ai_summary=True)


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    return audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)


@pytest.fixture
def bot_options(fake_slack: FakeSlack, emulator: EmulatorServer) -> dict[str, Any]:
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)  # exactly what slack-manifest.yml grants
    return {"emulator": emulator, "config": FULL}


async def drain(bot: SlackBot) -> None:
    async with asyncio.timeout(25):
        await bot.engine.run_until_idle()


async def send(bot: SlackBot, envelope: dict[str, Any], **retry: Any) -> None:
    request = bot.fake.events.http_event(envelope, **retry)
    answer = await bot.fake.send_to_app(bot.events_url, request)
    assert answer.status == 200, answer.text


def keyed(messages: list[Message], suffix: str) -> list[Message]:
    return [
        m
        for m in messages
        if m.metadata
        and m.metadata["event_type"] == POST_EVENT
        and m.metadata["event_payload"]["key"].endswith(suffix)
    ]


def block_text(message: Message) -> str:
    parts = []
    for block in message.blocks or ():
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e["text"] for e in block.get("elements", ()) if isinstance(e.get("text"), str))
    return "\n".join(parts)


async def test_a_shared_two_speaker_recording_gets_its_transcript_in_the_thread(
    bot: SlackBot, dialogue: AudioSample, emulator: EmulatorServer
) -> None:
    file = bot.fake.add_file("standup.mp3", dialogue.path.read_bytes())
    envelope = bot.fake.events.file_share(GENERAL, ALICE, [file], "standup")
    ts = envelope["event"]["ts"]

    await send(bot, envelope)
    await drain(bot)

    thread = bot.fake.bot_messages(GENERAL, thread_ts=ts)
    [status] = keyed(thread, ":status")
    [result] = keyed(thread, ":result")
    assert status.text == "✅ Transcribed" and status.edit_count >= 2
    text = block_text(result)
    for utterance in dialogue.script["utterances"]:  # type: ignore[attr-defined]
        assert f"*Speaker {utterance['speaker']}* `" in text
        assert utterance["text"] in text
    assert "*Summary*\n• *Speaker A* `00:00`: Good morning." in text
    assert "*Speakers*\n*Speaker A* —" in text
    assert result.text.startswith("Transcript · 0:")  # the plain-text fallback
    assert bot.fake.reactions(GENERAL, ts) == {"white_check_mark": [BOT_USER_ID]}
    [job] = await bot.jobs()
    assert job.state is JobState.DELIVERED
    [download] = bot.fake.downloads(file.id)
    assert download.complete and download.token == BOT_TOKEN
    assert [r["path"] for r in emulator.requests()].count("/v2/upload") == 1


async def test_a_link_a_command_and_the_shortcut(
    bot: SlackBot, dialogue: AudioSample, media_server: Any
) -> None:
    url = media_server(dialogue.path)
    link = bot.fake.events.link_message(GENERAL, ALICE, [url], "from the webinar")
    quiet = bot.fake.events.post(
        GENERAL, BOB, "", files=[bot.fake.add_file("d.mp3", dialogue.path.read_bytes())]
    )
    form = bot.fake.events.slash_command(f"{url} speakers=2", channel=GENERAL, user=BOB)

    await send(bot, link)
    command = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_command(form))
    shortcut = bot.fake.events.message_shortcut(quiet, user=ALICE)
    await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_interactive(shortcut))
    await drain(bot)

    assert command.status == 200
    for parent in (link["event"]["ts"], quiet.ts):
        [result] = keyed(bot.fake.bot_messages(GENERAL, thread_ts=parent), ":result")
        assert dialogue.script["utterances"][1]["text"] in block_text(result)  # type: ignore[index]
    [root] = [m for m in bot.fake.bot_messages(GENERAL) if not m.is_reply and m.metadata]
    assert f"<@{BOB}> asked for a transcript of <{url}>" in block_text(root)
    [result] = keyed(bot.fake.bot_messages(GENERAL, thread_ts=root.ts), ":result")
    assert "Speaker B" in block_text(result)
    assert len(await bot.jobs()) == 3


async def test_duplicates_and_retries_give_one_reply(bot: SlackBot, dialogue: AudioSample) -> None:
    file = bot.fake.add_file("standup.mp3", dialogue.path.read_bytes())
    msg = bot.fake.events.post(GENERAL, ALICE, f"<@{BOT_USER_ID}>", files=[file])
    message, mention = bot.fake.events.message(msg), bot.fake.events.app_mention(msg)
    shortcut = bot.fake.events.message_shortcut(msg, user=BOB)

    await asyncio.gather(
        send(bot, message),
        send(bot, message, retry_num=1),
        send(bot, mention),
        send(bot, mention, retry_num=2),
    )
    await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_interactive(shortcut))
    await drain(bot)
    await send(bot, message, retry_num=3)  # a late retry, after delivery
    await drain(bot)

    thread = bot.fake.bot_messages(GENERAL, thread_ts=msg.ts)
    assert len(keyed(thread, ":result")) == 1 and len(keyed(thread, ":status")) == 1
    assert len(thread) == 2
    assert len(await bot.jobs()) == 1


async def test_bad_input_gets_a_clear_reply_and_the_bot_stays_up(
    fake_slack: FakeSlack, tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample
) -> None:
    config = replace(FAST_ENGINE, max_file_bytes=5_000_000)
    events = fake_slack.events
    cases = {
        "not audio": events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("notes.mp3", b"just some text " * 500)]
        ),
        "empty": events.file_share(GENERAL, ALICE, [fake_slack.add_file("e.wav", b"")]),
        "oversized": events.file_share(
            GENERAL, BOB, [fake_slack.add_file("big.wav", b"\0" * 6_000_000)]
        ),
        "unreachable": events.link_message(GENERAL, BOB, ["http://127.0.0.1:9/gone.mp3"]),
    }
    expected = {
        "not audio": "Sorry, I could not transcribe this: AssemblyAI could not transcribe",
        "empty": "that file is empty (0 bytes)",
        "oversized": "that file is 6.0 MB; this workspace's limit is 5.0 MB",
        "unreachable": "Sorry, I could not transcribe this: AssemblyAI could not transcribe",
    }
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, config=config) as bot:
        for envelope in cases.values():
            await send(bot, envelope)
        await drain(bot)
        # an admin takes files:read away: Slack then serves its sign-in page for files
        fake_slack.set_scopes(BOT_TOKEN, set(BOT_SCOPES) - {"files:read"})
        html = events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("x.mp3", dialogue.path.read_bytes())]
        )
        await send(bot, html)
        await drain(bot)
        fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)
        good = events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("ok.mp3", dialogue.path.read_bytes())]
        )
        await send(bot, good)
        await drain(bot)

    for name, envelope in cases.items():
        texts = [
            m.text for m in fake_slack.bot_messages(GENERAL, thread_ts=envelope["event"]["ts"])
        ]
        assert any(expected[name] in t for t in texts), (name, texts)
    html_texts = [m.text for m in fake_slack.bot_messages(GENERAL, thread_ts=html["event"]["ts"])]
    assert any("lacks the files:read scope" in t for t in html_texts), html_texts
    assert fake_slack.reactions(GENERAL, html["event"]["ts"]) == {"x": [BOT_USER_ID]}
    [result] = keyed(fake_slack.bot_messages(GENERAL, thread_ts=good["event"]["ts"]), ":result")
    assert "Speaker A" in block_text(result)
