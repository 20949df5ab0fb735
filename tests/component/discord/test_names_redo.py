"""Discord, end to end: a voice-channel-less standup posted with a mention comes back with
both people's names, a summary with decisions and action items in the embed, and working
Rename and Redo buttons (each a modal); the channel's vocabulary and settings under
/transcribe-settings. Real discord.py against the Discord fake (components, component and
modal interactions, List Guild Members behind the Server Members intent), the engine on
SQLite and the AssemblyAI emulator."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord import texts
from bot.jobs import JobStore
from tests.fakes.discord import FakeDiscord, FakeInteraction, Intent, Upload
from tests.fakes.discord_harness import (
    Harness,
    running_bot,
    shown,
)
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.meeting import write_meeting

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def meeting(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    sample = audio_library.dialogue("ogg")
    write_meeting(emulator.scripts_dir, sample, {"A": "Alice", "B": "Morgan"})
    return sample


async def share(bot: Harness, meeting: AudioSample) -> dict[str, Any]:
    world = bot.fake.world
    message = await bot.fake.dispatch_message(
        content=f"standup with {world.mod.mention}",
        uploads=[Upload("standup.ogg", meeting.path.read_bytes(), "audio/ogg")],
    )
    await bot.settle()
    await bot.drain()
    return message


EPHEMERAL = 1 << 6


def in_thread(bot: Harness, message: dict[str, Any]) -> list[dict[str, Any]]:
    """What everyone sees in the message's thread (answers to clicks are ephemeral)."""
    return [m for m in bot.bot_messages(int(message["id"])) if not m["flags"] & EPHEMERAL]


def result_in(bot: Harness, message: dict[str, Any]) -> dict[str, Any]:
    _status, result = in_thread(bot, message)
    return result


def button(result: dict[str, Any], label: str) -> str:
    for row in result["components"]:
        for item in row["components"]:
            if item["label"] == label:
                return str(item["custom_id"])
    raise AssertionError(f"no button {label!r}")


async def click(bot: Harness, message: dict[str, Any], label: str, **kw: Any) -> FakeInteraction:
    ix = await bot.fake.dispatch_component(message, button(message, label), **kw)
    await bot.fake.wait_for(lambda: ix.acknowledged)
    return ix


async def submit(bot: Harness, opened: FakeInteraction, values: dict[str, str]) -> str:
    assert opened.acknowledged == 9, opened.callbacks  # answered with a modal
    ix = await bot.fake.submit_modal(opened, values)
    # Burst mode first (the engine's own work for the change), then the interaction's
    # answer, which its handler posts when that work is done.
    await bot.drain()
    answer = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    await bot.drain()
    return shown(answer[0])


