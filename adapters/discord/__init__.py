"""The Discord adapter: discord.py's gateway client and REST, translated to the core.

    adapter = adapters.discord.create(settings, core)    # no I/O
    adapter.routes()                                      # [] (the gateway needs none)
    await adapter.start()                                 # login, sync commands, connect
    ...
    await adapter.stop()     # phase 1: take no more triggers; posting still works
    await engine.stop()      # the engine drains, still posting through the adapter
    await adapter.close()    # phase 2: disconnect

Modules: `client` (the gateway client and its commands), `events` (messages and
interactions, handed to the core as triggers), `delivery` and `format` (posts in threads),
`files` (attachments), `errors` (Discord's failures as the core's), `texts` (Discord's own
words), `doctor` (set-up checks). Run the gateway in exactly one process (see
docs/discord.md).

This module is named like the library it wraps; `import discord` below still imports
discord.py, because imports are absolute and the `adapters` folder itself is never on
`sys.path`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Sequence
from typing import Final

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from adapters.discord import texts
from adapters.discord.client import GatewayClient, invite_url
from adapters.discord.controls import DiscordControls
from adapters.discord.delivery import Delivery, Interactions
from adapters.discord.events import Events
from adapters.discord.files import AttachmentFetcher
from adapters.discord.format import CONTENT_LIMIT
from adapters.discord.people import People
from bot.chat import (
    Core,
    FileSource,
    FileStream,
    Person,
    Platform,
    PlatformRefused,
    PlatformUnavailable,
    Post,
    Reaction,
    ThreadRef,
)
from bot.config import Secret, Settings
from bot.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["DiscordAdapter", "configure_endpoints", "create"]

#: How long shutdown waits for event handlers that are mid-intake.
HANDLER_GRACE: Final = 5.0


def create(
    settings: Settings,
    core: Core,
    *,
    dev_guild: int | None = None,
    guild_ready_timeout: float = 2.0,
    ready_timeout: float = 60.0,
    shared_store: bool = False,
) -> DiscordAdapter:
    """The adapter for `settings` (no I/O), handing triggers to `core`. `dev_guild`
    registers the commands in that server only, where they appear at once (global
    commands may take up to an hour); it defaults to DISCORD_DEV_GUILD. `shared_store`:
    other processes work on the same jobs (a post may have been made by another)."""
    if settings.discord_token is None:
        raise ConfigError([texts.TOKEN_MISSING])
    configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    return DiscordAdapter(
        settings.discord_token,
        core,
        dev_guild=dev_guild if dev_guild is not None else settings.discord_dev_guild,
        guild_ready_timeout=guild_ready_timeout,
        ready_timeout=ready_timeout,
        shared_store=shared_store,
    )


def configure_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another REST base (DISCORD_API_URL, with its `/api/v10`) and
    gateway (DISCORD_GATEWAY_URL): a proxy, or a local fake in tests. These are
    discord.py's own class-wide settings, so they hold for the whole process."""
    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class _State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"  # no more triggers; posting still works
    CLOSED = "closed"


