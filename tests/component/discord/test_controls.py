"""The privacy and cost controls on Discord, end to end: real discord.py against the
Discord fake, the real engine and store, the AssemblyAI emulator. Policies (Manage Server
only), opt-outs, `show` (the overview Slack keeps in its Home tab), usage, forget from the
message menu, PII redaction with the redacted audio, and the budget with the owner told."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import texts
from bot import messages
from bot.jobs import ChannelPolicy, JobStore, Platform
from tests.fakes.discord import FakeDiscord, Permission
from tests.fakes.discord_harness import Harness, running_bot, shown
from tests.fakes.discord_model import EVERYONE_PERMISSIONS
from tests.helpers.audio import AudioSample, make_pii_dialogue, write_script
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer, start_emulator
from tests.helpers.engine import FAST_ENGINE, emulator_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    return audio_library.dialogue("ogg", scripts_dir=emulator.scripts_dir)


async def answer(bot: Harness, ix: Any) -> str:
    """The ephemeral answer to an interaction: at once, or the followup of a deferral."""
    await bot.settle()
    first = bot.fake.interaction_responses(ix)[0]
    if first["type"] == 4:
        assert first["data"]["flags"] == 64
        return shown(first["data"])
    assert first == {"type": 5, "data": {"flags": 64}}
    (reply,) = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert reply["flags"] == 64
    return shown(reply)


async def settings(bot: Harness, sub: str, user: Any = None, **options: Any) -> str:
    world = bot.fake.world
    ix = await bot.fake.dispatch_slash_command(
        "transcribe-settings", {sub: options}, user=user or world.mod
    )
    return await answer(bot, ix)


async def policy(bot: Harness) -> ChannelPolicy | None:
    world = bot.fake.world
    saved = await bot.store.settings.get(
        Platform.DISCORD, str(world.guild.id), str(world.general.id)
    )
    return None if saved is None else saved.policy


async def test_only_manage_server_sets_the_policy_and_on_request_means_asked_for(
    bot: Harness, dialogue: AudioSample
) -> None:
    world = bot.fake.world
    refused = await settings(bot, "policy", world.alice, mode="on-request")
    assert refused == texts.NEED_MANAGE_SERVER and await policy(bot) is None
    said = await settings(bot, "policy", mode="on-request")
    assert said.startswith(f"Settings of <#{world.general.id}>:\nPolicy: on-request")
    assert await policy(bot) is ChannelPolicy.ON_REQUEST

    voice = await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    assert await bot.jobs() == []
    ix = await bot.fake.dispatch_message_command("Transcribe", voice, user=world.mod)
    await answer(bot, ix)
    [job] = await bot.jobs()
    assert (job.requester, job.author) == (str(world.mod.id), str(world.alice.id))


async def test_off_refuses_what_someone_asks_for(bot: Harness, dialogue: AudioSample) -> None:
    await settings(bot, "policy", mode="off")
    voice = await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    ix = await bot.fake.dispatch_message_command("Transcribe", voice)
    assert await answer(bot, ix) == messages.refused([messages.transcription_off(direct=False)])
    assert await bot.jobs() == []


async def test_an_opted_out_member_and_someone_else_asking(
    bot: Harness, dialogue: AudioSample
) -> None:
    world = bot.fake.world
    said = await settings(bot, "optout", world.alice)
    assert said.startswith("You opted out: recordings you share")
    voice = await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    assert await bot.jobs() == [] and bot.in_thread(voice) == []
    other = await bot.fake.dispatch_message_command("Transcribe", voice, user=world.mod)
    assert await answer(bot, other) == messages.refused([messages.SHARER_OPTED_OUT])
    mine = await bot.fake.dispatch_message_command("Transcribe", voice, user=world.alice)
    await answer(bot, mine)
    [job] = await bot.jobs()
    assert job.requester == str(world.alice.id)
    assert (await settings(bot, "optin", world.alice)).startswith("You opted back in")


async def test_show_is_everyones_and_admins_see_the_channels_and_usage(
    bot: Harness, dialogue: AudioSample
) -> None:
    world = bot.fake.world
    await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    await bot.drain()

    mine = await settings(bot, "show", world.alice)
    assert "**You**\nRecordings you share are transcribed where" in mine
    assert f"voice message from Alice in <#{world.general.id}>" in mine and ": done" in mine
    assert "**Channels**" not in mine and "**This month**" not in mine
    theirs = await settings(bot, "show", world.mod)
    assert "**This month**\nUsage this month" in theirs
    assert f"**Channels**\n• <#{world.general.id}>: auto (default)" in theirs
    assert len(theirs) <= 2000


async def test_usage_for_manage_server_only(bot: Harness, dialogue: AudioSample) -> None:
    world = bot.fake.world
    await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    await bot.drain()
    assert await settings(bot, "usage", world.alice) == texts.NEED_MANAGE_SERVER
    usage = await settings(bot, "usage", world.owner)
    [job] = await bot.store.recent()
    seconds = f"{job.billed_seconds:.0f} s"
    assert f"• <#{world.general.id}>: {seconds}" in usage
    assert f"• <@{world.alice.id}>: {seconds}" in usage
    cost = messages.usd(job.billed_seconds / 3600 * 0.21)
    assert f"Estimated cost: {cost} (assemblyai-stt-3-7 at $0.21/h)" in usage
    assert cost.startswith("$0.00") and len(cost) == 7  # to the hundredth of a cent


async def test_forget_from_the_message_menu(
    bot: Harness, dialogue: AudioSample, emulator: EmulatorServer
) -> None:
    world = bot.fake.world
    voice = await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    await bot.drain()
    [job] = await bot.store.recent()
    _status, result = bot.in_thread(voice)
    assert [r.emoji for r in bot.fake.reactions(voice)] == ["✅"]

    # A member without Manage Server who neither shared nor asked: refused.
    plain = int(EVERYONE_PERMISSIONS)
    nope = await bot.fake.dispatch_message_command(
        "Forget transcript", result, user=world.mod, permissions=plain
    )
    assert await answer(bot, nope) == messages.NOT_YOURS_TO_FORGET
    # Alice shared it: from the bot's result, in the thread.
    ix = await bot.fake.dispatch_message_command("Forget transcript", result, user=world.alice)
    assert (await answer(bot, ix)).startswith("Forgetting voice message from Alice: my posts")
    await bot.drain()

    public = [m for m in bot.in_thread(voice) if not m["flags"] & 64]  # not the answers
    assert public == []  # the posts are gone; the thread itself stays
    assert bot.fake.threads(world.general)
    assert bot.fake.reactions(voice) == []
    assert emulator.running.emulator.store.records[job.transcript_id].deleted
    assert await bot.store.get(job.id) is None
    again = await bot.fake.dispatch_message_command("Forget transcript", voice, user=world.owner)
    assert await answer(bot, again) == messages.NOTHING_TO_FORGET


async def test_redaction_set_in_a_channel_with_the_redacted_audio_attached(
    bot: Harness, emulator: EmulatorServer, tmp_path: Path
) -> None:
    sample = make_pii_dialogue(tmp_path / "pii", "ogg")
    write_script(sample, emulator.scripts_dir)
    world = bot.fake.world
    assert await settings(bot, "redaction", world.alice, pii="on") == texts.NEED_MANAGE_SERVER
    said = await settings(bot, "redaction", pii="on", audio="on")
    assert "PII redaction: on (phone numbers" in said and said.endswith("redacted audio posted too")

    voice = await bot.fake.dispatch_voice_message(audio=sample.path.read_bytes(), duration_secs=14)
    await bot.settle()
    await bot.drain()
    _status, result = bot.in_thread(voice)
    text = shown(result)
    assert "[PHONE\\_NUMBER]" in text and "555-0100" not in text and "Baker" not in text
    assert "Ada Lovelace" in text  # names are not among the default policies
    (embed,) = result["embeds"]
    assert "🔒 PII redacted: " in embed["footer"]["text"]
    assert [a["filename"] for a in result["attachments"]] == ["redacted-audio.mp3"]


async def test_a_budget_refusal_names_it_and_the_owner_is_told(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any, dialogue: AudioSample
) -> None:
    config = dataclasses.replace(FAST_ENGINE, budget_hours=20 / 3600)
    async with running_bot(fake_discord, store, assemblyai, config=config) as bot:
        world = bot.fake.world
        data = dialogue.path.read_bytes()
        # Two shared at once: one fits the budget, exactly one is taken.
        shared = await asyncio.gather(
            *(bot.fake.dispatch_voice_message(audio=data, duration_secs=15) for _ in range(2))
        )
        await bot.settle()
        [job] = await bot.jobs()
        (refusal,) = [m for m in bot.fake.messages(from_bot=True) if "budget" in m["content"]]
        taken = {m["id"] for m in shared if m["id"] == job.message}
        assert len(taken) == 1
        assert {refusal["message_reference"]["message_id"]} == {m["id"] for m in shared} - taken
        assert shown(refusal).startswith(
            "Sorry, I cannot transcribe this: that recording needs 15 s, and only 5 s of "
            "this workspace's monthly transcription budget of 20 s is left"
        )
        await bot.drain()
        dms = [c for c in world.channels.values() if c.recipients == [world.owner]]
        (dm,) = dms
        (told,) = await bot.fake.wait_for(lambda: bot.fake.messages(dm.id, from_bot=True))
        assert "transcription budget of 20 s is used up" in told["content"]
        assert Permission.MANAGE_GUILD  # the owner holds every permission; they are told


async def test_outside_the_allowed_servers_the_bot_says_once_it_is_not_enabled(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any, dialogue: AudioSample
) -> None:
    async with running_bot(fake_discord, store, assemblyai, allowed_guilds=("1",)) as bot:
        data = dialogue.path.read_bytes()
        first = await bot.fake.dispatch_voice_message(audio=data, duration_secs=9)
        await bot.fake.dispatch_voice_message(audio=data, duration_secs=9)
        await bot.settle()
        (said,) = await bot.fake.wait_for(lambda: bot.fake.messages(from_bot=True))
        assert said["message_reference"]["message_id"] == first["id"]
        assert shown(said) == messages.refused([messages.not_enabled("discord", workspace=True)])
        assert "not enabled in this server" in said["content"]
        # Asked for explicitly, the answer says it every time (ephemeral, to the asker).
        ix = await bot.fake.dispatch_message_command("Transcribe", first)
        assert "not enabled in this server" in await answer(bot, ix)
        await bot.settle()
        public = [m["id"] for m in bot.fake.messages(from_bot=True) if not m["flags"] & 64]
        assert public == [said["id"]] and await bot.jobs() == []


async def test_an_allowed_server_with_a_channel_allowlist(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any, dialogue: AudioSample
) -> None:
    world = fake_discord.world
    allowed = {"allowed_guilds": (str(world.guild.id),), "allowed_channels": ("1",)}
    async with running_bot(fake_discord, store, assemblyai, **allowed) as bot:
        await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
        await bot.settle()
        (said,) = await bot.fake.wait_for(lambda: bot.fake.messages(from_bot=True))
        assert "not enabled in this channel" in said["content"]
        assert await bot.jobs() == []
    allowed["allowed_channels"] = (str(world.general.id),)
    async with running_bot(fake_discord, store, assemblyai, **allowed) as bot:
        await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
        await bot.settle()
        [job] = await bot.jobs()
        assert job.channel == str(world.general.id)


async def test_direct_messages_follow_their_own_setting(
    fake_discord: FakeDiscord, store: JobStore, assemblyai: Any, dialogue: AudioSample
) -> None:
    world = fake_discord.world
    off = {"discord_dm_transcribe": ChannelPolicy.OFF}
    async with running_bot(fake_discord, store, assemblyai, **off) as bot:
        data = dialogue.path.read_bytes()
        for _ in range(2):
            await bot.fake.dispatch_voice_message(world.dm, audio=data, duration_secs=9)
        await bot.settle()
        (said,) = await bot.fake.wait_for(lambda: bot.fake.messages(world.dm, from_bot=True))
        assert shown(said) == messages.refused([messages.transcription_off(direct=True)])
        assert len(bot.fake.messages(world.dm, from_bot=True)) == 1 and await bot.jobs() == []
        # In a server channel, the channel default (auto) still applies.
        await bot.fake.dispatch_voice_message(audio=data, duration_secs=9)
        await bot.settle()
        assert len(await bot.jobs()) == 1


async def test_delete_after_delivery_shows_its_receipt_in_the_result(
    fake_discord: FakeDiscord,
    store: JobStore,
    assemblyai: Any,
    dialogue: AudioSample,
    emulator: EmulatorServer,
) -> None:
    config = dataclasses.replace(FAST_ENGINE, delete_after_delivery=True)
    async with running_bot(fake_discord, store, assemblyai, config=config) as bot:
        voice = await bot.fake.dispatch_voice_message(
            audio=dialogue.path.read_bytes(), duration_secs=9
        )
        await bot.settle()
        await bot.drain()
        _status, result = bot.in_thread(voice)
        (embed,) = result["embeds"]
        assert embed["footer"]["text"].endswith(messages.DELETED_RECEIPT)
        [job] = await bot.store.recent()
        assert emulator.running.emulator.store.records[job.transcript_id].deleted


async def test_forget_of_a_job_still_being_transcribed(
    fake_discord: FakeDiscord, store: JobStore, dialogue: AudioSample, tmp_path: Path
) -> None:
    world = fake_discord.world
    with start_emulator(tmp_path / "slow", processing_time=2.0) as slow:
        write_script(dialogue, slow.scripts_dir)
        async with emulator_client(slow) as client, running_bot(fake_discord, store, client) as bot:
            voice = await bot.fake.dispatch_voice_message(
                audio=dialogue.path.read_bytes(), duration_secs=9
            )
            await bot.settle()
            await bot.engine.start()
            records = slow.running.emulator.store.records
            await bot.fake.wait_for(lambda: records)  # submitted: AssemblyAI is working on it
            [record] = records.values()
            assert not record.done

            ix = await bot.fake.dispatch_message_command(
                "Forget transcript", voice, user=world.owner
            )  # the server's owner: an admin, who neither shared nor asked
            assert "It was still being transcribed" in await answer(bot, ix)
            async with asyncio.timeout(20):
                # The emulator's state and the store, in-process: nothing to wait on but time.
                while not record.deleted or await bot.jobs():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            public = [m for m in bot.in_thread(voice) if not m["flags"] & 64]
            assert public == []  # the status went, and no result was ever posted
            assert bot.fake.reactions(voice) == []
            assert await bot.store.recent() == []


async def test_while_shutting_down_the_controls_say_so_and_change_nothing(
    bot: Harness, dialogue: AudioSample
) -> None:
    world = bot.fake.world
    voice = await bot.fake.dispatch_voice_message(audio=dialogue.path.read_bytes(), duration_secs=9)
    await bot.settle()
    await bot.drain()
    bot.adapter.intake.pause()  # shutdown, phase one: handlers under way finish, no new ones
    assert await settings(bot, "policy", world.mod, mode="off") == texts.SHUTTING_DOWN
    ix = await bot.fake.dispatch_message_command("Forget transcript", voice, user=world.alice)
    assert await answer(bot, ix) == texts.SHUTTING_DOWN
    assert len(await bot.store.recent()) == 1
    bot.adapter.intake.resume()
    assert "auto (default)" in await settings(bot, "show", world.mod)
