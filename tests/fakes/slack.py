"""A fake Slack for tests: Web API, private files, uploads, response URLs and Socket Mode on
one aiohttp server at 127.0.0.1:<ephemeral port>, as strict as Slack where it matters.

    async with FakeSlack() as slack:             # or the `fake_slack` fixture
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel=GENERAL, text="hi")
        assert slack.messages(GENERAL)[-1].text == "hi"

The bot reaches it through `SLACK_API_URL=slack.api_url`. The workspace is seeded (see the
constants below); `add_*` methods extend it. Faults are switched on per method
(`rate_limit`, `fail`). The OAuth install flow is `oauth` (slack_oauth.py). Everything
done to the fake is recorded (`calls`, `messages`, `reactions`, `uploaded_files`,
`downloads`, `ephemerals`, `response_posts`).
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_events import SignedRequest, SlackEvents
from tests.fakes.slack_oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.fakes.slack_socket import SocketModeServer
from tests.fakes.slack_state import (
    DEFAULT_APP_SCOPES,
    DEFAULT_BOT_SCOPES,
    ApiCall,
    ByteSource,
    Channel,
    Download,
    Ephemeral,
    Fault,
    Grant,
    Message,
    ResponseUrlPost,
    SlackFile,
    SlackState,
    StaticBytes,
    Team,
    TokenKind,
    UploadedFile,
    User,
    file_type,
)
from tests.fakes.slack_views import PublishedView, Views, block_action, home_opened
from tests.fakes.slack_web import MethodSpec, WebApi

# The seeded workspace.
TEAM_ID = "T0TEAM0001"
APP_ID = "A0APP00001"
BOT_ID = "B0BOT00001"
BOT_USER_ID = "U0BOT00001"
ALICE = "U0ALICE001"  # a member
BOB = "U0BOB00001"  # a member
DANA = "U0DANA0001"  # workspace admin
OLGA = "U0OLGA0001"  # primary owner
GENERAL = "C0GENERAL1"  # public, everyone and the bot
RANDOM = "C0RANDOM01"  # public, people only: the bot is not a member
SECRET = "C0SECRET01"  # private, Alice and the bot
HIDDEN = "C0HIDDEN01"  # private, Alice only: invisible to the bot
BOT_TOKEN = f"xoxb-1-{TEAM_ID}-fakebottoken"
APP_TOKEN = f"xapp-1-{APP_ID}-1-fakeapptoken"
SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"

T = TypeVar("T")


@dataclass
class AppResponse:
    """How the app answered a request the fake sent it (HTTP mode)."""

    status: int | None  # None: no answer within FakeSlack.app_deadline
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.status is None


class FakeSlack:
    """The fake: one server, one seeded workspace, and the record of what was done to it.

    `ack_timeout`: how long a Socket Mode event may go unacknowledged before it is retried.
    `app_deadline`: how long `send_to_app` waits for the app's answer (Slack: 3 s).
    """

    def __init__(
        self,
        *,
        signing_secret: str = SIGNING_SECRET,
        ack_timeout: float = 3.0,
        app_deadline: float = 3.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.signing_secret = signing_secret
        self.app_deadline = app_deadline  # how long Slack waits for the app's HTTP answer
        self.state = SlackState()
        self.socket = SocketModeServer(self.state, ack_timeout=ack_timeout)
        self.web = WebApi(self.state, self.socket.issue_url)
        self.oauth = OAuthServer(self.state, installing_team=TEAM_ID, installer=OLGA)
        self.web.open_methods["oauth.v2.access"] = self.oauth.oauth_v2_access
        self.views = Views(self.state)
        self.web.methods["views.publish"] = MethodSpec(self.views.views_publish)
        self._seed()
        self.events = SlackEvents(self.state, TEAM_ID, signing_secret)
        self.app_responses: list[AppResponse] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def _seed(self) -> None:
        team = self.add_team(TEAM_ID, "Acme", "acme", bot_user_id=BOT_USER_ID, bot_id=BOT_ID)
        people = [
            User(ALICE, TEAM_ID, "alice", "Alice Archer"),
            User(BOB, TEAM_ID, "bob", "Bob Baker"),
            User(DANA, TEAM_ID, "dana", "Dana Admin", is_admin=True),
            User(
                OLGA,
                TEAM_ID,
                "olga",
                "Olga Owner",
                is_admin=True,
                is_owner=True,
                is_primary_owner=True,
            ),
        ]
        for user in people:
            team.users[user.id] = user
        everyone = {u.id for u in people}
        self.add_channel("general", GENERAL, members={*everyone, BOT_USER_ID}, is_general=True)
        self.add_channel("random", RANDOM, members=everyone)
        self.add_channel("secret", SECRET, members={ALICE, BOT_USER_ID}, is_private=True)
        self.add_channel("hidden", HIDDEN, members={ALICE}, is_private=True)
        self.add_token(BOT_TOKEN)
        self.add_token(APP_TOKEN, scopes=DEFAULT_APP_SCOPES)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._touch])
        app.add_routes(self.web.routes() + self.socket.routes() + self.oauth.routes())
        # A handler still running at close (a delayed call of a killed bot) is cancelled soon.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.state.base_url = f"http://{self.host}:{port}/"

    @web.middleware
    async def _touch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            self.state.touch()

    async def until(self, condition: Callable[[], T]) -> T:
        """Wait for the code under test: condition()'s first truthy value, re-checked each
        time the fake handles a request or an ack; TimeoutError after 5 s.

            [reply] = await slack.until(lambda: slack.bot_messages(GENERAL, thread_ts=ts))
        """
        return await self.state.until(condition)

    async def close(self) -> None:
        await self.socket.close()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL / AsyncWebClient(base_url=...) should be."""
        return f"{self.state.base_url}api/"

    @property
    def bot_token(self) -> str:
        return BOT_TOKEN

    @property
    def app_token(self) -> str:
        return APP_TOKEN

    @property
    def client_id(self) -> str:
        """The app's OAuth client id (SLACK_CLIENT_ID); the secret is `client_secret`."""
        return CLIENT_ID

    @property
    def client_secret(self) -> str:
        return CLIENT_SECRET

    @property
    def team(self) -> Team:
        return self.state.team(TEAM_ID)

    def web_client(
        self,
        token: str | None = BOT_TOKEN,
        *,
        retry_handlers: list[AsyncRetryHandler] | None = None,
    ) -> AsyncWebClient:
        """A real slack_sdk client pointed at the fake (it opens a session per call)."""
        kwargs: dict[str, Any] = {"token": token, "base_url": self.api_url}
        if retry_handlers is not None:
            kwargs["retry_handlers"] = retry_handlers
        return AsyncWebClient(**kwargs)

    # ---------------------------------------------------------------- the world

    def add_team(
        self,
        team_id: str,
        name: str,
        domain: str,
        *,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
        app_id: str = APP_ID,
    ) -> Team:
        """A workspace with the app installed: another one makes a multi-workspace test.

        Give it people, channels and a token with add_user / add_channel / add_token, and
        build its events with `events_for(team_id)`.
        """
        bot_user_id = bot_user_id or self.state.new_id("U")
        bot_id = bot_id or self.state.new_id("B")
        team = Team(team_id, name, domain, bot_user_id, bot_id, app_id)
        team.users[bot_user_id] = User(
            bot_user_id, team_id, "threadscribe", "threadscribe", is_bot=True, bot_id=bot_id
        )
        self.state.teams[team_id] = team
        return team

    def add_user(self, user_id: str, name: str, *, team_id: str = TEAM_ID, **flags: Any) -> User:
        """flags: is_admin, is_owner, is_primary_owner, is_bot, deleted, real_name, tz."""
        user = User(user_id, team_id, name, **flags)
        self.state.team(team_id).users[user_id] = user
        return user

    def add_channel(
        self,
        name: str,
        channel_id: str | None = None,
        *,
        members: Iterable[str] = (),
        team_id: str = TEAM_ID,
        **flags: Any,
    ) -> Channel:
        """flags: is_private, is_im, is_archived, is_general."""
        ch = Channel(
            channel_id or self.state.new_id("C"), team_id, name, members=set(members), **flags
        )
        self.state.team(team_id).channels[ch.id] = ch
        return ch

    def add_token(
        self,
        token: str | None = None,
        *,
        scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        team_id: str = TEAM_ID,
        user_id: str | None = None,
    ) -> str:
        """Grant a token; the kind follows the prefix (xoxb- bot, xoxp- user, xapp- app)."""
        token = token or f"xoxb-1-{team_id}-{self.state.new_id('')}"
        kind = TokenKind.of(token)
        if kind is None:
            raise ValueError(f"not a Slack token prefix: {token[:5]}")
        if kind is TokenKind.BOT:
            user_id = self.state.team(team_id).bot_user_id
        elif kind is TokenKind.USER and user_id is None:
            raise ValueError("a user token (xoxp-) needs the user_id it acts for")
        self.state.grants[token] = Grant(token, kind, team_id, user_id, set(scopes))
        return token

    def set_scopes(self, token: str, scopes: Iterable[str]) -> None:
        self.state.grants[token].scopes = set(scopes)

    def revoke_token(self, token: str) -> None:
        self.state.grants[token].revoked = True

    def add_file(
        self,
        name: str,
        data: bytes | ByteSource,
        *,
        file_id: str | None = None,
        user: str = ALICE,
        mimetype: str | None = None,
        title: str | None = None,
        team_id: str = TEAM_ID,
        subtype: str | None = None,
        duration_ms: int | None = None,
    ) -> SlackFile:
        """A file someone uploaded; share it with `events.file_share(...)`.

        `data` may be a ByteSource (GeneratedBytes(1 << 30), ChunkedSource(size, factory))
        so that a huge file is streamed from a generator and never held in memory.
        """
        guessed, filetype, pretty = file_type(name)
        file = SlackFile(
            id=file_id or self.state.new_id("F"),
            team_id=team_id,
            user=user,
            name=name,
            title=title or name,
            mimetype=mimetype or guessed,
            filetype=filetype,
            pretty_type=pretty,
            source=StaticBytes(data) if isinstance(data, bytes) else data,
            created=int(time.time()),
            subtype=subtype,
            duration_ms=duration_ms,
        )
        self.state.files[file.id] = file
        return file

    def events_for(self, team_id: str) -> SlackEvents:
        """Event builders for another workspace (`events` is the seeded one's)."""
        return SlackEvents(self.state, team_id, self.signing_secret)

    def file_dict(self, file: SlackFile) -> dict[str, Any]:
        """The file object as Slack shows it in events and files.info."""
        return self.state.file_dict(file)

    # ---------------------------------------------------------------- faults

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429, Retry-After and `ratelimited`."""
        self.state.faults.append(Fault(method, times, 429, "ratelimited", retry_after))

    def slow(self, method: str, seconds: float | None) -> None:
        """Calls of `method` wait `seconds` before they are handled (None: no longer)."""
        if seconds is None:
            self.state.delays.pop(method, None)
        else:
            self.state.delays[method] = seconds

    def fail(self, method: str, error: str, *, times: int = 1, status: int = 200) -> None:
        """The next `times` calls of `method` fail with `error` (and HTTP `status`)."""
        self.state.faults.append(Fault(method, times, status, error))

    def stall_download(self, file: SlackFile, after: int) -> None:
        """Downloads of `file` send their headers and `after` bytes, then nothing more."""
        self.state.stalls[file.id] = after

    def edge_failure(
        self,
        method: str,
        status: int,
        body: str,
        *,
        content_type: str = "text/plain",
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` get an answer that is not Slack's JSON: its
        edge's `text/plain` 503 while overloaded, a proxy's HTML 502."""
        self.state.faults.append(Fault(method, times, status, raw=(content_type, body)))

    # ---------------------------------------------------------------- the record

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self.state.calls if method is None or c.method == method]

    def messages(
        self, channel: str, thread_ts: str | None = None, *, user: str | None = None
    ) -> list[Message]:
        """Messages in `channel`, oldest first; with `thread_ts`, that thread's replies only."""
        found = [m for m in self.state.find_channel(channel).messages if not m.deleted]
        if thread_ts is not None:
            found = [m for m in found if m.is_reply and m.thread_ts == thread_ts]
        return [m for m in found if user is None or m.user == user]

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        ch = self.state.find_channel(channel)
        return self.messages(channel, thread_ts, user=self.state.team(ch.team_id).bot_user_id)

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        """name -> users who reacted, on one message."""
        msg = self.state.message(self.state.find_channel(channel), ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        return {name: list(users) for name, users in msg.reactions.items()}

    def uploaded_files(self) -> list[UploadedFile]:
        return list(self.state.uploads)

    def downloads(self, file_id: str | None = None) -> list[Download]:
        return [d for d in self.state.downloads if file_id is None or d.file_id == file_id]

    def ephemerals(self, channel: str | None = None) -> list[Ephemeral]:
        return [e for e in self.state.ephemerals if channel is None or e.channel == channel]

    def response_posts(self) -> list[ResponseUrlPost]:
        return list(self.state.response_posts)

    def home(self, user: str) -> PublishedView | None:
        """The Home tab `user` sees (the view last published to them), None if none."""
        return self.views.home(user)

    # ---------------------------------------------------------------- the Home tab

    def home_opened(self, user: str, *, team_id: str = TEAM_ID) -> dict[str, Any]:
        """The envelope of `app_home_opened`: `user` opens the app's Home tab."""
        return self.events_for(team_id).envelope(home_opened(self.state, team_id, user))

    def home_action(
        self,
        user: str,
        *,
        action_id: str,
        block_id: str,
        selected: dict[str, Any] | None = None,
        team_id: str = TEAM_ID,
        view_of: str | None = None,
    ) -> dict[str, Any]:
        """`user` clicks or picks in the Home tab published to `view_of` (default: theirs;
        another's is how a forged request is made): a `block_actions` payload."""
        published = self.views.home(view_of or user)
        if published is None:
            raise ValueError(f"nothing was published to {view_of or user}'s Home tab")
        return block_action(
            self.state,
            team_id,
            user,
            published,
            action_id=action_id,
            block_id=block_id,
            selected=selected,
        )

    # ---------------------------------------------------------------- HTTP mode

    async def send_to_app(self, url: str, request: SignedRequest) -> AppResponse:
        """POST a signed request to the app's request URL, as Slack does.

        An app that has not answered within `app_deadline` gets `AppResponse(status=None)`;
        Slack would then retry with `events.http_event(..., retry_num=1)`.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        try:
            async with self._session.post(
                url,
                data=io.BytesIO(request.body),  # aiohttp warns of large raw bytes
                headers=request.headers,
                timeout=aiohttp.ClientTimeout(total=self.app_deadline),
            ) as resp:
                answer = AppResponse(
                    resp.status, await resp.text(), dict(resp.headers), time.monotonic() - started
                )
        except TimeoutError:
            answer = AppResponse(None, "", {}, time.monotonic() - started)
        self.app_responses.append(answer)
        return answer


@pytest.fixture(name="fake_slack")
async def fake_slack_fixture() -> AsyncIterator[FakeSlack]:
    """`fake_slack`: a started FakeSlack with the seeded workspace, closed after the test
    (a plugin of tests/conftest.py, so every test may ask for it)."""
    async with FakeSlack() as fake:
        yield fake
