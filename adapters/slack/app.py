"""Bolt wiring: the AsyncApp and its listeners, HTTP mode's routes, Socket Mode's handler.

Both modes end in `AsyncApp.async_dispatch`, with `process_before_response=True` so that
the acknowledgement (the HTTP answer, or the envelope ack) goes out only after the
listener has put the job in the store. Requests are let in through a `Gate`: none before
`open()`, none after `close()`, and `close()` waits for those already inside. HTTP mode
answers 503 while the gate is shut and Socket Mode leaves the envelope unacknowledged;
either way Slack delivers it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.actions import Actions
from adapters.slack.blocks import REDO_ACTION, RENAME_ACTION, RENAME_VIEW
from adapters.slack.commands import COMMAND, Commands
from adapters.slack.controls import FORGET_SHORTCUT, SETTINGS_COMMAND, SlackControls
from adapters.slack.events import Events
from adapters.slack.home import OPT_IN_ACTION, OPT_OUT_ACTION, POLICY_ACTION, Home
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SHORTCUT = "transcribe"  # the message shortcut's callback_id (slack-manifest.yml)


class _DeliberateClient(logging.Filter):
    """AsyncApp reads SLACK_BOT_TOKEN from the environment by itself, then warns that the
    client we pass wins over it: true, and meant, so the warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


class _NotInstalled(logging.Filter):
    """Bolt's line for an event from a workspace without an install names no fix."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "the AuthorizeResult (returned value from authorize) for it was not found" in (
            record.getMessage()
        ):
            record.msg, record.args = texts.EVENT_NOT_INSTALLED, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _QuietReconnects(logging.Filter):
    """slack_sdk logs each failed Socket Mode reconnect with a traceback and the socket's
    URL, whose ticket admits a connection: while Slack is away that is one line, a warning
    (readiness tells the outage), with the error and without the ticket."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Failed to connect"):
            record.msg, record.args = _TICKET.sub(r"\1…", message), None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_TICKET = re.compile(r"(ticket=)[^&'\s]+")
# Bolt's own lines (the logger AsyncApp is given), under a name of their own rather than
# this module's: they are Bolt's words, and a name apart lets them be filtered as such.
BOLT_LOG = logging.getLogger("threadscribe.slack.bolt")
BOLT_LOG.addFilter(_DeliberateClient())
BOLT_LOG.addFilter(_QuietReconnects())
# Bolt's authorization middleware logs under a name of its own.
logging.getLogger("slack_bolt.AsyncMultiTeamsAuthorization").addFilter(_NotInstalled())


class Gate:
    """Lets requests in while open, and counts those still inside."""

    def __init__(self) -> None:
        self.is_open = False
        self._inside = 0
        self._empty = asyncio.Event()
        self._empty.set()

    def open(self) -> None:
        self.is_open = True

    @contextlib.asynccontextmanager
    async def inside(self) -> AsyncIterator[None]:
        self._inside += 1
        self._empty.clear()
        try:
            yield
        finally:
            self._inside -= 1
            if self._inside == 0:
                self._empty.set()

    async def close(self, grace: float) -> None:
        """Shut, then wait (at most `grace` seconds) for the requests already inside."""
        self.is_open = False
        try:
            async with asyncio.timeout(grace):
                await self._empty.wait()
        except TimeoutError:
            log.warning("%d Slack requests still running at shutdown", self._inside)


