"""`/transcribe` through HTTP mode: the answer is the (ephemeral) acknowledgement."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import texts
from adapters.slack.incoming import unescape
from bot import messages
from bot.chat import JobOptions
from bot.jobs import Platform, UrlSource
from tests.fakes.slack import (
    ALICE,
    BOB,
    DANA,
    GENERAL,
    OLGA,
    RANDOM,
    TEAM_ID,
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.helpers.engine import FAST_ENGINE


@pytest.fixture
def bot_options() -> dict[str, Any]:
    return {"slack_admin_users": (BOB,)}


async def command(bot: SlackBot, text: str, *, user: str = ALICE, channel: str = GENERAL) -> str:
    form = bot.fake.events.slash_command(text, channel=channel, user=user)
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_command(form))
    assert answer.status == 200, answer.text
    body = json.loads(answer.text)
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return unescape(str(body["text"]))  # as Slack shows it


async def auto(bot: SlackBot) -> bool | None:
    settings = await bot.store.settings.get(Platform.SLACK, TEAM_ID, GENERAL)
    return None if settings is None else settings.auto_transcribe


@pytest.mark.parametrize("text", ["", "help", "  HELP "])
async def test_help(bot: SlackBot, text: str) -> None:
    answer = await command(bot, text)

    assert "/transcribe on | off" in answer and "speakers=N" in answer
    assert await bot.jobs() == []


async def test_only_admins_owners_and_the_allowlist_switch_auto(bot: SlackBot) -> None:
    refused = await command(bot, "off", user=ALICE)
    assert (refused, await auto(bot)) == (messages.NOT_ALLOWED, None)

    assert (await command(bot, "off", user=DANA)).startswith("Auto-transcribe is off in #general")
    assert await auto(bot) is False
    assert (await command(bot, "on", user=OLGA)).startswith("Auto-transcribe is on in #general")
    assert await auto(bot) is True
    await command(bot, "off", user=BOB)  # in the allowlist
    assert await auto(bot) is False
    users_info = [c.params["user"] for c in bot.fake.calls("users.info")]
    assert users_info == [ALICE, DANA, OLGA]  # the allowlist needs no look-up


async def test_a_link_with_options_starts_a_job_without_a_message(bot: SlackBot) -> None:
    answer = await command(bot, "https://media.example/all-hands.mp4 speakers=3 lang=de vtt")

    assert answer == messages.STARTED
    [job] = await bot.jobs()
    assert job.source == UrlSource("https://media.example/all-hands.mp4")
    assert (job.message, job.thread, job.requester) == (None, None, ALICE)
    assert job.options == JobOptions(
        speakers_expected=3, language_code="de", formats=("vtt",), title="all-hands.mp4"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("speakers=2", messages.NEED_LINK),
        ("https://m.example/a.mp3 speakers=99", "speakers must be a number from 1 to 10"),
        ("https://m.example/a.mp3 https://m.example/b.mp3", "give one link at a time"),
        ("transcribe this please", "I don't understand 'transcribe'"),
    ],
)
async def test_bad_input_is_explained(bot: SlackBot, text: str, expected: str) -> None:
    answer = await command(bot, text)

    assert expected in answer
    assert await bot.jobs() == []


async def test_a_channel_without_the_bot_needs_an_invitation(bot: SlackBot) -> None:
    answer = await command(bot, "https://m.example/a.mp3", channel=RANDOM)

    assert answer == texts.INVITE_ME
    assert await bot.jobs() == []


async def test_status_lists_my_jobs_and_their_places_in_the_queue(bot: SlackBot) -> None:
    assert await command(bot, "status") == messages.NO_JOBS
    await command(bot, "https://m.example/first.mp3", user=BOB)
    await command(bot, "https://m.example/mine.mp3")
    await command(bot, "https://m.example/also-mine.mp3")

    answer = await command(bot, "status")

    assert answer == (
        "Your transcriptions in progress:\n"
        "1. https://m.example/mine.mp3: queued, 1 ahead\n"
        "2. https://m.example/also-mine.mp3: queued, 2 ahead"
    )


async def test_a_limit_is_said_in_the_answer(fake_slack: FakeSlack, tmp_path: Path) -> None:
    async with slack_bot(fake_slack, tmp_path, config=replace(FAST_ENGINE, per_user=1)) as bot:
        await command(bot, "https://m.example/one.mp3")
        answer = await command(bot, "https://m.example/two.mp3")

        assert answer.startswith("Sorry, I cannot transcribe this: you already have 1")
        assert len(await bot.jobs()) == 1