async def test_names_summary_rename_and_redo(bot: Harness, meeting: AudioSample) -> None:
    world = bot.fake.world
    message = await share(bot, meeting)

    result = result_in(bot, message)
    (embed,) = result["embeds"]
    assert embed["description"].startswith("- **Alice** `00:00`: Good morning.")
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Decisions"].startswith("- We decided to open the new office in March.")
    assert fields["Action items"].startswith("- **Morgan**: I will send the figures to the board")
    assert fields["Speakers"].startswith("Alice — 0:")
    assert shown(result).startswith("Alice [00:00]: Good morning.")
    assert "Speaker A" not in shown(result)
    labels = [item["label"] for row in result["components"] for item in row["components"]]
    assert labels == ["Rename speakers", "Other language", "Speaker count", "Translate", "Again"]
    # Without the Server Members intent there is no member list: the author and the
    # mention named them.
    assert [c.status for c in bot.fake.calls_to("GET /guilds/{guild_id}/members")] == [403]

    # Rename: Morgan opens the form and gives Alice her full name.
    opened = await click(bot, result, "Rename speakers", user=world.mod)
    assert opened.modal is not None
    assert [r["components"][0]["label"] for r in opened.modal["components"]] == ["Alice", "Morgan"]
    said = await submit(bot, opened, {"speaker_0": "Alice Archer"})
    assert said.startswith("Renaming the speakers")
    renamed = result_in(bot, message)
    assert renamed["id"] == result["id"] and renamed["edited_timestamp"] is not None
    assert shown(renamed).startswith("Alice Archer [00:00]: Good morning.")
    assert renamed["embeds"][0]["description"].startswith("-# Redone: Speakers renamed.")
    assert "- **Alice Archer** `00:00`: Good morning." in renamed["embeds"][0]["description"]

    # Redo's modals say what the result uses now: the detected language.
    opened = await click(bot, renamed, "Other language")
    assert opened.modal is not None
    [[field]] = [row["components"] for row in opened.modal["components"]]
    assert field["placeholder"].startswith("Now: English (en). Another code")

    # Redo: a translation into Spanish, asked in its modal.
    opened = await click(bot, renamed, "Translate")
    refused = await submit(bot, opened, {"value": "tt"})
    assert refused.startswith("AssemblyAI does not translate into tt")
    opened = await click(bot, renamed, "Translate")
    said = await submit(bot, opened, {"value": "es"})
    assert said.startswith("Redoing it with a translation into Spanish")
    translated = result_in(bot, message)
    assert translated["id"] == result["id"]
    assert shown(translated).startswith("Alice Archer [00:00]: Buenos días. ¿Empezamos?")
    assert "→ Spanish" in translated["embeds"][0]["title"]
    [original] = [a for a in translated["attachments"] if a["filename"] == "transcript.txt"]
    assert original["size"] > 0
    assert len(in_thread(bot, message)) == 2  # status and the one result
    assert [r.emoji for r in bot.fake.reactions(message)] == ["✅"]


async def test_the_server_members_intent_adds_a_small_servers_members(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any, meeting: AudioSample
) -> None:
    fake_discord.privileged_intents = Intent.MESSAGE_CONTENT | Intent.GUILD_MEMBERS
    async with running_bot(fake_discord, store, assemblyai) as bot:
        await share(bot, meeting)
        [job] = await store.recent()
        assert [name for _id, name in job.people] == ["Alice", "Morgan", "Olivia"]
        assert [c.status for c in fake_discord.calls_to("GET /guilds/{guild_id}/members")] == [200]


async def test_vocabulary_and_settings_under_transcribe_settings(
    bot: Harness, meeting: AudioSample
) -> None:
    world = bot.fake.world

    async def run(options: dict[str, Any], user: Any = None) -> str:
        ix = await bot.fake.dispatch_slash_command(
            "transcribe-settings", options, user=user or world.mod
        )
        answer = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
        return shown(answer[0])

    added = await run({"vocab": {"add": {"terms": "Kubernetes, Thessaloniki"}}})
    assert (
        added
        == "Added to this channel's vocabulary: Kubernetes, Thessaloniki. It has 2 keyterms now."
    )
    many = ", ".join(f"term{i}" for i in range(199))  # with the two: over universal-2's 200
    assert (await run({"vocab": {"add": {"terms": many}}})).startswith(
        "Not added: the vocabulary would have 201 keyterms: AssemblyAI takes at most 200"
    )
    seven = await run({"vocab": {"add": {"terms": "one two three four five six seven"}}})
    assert seven.endswith("has 7 words: AssemblyAI takes keyterms of at most 6 words")
    spelled = await run({"vocab": {"spell": {"words": "the board", "write": "Board"}}})
    assert spelled == "Transcripts here now always write the board → Board."
    assert (await run({"summary": {"state": "off"}})).startswith("The AI summary is off here")
    # `show` has these beside the channel's policy and redaction (issue 12's controls).
    shown_settings = (await run({"show": {}})).split("\n")
    assert shown_settings[0].startswith("Settings of <#")
    assert (
        "Speaker names: on · AI summary: off · translation: off · vocabulary: 2 keyterms, "
        "1 spelling"
    ) in shown_settings
    ix = await bot.fake.dispatch_slash_command(
        "transcribe-settings", {"names": {"state": "off"}}, user=world.alice, permissions=0
    )
    await bot.fake.wait_for(lambda: ix.acknowledged)
    assert bot.fake.interaction_responses(ix)[0]["data"]["content"] == (
        "Only members with the Manage Server permission can change this."
    )
    message = await share(bot, meeting)
    result = result_in(bot, message)
    assert "the Kubernetes migration?" in shown(result) and "figures to Board by" in shown(result)
    assert not result["embeds"][0].get("description")  # no summary


