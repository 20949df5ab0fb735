"""Slack, end to end: a recording shared in a thread with two known members comes back
with their names (as mentions), a summary with decisions and action items, and working
Rename (a button, a modal) and Redo (a menu); the channel's vocabulary and settings under
/transcribe. The real adapter in HTTP mode, every request signed as Slack signs it, the
Slack fake's Web API (users.info, conversations.members, views.open), the engine on
SQLite and the AssemblyAI emulator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapters.slack import BOT_SCOPES
from adapters.slack.blocks import REDO_ACTION, RENAME_ACTION
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    DANA,
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot
from tests.fakes.slack_state import Message
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import EmulatorServer

ADA = "U0ADA00001"
GRACE = "U0GRACE001"


@pytest.fixture
def bot_options(fake_slack: FakeSlack, emulator: EmulatorServer) -> dict[str, Any]:
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)  # exactly what slack-manifest.yml grants
    # Two people whose profiles have no display name, as many have: Slack shows their
    # full names.
    fake_slack.add_user(ADA, "ada", real_name="Ada Lovelace", display_name="")
    fake_slack.add_user(GRACE, "grace", real_name="Grace Hopper", display_name="")
    fake_slack.add_channel("standup", "C0STANDUP1", members={ADA, GRACE, ALICE, BOT_USER_ID})
    return {"emulator": emulator}


async def drain(bot: SlackBot) -> None:
    async with asyncio.timeout(30):
        await bot.engine.run_until_idle()


async def send_event(bot: SlackBot, envelope: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))
    assert answer.status == 200, answer.text


async def interact(bot: SlackBot, payload: dict[str, Any]) -> str:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_interactive(payload))
    assert answer.status == 200, answer.text
    return answer.text


async def command(
    bot: SlackBot, text: str, user: str, channel: str = "C0STANDUP1", name: str = "/transcribe"
) -> str:
    form = bot.fake.events.slash_command(text, channel=channel, user=user, command=name)
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_command(form))
    assert answer.status == 200, answer.text
    return str(json.loads(answer.text)["text"])


def result_of(bot: SlackBot, thread: str) -> Message:
    [result] = [
        m
        for m in bot.fake.bot_messages("C0STANDUP1", thread_ts=thread)
        if m.metadata and m.metadata["event_payload"]["key"].endswith(":result")
    ]
    return result


def text_of(message: Message) -> str:
    parts = []
    for block in message.blocks or ():
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", ()) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def redo_option(message: Message, choice: str) -> str:
    for block in message.blocks or ():
        for element in block.get("elements", ()):
            if element.get("action_id") == REDO_ACTION:
                for group in element["option_groups"]:
                    for option in group["options"]:
                        if option["value"].endswith(f" {choice}"):
                            return str(option["value"])
    raise AssertionError(f"no redo option {choice}")


async def shared_in_a_thread(bot: SlackBot, meeting: AudioSample) -> str:
    root = bot.fake.events.post("C0STANDUP1", GRACE, "Standup, recorded")
    file = bot.fake.add_file("standup.mp3", meeting.path.read_bytes(), user=ADA)
    await send_event(
        bot, bot.fake.events.file_share("C0STANDUP1", ADA, [file], "here", thread_ts=root.ts)
    )
    await drain(bot)
    return root.ts


async def test_names_summary_rename_and_redo(bot: SlackBot, meeting: AudioSample) -> None:
    thread = await shared_in_a_thread(bot, meeting)

    # Names: the two members, as mentions; the summary with decisions and action items.
    result = result_of(bot, thread)
    text = text_of(result)
    assert f"<@{ADA}> `00:00`  Good morning. Shall we start with the kubernetes migration?" in text
    assert f"<@{GRACE}> `00:0" in text and "Speaker A" not in text
    assert f"*Summary*\n• <@{ADA}> `00:00`: Good morning." in text
    assert "*Decisions*\n• We decided to open the new office in March." in text
    assert f"*Action items*\n• <@{GRACE}>: I will send the figures to the board by Friday." in text
    assert f"*Speakers*\n<@{ADA}> — 0:" in text
    assert result.text.startswith("Transcript · 0:")  # the notification text: plain names
    looked_up = {c.params["user"] for c in bot.fake.calls("users.info")}
    assert {ADA, GRACE} <= looked_up
    assert [c.ok for c in bot.fake.calls("conversations.members")] == [True]

    # Rename: Grace opens the form from the result and gives Ada a shorter name.
    await interact(bot, bot.fake.events.block_action(result, user=GRACE, action_id=RENAME_ACTION))
    [opened] = bot.fake.calls("views.open")
    assert opened.ok, opened.response
    [view] = bot.fake.state.views.values()
    labels = [b["label"]["text"] for b in view.view["blocks"] if b["type"] == "input"]
    assert labels == ["Ada Lovelace", "Grace Hopper"]
    answer = await interact(
        bot, bot.fake.events.view_submission(view.id, user=GRACE, values={"speaker_0": "Ada L."})
    )
    assert answer in ("", "null", "{}")  # the modal closes
    await drain(bot)
    [told] = bot.fake.ephemerals("C0STANDUP1")
    assert told.user == GRACE and told.text.startswith("Renaming the speakers")
    renamed = result_of(bot, thread)
    assert renamed.ts == result.ts and renamed.edit_count == 1  # edited in place
    text = text_of(renamed)
    assert "*Ada L.* `00:00`  Good morning." in text and f"<@{GRACE}> `00:0" in text
    assert "*Summary*\n• *Ada L.* `00:00`: Good morning." in text  # the summary follows
    assert "Redone: Speakers renamed." in text

    # Redo: Ada asks for a Spanish translation from the menu.
    await interact(
        bot,
        bot.fake.events.block_action(
            renamed,
            user=ADA,
            action_id=REDO_ACTION,
            option=redo_option(renamed, "translate:es"),
        ),
    )
    await drain(bot)
    [said] = [p for p in bot.fake.response_posts() if p.payload.get("text")]
    assert said.payload["text"].startswith("Redoing it with a translation into Spanish")
    assert said.payload["response_type"] == "ephemeral"
    translated = result_of(bot, thread)
    assert translated.ts == result.ts and translated.edit_count == 2
    text = text_of(translated)
    assert "→ Spanish" in text and "*Ada L.* `00:00`  Buenos días. ¿Empezamos?" in text
    [original] = [f for f in bot.fake.uploaded_files() if f.filename == "transcript.txt"]
    assert original.thread_ts == thread
    assert "Ada L. [00:00]: Good morning. Shall we start" in original.text
    # One result in the thread all along; the status message tells of the redo.
    replies = bot.fake.bot_messages("C0STANDUP1", thread_ts=thread)
    keys = [m.metadata["event_payload"]["key"].split(":", 1)[1] for m in replies if m.metadata]
    assert keys == ["status", "result", "result:files"]
    assert replies[0].text == "✅ Transcribed (redone)"
    assert len(await bot.jobs()) == 3


async def test_vocabulary_and_settings_under_transcribe(
    bot: SlackBot, meeting: AudioSample
) -> None:
    added = await command(bot, "vocab add Kubernetes, Thessaloniki", user=ALICE)
    assert added == (
        "Added to this channel's vocabulary: Kubernetes, Thessaloniki. It has 2 keyterms now."
    )
    assert (await command(bot, "vocab list", user=GRACE)).startswith(
        "Keyterms (2): Kubernetes, Thessaloniki"
    )
    # Over AssemblyAI's limits (200 keyterms with universal-2 among the models; 6 words a
    # keyterm): refused before anything is stored.
    many = ", ".join(f"term{i}" for i in range(199))
    assert (await command(bot, f"vocab add {many}", user=ALICE)).startswith(
        "Not added: the vocabulary would have 201 keyterms: AssemblyAI takes at most 200"
    )
    assert (await command(bot, "vocab add one two three four five six seven", user=ALICE)).endswith(
        "has 7 words: AssemblyAI takes keyterms of at most 6 words"
    )
    refused = await command(bot, "summary off", user=ALICE)
    assert refused.startswith("Only the people who may change this channel")
    assert (await command(bot, "summary off", user=DANA)).startswith("The AI summary is off here")
    assert (await command(bot, "translate klingon", user=DANA)).startswith(
        "translate needs a language code such as es or fr, not 'klingon'"
    )
    assert (await command(bot, "translate tt", user=DANA)).startswith(
        "AssemblyAI does not translate into tt"
    )
    assert await command(bot, "settings", user=ALICE) == (
        "Speaker names: on · AI summary: off · translation: off · vocabulary: 2 keyterms, "
        "0 spellings"
    )
    # The same commands under /transcribe-settings, beside the channel's policy.
    settings = "/transcribe-settings"
    assert (await command(bot, "names on", user=ALICE, name=settings)).startswith(
        "Only the people who may change this channel"
    )
    assert (await command(bot, "names on", user=DANA, name=settings)).startswith(
        "Speaker names are on here"
    )
    shown = await command(bot, "", user=ALICE, name=settings)
    assert shown.startswith("Settings of <#C0STANDUP1>:")  # issue 12's policy and redaction
    assert shown.endswith(
        "Speaker names: on · AI summary: off · translation: off · vocabulary: 2 keyterms, "
        "0 spellings"
    )
    thread = await shared_in_a_thread(bot, meeting)
    text = text_of(result_of(bot, thread))
    assert "the Kubernetes migration?" in text and "in Thessaloniki is ready" in text
    assert "*Summary*" not in text


async def test_a_large_channel_and_a_long_name_fit_speaker_identifications_limits(
    bot: SlackBot, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    crowd = {f"U0CROWD{i:03}" for i in range(40)}
    for user in crowd:
        bot.fake.add_user(user, user.lower(), real_name=f"Crowd {user[-3:]}", display_name="")
    channel = bot.fake.add_channel("all-hands", "C0ALLHANDS", members={*crowd, ADA, BOT_USER_ID})
    bot.fake.add_user("U0LONG0001", "long", display_name="Ada Augusta King, Countess of Lovelace")
    root = bot.fake.events.post(channel.id, "U0LONG0001", "all hands")
    for user in sorted(crowd):  # forty people reply in the thread
        bot.fake.events.post(channel.id, user, "+1", thread_ts=root.ts)
    file = bot.fake.add_file("allhands.mp3", meeting.path.read_bytes(), user=ADA)
    await send_event(
        bot, bot.fake.events.file_share(channel.id, ADA, [file], "", thread_ts=root.ts)
    )
    await drain(bot)

    [job] = await bot.jobs()
    assert job.transcript_id is not None and len(job.people) == 35
    assert all(len(name) <= 35 for _id, name in job.people)
    assert ("U0LONG0001", "Ada Augusta King, Countess of") in job.people
    async with asyncio.timeout(5):
        record = await bot.engine.client.get(job.transcript_id)
    sent = record.raw["speech_understanding"]["request"]["speaker_identification"]
    assert sent["known_values"] == [name for _id, name in job.people]
    # A channel of more than twelve: its members are not asked for.
    assert [c.params["channel"] for c in bot.fake.calls("conversations.members")] == []
    [_status, result] = [
        m for m in bot.fake.bot_messages(channel.id, thread_ts=root.ts) if m.metadata
    ]
    assert f"<@{ADA}> `00:00`" in text_of(result)


async def test_a_mention_with_options_on_a_transcribed_recording_redoes_it(
    bot: SlackBot, meeting: AudioSample
) -> None:
    file = bot.fake.add_file("standup.mp3", meeting.path.read_bytes(), user=ADA)
    shared = bot.fake.events.file_share("C0STANDUP1", ADA, [file], "standup")
    await send_event(bot, shared)
    await drain(bot)
    ts = shared["event"]["ts"]
    before = result_of(bot, ts)
    asked = bot.fake.events.post("C0STANDUP1", GRACE, f"<@{BOT_USER_ID}> lang=de", thread_ts=ts)
    await send_event(bot, bot.fake.events.app_mention(asked))
    await drain(bot)

    [told] = bot.fake.ephemerals("C0STANDUP1")
    assert told.user == GRACE and told.text.startswith("Redoing it with German")
    after = result_of(bot, ts)
    assert after.ts == before.ts and after.edit_count == 1
    assert "German" in text_of(after).split("\n")[1]  # the header's facts
    assert "Redone: German." in text_of(after)


async def test_a_gateway_error_still_delivers_the_named_transcript_with_a_note(
    bot: SlackBot, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    error = {"status": 500, "path": "/v1/chat"}
    emulator.inject(error, error)  # both tries of the summary
    thread = await shared_in_a_thread(bot, meeting)
    result = result_of(bot, thread)
    text = text_of(result)
    assert "*Summary*\n(Summary unavailable: Internal Server Error)\n*Speakers*" in text
    assert "*Decisions*" not in text and "*Action items*" not in text
    assert f"<@{ADA}> `00:00`  Good morning." in text  # the transcript, named, all the same
    status, *_ = bot.fake.bot_messages("C0STANDUP1", thread_ts=thread)
    assert status.text == "✅ Transcribed"


async def test_a_failed_job_offers_redo_and_its_result_replaces_the_notice(
    bot: SlackBot, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    emulator.inject({"status": 400, "path": "/v2/transcript", "method": "POST"})
    thread = await shared_in_a_thread(bot, meeting)
    notice = result_of(bot, thread)
    assert notice.text.startswith("Sorry, I could not transcribe this")
    [actions] = [b for b in notice.blocks or () if b["type"] == "actions"]
    assert [e["type"] for e in actions["elements"]] == ["static_select"]  # nobody to rename

    await interact(
        bot,
        bot.fake.events.block_action(
            notice, user=GRACE, action_id=REDO_ACTION, option=redo_option(notice, "again")
        ),
    )
    await drain(bot)
    result = result_of(bot, thread)
    assert result.ts == notice.ts and result.edit_count == 1  # the notice, replaced
    assert f"<@{ADA}> `00:00`  Good morning." in text_of(result)
    replies = bot.fake.bot_messages("C0STANDUP1", thread_ts=thread)
    assert len([m for m in replies if m.metadata]) == 2  # the status and the one result
