"""Asking the recording, where the user stands: a `.env` written from `.env.example`, a
real `threadscribe run` process, the Slack fake (HTTP mode) or the Discord fake and the
AssemblyAI emulator (whose LLM Gateway answers from the transcript it is sent), reached
over loopback. A recording is shared; in its thread a person asks a question (Slack: a
mention, delivered as Slack delivers it, the `message` event and the `app_mention`
event; Discord: a reply to the result), then a follow-up that only the first answer
makes sense of, then `/transcribe search` finds a word, for the asker only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import BOT_SCOPES
from bot.assemblyai import AssemblyAIClient
from bot.config import Secret
from bot.render import format_timestamp
from bot.transcript import Transcript
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.discord_harness import shown
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
)
from tests.fakes.slack_state import Message
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.meeting import write_meeting
from tests.helpers.processes import assemblyai_lines, env_file, free_port, running, until

pytestmark = pytest.mark.timeout(120)

ADA = "U0ADA00001"
GRACE = "U0GRACE001"
STANDUP = "C0STANDUP1"
EPHEMERAL = 1 << 6
#: what the meeting's last turn says (tests/helpers/meeting.py), as an answer quotes it
FIGURES = "“I will send the figures to the board by Friday.”"


async def transcript_at(emulator: EmulatorServer) -> Transcript:
    """The one transcript the bot asked for, as AssemblyAI's API returns it."""
    [record] = emulator.running.emulator.store.records.values()
    client = AssemblyAIClient(Secret(emulator.api_key), base_url=emulator.base_url)
    async with client:
        return await client.get(record.id)


def starts(transcript: Transcript) -> list[str]:
    """When each turn starts, as the result and the answers show it."""
    return [format_timestamp(u.start) for u in transcript.utterances]


def said_at(transcript: Transcript, word: str) -> str:
    """When `word` is said, as a search lists it."""
    found = [w.start for w in transcript.words if w.text.strip(".,?").lower() == word]
    assert found, word
    return ", ".join(f"`{format_timestamp(ms)}`" for ms in found)


# -- Slack ----------------------------------------------------------------------------------


def slack_text(message: Message) -> str:
    """A bot message as a reader sees it: its blocks' text, in order."""
    parts = []
    for block in message.blocks or ():
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", ()) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


@pytest.fixture
async def slack_bot(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[str]:
    """`threadscribe run` in HTTP mode from a person's folder; yields its events URL."""
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)  # exactly what slack-manifest.yml grants
    fake_slack.add_user(ADA, "ada", real_name="Ada Lovelace", display_name="")
    fake_slack.add_user(GRACE, "grace", real_name="Grace Hopper", display_name="")
    fake_slack.add_channel("standup", STANDUP, members={ADA, GRACE, ALICE, BOT_USER_ID})
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
    )
    async with running(tmp_path, port):
        yield f"http://127.0.0.1:{port}/slack/events"


async def test_slack_a_question_its_follow_up_and_a_search(
    fake_slack: FakeSlack,
    emulator: EmulatorServer,
    audio_library: AudioLibrary,
    slack_bot: str,
) -> None:
    sample = audio_library.dialogue("mp3")
    write_meeting(emulator.scripts_dir, sample, {"A": "Ada Lovelace", "B": "Grace Hopper"})
    events = fake_slack.events

    async def deliver(envelope: dict[str, Any]) -> None:
        answer = await fake_slack.send_to_app(slack_bot, events.http_event(envelope))
        assert answer.status == 200, answer.text

    file = fake_slack.add_file("standup.mp3", sample.path.read_bytes(), user=ADA)
    shared = events.post(STANDUP, ADA, "standup, recorded", files=[file])
    await deliver(events.message(shared))
    thread = shared.ts
    await until(lambda: fake_slack.reactions(STANDUP, thread).get("white_check_mark"))
    transcript = await transcript_at(emulator)
    at = starts(transcript)
    delivered = len(fake_slack.bot_messages(STANDUP, thread_ts=thread))  # status, result

    async def ask(text: str) -> tuple[str, dict[str, Any]]:
        """Alice mentions the bot in the thread; the answer there, and the body of the
        chat.postMessage that posted it."""
        before = {m.ts for m in fake_slack.bot_messages(STANDUP, thread_ts=thread)}
        msg = events.post(STANDUP, ALICE, f"<@{BOT_USER_ID}> {text}", thread_ts=thread)
        await deliver(events.message(msg))  # Slack sends both; the mention answers
        await deliver(events.app_mention(msg))

        def answered() -> list[Message]:
            replies = fake_slack.bot_messages(STANDUP, thread_ts=thread)
            return [m for m in replies if m.ts not in before]

        [answer] = await until(answered)
        [call] = [
            c
            for c in fake_slack.calls("chat.postMessage")
            if c.ok and c.response.get("ts") == answer.ts
        ]
        return slack_text(answer), call.params

    text, body = await ask("What will Grace send to the board?")
    assert f"> *Grace Hopper* `{at[3]}` {FIGURES}" in text, text
    assert body["channel"] == STANDUP and body["thread_ts"] == thread
    assert "Ada" not in text  # the one line the answer rests on
    # "By when?" has no word of its own: only the first answer says what it is about.
    text, _ = await ask("By when?")
    assert "by Friday" in text and f"`{at[3]}` {FIGURES}" in text, text
    # One answer per question, although Slack sent each as `message` and `app_mention`.
    assert len(fake_slack.bot_messages(STANDUP, thread_ts=thread)) == delivered + 2

    said = events.slash_command("search board", channel=STANDUP, user=ALICE)
    answer = await fake_slack.send_to_app(slack_bot, events.http_command(said))
    assert answer.status == 200, answer.text
    assert json.loads(answer.text)["text"].startswith("Searching this channel's recordings")
    [post] = await until(lambda: [p for p in fake_slack.response_posts() if p.payload])
    assert post.status == 200 and post.payload["response_type"] == "ephemeral", post
    [told] = fake_slack.ephemerals(STANDUP)  # the response_url's: seen by Alice alone
    assert told.user == ALICE
    assert told.text.startswith("“board”: found in 1 of this channel's 1 recording"), told.text
    links = "\n".join(b["text"]["text"] for b in told.blocks or () if "text" in b)
    assert f"thread_ts={thread}" in links and f"1 time at {said_at(transcript, 'board')}" in (
        links
    ), links
    # Nothing of it in the channel or the thread for anyone else.
    public = [slack_text(m) for m in fake_slack.bot_messages(STANDUP)]
    public += [slack_text(m) for m in fake_slack.bot_messages(STANDUP, thread_ts=thread)]
    assert not [t for t in public if "found in" in t]