async def test_transcribe_translate_option_and_a_language_assemblyai_does_not_offer(
    bot: Harness, meeting: AudioSample
) -> None:
    upload = Upload("standup.ogg", meeting.path.read_bytes(), "audio/ogg")
    ix = await bot.fake.dispatch_slash_command("transcribe", {"file": upload, "translate": "tt"})
    await bot.fake.wait_for(lambda: ix.acknowledged)
    [answer] = bot.fake.interaction_responses(ix)  # at once, before anything is taken in
    assert answer["data"]["flags"] == EPHEMERAL
    assert answer["data"]["content"].startswith("AssemblyAI does not translate into tt")
    assert await bot.store.recent() == []  # nothing was taken in, nothing spent

    ix = await bot.fake.dispatch_slash_command("transcribe", {"file": upload, "translate": "es"})
    await bot.fake.wait_for(lambda: ix.acknowledged)
    await bot.settle()
    await bot.drain()
    [job] = await bot.store.recent()
    assert job.options.translate_to == "es"
    original = bot.fake.original_response(ix)
    assert original is not None and shown(original) == "✅ Transcribed"
    (result,) = bot.bot_messages(int(original["id"]))  # in the thread on the response
    assert "→ Spanish" in result["embeds"][0]["title"]
    assert "Buenos días. ¿Empezamos?" in shown(result)
    assert [a["filename"] for a in result["attachments"]] == ["transcript.txt"]  # the original


async def test_a_gateway_error_still_delivers_the_named_transcript_with_a_note(
    bot: Harness, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    error = {"status": 500, "path": "/v1/chat"}
    emulator.inject(error, error)  # both tries of the summary
    message = await share(bot, meeting)
    status, result = in_thread(bot, message)
    assert shown(status) == "✅ Transcribed"
    (embed,) = result["embeds"]
    assert embed["description"] == "(Summary unavailable: Internal Server Error)"
    assert [f["name"] for f in embed["fields"]] == ["Speakers"]  # no decisions, no actions
    assert shown(result).startswith("Alice [00:00]: Good morning.")


async def test_a_failed_job_offers_redo_and_its_result_replaces_the_notice(
    bot: Harness, meeting: AudioSample, emulator: EmulatorServer
) -> None:
    emulator.inject({"status": 400, "path": "/v2/transcript", "method": "POST"})
    message = await share(bot, meeting)
    notice = result_in(bot, message)
    assert shown(notice).startswith("Sorry, I could not transcribe this")
    labels = [item["label"] for row in notice["components"] for item in row["components"]]
    assert labels == ["Other language", "Speaker count", "Translate", "Again"]  # no rename

    ix = await click(bot, notice, "Again")
    answer = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert shown(answer[0]).startswith("Redoing it")
    await bot.drain()
    result = result_in(bot, message)
    assert result["id"] == notice["id"] and result["edited_timestamp"] is not None
    assert shown(result).startswith("Alice [00:00]: Good morning.")
    assert len(in_thread(bot, message)) == 2  # the status and the one result


async def test_while_shutting_down_a_click_says_so_and_redoes_nothing(
    bot: Harness, meeting: AudioSample
) -> None:
    message = await share(bot, meeting)
    result = result_in(bot, message)
    bot.adapter.intake.pause()  # shutdown, phase one: the commands refuse, and so do clicks
    ix = await click(bot, result, "Rename speakers")
    [first] = bot.fake.interaction_responses(ix)
    assert first["type"] == 4  # an answer, not the modal
    assert shown(first["data"]) == texts.SHUTTING_DOWN
    assert len(await bot.store.recent()) == 1
