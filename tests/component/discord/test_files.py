"""Attachments: streamed from the CDN without the bot token, renewed when their signed URL
has expired, and a clear FileUnavailable when the file is really gone."""

import hashlib
from typing import Any

import discord
import pytest

from adapters.discord.files import attachment_of, expires_at
from bot.chat import FileSource, FileUnavailable, Platform, ThreadRef
from bot.jobs import IntakeRecord, Job, JobStore
from tests.fakes.discord import FakeDiscord, GeneratedBytes, Upload
from tests.fakes.discord_harness import (
    Harness,
    running_bot,
)

pytestmark = pytest.mark.timeout(30)

GET_MESSAGE = "GET /channels/{channel_id}/messages/{message_id}"


@pytest.fixture
def bot_options() -> dict[str, Any]:
    """Auto-transcribe off: these tests make their jobs themselves."""
    return {"discord_auto_transcribe": False}


async def file_job(bot: Harness, upload: Upload) -> tuple[Job, discord.Message]:
    posted = await bot.fake.dispatch_message(uploads=[upload])
    channel = bot.adapter.client.get_partial_messageable(int(posted["channel_id"]))
    message = await channel.fetch_message(int(posted["id"]))
    found = attachment_of(message.attachments[0], channel_id=channel.id, message_id=message.id)
    source = FileSource(found.ref)
    job, _ = await bot.store.admission.intake(
        IntakeRecord(
            platform=Platform.DISCORD,
            workspace=str(bot.fake.world.guild.id),
            channel=str(channel.id),
            requester=str(bot.fake.world.alice.id),
            source=source,
            message=str(message.id),
        )
    )
    return job, message


async def read_all(bot: Harness, job: Job) -> tuple[str, int, int | None, int]:
    stream = await bot.adapter.open_file(ThreadRef.of(job), job.source)
    digest, total, chunks = hashlib.sha256(), 0, 0
    async for chunk in stream.chunks:
        digest.update(chunk)
        total += len(chunk)
        chunks += 1
    return digest.hexdigest(), total, stream.size, chunks


async def test_a_large_attachment_is_streamed_in_chunks_without_the_bot_token(bot) -> None:
    big = GeneratedBytes(size=24 * 1024 * 1024 + 7, seed=3)
    job, message = await file_job(bot, Upload("long.flac", big, "audio/flac"))
    assert isinstance(job.source, FileSource)
    ref = job.source.ref
    assert (ref["id"], ref["size"], ref["content_type"]) == (
        str(message.attachments[0].id),
        big.size,
        "audio/flac",
    )
    assert ref["message"] == str(message.id) and ref["channel"] == str(message.channel.id)

    digest, total, size, chunks = await read_all(bot, job)
    assert (digest, total, size) == (big.sha256(), big.size, big.size)
    assert chunks > 100  # 64 KiB pieces, never the whole file at once
    (fetch,) = bot.fake.cdn_fetches
    assert (fetch.status, fetch.authorization) == (200, None)
    assert not bot.fake.calls_to("GET /channels/{channel_id}/messages/{message_id}")[1:]


async def test_an_expired_url_is_renewed_from_the_message(bot) -> None:
    job, _ = await file_job(bot, Upload("memo.m4a", b"m4a bytes " * 100, "audio/mp4"))
    fetches_of_message = len(bot.fake.calls_to("GET /channels/{channel_id}/messages/{message_id}"))
    bot.fake.clock.advance(25 * 3600)  # the signature in the job's URL has run out
    assert expires_at(str(job.source.ref["url"])) < bot.fake.clock.now()

    # The adapter's own clock is the real one, so it still trusts the URL: the CDN's 404
    # is what sends it to fetch the message again for a freshly signed URL.
    digest, total, _, _ = await read_all(bot, job)
    assert (digest, total) == (hashlib.sha256(b"m4a bytes " * 100).hexdigest(), 1000)
    assert [f.status for f in bot.fake.cdn_fetches] == [404, 200]
    renewals = bot.fake.calls_to("GET /channels/{channel_id}/messages/{message_id}")
    assert len(renewals) == fetches_of_message + 1


