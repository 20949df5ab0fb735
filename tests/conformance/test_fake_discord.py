"""The Discord fake against the real discord.py client.

Each test runs a real `discord.Client` (or one with an app-command tree) pointed at the
fake through discord.py's two base URLs only, and checks both sides: what discord.py
saw and what the fake recorded.
"""

import asyncio
import hashlib
import io
import math
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
import yarl

from tests.fakes.discord import (
    Close,
    FakeDiscord,
    GeneratedBytes,
    Intent,
    Permission,
    Upload,
    run_client,
)

# isort: split
# Imported after the fake, which imports discord.py with its one import-time warning
# (stdlib `audioop` deprecated on Python 3.11) filtered; see tests/fakes/discord.py.
import discord
from discord import app_commands
from discord.ext import commands

pytestmark = pytest.mark.timeout(20)

READY_FAST = 0.05  # guild_ready_timeout: on_ready comes this long after the last guild


def make_client(*, message_content: bool = True, **options) -> discord.Client:
    intents = discord.Intents.default()
    intents.message_content = message_content
    return discord.Client(intents=intents, guild_ready_timeout=READY_FAST, **options)


class TranscribeBot(discord.Client):
    """A minimal bot with the commands the adapter will have, synced to the test guild.
    Handlers put what they saw (or the error they hit) on `seen`."""

    def __init__(self, guild_id: int, **options) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=READY_FAST, **options)
        self.tree = app_commands.CommandTree(self)
        self.seen: asyncio.Queue[object] = asyncio.Queue()
        self.guild = discord.Object(id=guild_id)

        @self.tree.command(name="transcribe", description="Transcribe audio", guild=self.guild)
        async def transcribe(
            interaction: discord.Interaction,
            file: discord.Attachment | None = None,
            url: str | None = None,
            speakers: int | None = None,
            language: str | None = None,
        ) -> None:
            try:
                if url is not None:
                    await interaction.response.send_message(f"Queued {url}")
                    await self.seen.put((interaction, url, speakers, language))
                    return
                await interaction.response.defer(thinking=True)
                assert file is not None
                data = await file.read()
                await self.seen.put((interaction, file, data, speakers, language))
                await interaction.followup.send(f"Transcribing {file.filename} ({len(data)} B)")
            except Exception as exc:
                await self.seen.put(exc)

        @self.tree.context_menu(name="Transcribe", guild=self.guild)
        async def transcribe_message(
            interaction: discord.Interaction, message: discord.Message
        ) -> None:
            await interaction.response.defer(ephemeral=True)
            await self.seen.put((interaction, message))
            await interaction.followup.send("On it.")

        settings = app_commands.Group(
            name="transcribe-settings", description="Channel settings", guild_ids=[guild_id]
        )

        @settings.command(name="auto", description="Transcribe every audio file here")
        async def auto(interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
            allowed = interaction.permissions.manage_guild
            await self.seen.put((interaction, state, allowed))
            reply = f"auto {state}" if allowed else "You need Manage Server."
            await interaction.response.send_message(reply, ephemeral=True)

        self.tree.add_command(settings)

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def next_seen(self) -> Any:
        async with asyncio.timeout(5):
            item = await self.seen.get()
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
async def bot(fake_discord: FakeDiscord) -> AsyncIterator[TranscribeBot]:
    client = TranscribeBot(fake_discord.world.guild.id)
    async with run_client(client, fake_discord.token):
        yield client


# -- connecting -------------------------------------------------------------------------


async def test_login_identify_ready_and_guild(fake_discord: FakeDiscord) -> None:
    world = fake_discord.world
    client = make_client()
    ready: list[str] = []

    @client.event
    async def on_ready() -> None:
        ready.append("ready")

    async with run_client(client, fake_discord.token):
        # discord.py marks itself ready, then schedules on_ready as a task.
        assert await fake_discord.wait_for(lambda: ready) == ["ready"]
        assert client.user is not None and client.user.id == world.bot.id
        assert client.application_id == world.application_id
        assert client.application_flags.gateway_message_content_limited
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        assert {c.name for c in guild.text_channels} == {"general"}
        assert {t.name for t in guild.threads} == {"standup notes", "Interview with the mayor"}
        assert guild.get_role(world.guild.roles[2].id).permissions.manage_guild  # Moderator
        assert guild.me is not None  # the bot's own member, sent without GUILD_MEMBERS

        session = fake_discord.gateway.session()
        assert session.intents == client.intents.value
        assert session.identify["token"] == fake_discord.token
        connection = session.connection
        assert connection is not None
        assert connection.path == "/gateway/"
        assert connection.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
        assert [c.route for c in fake_discord.calls] == [
            "GET /users/@me",
            "GET /oauth2/applications/@me",
        ]
        # HELLO makes discord.py heartbeat at once; the ACK gives it a latency.
        await fake_discord.wait_for(lambda: math.isfinite(client.latency))
        assert connection.heartbeats >= 1


async def test_heartbeats_follow_the_interval() -> None:
    async with FakeDiscord(heartbeat_interval=0.05) as fake, fake.pointed_at():
        client = make_client()
        async with run_client(client, fake.token):
            connection = fake.gateway.session().connection
            assert connection is not None
            await fake.wait_for(lambda: connection.heartbeats >= 4)
            beats = [p for p in connection.received if p["op"] == 1]
            assert beats[-1]["d"] == fake.gateway.session().seq


async def test_bad_token_is_a_login_failure(fake_discord: FakeDiscord) -> None:
    with pytest.raises(discord.LoginFailure):
        async with run_client(make_client(), "not-the-token"):
            pass
    (call,) = fake_discord.calls_to("GET /users/@me")
    assert call.status == 401
    assert call.response == {"message": "401: Unauthorized", "code": 0}
    assert call.response_headers["Content-Type"] == "application/json"


async def test_a_reset_token_closes_the_gateway_with_4004(fake_discord: FakeDiscord) -> None:
    client = make_client()
    try:
        await client.login(fake_discord.token)
        fake_discord.reset_token("a-new-token")
        with pytest.raises(discord.ConnectionClosed) as closed:
            await client.connect()
        assert closed.value.code == Close.AUTHENTICATION_FAILED
    finally:
        await client.close()


async def test_message_content_intent_not_enabled_closes_with_4014() -> None:
    async with FakeDiscord(privileged_intents=Intent(0)) as fake, fake.pointed_at():
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with run_client(make_client(), fake.token):
                pass
        assert fake.gateway.connections[0].close_code == Close.DISALLOWED_INTENTS


# -- receiving messages -------------------------------------------------------------------


async def test_voice_message_reaches_on_message(fake_discord: FakeDiscord) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        pending = client.wait_for("message", timeout=5)
        sent = await fake_discord.dispatch_voice_message(
            audio=b"OggS voice bytes", duration_secs=4.5
        )
        message: discord.Message = await pending
        assert message.id == int(sent["id"])
        assert message.flags.voice
        assert message.author.id == fake_discord.world.alice.id
        assert isinstance(message.author, discord.Member)
        (attachment,) = message.attachments
        assert attachment.is_voice_message()
        assert attachment.content_type == "audio/ogg"
        assert attachment.duration == 4.5
        assert attachment.waveform is not None and len(attachment.waveform) == 45
        assert {"ex", "is", "hm"} <= set(yarl.URL(attachment.url).query)
        assert await attachment.read() == b"OggS voice bytes"
        (fetch,) = fake_discord.cdn_fetches
        assert (fetch.status, fetch.authorization) == (200, None)


async def test_content_is_blanked_without_the_message_content_intent(
    fake_discord: FakeDiscord,
) -> None:
    world = fake_discord.world
    client = make_client(message_content=False)
    async with run_client(client, fake_discord.token):
        pending = client.wait_for("message", timeout=5)
        plain = await fake_discord.dispatch_message(
            content="listen to this", uploads=[Upload("memo.mp3", b"ID3", "audio/mpeg")]
        )
        received = await pending
        assert (received.content, received.attachments) == ("", [])

        pending = client.wait_for("message", timeout=5)
        await fake_discord.dispatch_message(content=f"{world.bot.mention} transcribe please")
        assert (await pending).content.endswith("transcribe please")

        pending = client.wait_for("message", timeout=5)
        await fake_discord.dispatch_message(world.dm, content="in a DM")
        assert (await pending).content == "in a DM"

        # REST follows the portal switch (on here), not the intents sent in IDENTIFY.
        channel = client.get_channel(world.general.id)
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(int(plain["id"]))
        assert fetched.content == "listen to this"
        assert fetched.attachments[0].filename == "memo.mp3"


# -- sending --------------------------------------------------------------------------------


async def test_send_file_thread_reaction_and_edit(fake_discord: FakeDiscord) -> None:
    world = fake_discord.world
    client = make_client()
    async with run_client(client, fake_discord.token):
        pending = client.wait_for("message", timeout=5)
        source = await fake_discord.dispatch_voice_message(duration_secs=2.0)
        message = await pending

        await message.add_reaction("🎧")
        thread = await message.create_thread(name="Transcript")
        assert thread.id == message.id and thread.parent_id == world.general.id
        echoed = client.wait_for("message", check=lambda m: m.channel.id == thread.id, timeout=5)
        status = await thread.send("Transcribing…")
        echo = await echoed
        assert (echo.id, echo.author) == (status.id, client.user)  # the bot's own, echoed
        await status.edit(content="Done.")
        transcript = "A: Shall we start?\nB: Yes.\n" * 200
        await thread.send(
            "Preview…", file=discord.File(io.BytesIO(transcript.encode()), "transcript.txt")
        )
        await status.reply("Replies go in place in threads.")
        await message.remove_reaction("🎧", client.user)
        await message.add_reaction("✅")

    assert [r.emoji for r in fake_discord.reactions(source)] == ["✅"]
    (created,) = fake_discord.threads(world.general)
    assert (created["id"], created["name"]) == (source["id"], "Transcript")
    assert fake_discord.messages(world.general)[0]["flags"] & 32  # HAS_THREAD
    in_thread = fake_discord.messages(thread.id)
    assert [m["content"] for m in in_thread] == [
        "Done.",
        "Preview…",
        "Replies go in place in threads.",
    ]
    assert in_thread[2]["type"] == 19  # REPLY
    assert in_thread[2]["message_reference"]["message_id"] == str(status.id)
    assert fake_discord.messages(thread.id)[0]["edited_timestamp"] is not None
    (upload,) = fake_discord.files(thread.id)
    assert (upload.field, upload.filename, upload.text) == (
        "files[0]",
        "transcript.txt",
        transcript,
    )
    (attachment,) = in_thread[1]["attachments"]
    assert attachment["id"] == str(upload.attachment_id)
    assert attachment["content_type"] == "text/plain; charset=utf-8"
    (multipart,) = [
        c for c in fake_discord.calls_to("POST /channels/{channel_id}/messages") if c.files
    ]
    assert multipart.json["attachments"] == [{"id": 0, "filename": "transcript.txt"}]


async def test_content_over_2000_characters_is_refused(fake_discord: FakeDiscord) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        channel = client.get_channel(fake_discord.world.general.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("x" * 2000)
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("x" * 2001)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "Must be 2000 or fewer in length." in refused.value.text
    call = fake_discord.calls[-1]
    assert call.response["errors"] == {
        "content": {
            "_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
            ]
        }
    }
    assert len(fake_discord.messages()) == 1


async def test_enforced_nonce_returns_the_first_message(fake_discord: FakeDiscord) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        channel = client.get_channel(fake_discord.world.general.id)
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("result", nonce="job-42")
        again = await channel.send("result", nonce="job-42")
    assert first.id == again.id
    assert len(fake_discord.messages()) == 1


@pytest.mark.parametrize("scope", ["user", "global"])
async def test_429_is_retried_after_retry_after(fake_discord: FakeDiscord, scope) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        channel = client.get_channel(fake_discord.world.general.id)
        assert isinstance(channel, discord.TextChannel)
        route = "POST /channels/{channel_id}/messages"
        fake_discord.rate_limit(route, times=1, retry_after=0.05, scope=scope)
        sent = await channel.send("after a short wait")
    limited, ok = fake_discord.calls_to(route)
    assert (limited.status, ok.status) == (429, 200)
    assert limited.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.05,
        "global": scope == "global",
    }
    headers = limited.response_headers
    assert headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Scope"] == scope
    assert headers["Content-Type"] == "application/json"
    if scope == "global":
        assert headers["X-RateLimit-Global"] == "true"
    else:
        assert headers["X-RateLimit-Remaining"] == "0"
    assert ok.response_headers["X-RateLimit-Remaining"] == "49"
    assert fake_discord.messages()[-1]["id"] == str(sent.id)


