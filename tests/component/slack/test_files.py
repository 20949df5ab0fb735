"""Private Slack files through `SlackAdapter.open_file`: streamed with the bot token, never
whole; Slack's HTML sign-in page, deleted files and foreign hosts become FileUnavailable."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from adapters.slack.incoming import attachment
from bot.chat import ThreadRef
from bot.errors import FileUnavailable, PlatformError
from bot.jobs import FileSource, IntakeRecord, Job, Platform
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    GENERAL,
)
from tests.fakes.slack_harness import SlackBot
from tests.fakes.slack_state import ChunkedSource, GeneratedBytes
from tests.helpers.emulator_server import local_server

AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 256


async def job_for(bot: SlackBot, ref: dict[str, object]) -> Job:
    record = IntakeRecord(
        platform=Platform.SLACK,
        workspace="T0TEAM0001",
        channel=GENERAL,
        requester=ALICE,
        source=FileSource(ref),
        message="1700000000.000100",
    )
    job, _ = await bot.store.admission.intake(record)
    return job


async def shared(bot: SlackBot, name: str, data: bytes | GeneratedBytes) -> Job:
    file = bot.fake.add_file(name, data)
    return await job_for(bot, dict(attachment(bot.fake.file_dict(file)).ref))


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_a_private_file_streams_with_the_bot_token(bot: SlackBot) -> None:
    job = await shared(bot, "standup.mp3", AUDIO)

    stream = await bot.adapter.open_file(ThreadRef.of(job), job.source)
    data = await read_all(stream.chunks)

    assert (data, stream.size, stream.content_type) == (AUDIO, len(AUDIO), "audio/mpeg")
    [download] = bot.fake.downloads()
    assert (download.served, download.complete, download.token) == (True, True, BOT_TOKEN)


async def test_a_big_file_is_read_as_it_is_consumed(bot: SlackBot) -> None:
    big = GeneratedBytes(48 * 1024 * 1024, seed=3)
    job = await shared(bot, "all-hands.wav", big)

    stream = await bot.adapter.open_file(ThreadRef.of(job), job.source)
    digest = hashlib.sha256()
    first = await anext(stream.chunks)
    await asyncio.sleep(0.1)  # a reader that buffered would run ahead now
    ahead = big.generated
    digest.update(first)
    async for chunk in stream.chunks:
        digest.update(chunk)

    assert ahead < big.size // 4
    assert digest.hexdigest() == big.sha256()


async def test_without_files_read_slacks_sign_in_page_names_the_missing_scope(
    bot: SlackBot,
) -> None:
    bot.fake.set_scopes(BOT_TOKEN, {"chat:write", "channels:history"})
    job = await shared(bot, "standup.mp3", AUDIO)

    with pytest.raises(FileUnavailable) as info:
        await bot.adapter.open_file(ThreadRef.of(job), job.source)

    assert "files:read" in info.value.message
    assert info.value.retryable is False
    assert [d.served for d in bot.fake.downloads()] == [False]


async def test_a_deleted_file_is_unavailable(bot: SlackBot) -> None:
    job = await shared(bot, "gone.mp3", AUDIO)
    bot.fake.state.files[str(job.source.ref["id"])].deleted = True  # type: ignore[union-attr]

    with pytest.raises(FileUnavailable) as info:
        await bot.adapter.open_file(ThreadRef.of(job), job.source)

    assert "deleted" in info.value.message


async def test_the_token_never_goes_to_another_host(bot: SlackBot) -> None:
    seen: list[str | None] = []

    async def spy(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=AUDIO, content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/{tail:.*}", spy)
    async with local_server(app) as elsewhere:
        job = await job_for(
            bot, {"id": "F0EVIL0001", "url": f"{elsewhere}/x.mp3".replace("127.0.0.1", "localhost")}
        )
        with pytest.raises(FileUnavailable):
            await bot.adapter.open_file(ThreadRef.of(job), job.source)

    assert seen == []


async def test_a_download_that_breaks_off_is_a_retryable_error(bot: SlackBot) -> None:
    file = bot.fake.add_file("cut.mp3", ChunkedSource(1_000_000, lambda: iter([AUDIO])))
    job = await job_for(bot, dict(attachment(bot.fake.file_dict(file)).ref))

    stream = await bot.adapter.open_file(ThreadRef.of(job), job.source)
    with pytest.raises(PlatformError) as info:
        await read_all(stream.chunks)

    assert info.value.retryable is True
