"""The Slack adapter: what `threadscribe run` starts when Slack is configured.

    adapter = adapters.slack.create(settings, core)    # no I/O
    web_app.add_routes(adapter.routes())               # /slack/events, OAuth pages
    await adapter.start()                              # Socket Mode connects here
    ...
    await adapter.stop()                               # stop taking events first

Modes: Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), else HTTP mode at
POST /slack/events, signatures verified by Bolt with SLACK_SIGNING_SECRET. With
SLACK_CLIENT_ID/SECRET the app installs into many workspaces and each job's token is
looked up by its workspace.

Modules: `app` (Bolt wiring), `events` and `commands` (what people do, handed to the
core as triggers), `incoming` (Slack's payloads as the core's values), `chat` (posts,
edits, reactions), `files` (private downloads), `blocks` (Block Kit), `workspaces`
(tokens, OAuth), `errors` (Slack's failures as the core's), `texts` (Slack's own words),
`doctor` (set-up checks).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Sequence
from typing import Final

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.actions import Actions
from adapters.slack.admins import Admins
from adapters.slack.app import SlackBolt
from adapters.slack.chat import SlackChat
from adapters.slack.commands import Commands
from adapters.slack.controls import SlackControls
from adapters.slack.errors import AUTH_ERRORS, CALL_ERRORS, error_code
from adapters.slack.events import Events
from adapters.slack.files import FileOpener
from adapters.slack.home import Home
from adapters.slack.people import People
from adapters.slack.workspaces import (
    Installations,
    OAuthTables,
    SingleWorkspace,
    Workspaces,
    oauth_settings,
    web_client,
)
from bot.chat import (
    Core,
    FileSource,
    FileStream,
    Person,
    Platform,
    PlatformUnavailable,
    Post,
    Reaction,
    ThreadRef,
)
from bot.config import Settings
from bot.errors import ConfigError
from bot.render import SLACK_SECTION_LIMIT
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

#: The bot token scopes the code uses; slack-manifest.yml grants exactly these.
BOT_SCOPES: Final = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "reactions:write",
    "users:read",
)
APP_SCOPES: Final = ("connections:write",)


class Mode(enum.StrEnum):
    SOCKET = "socket"
    HTTP = "http"


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"  # no more events; posting still works until close()
    CLOSED = "closed"


class SlackAdapter:
    name: Final = Platform.SLACK
    message_limit: Final = SLACK_SECTION_LIMIT
    file_limit: Final = 1_000_000_000  # Slack takes files up to 1 GB

    def __init__(
        self,
        settings: Settings,
        core: Core,
        *,
        admins: Collection[str] = (),
        shared_store: bool = False,
        stop_timeout: float = 10.0,
        oauth_tables: OAuthTables | None = None,
    ) -> None:
        bot_token = settings.slack_bot_token.value if settings.slack_bot_token else None
        self.mode = Mode.SOCKET if settings.slack_app_token else Mode.HTTP
        self._app_token = settings.slack_app_token
        self._api_url = settings.slack_api_url
        self._stop_timeout = stop_timeout
        self._state = _State.NEW
        self._session: aiohttp.ClientSession | None = None
        self._oauth = oauth_tables
        self._workspaces: Workspaces
        if oauth_tables is not None:
            self._workspaces = Installations(oauth_tables.installations)
            bolt_token = None
        elif bot_token is not None:
            self._workspaces = SingleWorkspace(bot_token)
            bolt_token = bot_token
        else:
            raise ValueError("Slack needs SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SECRET")
        if self.mode is Mode.HTTP and not settings.slack_signing_secret:
            # An empty secret would make every forged request verify.
            raise ValueError("Slack's HTTP mode needs SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN)")
        self._client = web_client(bolt_token, base_url=self._api_url)
        self._clients: dict[str, AsyncWebClient] = {}
        self.chat = SlackChat(self._client_for, shared_store=shared_store, forget=self._forget)
        self._files = FileOpener(self._http, api_url=self._api_url)
        self._people = People(self._client_for)
        self.tasks = TaskSet("slack")
        events = Events(core=core, chat=self.chat, tasks=self.tasks)
        oauth = None
        if oauth_tables is not None:
            assert settings.slack_client_id and settings.slack_client_secret
            oauth = oauth_settings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.value,
                scopes=BOT_SCOPES,
                tables=oauth_tables,
                api_url=self._api_url,
                public_url=settings.public_url,
            )
        secret = settings.slack_signing_secret
        self.admins = Admins(self._client_for, admins)
        controls = SlackControls(core=core, admins=self.admins)
        self.bolt = SlackBolt(
            client=self._client,
            signing_secret=secret.value if secret else "",
            triggers=events,
            commands=Commands(
                core=core,
                chat=self.chat,
                admins=self.admins,
                controls=controls,
                tasks=self.tasks,
            ),
            actions=Actions(core=core, tasks=self.tasks),
            controls=controls,
            home=Home(core=core, admins=self.admins, tasks=self.tasks),
            tasks=self.tasks,
            oauth=oauth,
        )

    def __repr__(self) -> str:
        return f"<SlackAdapter {self.mode.value} {self._state.value}>"

    # -- lifecycle -----------------------------------------------------------------------

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return self.bolt.routes(events=self.mode is Mode.HTTP)

    async def connected(self) -> bool | None:
        if self.mode is Mode.HTTP:
            return None
        if self._state is not _State.RUNNING:
            return False
        return bool(await self.bolt.connected())

    async def start(self) -> None:
        if self._state is not _State.NEW:
            raise RuntimeError(f"the Slack adapter is {self._state.value}: start it once")
        self._state = _State.RUNNING
        self._session = aiohttp.ClientSession()
        self._client.session = self._session
        if self._oauth is not None:
            await self._oauth.create()
            if not await self._oauth.workspaces():
                # Bolt drops every event of a workspace without an install: say so now.
                log.warning(texts.NO_INSTALL_YET)
        else:
            await self._check_bot_token()
        self.bolt.gate.open()
        if self._app_token is not None:
            # The Socket Mode client retries a refused token for ever: ask once first.
            try:
                await self._client.apps_connections_open(app_token=self._app_token.value)
            except SlackApiError as exc:
                raise ConfigError([texts.token_refused("SLACK_APP_TOKEN", exc)]) from exc
            except CALL_ERRORS as exc:
                raise PlatformUnavailable(texts.unreachable(self._api_url, exc)) from exc
            await self.bolt.connect(self._app_token.value, self._client)
        log.info("Slack adapter started", extra={"mode": self.mode.value})

    async def _check_bot_token(self) -> None:
        """A token Slack refuses, or Slack out of reach, stops the start with one line
        naming SLACK_BOT_TOKEN, or Slack's URL."""
        try:
            identity = await self._client.auth_test()
        except SlackApiError as exc:
            if error_code(exc) in AUTH_ERRORS:
                raise ConfigError([texts.token_refused("SLACK_BOT_TOKEN", exc)]) from exc
            log.warning("Slack auth.test failed: %s", error_code(exc))
        except CALL_ERRORS as exc:
            raise PlatformUnavailable(texts.unreachable(self._api_url, exc)) from exc
        else:
            log.info("Slack: bot @%s in %s", identity.get("user"), identity.get("team"))

    async def stop(self) -> None:
        """Stop taking events (waiting for those being taken in) and finish the feedback
        already under way. Posting keeps working until `close()`. Idempotent."""
        if self._state is not _State.RUNNING:
            if self._state is _State.NEW:
                self._state = _State.STOPPED
            return
        self._state = _State.STOPPED
        await self.bolt.close(self._stop_timeout)
        await self.tasks.drain(self._stop_timeout)

    async def close(self) -> None:
        """Let go of connections, once the engine has stopped. Idempotent."""
        await self.stop()
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._session is not None:
            await self._session.close()
        if self._oauth is not None:
            await self._oauth.close()

    # -- ChatPlatform --------------------------------------------------------------------

    async def open_file(self, where: ThreadRef, source: FileSource) -> FileStream:
        token = await self._workspaces.token(where.workspace)
        return await self._files.open(source, token)

    async def public_url(self, where: ThreadRef, source: FileSource) -> str | None:
        return None  # Slack's files are private: they are streamed with the bot token

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        return await self.chat.post(where, post, key=key)

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        await self.chat.edit(where, message_id, post, key=key)

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        await self.chat.react(where, reaction)

    async def people(self, where: ThreadRef) -> Sequence[Person]:
        return await self._people.of(where)

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        await self.chat.erase(where, message_ids)

    async def notify_admins(self, workspace: str, text: str) -> None:
        await self.admins.notify(workspace, text)

    # -- plumbing ------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._state is _State.CLOSED:
            raise RuntimeError("the Slack adapter is closed")
        return self._session

    def _forget(self, team: str) -> None:
        self._workspaces.forget(team)

    async def _client_for(self, team: str) -> AsyncWebClient:
        """A Web API client holding `team`'s bot token, on the shared connection pool."""
        token = await self._workspaces.token(team)
        client = self._clients.get(token)
        if client is None:
            if len(self._clients) > 1000:
                self._clients.clear()
            client = web_client(token, base_url=self._api_url, session=self._http())
            self._clients[token] = client
        return client


def create(
    settings: Settings,
    core: Core,
    *,
    oauth_tables: OAuthTables | None = None,
    shared_store: bool = False,
    admins: Collection[str] | None = None,
) -> SlackAdapter:
    """The adapter for these settings (no I/O: `start` connects).

    The composition root gives it what it does not make itself: the core it hands
    triggers to; `oauth_tables`, the installations' tables on the jobs' database, when
    SLACK_CLIENT_ID/SECRET are set; and `shared_store`, whether other processes work on
    the same jobs (then a post is always looked for before it is made again). `admins`:
    user ids allowed to run `/transcribe on|off` besides workspace admins and owners
    (default: SLACK_ADMIN_USERS).
    """
    return SlackAdapter(
        settings,
        core,
        admins=settings.slack_admin_users if admins is None else admins,
        shared_store=shared_store,
        oauth_tables=oauth_tables,
    )