async def test_commands_bot_answers_a_prefix_command(fake_discord: FakeDiscord) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=READY_FAST)

    @bot.command()
    async def ping(ctx: commands.Context) -> None:
        await ctx.reply("pong", mention_author=False)

    async with run_client(bot, fake_discord.token):
        question = await fake_discord.dispatch_message(content="!ping")
        (answer,) = await fake_discord.wait_for(lambda: fake_discord.messages(from_bot=True))
    assert answer["content"] == "pong"
    assert answer["message_reference"]["message_id"] == question["id"]
    (call,) = fake_discord.calls_to("POST /channels/{channel_id}/messages")
    assert call.json["allowed_mentions"]["replied_user"] is False


# -- interactions -------------------------------------------------------------------------


async def test_commands_are_synced_to_the_guild(
    fake_discord: FakeDiscord, bot: TranscribeBot
) -> None:
    guild_id = fake_discord.world.guild.id
    ((scope, _body),) = fake_discord.command_syncs
    assert scope == guild_id
    commands = {c["name"]: c for c in fake_discord.commands(guild_id)}
    assert set(commands) == {"transcribe", "Transcribe", "transcribe-settings"}
    options = {o["name"]: o["type"] for o in commands["transcribe"]["options"]}
    assert options == {"file": 11, "url": 3, "speakers": 4, "language": 3}
    assert commands["Transcribe"]["type"] == 3
    assert fake_discord.commands() == []  # nothing global


