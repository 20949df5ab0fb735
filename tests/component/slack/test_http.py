"""HTTP mode through a real aiohttp server: Bolt verifies Slack's signatures, the job is in
the store before the answer goes back, and Slack's retries make no second job."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from adapters.slack import BOT_SCOPES
from bot.jobs import FileSource, UrlSource
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    GENERAL,
    SECRET,
    FakeSlack,
)
from tests.fakes.slack_events import SignedRequest
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.helpers.emulator_server import local_server

AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 64


async def test_a_signed_file_share_is_taken_in_before_the_answer(bot: SlackBot) -> None:
    file = bot.fake.add_file("standup.m4a", AUDIO, duration_ms=93_000)
    envelope = bot.fake.events.file_share(GENERAL, ALICE, [file], "our standup")

    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))

    assert (answer.status, answer.elapsed < 1.0) == (200, True)
    [job] = await bot.jobs()  # already there when Slack got its 200
    assert (job.workspace, job.channel, job.message, job.thread) == (
        bot.fake.team.id,
        GENERAL,
        envelope["event"]["ts"],
        None,
    )
    assert job.requester == ALICE and job.audio_duration == 93.0
    assert isinstance(job.source, FileSource)
    ref = job.source.ref
    assert (ref["id"], ref["name"], ref["mimetype"], ref["size"]) == (
        file.id,
        "standup.m4a",
        "audio/x-m4a",
        len(AUDIO),
    )
    assert ref["url"] == bot.fake.file_dict(file)["url_private_download"]
    assert "token" not in json.dumps(dict(ref)).lower()


async def test_stale_and_forged_signatures_are_refused(bot: SlackBot) -> None:
    file = bot.fake.add_file("a.mp3", AUDIO)
    envelope = bot.fake.events.file_share(GENERAL, ALICE, [file])
    good = bot.fake.events.http_event(envelope)
    stale = bot.fake.events.http_event(envelope, timestamp=int(time.time()) - 600)
    forged = SignedRequest(good.body.replace(b"a.mp3", b"b.mp3"), good.headers)
    unsigned = SignedRequest(good.body, {"Content-Type": "application/json"})

    answers = [await bot.fake.send_to_app(bot.events_url, r) for r in (stale, forged, unsigned)]

    assert [a.status for a in answers] == [401, 401, 401]
    assert await bot.jobs() == []


async def test_slacks_retries_make_no_second_job(bot: SlackBot) -> None:
    file = bot.fake.add_file("a.mp3", AUDIO)
    envelope = bot.fake.events.file_share(GENERAL, ALICE, [file])
    first = bot.fake.events.http_event(envelope)
    retries = [bot.fake.events.http_event(envelope, retry_num=n) for n in (1, 2, 3)]

    answers = await asyncio.gather(
        *(bot.fake.send_to_app(bot.events_url, r) for r in [first, *retries])
    )

    assert [a.status for a in answers] == [200] * 4
    assert len(await bot.jobs()) == 1


async def test_one_job_per_audio_file_and_none_for_other_files(bot: SlackBot) -> None:
    files = [
        bot.fake.add_file("one.mp3", AUDIO),
        bot.fake.add_file("notes.pdf", b"%PDF-1.7"),
        bot.fake.add_file("two.mov", AUDIO),
    ]
    envelope = bot.fake.events.file_share(GENERAL, ALICE, files)

    await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))

    jobs = await bot.jobs()
    assert sorted(j.source.ref["name"] for j in jobs) == ["one.mp3", "two.mov"]  # type: ignore[union-attr]
    assert len({j.dedupe_key for j in jobs}) == 2


async def test_url_verification_is_answered(bot: SlackBot) -> None:
    body = json.dumps(
        {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"}
    )
    request = bot.fake.events.http_event(json.loads(body))

    answer = await bot.fake.send_to_app(bot.events_url, request)

    assert answer.status == 200 and "3eZbrw1aBm2rZgRNFdxV" in answer.text


async def test_before_start_and_after_stop_slack_is_told_to_come_back(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    file = fake_slack.add_file("a.mp3", AUDIO)
    request = fake_slack.events.http_event(fake_slack.events.file_share(GENERAL, ALICE, [file]))
    async with slack_bot(fake_slack, tmp_path, start=False) as bot:
        early = await fake_slack.send_to_app(bot.events_url, request)
        await bot.adapter.start()
        await bot.adapter.stop()
        late = await fake_slack.send_to_app(bot.events_url, request)
        assert await bot.jobs() == []

    assert (early.status, late.status) == (503, 503)


async def test_http_mode_serves_only_the_events_route(bot: SlackBot) -> None:
    async with aiohttp.ClientSession() as http, http.get(bot.events_url) as answer:
        assert answer.status == 405
    assert [r.path for r in bot.adapter.routes()] == ["/slack/events"]  # type: ignore[attr-defined]


async def test_stop_lets_the_events_being_taken_in_finish(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async def slow_head(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(content_type="audio/mpeg")

    site = web.Application()
    site.router.add_route("*", "/talk", slow_head)
    async with local_server(site) as media, slack_bot(fake_slack, tmp_path) as bot:
        envelope = fake_slack.events.link_message(GENERAL, ALICE, [f"{media}/talk"])
        sending = asyncio.create_task(
            fake_slack.send_to_app(bot.events_url, fake_slack.events.http_event(envelope))
        )
        await asyncio.sleep(0.2)  # the link is being probed
        await bot.adapter.stop()
        answer = await sending
        jobs = await bot.jobs()

    assert answer.status == 200
    assert [job.source for job in jobs] == [UrlSource(f"{media}/talk")]


async def test_the_app_handles_every_subscribed_event(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Each event slack-manifest.yml subscribes to (tests/unit/test_slack_manifest.py)."""
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)
    async with slack_bot(fake_slack, tmp_path) as bot:
        events = bot.fake.events
        private = events.post(SECRET, ALICE, "hello")
        bodies = [
            events.message(events.post(GENERAL, ALICE, "hi")),
            events.message(private),
            events.app_mention(events.post(GENERAL, ALICE, f"<@{BOT_USER_ID}> hi")),
            events.envelope({"type": "app_uninstalled", "event_ts": "1700000000.000001"}),
            events.envelope({"type": "tokens_revoked", "tokens": {"bot": [BOT_USER_ID]}}),
            bot.fake.home_opened(ALICE),
        ]

        answers = [await bot.fake.send_to_app(bot.events_url, events.http_event(b)) for b in bodies]

    assert [a.status for a in answers] == [200] * len(bodies)  # Bolt answers 404 if unhandled
