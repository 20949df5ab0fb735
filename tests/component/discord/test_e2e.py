"""End to end: real discord.py against the Discord fake, the real engine on SQLite, and
the AssemblyAI emulator transcribing real two-voice recordings to their scripts."""

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import JobState, Platform
from tests.fakes.discord import Permission, Upload
from tests.fakes.discord_harness import (
    Harness,
    shown,
)
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import FAST_ENGINE

pytestmark = pytest.mark.timeout(40)

LINES = [
    "Speaker A [00:00]: Good morning. Shall we start with the quarterly numbers?",
    "Speaker B [00:0",  # the rest depends on the synthetic voices' timing
]


@pytest.fixture
def bot_options() -> dict[str, Any]:
    return {"config": dataclasses.replace(FAST_ENGINE, ai_summary=True)}


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> Callable[[str], Path]:
    """A recording in `fmt` whose script the emulator knows."""

    def make(fmt: str) -> Path:
        return audio_library.dialogue(fmt, scripts_dir=emulator.scripts_dir).path

    return make


async def run(bot: Harness) -> None:
    await bot.settle()
    await bot.drain()
    counts = await bot.store.counts_by_state()
    assert counts[JobState.DELIVERED] >= 1
    assert sum(n for state, n in counts.items() if state is not JobState.DELIVERED) == 0


def assert_result(message: dict) -> None:
    (embed,) = message["embeds"]
    assert embed["title"].startswith("Transcript · 0:") and "2 speakers" in embed["title"]
    # The AI summary, rendered by us: each point with its speaker and timestamp.
    assert embed["description"].startswith("- **Speaker A** `00:00`: Good morning.")
    assert embed["fields"][0]["value"].startswith("Speaker A — ")
    lines = shown(message).split("\n")
    assert lines[0] == LINES[0]
    assert lines[1].startswith(LINES[1]) and lines[1].endswith("costs are flat.")
    assert len(lines) == 4