async def test_slash_command_with_attachment_defers_then_follows_up(
    fake_discord: FakeDiscord, bot: TranscribeBot
) -> None:
    audio = Upload("meeting.m4a", b"\x00\x00\x00\x20ftypM4A ", "audio/mp4")
    ix = await fake_discord.dispatch_slash_command(
        "transcribe", {"file": audio, "speakers": 2, "language": "en"}
    )
    interaction, attachment, data, speakers, language = await bot.next_seen()
    assert interaction.id == ix.id
    assert (attachment.filename, attachment.ephemeral, data) == ("meeting.m4a", True, audio.data)
    assert (speakers, language) == (2, "en")
    assert fake_discord.cdn_fetches[-1].path.startswith("/ephemeral-attachments/")

    (followup,) = await fake_discord.wait_for(lambda: fake_discord.followups(ix))
    assert fake_discord.interaction_responses(ix) == [{"type": 5}]
    assert followup["content"] == "Transcribing meeting.m4a (12 B)"
    # The first followup after a deferral fills in the "thinking" message.
    original = fake_discord.original_response(ix)
    assert original is not None and original["id"] == followup["id"]
    assert original["flags"] & 128 == 0  # no longer LOADING
    assert original["interaction_metadata"]["name"] == "transcribe"

    # Later messages are new followups; the original can still be edited.
    transcript = discord.File(io.BytesIO(b"A: Hello.\n"), "transcript.txt")
    second = await interaction.followup.send("Full transcript", file=transcript, wait=True)
    await interaction.edit_original_response(content="Done: 1 file")
    first, latest = fake_discord.followups(ix)
    assert (first["content"], latest["id"]) == ("Done: 1 file", str(second.id))
    assert latest["attachments"][0]["filename"] == "transcript.txt"
    (upload,) = fake_discord.files(fake_discord.world.general)
    assert (upload.data, upload.message_id, upload.route) == (
        b"A: Hello.\n",
        second.id,
        "POST /webhooks/{application_id}/{interaction_token}",
    )
    edit = fake_discord.calls[-1]
    assert (
        edit.route == "PATCH /webhooks/{application_id}/{interaction_token}/messages/{message_id}"
    )
    assert edit.params["message_id"] == "@original" and "Authorization" not in edit.headers


