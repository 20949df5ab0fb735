"""Starting and stopping the adapter: login, command registration, the gateway, and the
one-line errors an operator gets for a bad token or a missing intent."""

import asyncio
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest

from adapters.discord import DiscordAdapter, create
from adapters.discord.client import INVITE_PERMISSIONS, invite_url
from bot.chat import Adapter, Core, Platform, PlatformError
from bot.config import Secret, Settings
from bot.errors import ConfigError
from bot.jobs import JobStore
from bot.run import compose
from tests.fakes.discord import FakeDiscord, Intent, Upload
from tests.fakes.discord_harness import (
    discord_settings,
    running_bot,
)
from tests.fakes.discord_model import BOT_PERMISSIONS
from tests.helpers import REPO
from tests.helpers.engine import FAST_ENGINE

pytestmark = pytest.mark.timeout(30)


async def test_create_applies_the_two_endpoints_and_does_no_io(
    fake_discord: FakeDiscord, store: JobStore
) -> None:
    discord.http.Route.BASE = "https://discord.com/api/v10"  # restored by the fixture
    adapter = create(discord_settings(fake_discord), store)
    assert fake_discord.api_url == discord.http.Route.BASE
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake_discord.gateway_url
    assert isinstance(adapter, Adapter)
    # Discord's 2,000 characters, less the reference line that ends every post
    limit = 2000 - len("\n-# ref 0123456789")
    assert (adapter.name, adapter.message_limit, adapter.routes()) == (Platform.DISCORD, limit, [])
    assert fake_discord.calls == []
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        create(Settings(), store)


