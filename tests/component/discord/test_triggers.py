"""Triggers: what becomes a job (attachments, voice messages, links, /transcribe, the
"Transcribe" message command), what does not (the bot's own messages, channels with
auto-transcribe off), who may change the setting, and the order interactions are
answered in. The engine takes the intakes but is not run: no AssemblyAI work happens."""

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from adapters.discord import texts
from adapters.discord.delivery import Hints, Reply
from bot import messages
from bot.chat import FileSource, UrlSource
from bot.jobs import Job, JobStore, Platform
from tests.fakes.discord import FakeDiscord, GeneratedBytes, Permission, Upload
from tests.fakes.discord_harness import (
    Harness,
    running_bot,
    shown,
)
from tests.helpers.engine import FAST_ENGINE

pytestmark = pytest.mark.timeout(30)

OGG = Upload("memo.ogg", b"OggS" + b"\0" * 60, "audio/ogg")


async def jobs_after(bot: Harness, count: int | None = None) -> list[Job]:
    await bot.settle()
    jobs = await bot.jobs()
    if count is not None:
        assert len(jobs) == count, jobs
    return jobs


async def test_a_voice_message_becomes_one_job(bot: Harness) -> None:
    world = bot.fake.world
    voice = await bot.fake.dispatch_voice_message(audio=b"OggS voice", duration_secs=4.5)
    (job,) = await jobs_after(bot, 1)
    assert (job.platform, job.workspace, job.channel, job.message) == (
        Platform.DISCORD,
        str(world.guild.id),
        str(world.general.id),
        voice["id"],
    )
    assert (job.requester, job.thread, job.audio_duration) == (str(world.alice.id), None, 4.5)
    assert isinstance(job.source, FileSource)
    attachment = voice["attachments"][0]
    assert job.source.ref["id"] == attachment["id"]
    assert job.source.ref["content_type"] == "audio/ogg"
    assert job.source.ref["size"] == len(b"OggS voice")
    assert job.dedupe_key.endswith(f":{world.general.id}:{voice['id']}:file:{attachment['id']}")
    assert Hints.of(job.options.platform) == Hints(Reply.THREAD)
    assert job.options.title == "voice message from Alice"

    # The engine announces the new job: ⏳ on the message, a status in its thread.
    await bot.fake.wait_for(lambda: bot.fake.reactions(voice))
    (status,) = await bot.fake.wait_for(lambda: bot.in_thread(voice))
    assert shown(status).startswith("⏳ Queued")
    assert bot.fake.threads()[0]["name"] == "Transcript: voice message from Alice"