async def test_slash_command_with_url_answers_at_once(
    fake_discord: FakeDiscord, bot: TranscribeBot
) -> None:
    url = "https://example.org/podcast.mp3"
    ix = await fake_discord.dispatch_slash_command(
        "transcribe", {"url": url, "speakers": 3}, channel=fake_discord.world.thread
    )
    interaction, got_url, speakers, language = await bot.next_seen()
    assert (got_url, speakers, language) == (url, 3, None)
    assert isinstance(interaction.channel, discord.Thread)
    (response,) = await fake_discord.wait_for(lambda: fake_discord.interaction_responses(ix))
    assert response["type"] == 4 and response["data"]["content"] == f"Queued {url}"
    reply = fake_discord.messages(fake_discord.world.thread)[-1]
    assert (reply["type"], reply["content"]) == (20, f"Queued {url}")

    with pytest.raises(ValueError, match="no option 'lang'"):
        await fake_discord.dispatch_slash_command("transcribe", {"lang": "en"})
    with pytest.raises(ValueError, match="INTEGER"):
        await fake_discord.dispatch_slash_command("transcribe", {"speakers": "two"})


async def test_message_context_menu_gets_the_message(
    fake_discord: FakeDiscord, bot: TranscribeBot
) -> None:
    voice = await fake_discord.dispatch_voice_message(duration_secs=7.0)
    ix = await fake_discord.dispatch_message_command("Transcribe", voice)
    interaction, message = await bot.next_seen()
    assert interaction.data["target_id"] == voice["id"]
    assert message.id == int(voice["id"]) and message.flags.voice
    assert message.attachments[0].duration == 7.0
    (followup,) = await fake_discord.wait_for(lambda: fake_discord.followups(ix))
    assert fake_discord.interaction_responses(ix) == [{"type": 5, "data": {"flags": 64}}]
    assert followup["flags"] == 64 and followup["type"] == 23  # ephemeral, context menu


