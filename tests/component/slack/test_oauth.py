"""Multi-workspace install: Bolt's OAuth flow on the bot's server, installations saved in
the jobs' database, and each workspace's jobs posted with that workspace's own token."""

from __future__ import annotations

import asyncio
import html
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from adapters.slack import BOT_SCOPES
from tests.fakes.slack import (
    FakeSlack,
)
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.fakes.slack_state import Team
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer

OTHER = "T0OTHER001"
CAROL = "U0CAROL001"


@pytest.fixture
def other_team(fake_slack: FakeSlack) -> Team:
    team = fake_slack.add_team(OTHER, "Globex", "globex")
    fake_slack.add_user(CAROL, "carol", team_id=OTHER, is_admin=True)
    fake_slack.add_channel("ops", "C0OPS00001", members={CAROL, team.bot_user_id}, team_id=OTHER)
    fake_slack.oauth.installing_team = OTHER
    fake_slack.oauth.installer = CAROL
    return team


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, tmp_path: Path, emulator: EmulatorServer, other_team: Team
) -> AsyncIterator[SlackBot]:
    async with slack_bot(fake_slack, tmp_path, oauth=True, emulator=emulator) as running:
        fake_slack.oauth.redirect_uri = f"{running.base_url}/slack/oauth_redirect"
        yield running


async def install(bot: SlackBot) -> str:
    """Click "Add to Slack" and approve, as a browser would; returns the final page."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(f"{bot.base_url}/slack/install", allow_redirects=False) as page:
            assert page.status in (200, 302), await page.text()
            cookie = page.cookies["slack-app-oauth-state"]
            authorize = page.headers.get("Location") or _link(await page.text())
        assert urlsplit(authorize).path == "/oauth/v2/authorize"
        assert set(parse_qs(urlsplit(authorize).query)["scope"][0].split(",")) == set(BOT_SCOPES)
        async with browser.get(authorize, allow_redirects=False) as approved:
            back = approved.headers["Location"]
        headers = {"Cookie": f"{cookie.key}={cookie.value}"}
        async with browser.get(back, headers=headers, allow_redirects=False) as done:
            assert done.status == 200, await done.text()
            return await done.text()


def _link(page: str) -> str:
    """The "Add to Slack" button's link."""
    start = page.index('<a href="') + len('<a href="')
    return html.unescape(page[start : page.index('"', start)])


async def test_install_then_a_share_in_that_workspace_is_answered_with_its_token(
    bot: SlackBot,
    fake_slack: FakeSlack,
    other_team: Team,
    audio_library: AudioLibrary,
    emulator: EmulatorServer,
) -> None:
    dialogue: AudioSample = audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)

    page = await install(bot)

    [grant] = fake_slack.oauth.installs
    assert grant.team_id == OTHER and set(grant.scopes) == set(BOT_SCOPES)
    assert "Thank you!" in page  # slack_sdk's success page
    with sqlite3.connect(bot.database) as db:  # in the same database as the jobs
        [(team_id, stored)] = db.execute("SELECT team_id, bot_token FROM slack_bots").fetchall()
    assert (team_id, stored) == (OTHER, grant.token)

    events = fake_slack.events_for(OTHER)
    file = fake_slack.add_file("ops.mp3", dialogue.path.read_bytes(), user=CAROL, team_id=OTHER)
    share = events.file_share("C0OPS00001", CAROL, [file])
    answer = await fake_slack.send_to_app(bot.events_url, events.http_event(share))
    assert answer.status == 200
    async with asyncio.timeout(25):
        await bot.engine.run_until_idle()

    replies = fake_slack.bot_messages("C0OPS00001", thread_ts=share["event"]["ts"])
    assert len(replies) == 2 and all(m.token == grant.token for m in replies)
    assert [d.token for d in fake_slack.downloads(file.id)] == [grant.token]


async def test_an_event_from_a_workspace_that_never_installed_is_refused(
    bot: SlackBot, fake_slack: FakeSlack, other_team: Team
) -> None:
    events = fake_slack.events_for(OTHER)
    share = events.link_message("C0OPS00001", CAROL, ["https://m.example/a.mp3"])

    answer = await fake_slack.send_to_app(bot.events_url, events.http_event(share))

    assert answer.status == 200  # Bolt acks (no point in Slack retrying) and does nothing
    assert "installation" in answer.text
    assert await bot.jobs() == [] and fake_slack.calls("chat.postMessage") == []


async def test_uninstalling_forgets_the_workspace(
    bot: SlackBot, fake_slack: FakeSlack, other_team: Team
) -> None:
    await install(bot)
    events = fake_slack.events_for(OTHER)
    uninstalled = events.envelope({"type": "app_uninstalled", "event_ts": "1700000000.000001"})

    answer = await fake_slack.send_to_app(bot.events_url, events.http_event(uninstalled))

    assert answer.status == 200
    with sqlite3.connect(bot.database) as db:
        assert db.execute("SELECT count(*) FROM slack_bots").fetchone() == (0,)