class _SocketHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, behind the gate."""

    def __init__(self, app: AsyncApp, app_token: str, client: AsyncWebClient, gate: Gate) -> None:
        super().__init__(app, app_token, web_client=client)
        self._gate = gate

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        if not self._gate.is_open:
            return  # unacknowledged: Slack sends it again, to us or to another replica
        async with self._gate.inside():
            await super().handle(client, req)


class SlackBolt:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        signing_secret: str,
        triggers: Events,
        commands: Commands,
        actions: Actions,
        controls: SlackControls,
        home: Home,
        tasks: TaskSet,
        oauth: AsyncOAuthSettings | None = None,
    ) -> None:
        self.gate = Gate()
        # HTTP mode only (Socket Mode has no signing secret and serves no events route).
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._socket: _SocketHandler | None = None
        self.app = AsyncApp(
            name="threadscribe",
            client=client,
            signing_secret=signing_secret,
            process_before_response=True,
            oauth_settings=oauth,
            logger=BOLT_LOG,
            # Every HTTP request reaches Bolt through `handle_events`, which has checked
            # its signature already (before anything of it is parsed or logged); Socket
            # Mode's are not signed. Checking it twice only costs the acknowledgement.
            request_verification_enabled=False,
        )
        self._register(triggers, commands, actions)
        self._register_controls(controls, home, tasks)

    def _register(self, triggers: Events, commands: Commands, actions: Actions) -> None:
        app = self.app
        app.event("message")(triggers.message)
        app.event("app_mention")(triggers.mention)
        app.command(COMMAND)(commands.transcribe)
        app.action(RENAME_ACTION)(actions.rename_clicked)
        app.action(REDO_ACTION)(actions.redo_chosen)
        app.view(RENAME_VIEW)(actions.rename_submitted)

        @app.shortcut(SHORTCUT)
        async def shortcut(
            ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await triggers.shortcut(body, client, respond)
            await ack()

        if app.installation_store is not None:
            app.enable_token_revocation_listeners()
        else:

            @app.event("app_uninstalled")
            @app.event("tokens_revoked")
            async def revoked(event: Mapping[str, Any], context: AsyncBoltContext) -> None:
                log.warning("Slack says the app's tokens are gone: %s", event.get("type"))

    def _register_controls(self, controls: SlackControls, home: Home, tasks: TaskSet) -> None:
        """`/transcribe-settings`, the "Forget transcript" shortcut and the Home tab."""
        app = self.app

        @app.command(SETTINGS_COMMAND)
        async def settings(ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient) -> None:
            await ack(text=await controls.settings(body, client), response_type="ephemeral")

        @app.shortcut(FORGET_SHORTCUT)
        async def forget(
            ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            # Forgotten (the jobs marked) before Slack hears back; told after, in the back.
            answer = await controls.forget(body, client)
            await ack()
            tasks.spawn(respond(text=answer, response_type="ephemeral"), "forget")

        @app.event("app_home_opened")
        async def home_opened(
            event: Mapping[str, Any], context: AsyncBoltContext, client: AsyncWebClient
        ) -> None:
            await home.opened(event, str(context.team_id or ""), client)

        async def home_action(
            ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient
        ) -> None:
            await ack()
            await home.action(body, client)

        for action in (POLICY_ACTION, OPT_OUT_ACTION, OPT_IN_ACTION):
            app.action(action)(home_action)

    # -- HTTP mode -----------------------------------------------------------------------

    def routes(self, *, events: bool) -> list[web.RouteDef]:
        routes = [web.post(EVENTS_PATH, self.handle_events)] if events else []
        flow = self.app.oauth_flow
        if flow is not None:
            routes += [
                web.get(flow.install_path, self._oauth(flow.handle_installation)),
                web.get(flow.redirect_uri_path, self._oauth(flow.handle_callback)),
            ]
        return routes

    async def handle_events(self, request: web.Request) -> web.StreamResponse:
        if not self.gate.is_open:
            return web.Response(status=503, text="threadscribe is starting or stopping")
        refused = await self._refuse_unsigned(request)
        if refused is not None:
            return refused
        async with self.gate.inside():
            try:
                bolt_request = await to_bolt_request(request)
            except ValueError:  # signed, but not the JSON or form body Slack sends
                return web.json_response({"error": "the body cannot be read"}, status=400)
            return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def _refuse_unsigned(self, request: web.Request) -> web.Response | None:
        """The answer to a request that is not Slack's, before anything of it is logged or
        parsed (Bolt would log a bad request's whole body): 401 for a missing, stale or
        wrong signature, 400 for a body that is not UTF-8; None to let it in."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        body = await request.read()
        if not timestamp.isdigit() or not signature or self._verifier is None:
            return web.json_response({"error": "unsigned request"}, status=401)
        try:
            text = body.decode("utf-8")  # what Slack signs is text; slack_sdk decodes it
        except UnicodeDecodeError:
            return web.json_response({"error": "the body is not UTF-8"}, status=400)
        if not self._verifier.is_valid(text, timestamp, signature):
            log.info("refused a request with a bad or stale Slack signature")
            return web.json_response({"error": "invalid signature"}, status=401)
        return None

    @staticmethod
    def _oauth(step: Callable[[Any], Any]) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await to_aiohttp_response(await step(await to_bolt_request(request)))

        return handle

    # -- Socket Mode ---------------------------------------------------------------------

    async def connect(self, app_token: str, client: AsyncWebClient) -> None:
        self._socket = _SocketHandler(self.app, app_token, client, self.gate)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def connected(self) -> bool | None:
        """Socket Mode's connection is up (None in HTTP mode: Slack calls in)."""
        if self._socket is None:
            return None
        return await self._socket.client.is_connected()

    async def close(self, grace: float) -> None:
        await self.gate.close(grace)
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