async def test_slash_command_in_a_dm(fake_discord: FakeDiscord, bot: TranscribeBot) -> None:
    world = fake_discord.world
    ix = await fake_discord.dispatch_slash_command(
        "transcribe", {"url": "https://example.org/a.ogg"}, channel=world.dm
    )
    interaction, *_ = await bot.next_seen()
    assert interaction.guild is None and isinstance(interaction.channel, discord.DMChannel)
    assert isinstance(interaction.user, discord.User) and interaction.user.id == world.alice.id
    await fake_discord.wait_for(lambda: fake_discord.original_response(ix))
    assert fake_discord.messages(world.dm)[-1]["content"] == "Queued https://example.org/a.ogg"


@pytest.mark.parametrize(("who", "allowed"), [("mod", True), ("alice", False)])
async def test_settings_command_sees_member_permissions(
    fake_discord: FakeDiscord, bot: TranscribeBot, who, allowed
) -> None:
    user = getattr(fake_discord.world, who)
    ix = await fake_discord.dispatch_slash_command(
        "transcribe-settings", {"auto": {"state": "on"}}, user=user
    )
    interaction, state, manage_guild = await bot.next_seen()
    assert (interaction.user.id, state, manage_guild) == (user.id, "on", allowed)
    (response,) = await fake_discord.wait_for(lambda: fake_discord.interaction_responses(ix))
    assert response["data"]["flags"] == 64
    with pytest.raises(ValueError, match="choices"):
        await fake_discord.dispatch_slash_command("transcribe-settings", {"auto": {"state": "x"}})