class DiscordAdapter:
    """`bot.chat.Adapter` for Discord. One start per instance (discord.py's client is
    single-use)."""

    name: Final = Platform.DISCORD
    message_limit: Final = CONTENT_LIMIT  # the 2,000 less the post's reference line
    #: what a bot may upload in a server that is not boosted (10 MiB)
    file_limit: Final = 10 * 1024 * 1024

    def __init__(
        self,
        token: Secret,
        core: Core,
        *,
        dev_guild: int | None = None,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
        shared_store: bool = False,
    ) -> None:
        self._token = token
        self._dev_guild = dev_guild
        self._ready_timeout = ready_timeout
        self._state = _State.NEW
        self.interactions = Interactions()
        self.intake = Events(core, self.interactions)
        controls = DiscordControls(core, self.intake)
        self.client = GatewayClient(self.intake, controls, guild_ready_timeout=guild_ready_timeout)
        self._delivery = Delivery(self.client, self.interactions, shared_store=shared_store)
        self._files = AttachmentFetcher(self.client)
        self._people = People(self.client)
        self._gateway: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()  # start() finished, one way or the other

    def __repr__(self) -> str:
        return f"<DiscordAdapter {self._state.value}>"

    async def connected(self) -> bool | None:
        """The gateway's websocket is open (between a drop and the resume, it is not)."""
        gateway = self._gateway
        if self._state is not _State.RUNNING or gateway is None or gateway.done():
            return False
        ws = self.client.ws
        return ws is not None and ws.open and not self.client.is_closed()

    # -- lifecycle -------------------------------------------------------------------------

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return []  # everything arrives over the gateway

    async def start(self) -> None:
        """Log in, register the commands, connect, and return once the gateway is ready.
        Raises PlatformError with a one-line reason (a bad DISCORD_TOKEN, the Message
        Content intent switched off, Discord unreachable)."""
        if self._state is not _State.NEW:
            raise RuntimeError(f"cannot start a {self._state.value} Discord adapter")
        self._state = _State.STARTING
        try:
            await self._files.open()
            await self._login()
            await self._sync_commands()
            self.intake.resume()
            self._gateway = asyncio.create_task(self._connect(), name="discord-gateway")
            await self._until_ready(self._gateway)
            self._state = _State.RUNNING
        except BaseException:
            await self.close()
            raise
        finally:
            self._settled.set()
        user = self.client.user
        log.info("Discord gateway ready as %s (%s)", user, getattr(user, "id", "?"))
        if self.client.application_id is not None:
            log.info("invite link: %s", invite_url(self.client.application_id))

    async def stop(self) -> None:
        """Phase one of shutdown: take no more triggers and let handlers that are mid-
        intake finish. The connection stays up so the engine can still deliver."""
        if self._state is _State.RUNNING:
            self._state = _State.STOPPED
        self.intake.pause()
        await self.intake.drain(HANDLER_GRACE)

    async def close(self) -> None:
        """Phase two: disconnect from the gateway and REST. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self.intake.pause()
        self._state = _State.CLOSED
        self._settled.set()
        await self.client.close()
        if self._gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._gateway, timeout=10)
        await self._files.close()

    async def _login(self) -> None:
        try:
            await self.client.login(self._token.value)
        except discord.LoginFailure as exc:
            raise PlatformRefused(texts.TOKEN_REJECTED) from exc
        except discord.HTTPException as exc:
            reason = f"HTTP {exc.status}: {exc.text}"
            raise PlatformUnavailable(texts.unreachable(discord.http.Route.BASE, reason)) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise PlatformUnavailable(texts.unreachable(discord.http.Route.BASE, reason)) from exc

    async def _sync_commands(self) -> None:
        tree = self.client.tree
        guild = None if self._dev_guild is None else discord.Object(id=self._dev_guild)
        scope = "globally" if guild is None else f"in server {self._dev_guild}"
        if guild is not None:
            tree.copy_global_to(guild=guild)
        try:
            synced = await tree.sync(guild=guild)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise PlatformRefused(texts.sync_refused(scope, exc.text)) from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            # Commands registered by an earlier start keep working; messages do anyway.
            log.warning("could not register the slash commands %s: %s", scope, exc)
            return
        log.info("registered %d application commands %s", len(synced), scope)

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired as exc:
            raise PlatformRefused(texts.INTENT_MISSING) from exc
        except discord.ConnectionClosed as exc:
            if exc.code == 4004:
                raise PlatformRefused(texts.TOKEN_REJECTED) from exc
            raise PlatformUnavailable(texts.unreachable("gateway", f"closed {exc.code}")) from exc
        finally:
            if self._state is _State.RUNNING:
                log.error("the Discord gateway stopped; no more triggers will be seen")

    async def _until_ready(self, gateway: asyncio.Task[None]) -> None:
        ready = asyncio.create_task(self.client.wait_until_ready(), name="discord-ready")
        try:
            done, _ = await asyncio.wait(
                {gateway, ready}, timeout=self._ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if ready in done:
            return
        if gateway in done:
            gateway.result()  # raises the PlatformError that ended it
            raise PlatformUnavailable(texts.unreachable("gateway", "closed before it was ready"))
        raise PlatformUnavailable(texts.not_ready(self._ready_timeout))

    # -- ChatPlatform --------------------------------------------------------------------

    async def open_file(self, where: ThreadRef, source: FileSource) -> FileStream:
        await self._usable()
        return await self._files.open_file(source)

    async def public_url(
        self, where: ThreadRef, source: FileSource, *, valid_for: float = 3600.0
    ) -> str | None:
        """A CDN URL signed for `valid_for` more seconds, for AssemblyAI to fetch itself
        before the engine streams the file; None when there is none."""
        await self._usable()
        return await self._files.public_url(source, valid_for=valid_for)

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        await self._usable()
        return await self._delivery.post(where, post, key=key)

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        await self._usable()
        await self._delivery.edit(where, message_id, post, key=key)

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        await self._usable()
        await self._delivery.react(where, reaction)

    async def people(self, where: ThreadRef) -> Sequence[Person]:
        await self._usable()
        return await self._people.of(where)

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        await self._usable()
        await self._delivery.erase(where, message_ids)

    async def notify_admins(self, workspace: str, text: str) -> None:
        """Tell the server's owner, in a direct message (Discord has no one admin list:
        the owner is the one member every server has)."""
        await self._usable()
        if not workspace.isdigit():
            return  # DMs belong to no server
        await self._delivery.tell_owner(int(workspace), text)

    async def _usable(self) -> None:
        """Wait for a start under way (the engine resumes jobs while the gateway connects);
        then REST works in every state but new and closed."""
        if self._state in (_State.NEW, _State.STARTING):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), self._ready_timeout)
        if self._state not in (_State.RUNNING, _State.STOPPED) or self.client.is_closed():
            # Retryable: the job waits for the next run instead of failing.
            raise PlatformUnavailable(f"the Discord adapter is {self._state.value}")