async def test_a_deleted_message_means_the_file_is_unavailable(bot) -> None:
    job, message = await file_job(bot, Upload("memo.ogg", b"OggS" * 10, "audio/ogg"))
    await bot.fake.author_deletes(message.id)  # nothing left to renew the URL from
    bot.fake.clock.advance(25 * 3600)
    with pytest.raises(FileUnavailable, match="deleted"):
        await bot.adapter.open_file(ThreadRef.of(job), job.source)


async def test_a_file_the_cdn_refuses_is_unavailable(bot) -> None:
    job, message = await file_job(bot, Upload("memo.ogg", b"OggS" * 10, "audio/ogg"))
    bot.fake.deny_cdn(message.attachments[0].id)
    with pytest.raises(FileUnavailable, match="HTTP 403"):
        await bot.adapter.open_file(ThreadRef.of(job), job.source)
    assert [f.status for f in bot.fake.cdn_fetches] == [403, 403]  # renewed once, in vain


async def test_a_slash_command_file_cannot_be_renewed(bot) -> None:
    job, _ = await file_job(bot, Upload("memo.ogg", b"OggS", "audio/ogg"))
    ref = dict(job.source.ref) | {"message": None}
    command_job, _ = await bot.store.admission.intake(
        IntakeRecord(
            platform=Platform.DISCORD,
            workspace=job.workspace,
            channel=job.channel,
            requester=job.requester,
            source=FileSource(ref),
            event_id="1234",
        )
    )
    bot.fake.clock.advance(25 * 3600)
    with pytest.raises(FileUnavailable, match="run /transcribe again"):
        await bot.adapter.open_file(ThreadRef.of(command_job), command_job.source)


async def test_a_url_about_to_expire_is_renewed_before_the_download(
    store: JobStore, assemblyai
) -> None:
    # Discord's CDN signing URLs for 5 minutes only: every stored URL is about to expire.
    async with (
        FakeDiscord(cdn_url_lifetime=300) as fake,
        fake.pointed_at(),
        running_bot(fake, store, assemblyai, discord_auto_transcribe=False) as bot,
    ):
        job, _ = await file_job(bot, Upload("memo.ogg", b"OggS" * 50, "audio/ogg"))
        renewals = len(fake.calls_to(GET_MESSAGE))
        _, total, _, _ = await read_all(bot, job)
        assert total == 200
        assert [f.status for f in fake.cdn_fetches] == [200]  # never tried the old URL
        assert len(fake.calls_to(GET_MESSAGE)) == renewals + 1


async def test_a_public_url_for_assemblyai_is_fresh_or_none(bot) -> None:
    job, message = await file_job(bot, Upload("memo.ogg", b"OggS", "audio/ogg"))
    renewals = len(bot.fake.calls_to(GET_MESSAGE))
    assert (
        await bot.adapter.public_url(ThreadRef.of(job), job.source) == job.source.ref["url"]
    )  # valid for 24 h
    assert len(bot.fake.calls_to(GET_MESSAGE)) == renewals
    fresh = await bot.adapter.public_url(
        ThreadRef.of(job), job.source, valid_for=2 * 24 * 3600
    )  # asks for more
    assert len(bot.fake.calls_to(GET_MESSAGE)) == renewals + 1  # so it was renewed
    assert fresh is not None
    assert fresh.split("?")[0] == str(job.source.ref["url"]).split("?")[0]
    await bot.fake.author_deletes(message.id)
    assert (
        await bot.adapter.public_url(ThreadRef.of(job), job.source, valid_for=2 * 24 * 3600) is None
    )


def test_expiry_is_read_from_the_signed_url() -> None:
    assert expires_at("https://cdn.example/a.ogg?ex=65f1c2a0&is=1&hm=ab&") == 0x65F1C2A0
    assert expires_at("https://cdn.example/a.ogg") is None
    assert expires_at("https://cdn.example/a.ogg?ex=zz") is None