async def test_interaction_tokens_expire(fake_discord: FakeDiscord, bot: TranscribeBot) -> None:
    # Not answered within 3 s: the interaction is unknown (discord.py cannot tell).
    pending = bot.wait_for("interaction", timeout=5)
    await fake_discord.dispatch_slash_command("transcribe", {"url": "https://a/b"}, created_ago=5)
    assert not (await pending).is_expired()
    with pytest.raises(discord.NotFound) as late:
        await bot.next_seen()
    assert late.value.code == 10062

    # Minted 15 minutes ago: discord.py's own clock agrees it has expired.
    pending = bot.wait_for("interaction", timeout=5)
    await fake_discord.dispatch_slash_command("transcribe", {"url": "https://a/c"}, created_ago=901)
    assert (await pending).is_expired()
    with pytest.raises(discord.NotFound):
        await bot.next_seen()

    # Deferred in time, but the followup comes after 15 minutes (the fake's clock only:
    # discord.py, reading the real clock, still thinks the token is good).
    ix = await fake_discord.dispatch_slash_command("transcribe", {"file": Upload("a.ogg", b"x")})
    interaction, *_ = await bot.next_seen()
    await fake_discord.wait_for(lambda: fake_discord.followups(ix))
    fake_discord.clock.advance(16 * 60)
    assert not interaction.is_expired()
    with pytest.raises(discord.HTTPException) as expired:
        await interaction.followup.send("too late")
    assert (expired.value.status, expired.value.code) == (401, 50027)
    assert expired.value.text == "Invalid Webhook Token"
    # The bot token still works for the late result.
    channel = bot.get_channel(fake_discord.world.general.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("late result")


# -- resuming -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["reconnect", "close", "drop"])
async def test_missed_events_are_replayed_on_resume(fake_discord: FakeDiscord, how) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        received: list[discord.Message] = []
        client.event(_collect(received))
        resumed = client.wait_for("resumed", timeout=5)
        async with fake_discord.outage(how) as session:
            missed = await fake_discord.dispatch_message(content="while you were away")
            assert session.connection is None
        await resumed
        await fake_discord.wait_for(lambda: received)
        assert [m.id for m in received] == [int(missed["id"])]

        resume = fake_discord.gateway.connections[-1]
        assert resume.path == "/resume/"  # READY's resume_gateway_url
        (op6,) = [p for p in resume.received if p["op"] == 6]
        assert op6["d"]["session_id"] == session.id
        assert op6["d"]["seq"] < session.seq
        assert len(fake_discord.gateway.sessions) == 1  # resumed, not re-identified


async def test_forced_resume_can_redeliver_a_message(fake_discord: FakeDiscord) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token):
        received: list[discord.Message] = []
        client.event(_collect(received))
        voice = await fake_discord.dispatch_voice_message()
        await fake_discord.wait_for(lambda: len(received) == 1)
        await fake_discord.force_resume(redeliver_messages=[voice])
        await fake_discord.wait_for(lambda: len(received) == 2)
    assert received[0].id == received[1].id == int(voice["id"])


async def test_an_invalidated_session_identifies_again(fake_discord: FakeDiscord) -> None:
    class Client(discord.Client):
        async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False):
            pass  # discord.py waits 5 s here before re-identifying

    client = Client(intents=discord.Intents.default(), guild_ready_timeout=READY_FAST)
    async with run_client(client, fake_discord.token):
        ready_again = client.wait_for("ready", timeout=5)
        first = await fake_discord.invalidate_session()
        await ready_again
        second = fake_discord.gateway.session()
        assert first.invalidated and second.id != first.id
        ops = [
            [p["op"] for p in c.received if p["op"] != 1] for c in fake_discord.gateway.connections
        ]
        assert ops == [[2], [6], [2]]  # IDENTIFY, a refused RESUME, IDENTIFY


def _collect(into: list[discord.Message]):
    async def on_message(message: discord.Message) -> None:
        into.append(message)

    return on_message


# -- CDN and raw protocol ----------------------------------------------------------------


async def test_cdn_urls_expire_and_refresh(fake_discord: FakeDiscord) -> None:
    client = make_client()
    async with run_client(client, fake_discord.token), aiohttp.ClientSession() as http:
        pending = client.wait_for("message", timeout=5)
        await fake_discord.dispatch_message(
            uploads=[Upload("talk.wav", b"RIFF....WAVE", "audio/wav")]
        )
        message = await pending
        url = message.attachments[0].url
        async with http.get(url) as response:
            assert (response.status, await response.read()) == (200, b"RIFF....WAVE")
            assert response.headers["Content-Type"] == "audio/wav"

        fake_discord.clock.advance(25 * 3600)
        async with http.get(url) as response:
            assert response.status == 404
            assert await response.text() == "This content is no longer available."
        async with http.get(url.split("?")[0]) as response:
            assert response.status == 404  # unsigned

        fresh = await message.channel.fetch_message(message.id)
        assert fresh.attachments[0].url != url
        assert await fresh.attachments[0].read() == b"RIFF....WAVE"

        fake_discord.deny_cdn(fresh.attachments[0].id)
        with pytest.raises(discord.Forbidden):
            await fresh.attachments[0].read()


async def test_large_attachment_is_streamed(fake_discord: FakeDiscord) -> None:
    big = GeneratedBytes(size=48 * 1024 * 1024 + 123, seed=7)
    client = make_client()
    async with run_client(client, fake_discord.token), aiohttp.ClientSession() as http:
        pending = client.wait_for("message", timeout=5)
        await fake_discord.dispatch_message(uploads=[Upload("long.flac", big, "audio/flac")])
        attachment = (await pending).attachments[0]
        assert attachment.size == big.size
        digest, total = hashlib.sha256(), 0
        async with http.get(attachment.url) as response:
            assert response.content_length == big.size
            async for chunk in response.content.iter_chunked(1 << 20):
                digest.update(chunk)
                total += len(chunk)
    assert total == big.size
    assert digest.hexdigest() == big.sha256()


