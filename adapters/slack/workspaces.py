"""Which token speaks for which workspace: one bot token, or per-team installations.

Single-workspace: `SLACK_BOT_TOKEN`. Multi-workspace (`SLACK_CLIENT_ID`/`SECRET`): Bolt's
OAuth flow saves each installation with slack_sdk's async SQLAlchemy store, in the same
database as the jobs (tables `slack_installations`, `slack_bots`, `slack_oauth_states`),
and the bot token of a job's team is looked up when the engine posts for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import aiohttp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import distinct, func, inspect, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.texts import not_installed
from bot.chat import PlatformRefused

log = logging.getLogger(__name__)

INSTALL_PATH: Final = "/slack/install"
REDIRECT_PATH: Final = "/slack/oauth_redirect"
TOKEN_TTL: Final = 300.0  # seconds a looked-up installation token is reused


def retry_handlers() -> list[AsyncRetryHandler]:
    """429s wait for Retry-After and go again: Slack did nothing with the request.

    Dropped connections and 5xx are not retried here: a post may have gone through, and
    only the caller can look before posting again (see `slack_chat`)."""
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=3)]


class SlackWebClient(AsyncWebClient):
    """slack_sdk's client, but `oauth.v2.access` sends the app's credentials as form fields
    (which Slack accepts) instead of through aiohttp's BasicAuth, deprecated since 3.14."""

    async def oauth_v2_access(
        self,
        *,
        client_id: str,
        client_secret: str,
        code: str | None = None,
        redirect_uri: str | None = None,
        grant_type: str | None = None,
        refresh_token: str | None = None,
        **kwargs: Any,
    ) -> AsyncSlackResponse:
        fields = {
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "grant_type": grant_type,
            "refresh_token": refresh_token,
        }
        data = {k: v for k, v in fields.items() if v is not None} | kwargs
        return await self.api_call("oauth.v2.access", data=data)


def web_client(
    token: str | None, *, base_url: str, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    return SlackWebClient(
        token=token, base_url=base_url, session=session, retry_handlers=retry_handlers()
    )


class Workspaces(Protocol):
    async def token(self, team: str) -> str:
        """The bot token for `team`; PlatformError (not retryable) when there is none."""
        ...

    def forget(self, team: str) -> None:
        """Drop what is cached for `team` (its token was refused)."""
        ...


class SingleWorkspace:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self, team: str) -> str:
        return self._token

    def forget(self, team: str) -> None:
        pass


class Installations:
    """Tokens from the installation store, cached for a few minutes per team."""

    def __init__(
        self,
        store: AsyncSQLAlchemyInstallationStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    async def token(self, team: str) -> str:
        cached = self._cache.get(team)
        if cached is not None and self._clock() - cached[1] < TOKEN_TTL:
            return cached[0]
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            raise PlatformRefused(not_installed(team))
        self._cache[team] = (bot.bot_token, self._clock())
        return bot.bot_token

    def forget(self, team: str) -> None:
        self._cache.pop(team, None)


class OAuthTables:
    """The installation and state stores on the jobs' database."""

    def __init__(self, client_id: str, engine: AsyncEngine, *, state_ttl: int = 600) -> None:
        self.engine = engine
        self.installations = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine)
        self.states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=state_ttl, engine=engine)

    async def create(self) -> None:
        """Create the tables if missing (slack_sdk's own schema; not versioned by us)."""
        # slack_sdk leaves these two untyped.
        await self.installations.create_tables()  # type: ignore[no-untyped-call]
        await self.states.create_tables()  # type: ignore[no-untyped-call]

    async def workspaces(self) -> int:
        """How many workspaces have installed the app (0 before the tables exist)."""
        bots = self.installations.bots
        query = select(func.count(distinct(bots.c.team_id))).where(
            bots.c.client_id == self.installations.client_id
        )
        try:
            async with self.engine.connect() as conn:
                return int(await conn.scalar(query) or 0)
        except (OperationalError, ProgrammingError):
            if await self._tables_missing():
                return 0
            raise

    async def _tables_missing(self) -> bool:
        name = self.installations.bots.name
        async with self.engine.connect() as conn:
            return not await conn.run_sync(lambda sync: inspect(sync).has_table(name))

    async def close(self) -> None:
        await self.engine.dispose()


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    tables: OAuthTables,
    api_url: str,
    public_url: str | None,
) -> AsyncOAuthSettings:
    """Bolt's OAuth flow: /slack/install and /slack/oauth_redirect on the bot's server."""
    redirect_uri = public_url.rstrip("/") + REDIRECT_PATH if public_url else None
    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(scopes),
        user_scopes=[],
        redirect_uri=redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorize_url(api_url),
        installation_store=tables.installations,
        state_store=tables.states,
    )


def authorize_url(api_url: str) -> str:
    """`https://slack.com/api/` -> `https://slack.com/oauth/v2/authorize` (and likewise for
    a local fake), so SLACK_API_URL alone moves the whole flow."""
    root = api_url.rstrip("/").removesuffix("/api")
    return f"{root}/oauth/v2/authorize"