# -- Discord --------------------------------------------------------------------------------


@pytest.fixture
async def discord_bot(
    fake_discord: FakeDiscord, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[None]:
    """`threadscribe run` from a person's folder, once it is on the gateway (what is sent
    before would reach no one) and its commands are registered in the guild."""
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        DISCORD_DEV_GUILD=str(fake_discord.world.guild.id),
        PORT=str(port),
    )
    async with running(tmp_path, port):
        guild = fake_discord.world.guild.id
        await until(lambda: any(s.connection for s in fake_discord.gateway.sessions))
        await until(lambda: any(c["name"] == "transcribe" for c in fake_discord.commands(guild)))
        yield


async def test_discord_a_question_its_follow_up_and_a_search(
    fake_discord: FakeDiscord,
    emulator: EmulatorServer,
    audio_library: AudioLibrary,
    discord_bot: None,
) -> None:
    sample = audio_library.dialogue("ogg")
    write_meeting(emulator.scripts_dir, sample, {"A": "Alice", "B": "Morgan"})
    world = fake_discord.world
    shared = await fake_discord.dispatch_message(
        content=f"standup with {world.mod.mention}",  # who Morgan is
        uploads=[Upload("standup.ogg", sample.path.read_bytes(), "audio/ogg")],
    )
    thread = int(shared["id"])

    def result() -> dict[str, Any] | None:
        if thread not in world.channels:
            return None
        found = [
            m for m in fake_discord.messages(thread, from_bot=True) if "Good morning." in shown(m)
        ]
        return found[-1] if found else None

    # Done when the ✅ is on the recording, as a person sees it (the result comes first).
    await until(lambda: any(r.emoji == "✅" for r in fake_discord.reactions(shared)))
    finished = await until(result)
    transcript = await transcript_at(emulator)
    at = starts(transcript)

    async def ask(text: str, reply_to: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Alice replies to `reply_to` in the thread; the bot's answer, and the body that
        posted it."""
        question = await fake_discord.dispatch_message(thread, content=text, reply_to=reply_to)

        def answered() -> list[Any]:
            return [
                c
                for c in fake_discord.calls_to("POST /channels/{channel_id}/messages")
                if c.status == 200
                and (c.json or {}).get("message_reference", {}).get("message_id")
                in (question["id"], int(question["id"]))
            ]

        [call] = await until(answered)
        [answer] = [m for m in fake_discord.messages(thread) if m["id"] == call.response["id"]]
        assert answer["message_reference"]["message_id"] == question["id"]  # a reply to it
        assert not answer["flags"] & EPHEMERAL
        return answer, call.json

    first, body = await ask("What will Morgan send to the board?", reply_to=finished)
    text = shown(first)
    assert text.startswith("Morgan said at"), text
    assert f"> **Morgan** `{at[3]}` {FIGURES}" in text, text
    assert "Alice" not in text
    assert body["allowed_mentions"]["parse"] == []
    # Asked more about, in reply to the answer. "By when?" has no word of its own: only
    # the first answer says what it is about.
    follow_up, _ = await ask("By when?", reply_to=first)
    assert f"`{at[3]}` {FIGURES}" in shown(follow_up), shown(follow_up)

    ix = await fake_discord.dispatch_slash_command("transcribe", {"search": "board"})
    [told] = await until(lambda: fake_discord.followups(ix))
    assert told["flags"] & EPHEMERAL
    assert [r["data"]["flags"] & EPHEMERAL for r in fake_discord.interaction_responses(ix)] == [
        EPHEMERAL
    ]  # deferred as "only you can see this", then answered
    content = told["content"]
    assert content.startswith("“board”: found in 1 of this channel's 1 recording"), content
    link = f"https://discord.com/channels/{world.guild.id}/{thread}/{finished['id']}"
    assert link in content and f"1 time at {said_at(transcript, 'board')}" in content
    # Nothing of it for anyone else: the one message is the ephemeral answer.
    seen = fake_discord.messages(from_bot=True) + fake_discord.messages(thread, from_bot=True)
    assert [m["id"] for m in seen if "found in" in shown(m)] == [told["id"]]
    assert [m["id"] for m in seen if not m["flags"] & EPHEMERAL and "found in" in shown(m)] == []