async def test_rest_replies_and_errors(fake_discord: FakeDiscord) -> None:
    api = fake_discord.api_url
    auth = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/gateway/bot", headers=auth) as response:
            assert response.headers["Content-Type"] == "application/json"
            body = await response.json()
            assert body["url"] == fake_discord.gateway_url and body["shards"] == 1
        async with http.get(f"{api}/users/@me") as response:
            assert (response.status, await response.json()) == (
                401,
                {"message": "401: Unauthorized", "code": 0},
            )
        async with http.get(f"{api}/no/such/route", headers=auth) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert (response.status, await response.json()) == (
                404,
                {"message": "404: Not Found", "code": 0},
            )
        async with http.post(
            f"{api}/channels/1/messages", headers=auth, json={"content": "hi"}
        ) as response:
            assert (response.status, (await response.json())["code"]) == (404, 10003)
        general = fake_discord.world.general.id
        async with http.post(
            f"{api}/channels/{general}/messages", headers=auth, json={"content": ""}
        ) as response:
            assert (response.status, await response.json()) == (
                400,
                {"message": "Cannot send an empty message", "code": 50006},
            )
        # Interaction routes carry no bot token; an unknown one is simply unknown.
        async with http.post(f"{api}/interactions/1/tok/callback", json={"type": 5}) as response:
            assert (response.status, await response.json()) == (
                404,
                {"message": "Unknown interaction", "code": 10062},
            )


@pytest.mark.parametrize(
    ("identify", "code"),
    [
        ({"token": "wrong", "intents": 513}, Close.AUTHENTICATION_FAILED),
        ({"token": None, "intents": 513}, Close.DECODE_ERROR),
        ({"intents": 1 << 30}, Close.INVALID_INTENTS),
        ({"intents": int(Intent.GUILD_MEMBERS)}, Close.DISALLOWED_INTENTS),
    ],
)
async def test_gateway_close_codes(fake_discord: FakeDiscord, identify, code) -> None:
    payload = {"token": fake_discord.token, "properties": {}, **identify}
    url = fake_discord.gateway_url + "?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
        await ws.send_json({"op": 2, "d": payload})
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == code


async def test_a_channel_overwrite_can_take_permissions_from_the_bot(
    fake_discord: FakeDiscord, bot: TranscribeBot
) -> None:
    world = fake_discord.world
    fake_discord.deny_bot(world.general, Permission.EMBED_LINKS, Permission.ATTACH_FILES)
    channel = bot.get_channel(world.general.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("hi", embed=discord.Embed(title="dropped"))
    assert sent.embeds == []  # Discord drops embeds silently without Embed Links
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send(file=discord.File(io.BytesIO(b"x"), "a.txt"))
    assert (refused.value.status, refused.value.code) == (403, 50013)

    fake_discord.deny_bot(world.general, Permission.CREATE_PUBLIC_THREADS)
    with pytest.raises(discord.Forbidden):
        await sent.create_thread(name="nope")
    # Threads in the channel inherit the overwrite, and interactions report it.
    ix = await fake_discord.dispatch_slash_command(
        "transcribe", {"url": "https://a/b.mp3"}, channel=world.thread
    )
    interaction, *_ = await bot.next_seen()
    assert interaction.id == ix.id
    assert not interaction.app_permissions.embed_links
    assert interaction.app_permissions.send_messages


async def test_command_permissions_come_back_as_strings(fake_discord: FakeDiscord) -> None:
    world = fake_discord.world
    url = f"{fake_discord.api_url}/applications/{world.application_id}/commands"
    auth = {"Authorization": f"Bot {fake_discord.token}"}
    body = [{"name": "settings", "description": "x", "default_member_permissions": 32}]
    async with aiohttp.ClientSession() as http, http.put(url, json=body, headers=auth) as reply:
        (command,) = await reply.json()
    assert command["default_member_permissions"] == "32"  # as Discord answers
