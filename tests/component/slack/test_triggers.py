"""What makes a job, through HTTP mode: links (by extension or by what a HEAD request
says), auto-transcribe on and off, mentions, the Transcribe shortcut, direct messages,
and refusals that reach the person who asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import messages
from bot.chat import JobOptions
from bot.jobs import FileSource, Platform, UrlSource
from tests.fakes.slack import (
    ALICE,
    BOB,
    BOT_USER_ID,
    GENERAL,
    RANDOM,
    TEAM_ID,
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.fakes.slack_state import Ephemeral
from tests.helpers.emulator_server import local_server
from tests.helpers.engine import FAST_ENGINE

AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 64


@pytest.fixture
async def media_site() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    """Links whose type only the server knows; records (method, path) of every request."""
    seen: list[tuple[str, str]] = []
    types = {"/talk": "audio/mpeg", "/video/42": "video/mp4", "/page": "text/html"}

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, request.path))
        if request.path == "/no-head" and request.method == "HEAD":
            return web.Response(status=405)
        kind = types.get(request.path, "audio/ogg" if request.path == "/no-head" else None)
        if kind is None:
            return web.Response(status=404)
        return web.Response(body=b"\0" * 16, content_type=kind)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    async with local_server(app) as url:
        yield url, seen


async def send(bot: SlackBot, envelope: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))
    assert answer.status == 200, answer.text


async def shortcut(bot: SlackBot, payload: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_interactive(payload))
    assert answer.status == 200, answer.text


async def sources(bot: SlackBot) -> list[str]:
    out = []
    for job in await bot.jobs():
        source = job.source
        out.append(source.url if isinstance(source, UrlSource) else str(source.ref["name"]))
    return out


async def test_links_by_extension_or_by_the_servers_content_type(
    bot: SlackBot, media_site: tuple[str, list[tuple[str, str]]]
) -> None:
    site, seen = media_site
    urls = [
        "https://media.example/standup.mp3?sig=a&exp=1",
        f"{site}/talk",
        f"{site}/page",
        f"{site}/report.pdf",
        f"{site}/no-head",
    ]

    await send(bot, bot.fake.events.link_message(GENERAL, ALICE, urls, "listen"))

    assert sorted(await sources(bot)) == sorted([urls[0], urls[1], urls[4]])
    assert ("HEAD", "/report.pdf") not in seen  # a document by its name: never asked
    assert ("GET", "/no-head") in seen  # HEAD refused: a one-byte GET instead


async def test_an_unreachable_link_is_skipped_without_holding_the_ack(bot: SlackBot) -> None:
    envelope = bot.fake.events.link_message(GENERAL, ALICE, ["http://127.0.0.1:9/stream"])

    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))

    assert answer.status == 200 and answer.elapsed < 2.0
    assert await bot.jobs() == []


async def test_auto_off_ignores_shares_but_not_mentions_or_the_shortcut(bot: SlackBot) -> None:
    await bot.store.settings.set_auto_transcribe(
        Platform.SLACK, TEAM_ID, GENERAL, False, updated_by=ALICE
    )
    one = bot.fake.events.file_share(GENERAL, ALICE, [bot.fake.add_file("one.mp3", AUDIO)])
    two = bot.fake.events.post(GENERAL, BOB, "", files=[bot.fake.add_file("two.mp3", AUDIO)])

    await send(bot, one)
    assert await bot.jobs() == []
    mention = bot.fake.events.post(
        GENERAL,
        BOB,
        f"<@{BOT_USER_ID}> speakers=2 lang=fr srt please",
        thread_ts=one["event"]["ts"],
    )
    await send(bot, bot.fake.events.app_mention(mention))
    await shortcut(bot, bot.fake.events.message_shortcut(two, user=ALICE))

    first, second = await bot.jobs()
    assert (first.message, first.requester, first.thread) == (one["event"]["ts"], BOB, None)
    assert (first.options.speakers_expected, first.options.language_code) == (2, "fr")
    assert first.options.formats == ("srt",)
    assert (second.message, second.requester) == (two.ts, ALICE)
    assert second.options == JobOptions(title=second.options.title)  # nothing asked for


async def test_a_mention_with_the_audio_in_it_makes_one_job_not_two(bot: SlackBot) -> None:
    msg = bot.fake.events.post(
        GENERAL, ALICE, f"<@{BOT_USER_ID}> this one", files=[bot.fake.add_file("a.mp3", AUDIO)]
    )

    await send(bot, bot.fake.events.message(msg))  # Slack sends both events
    await send(bot, bot.fake.events.app_mention(msg))

    assert await sources(bot) == ["a.mp3"]


async def test_explicit_requests_without_audio_are_told_why(bot: SlackBot) -> None:
    pdf = bot.fake.events.post(GENERAL, ALICE, "", files=[bot.fake.add_file("q3.pdf", b"%PDF")])
    chat = bot.fake.events.post(GENERAL, BOB, f"<@{BOT_USER_ID}> hello")
    bad = bot.fake.events.post(GENERAL, BOB, f"<@{BOT_USER_ID}> speakers=lots")

    await shortcut(bot, bot.fake.events.message_shortcut(pdf, user=ALICE))
    await send(bot, bot.fake.events.app_mention(chat))
    await send(bot, bot.fake.events.app_mention(bad))

    [answer] = await bot.fake.until(bot.fake.response_posts)
    assert (
        answer.payload["text"] == "q3.pdf: not audio or video, so there is nothing to transcribe."
    )
    assert answer.payload["response_type"] == "ephemeral"

    def to_bob() -> list[Ephemeral]:
        return [e for e in bot.fake.ephemerals() if e.user == BOB]

    ephemerals = await bot.fake.until(lambda: len(to_bob()) == 2 and to_bob())
    assert "no audio or video" in ephemerals[0].text
    assert "speakers must be a number" in ephemerals[1].text
    assert await bot.jobs() == []


async def test_the_shortcut_twice_and_in_a_channel_without_the_bot(bot: SlackBot) -> None:
    msg = bot.fake.events.post(GENERAL, ALICE, "", files=[bot.fake.add_file("a.mp3", AUDIO)])
    outside = bot.fake.events.post(RANDOM, ALICE, "", files=[bot.fake.add_file("b.mp3", AUDIO)])

    await shortcut(bot, bot.fake.events.message_shortcut(msg, user=ALICE))
    await shortcut(bot, bot.fake.events.message_shortcut(msg, user=BOB))
    await shortcut(bot, bot.fake.events.message_shortcut(outside, user=ALICE))

    posts = await bot.fake.until(
        lambda: len(bot.fake.response_posts()) == 2 and bot.fake.response_posts()
    )
    assert [p.payload["text"] for p in posts] == [
        "That is already transcribed, or on its way: see the thread.",
        "I'm not a member of this channel, so I can't post the transcript here. Invite me "
        "with /invite @threadscribe and try again.",
    ]
    assert await sources(bot) == ["a.mp3"]


async def test_a_mention_in_a_thread_transcribes_the_parents_audio(bot: SlackBot) -> None:
    parent = bot.fake.events.post(GENERAL, ALICE, "", files=[bot.fake.add_file("p.wav", AUDIO)])
    await bot.store.settings.set_auto_transcribe(
        Platform.SLACK, TEAM_ID, GENERAL, False, updated_by=ALICE
    )
    reply = bot.fake.events.post(GENERAL, BOB, f"<@{BOT_USER_ID}>", thread_ts=parent.ts)

    await send(bot, bot.fake.events.app_mention(reply))

    [job] = await bot.jobs()
    assert (job.message, job.thread, job.requester) == (parent.ts, None, BOB)


async def test_direct_messages_are_always_transcribed(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    dm = fake_slack.add_channel("dm", "D0ALICEDM1", members={ALICE, BOT_USER_ID}, is_im=True)
    async with slack_bot(fake_slack, tmp_path, slack_auto_transcribe=False) as bot:
        share = fake_slack.events.file_share(dm.id, ALICE, [fake_slack.add_file("n.m4a", AUDIO)])
        elsewhere = fake_slack.events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("x.mp3", AUDIO)]
        )
        await send(bot, share)
        await send(bot, elsewhere)

        assert await sources(bot) == ["n.m4a"]


async def test_a_file_stub_is_looked_up_with_files_info(bot: SlackBot) -> None:
    file = bot.fake.add_file("huddle.webm", AUDIO, duration_ms=5_000)
    envelope = bot.fake.events.file_share(GENERAL, ALICE, [file])
    envelope["event"]["files"] = [
        {"id": file.id, "mode": "hidden", "file_access": "check_file_info"}
    ]

    await send(bot, envelope)

    [job] = await bot.jobs()
    assert isinstance(job.source, FileSource) and job.source.ref["mimetype"] == "audio/webm"
    assert job.audio_duration == 5.0
    assert [c.params["file"] for c in bot.fake.calls("files.info")] == [file.id]


async def test_refusals_are_said_once_in_the_thread(fake_slack: FakeSlack, tmp_path: Path) -> None:
    limits = replace(FAST_ENGINE, max_file_bytes=10_000)
    async with slack_bot(fake_slack, tmp_path, config=limits) as bot:
        empty = fake_slack.events.file_share(GENERAL, ALICE, [fake_slack.add_file("e.mp3", b"")])
        big = fake_slack.events.file_share(GENERAL, BOB, [fake_slack.add_file("b.mp3", AUDIO * 2)])
        for envelope in (empty, big, empty):  # the last one: Slack retrying
            await send(bot, envelope)

        def refusals() -> list[str]:
            return [
                m.text
                for env in (empty, big)
                for m in fake_slack.bot_messages(GENERAL, thread_ts=env["event"]["ts"])
            ]

        texts = await fake_slack.until(lambda: len(refusals()) == 2 and refusals())
        assert await bot.jobs() == []
    assert texts[0] == f"Sorry, I cannot transcribe this: {messages.EMPTY_FILE}."
    assert texts[1].startswith("Sorry, I cannot transcribe this: that file is 0.0 MB")