async def test_a_voice_message_gets_a_thread_with_the_transcript(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    audio = dialogue("ogg")
    voice = await bot.fake.dispatch_voice_message(audio=audio.read_bytes(), duration_secs=9.5)
    await run(bot)

    (thread,) = bot.fake.threads(bot.fake.world.general)
    assert thread["id"] == voice["id"]
    status, result = bot.bot_messages(int(voice["id"]))
    assert shown(status) == "✅ Transcribed" and status["edited_timestamp"] is not None
    assert_result(result)
    assert [r.emoji for r in bot.fake.reactions(voice)] == ["✅"]
    # AssemblyAI fetched the signed CDN link itself (no bot token, nothing uploaded).
    assert [(f.status, f.authorization) for f in bot.fake.cdn_fetches] == [(200, None)]
    assert [job.direct_failed for job in await bot.store.recent()] == [False]


async def test_a_cdn_link_assemblyai_cannot_fetch_is_streamed_instead(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    audio = dialogue("ogg")
    voice = await bot.fake.dispatch_voice_message(audio=audio.read_bytes(), duration_secs=9.5)
    # The CDN refuses the first fetch (AssemblyAI's), as for a link that expired.
    bot.fake.deny_cdn(voice["attachments"][0]["id"], 404, times=1)
    await run(bot)

    _status, result = bot.bot_messages(int(voice["id"]))
    assert_result(result)
    assert [f.status for f in bot.fake.cdn_fetches] == [404, 200]
    assert [job.direct_failed for job in await bot.store.recent()] == [True]


async def test_transcribe_with_a_file_fills_in_the_deferred_response(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    audio = Upload("meeting.m4a", dialogue("m4a").read_bytes(), "audio/mp4")
    ix = await bot.fake.dispatch_slash_command("transcribe", {"file": audio})
    await run(bot)

    assert bot.fake.interaction_responses(ix) == [{"type": 5}]
    original = bot.fake.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    assert original["interaction_metadata"]["name"] == "transcribe"
    # The result is in a thread started from the response (bot token, with a nonce).
    (thread,) = bot.fake.threads()
    assert (thread["id"], thread["name"]) == (original["id"], "Transcript: meeting.m4a")
    (result,) = bot.bot_messages(int(original["id"]))
    assert_result(result)
    assert bot.fake.reactions() == []  # no source message to react on


async def test_transcribe_with_a_url_in_a_thread_replies_in_place(
    bot: Harness, dialogue: Callable[[str], Path], media_server: Callable[[Path], str]
) -> None:
    world = bot.fake.world
    url = media_server(dialogue("mp3"))
    ix = await bot.fake.dispatch_slash_command(
        "transcribe", {"url": url, "subtitles": "srt+vtt"}, channel=world.thread
    )
    await run(bot)

    original = bot.fake.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    status, result = bot.bot_messages(world.thread)
    assert status["id"] == original["id"]
    assert result["message_reference"]["message_id"] == original["id"]
    assert_result(result)
    assert sorted(f.filename for f in bot.fake.files(world.thread)) == [
        "transcript.srt",
        "transcript.vtt",
    ]
    assert bot.fake.threads() == []


async def test_the_message_command_transcribes_on_request(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    world = bot.fake.world
    await bot.store.settings.set_auto_transcribe(
        Platform.DISCORD, str(world.guild.id), str(world.general.id), False, updated_by="t"
    )
    upload = Upload("standup.webm", dialogue("webm").read_bytes(), "video/webm")
    source = await bot.fake.dispatch_message(uploads=[upload])
    await bot.settle()
    assert await bot.jobs() == []
    ix = await bot.fake.dispatch_message_command("Transcribe", source)
    await run(bot)
    (answer,) = bot.fake.followups(ix)
    assert answer["flags"] == 64 and shown(answer).startswith("Transcribing `standup.webm`")
    status, result = bot.bot_messages(int(source["id"]))
    assert shown(status) == "✅ Transcribed"
    assert_result(result)


async def test_an_unreachable_link_fails_clearly_and_the_bot_stays_up(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    broken = await bot.fake.dispatch_message(content="http://127.0.0.1:9/missing/call.mp3")
    await run(bot)
    status, failure = bot.bot_messages(int(broken["id"]))
    assert shown(status) == "❌ Could not transcribe"
    assert shown(failure).startswith("Sorry, I could not transcribe this: ")
    assert [r.emoji for r in bot.fake.reactions(broken)] == ["❌"]

    voice = await bot.fake.dispatch_voice_message(audio=dialogue("ogg").read_bytes())
    await run(bot)
    assert_result(bot.bot_messages(int(voice["id"]))[1])


async def test_late_results_use_the_bot_token_when_the_interaction_token_expired(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    audio = Upload("meeting.ogg", dialogue("ogg").read_bytes(), "audio/ogg")
    ix = await bot.fake.dispatch_slash_command("transcribe", {"file": audio})
    await bot.settle()
    await bot.fake.wait_for(lambda: (m := bot.fake.original_response(ix)) and shown(m))
    bot.fake.clock.advance(16 * 60)  # Discord's clock only: discord.py still trusts the token
    await run(bot)

    original = bot.fake.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    webhook_edits = bot.fake.calls_to(
        "PATCH /webhooks/{application_id}/{interaction_token}/messages/{message_id}"
    )
    assert webhook_edits[-1].status == 401
    assert webhook_edits[-1].response["code"] == 50027
    bot_edits = bot.fake.calls_to("PATCH /channels/{channel_id}/messages/{message_id}")
    assert bot_edits and bot_edits[-1].params["message_id"] == original["id"]
    assert len(bot.adapter.interactions) == 0  # the dead token was dropped
    (result,) = bot.bot_messages(int(original["id"]))
    assert_result(result)


async def test_a_message_replayed_after_a_resume_gets_one_reply(
    bot: Harness, dialogue: Callable[[str], Path]
) -> None:
    voice = await bot.fake.dispatch_voice_message(audio=dialogue("ogg").read_bytes())
    await run(bot)
    await bot.fake.force_resume("close", redeliver_messages=[voice])  # sent again
    await run(bot)
    assert (await bot.store.counts_by_state())[JobState.DELIVERED] == 1
    status, result = bot.bot_messages(int(voice["id"]))
    assert shown(status) == "✅ Transcribed"
    assert_result(result)


async def test_where_the_bot_may_not_post_the_interaction_answers(
    bot: Harness, dialogue: Callable[[str], Path], media_server: Callable[[Path], str]
) -> None:
    # /transcribe works in a channel the bot cannot write to: interactions need no
    # channel permissions. Status and result then go through the interaction token.
    world = bot.fake.world
    bot.fake.deny_bot(world.thread, Permission.SEND_MESSAGES_IN_THREADS)
    ix = await bot.fake.dispatch_slash_command(
        "transcribe", {"url": media_server(dialogue("wav"))}, channel=world.thread
    )
    await run(bot)
    original = bot.fake.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    (result,) = bot.fake.followups(ix)  # refused with the bot token, sent as a followup
    assert_result(result)
    refused = bot.fake.calls_to("POST /channels/{channel_id}/messages")
    assert [c.response["code"] for c in refused] == [50013]