async def test_start_logs_in_registers_commands_and_connects(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    guild = fake_discord.world.guild.id
    async with running_bot(fake_discord, store, assemblyai) as bot:
        session = fake_discord.gateway.session()
        wanted = Intent.GUILDS | Intent.GUILD_MESSAGES | Intent.DIRECT_MESSAGES
        assert session.intents == wanted | Intent.MESSAGE_CONTENT
        assert bot.adapter.client.is_ready() and await bot.adapter.connected()
        commands = {(c["name"], c["type"]) for c in fake_discord.commands(guild)}
        assert commands == {
            ("transcribe", 1),
            ("transcribe-settings", 1),
            ("Transcribe", 3),
            ("Forget transcript", 3),
        }
        assert fake_discord.commands(None) == []  # DISCORD_DEV_GUILD: that server only
        settings = next(
            c for c in fake_discord.commands(guild) if c["name"] == "transcribe-settings"
        )
        # Everyone sees it (show, optout, optin are everyone's); the rest check Manage Server.
        assert settings.get("default_member_permissions") is None
        transcribe = next(c for c in fake_discord.commands(guild) if c["name"] == "transcribe")
        assert [o["name"] for o in transcribe["options"]] == [
            "file",
            "url",
            "speakers",
            "language",
            "subtitles",
            "translate",
            "search",
        ]
    assert bot.adapter.client.is_closed()
    assert fake_discord.gateway.connections[0].ws.closed


async def test_commands_are_global_without_a_dev_guild(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    async with running_bot(fake_discord, store, assemblyai, discord_dev_guild=None):
        assert {c["name"] for c in fake_discord.commands(None)} == {
            "transcribe",
            "transcribe-settings",
            "Transcribe",
            "Forget transcript",
        }
        assert fake_discord.commands(fake_discord.world.guild.id) == []


def bare_adapter(settings: Settings, store: JobStore, client: Any) -> DiscordAdapter:
    """The adapter as the composition root makes it, not started."""

    def make(settings: Settings, core: Core) -> DiscordAdapter:
        return create(settings, core, guild_ready_timeout=0.05)

    _engine, _core, [adapter] = compose(settings, store, client, [make], config=FAST_ENGINE)
    assert isinstance(adapter, DiscordAdapter)
    return adapter


async def test_a_bad_token_is_one_line_naming_discord_token(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    settings = discord_settings(fake_discord, discord_token=Secret("not-the-token"))
    adapter = bare_adapter(settings, store, assemblyai)
    with pytest.raises(PlatformError) as failed:
        await adapter.start()
    assert "DISCORD_TOKEN" in failed.value.message and "\n" not in failed.value.message
    assert not failed.value.retryable
    assert "not-the-token" not in failed.value.message
    assert fake_discord.gateway.sessions == []
    await adapter.close()


async def test_a_missing_message_content_intent_says_which_switch(store: JobStore, assemblyai):
    async with FakeDiscord(privileged_intents=Intent(0)) as fake, fake.pointed_at():
        adapter = bare_adapter(discord_settings(fake), store, assemblyai)
        with pytest.raises(PlatformError, match="Message Content Intent"):
            await adapter.start()
        await adapter.close()


async def test_an_unreachable_discord_is_reported(store: JobStore, assemblyai) -> None:
    async with FakeDiscord() as fake:
        settings = discord_settings(fake)
    # The fake is closed now: nothing listens on its port.
    with discord_urls_restored():
        adapter = bare_adapter(settings, store, assemblyai)
        with pytest.raises(PlatformError, match="cannot reach Discord") as failed:
            await adapter.start()
        assert failed.value.retryable
        await adapter.close()


async def test_stop_takes_no_more_triggers_but_posting_still_works(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    async with running_bot(fake_discord, store, assemblyai) as bot:
        await bot.adapter.stop()
        await fake_discord.dispatch_message(uploads=[Upload("late.mp3", b"ID3" * 10)])
        ix = await fake_discord.dispatch_slash_command("transcribe", {"url": "https://a.b/c.mp3"})
        (answer,) = await fake_discord.wait_for(lambda: fake_discord.interaction_responses(ix))
        assert answer["type"] == 4 and answer["data"]["flags"] == 64
        assert "restarting" in answer["data"]["content"]
        await bot.settle()
        assert await store.unfinished() == []
        channel = bot.adapter.client.get_partial_messageable(fake_discord.world.general.id)
        await channel.send("REST still works after stop()")
    await bot.adapter.close()  # idempotent
    assert bot.adapter.client.is_closed() and not await bot.adapter.connected()


class discord_urls_restored:
    def __enter__(self) -> None:
        self.saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY

    def __exit__(self, *exc: object) -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self.saved


def test_the_documented_invite_asks_for_exactly_what_the_code_uses() -> None:
    docs = (REPO / "docs" / "discord.md").read_text()
    wanted = INVITE_PERMISSIONS.value
    assert wanted == int(BOT_PERMISSIONS)  # what the fake's bot role holds, and tests use
    assert f"permissions={wanted}" in docs
    assert "scope=bot+applications.commands" in docs
    assert invite_url(42) == (
        "https://discord.com/oauth2/authorize?client_id=42"
        f"&scope=bot+applications.commands&permissions={wanted}"
    )
    table = {
        "View Channel": "view_channel",
        "Send Messages": "send_messages",
        "Send Messages in Threads": "send_messages_in_threads",
        "Create Public Threads": "create_public_threads",
        "Embed Links": "embed_links",
        "Attach Files": "attach_files",
        "Read Message History": "read_message_history",
        "Add Reactions": "add_reactions",
    }
    assert discord.Permissions(**dict.fromkeys(table.values(), True)) == INVITE_PERMISSIONS
    for label in table:  # each one is explained in the docs' table
        assert f"| {label} |" in docs, label


async def test_a_gateway_that_dies_while_running_is_reported_unhealthy(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    async with running_bot(fake_discord, store, assemblyai) as bot:
        bot.errors_expected = True  # "the Discord gateway stopped", logged as an error
        fake_discord.reset_token("a-new-token")  # the old one no longer resumes (4004)
        await fake_discord.gateway.disconnect("close")
        async with asyncio.timeout(10):
            while await bot.adapter.connected():  # noqa: ASYNC110 (the adapter's state)
                await asyncio.sleep(0.02)