async def test_every_audio_or_video_file_and_media_link_is_a_job(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    config = dataclasses.replace(FAST_ENGINE, per_user=10)
    async with running_bot(fake_discord, store, assemblyai, config=config) as bot:
        await one_message_with_everything(bot)


async def one_message_with_everything(bot: Harness) -> None:
    await bot.fake.dispatch_message(
        content="Two takes: <https://media.example.org/take%201.mp3> and "
        "https://example.org/notes.html, plus https://media.example.org/take2.m4a?dl=1.",
        uploads=[
            Upload("interview.wav", b"RIFF....WAVE", "audio/wav"),
            Upload("agenda.pdf", b"%PDF-1.7", "application/pdf"),
            Upload("screen.mp4", b"\0\0\0 ftypisom", "video/mp4"),
            Upload("no-type.flac", b"fLaC"),
        ],
    )
    jobs = await jobs_after(bot, 5)
    sources = sorted(
        str(j.source.ref["filename"]) if isinstance(j.source, FileSource) else j.source.url
        for j in jobs
        if isinstance(j.source, FileSource | UrlSource)
    )
    assert sources == [
        "https://media.example.org/take%201.mp3",
        "https://media.example.org/take2.m4a?dl=1",
        "interview.wav",
        "no-type.flac",
        "screen.mp4",
    ]
    titles = {j.options.title for j in jobs}
    assert {"take 1.mp3", "take2.m4a", "interview.wav"} <= titles


async def test_the_bots_own_messages_never_trigger_a_job(bot: Harness) -> None:
    world = bot.fake.world
    await bot.fake.dispatch_message(author=world.bot, uploads=[OGG], content="https://a.b/c.mp3")
    await bot.fake.dispatch_message(content="no media here")
    await jobs_after(bot, 0)
    assert bot.fake.calls_to("POST /channels/{channel_id}/messages") == []


async def test_auto_transcribe_off_is_respected_in_the_channel_and_its_threads(
    bot: Harness,
) -> None:
    world = bot.fake.world
    await bot.store.settings.set_auto_transcribe(
        Platform.DISCORD, str(world.guild.id), str(world.general.id), False, updated_by="test"
    )
    await bot.fake.dispatch_voice_message()
    await bot.fake.dispatch_voice_message(world.thread)  # a thread in #general
    await jobs_after(bot, 0)
    # A forum post follows its forum (still on by default), and a DM is always on.
    await bot.fake.dispatch_voice_message(world.forum_post)
    await bot.fake.dispatch_voice_message(world.dm)
    jobs = await jobs_after(bot, 2)
    assert {j.workspace for j in jobs} == {str(world.guild.id), "@me"}
    assert {Hints.of(j.options.platform).reply for j in jobs} == {Reply.IN_PLACE}


async def test_auto_transcribe_can_default_to_off(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    async with running_bot(fake_discord, store, assemblyai, discord_auto_transcribe=False) as bot:
        await fake_discord.dispatch_voice_message()
        await jobs_after(bot, 0)
        await store.settings.set_auto_transcribe(
            Platform.DISCORD,
            str(fake_discord.world.guild.id),
            str(fake_discord.world.general.id),
            True,
            updated_by="test",
        )
        await fake_discord.dispatch_voice_message()
        await jobs_after(bot, 1)


async def test_a_message_replayed_after_a_resume_makes_no_second_job(bot: Harness) -> None:
    voice = await bot.fake.dispatch_voice_message()
    (job,) = await jobs_after(bot, 1)
    await bot.fake.wait_for(lambda: bot.in_thread(voice))
    resumed = bot.adapter.client.wait_for("resumed", timeout=5)
    await bot.fake.force_resume("drop", redeliver_messages=[voice])
    await resumed
    assert [j.id for j in await jobs_after(bot, 1)] == [job.id]
    assert len(bot.bot_messages(int(voice["id"]))) == 1  # one status, no second thread post
    assert len(bot.fake.threads()) == 1


@pytest.mark.parametrize(("who", "allowed"), [("alice", False), ("mod", True), ("owner", True)])
async def test_only_manage_server_may_change_auto_transcribe(bot: Harness, who, allowed) -> None:
    world = bot.fake.world
    user = getattr(world, who)
    ix = await bot.fake.dispatch_slash_command(
        "transcribe-settings", {"auto": {"state": "off"}}, user=user, channel=world.thread
    )
    await bot.settle()
    settings = await bot.store.settings.get(
        Platform.DISCORD, str(world.guild.id), str(world.general.id)
    )
    if not allowed:
        (answer,) = bot.fake.interaction_responses(ix)
        assert answer["type"] == 4 and answer["data"]["flags"] == 64
        assert shown(answer["data"]) == (
            "Only members with the Manage Server permission can change this."
        )
        assert settings is None
        return
    assert bot.fake.interaction_responses(ix) == [{"type": 5, "data": {"flags": 64}}]
    (reply,) = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert reply["flags"] == 64
    assert shown(reply).startswith(f"Auto-transcribe is **off** in <#{world.general.id}>")
    assert settings is not None and not settings.auto_transcribe
    assert settings.updated_by == str(user.id)  # set from a thread: its parent channel


@pytest.mark.parametrize(
    ("options", "answer"),
    [
        ({}, "Attach a recording with `file:` or give a link with `url:`"),
        (
            {"url": "https://a.b/c.mp3", "file": OGG},
            "Attach a recording with `file:` or give a link with `url:`",
        ),
        ({"file": Upload("agenda.pdf", b"%PDF")}, "`agenda.pdf` (application/pdf) is not an audio"),
        ({"url": "ftp://a.b/c.mp3"}, "url: an audio URL must be an absolute http(s) URL."),
        ({"url": "https://a.b/c.mp3", "language": "english!"}, "lang must be a language code"),
    ],
)
async def test_transcribe_options_that_make_no_sense_are_answered_at_once(
    bot: Harness, options, answer
) -> None:
    ix = await bot.fake.dispatch_slash_command("transcribe", options)
    (response,) = await bot.fake.wait_for(lambda: bot.fake.interaction_responses(ix))
    assert (response["type"], response["data"]["flags"]) == (4, 64)
    assert shown(response["data"]).startswith(answer)
    await jobs_after(bot, 0)


async def test_transcribe_url_is_deferred_then_stored_then_answered(bot: Harness) -> None:
    world = bot.fake.world
    ix = await bot.fake.dispatch_slash_command(
        "transcribe",
        {"url": "https://media.example.org/talk.mp3", "speakers": 2, "language": "pt-BR"},
    )
    (job,) = await jobs_after(bot, 1)
    assert bot.fake.interaction_responses(ix) == [{"type": 5}]  # public "thinking…"
    assert (job.message, job.thread, job.channel) == (None, None, str(world.general.id))
    assert job.source == UrlSource("https://media.example.org/talk.mp3")
    assert job.options.speakers_expected == 2 and job.options.language_code == "pt_br"
    assert Hints.of(job.options.platform) == Hints(Reply.THREAD, str(ix.id))
    assert job.options.title == "talk.mp3"
    # The engine's status line fills in the deferred response (through the token).
    original = await bot.fake.wait_for(
        lambda: (m := bot.fake.original_response(ix)) and shown(m) and m
    )
    assert shown(original).startswith("⏳ Queued")
    assert bot.fake.calls_to("POST /channels/{channel_id}/messages") == []
    edit = bot.fake.calls_to(
        "PATCH /webhooks/{application_id}/{interaction_token}/messages/{message_id}"
    )
    assert edit and "Authorization" not in edit[0].headers


async def test_the_deferral_does_not_wait_for_a_busy_database(
    fake_discord: FakeDiscord, store: JobStore, assemblyai, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, store, assemblyai) as bot:
        # Another writer holds SQLite's write lock: intakes wait for it.
        blocker = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            ix = await fake_discord.dispatch_slash_command(
                "transcribe", {"file": Upload("call.m4a", b"\0\0\0 ftypM4A ", "audio/mp4")}
            )
            await fake_discord.wait_for(lambda: fake_discord.interaction_responses(ix))
            assert fake_discord.interaction_responses(ix) == [{"type": 5}]
            await asyncio.sleep(0.3)
            assert await store.unfinished() == []  # still waiting for the lock
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        (job,) = await jobs_after(bot, 1)
        assert job.source.ref["filename"] == "call.m4a"  # type: ignore[union-attr]
        assert job.source.ref["message"] is None  # type: ignore[union-attr]
        assert job.dedupe_key.endswith(f":event:{ix.id}:file:{job.source.ref['id']}")  # type: ignore[union-attr]


async def test_the_message_command_works_where_auto_is_off(bot: Harness) -> None:
    world = bot.fake.world
    await bot.store.settings.set_auto_transcribe(
        Platform.DISCORD, str(world.guild.id), str(world.general.id), False, updated_by="t"
    )
    voice = await bot.fake.dispatch_voice_message()
    await jobs_after(bot, 0)

    ix = await bot.fake.dispatch_message_command("Transcribe", voice, user=world.mod)
    (job,) = await jobs_after(bot, 1)
    assert (job.message, job.requester) == (voice["id"], str(world.mod.id))
    assert bot.fake.interaction_responses(ix) == [{"type": 5, "data": {"flags": 64}}]
    (answer,) = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert answer["flags"] == 64
    assert shown(answer).startswith("Transcribing `voice message from Alice`")

    again = await bot.fake.dispatch_message_command("Transcribe", voice)
    (answer,) = await bot.fake.wait_for(lambda: bot.fake.followups(again))
    assert "already being transcribed" in shown(answer)
    await jobs_after(bot, 1)

    text = await bot.fake.dispatch_message(content="just words")
    nothing = await bot.fake.dispatch_message_command("Transcribe", text)
    (response,) = await bot.fake.wait_for(lambda: bot.fake.interaction_responses(nothing))
    assert (response["type"], response["data"]["flags"]) == (4, 64)
    assert shown(response["data"]) == texts.NO_MEDIA_IN_MESSAGE


async def test_an_empty_file_is_refused_with_a_reply(bot: Harness) -> None:
    empty = await bot.fake.dispatch_message(uploads=[Upload("empty.mp3", b"", "audio/mpeg")])
    await jobs_after(bot, 0)
    (reply,) = await bot.fake.wait_for(lambda: bot.bot_messages())
    assert shown(reply) == f"Sorry, I cannot transcribe this: {messages.EMPTY_FILE}."
    assert reply["message_reference"]["message_id"] == empty["id"]
    # Sent again (a resume), the refusal is not repeated: same nonce.
    await bot.fake.force_resume(redeliver_messages=[empty])
    await jobs_after(bot, 0)
    assert len(bot.bot_messages()) == 1


async def test_a_limit_is_explained_once_for_a_message_with_many_files(bot: Harness) -> None:
    uploads = [Upload(f"part{i}.mp3", b"ID3" * 10, "audio/mpeg") for i in range(5)]
    source = await bot.fake.dispatch_message(uploads=uploads)
    await jobs_after(bot, 3)  # alice may have 3 jobs under way (EngineConfig.per_user)
    (reply,) = await bot.fake.wait_for(
        lambda: bot.fake.messages(bot.fake.world.general, from_bot=True)
    )
    limit = messages.user_limit(3)
    assert shown(reply) == (
        f"Sorry, I cannot transcribe some of these:\n- part3.mp3: {limit}\n- part4.mp3: {limit}"
    )
    assert reply["message_reference"]["message_id"] == source["id"]


async def test_an_oversized_command_file_is_refused_to_the_requester_only(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    config = dataclasses.replace(FAST_ENGINE, max_file_bytes=1_000_000)
    async with running_bot(fake_discord, store, assemblyai, config=config) as bot:
        big = Upload("long.wav", GeneratedBytes(2_500_000), "audio/wav")
        ix = await fake_discord.dispatch_slash_command("transcribe", {"file": big})
        (answer,) = await fake_discord.wait_for(lambda: fake_discord.followups(ix))
        assert answer["flags"] == 64
        too_large = messages.too_large(2_500_000, 1_000_000)
        assert shown(answer) == f"Sorry, I cannot transcribe this: {too_large}."
        await jobs_after(bot, 0)
        # The public "thinking…" response was deleted: only the requester sees anything.
        assert [m for m in fake_discord.messages(from_bot=True) if not m["flags"] & 64] == []
        deleted = "DELETE /webhooks/{application_id}/{interaction_token}/messages/{message_id}"
        assert [c.params["message_id"] for c in fake_discord.calls_to(deleted)] == ["@original"]


async def test_a_broken_database_is_explained_and_the_bot_stays_up(bot: Harness) -> None:
    bot.errors_expected = True
    await bot.store.close()  # every intake now fails (StoreClosed)
    ix = await bot.fake.dispatch_slash_command("transcribe", {"url": "https://a.example/b.mp3"})
    (answer,) = await bot.fake.wait_for(lambda: bot.fake.followups(ix))
    assert (shown(answer), answer["flags"]) == (texts.UNEXPECTED, 64)
    assert [m for m in bot.fake.messages(from_bot=True) if not m["flags"] & 64] == []
    await bot.fake.dispatch_voice_message()  # fails in the handler: logged, nothing else
    await bot.settle()
    assert bot.adapter.client.is_ready()
    assert bot.fake.gateway.session().connection is not None


async def test_a_channel_without_embed_links_gets_plain_text_results(bot: Harness) -> None:
    bot.fake.deny_bot(bot.fake.world.general, Permission.EMBED_LINKS)
    await bot.fake.dispatch_slash_command("transcribe", {"url": "https://a.example/b.mp3"})
    (job,) = await jobs_after(bot, 1)
    assert Hints.of(job.options.platform).embeds is False  # from the interaction's app_permissions
