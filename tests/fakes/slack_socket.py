"""Slack's side of Socket Mode.

`apps.connections.open` hands out a single-use `ws://` URL on the fake. A connection gets
`{"type": "hello"}` first, then envelopes; the app acknowledges each with
`{"envelope_id": ..., "payload"?: ...}`. An Events API envelope that is not acknowledged
within `ack_timeout` is delivered again, with a new envelope id, `retry_attempt` counting
up and `retry_reason` "timeout", as Slack does (up to `max_retries` times).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from tests.fakes.slack_state import JSON, WAIT, Grant, SlackState

log = logging.getLogger(__name__)

EVENTS_API = "events_api"
SLASH_COMMANDS = "slash_commands"
INTERACTIVE = "interactive"


@dataclass
class Ack:
    envelope_id: str
    payload: JSON | None
    connection: int
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class Envelope:
    """One attempt at delivering a Delivery."""

    envelope_id: str
    retry_attempt: int
    retry_reason: str
    delivery: Delivery = field(repr=False)
    sent_to: int | None = None  # connection number, once sent

    def to_dict(self) -> JSON:
        d = self.delivery
        message: JSON = {
            "envelope_id": self.envelope_id,
            "payload": d.payload,
            "type": d.type,
            "accepts_response_payload": d.accepts_response_payload,
        }
        if d.type == EVENTS_API:
            message["retry_attempt"] = self.retry_attempt
            message["retry_reason"] = self.retry_reason
        return message


@dataclass
class Delivery:
    """One event, command or interaction, and every attempt made to deliver it."""

    type: str
    payload: JSON
    accepts_response_payload: bool
    envelopes: list[Envelope] = field(default_factory=list)
    ack: Ack | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def envelope_id(self) -> str:
        """The first attempt's envelope id."""
        return self.envelopes[0].envelope_id

    async def acknowledged(self) -> Ack:
        """The first ack for any attempt; TimeoutError if none comes within WAIT."""
        async with asyncio.timeout(WAIT):
            await self.acked.wait()
        assert self.ack is not None
        return self.ack


@dataclass
class Connection:
    number: int
    app_id: str
    ws: web.WebSocketResponse = field(repr=False)
    ready: bool = False  # hello sent and the backlog flushed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def send(self, message: JSON) -> None:
        async with self.lock:
            await self.ws.send_str(json.dumps(message))


class SocketModeServer:
    def __init__(
        self, state: SlackState, *, ack_timeout: float = 3.0, max_retries: int = 3
    ) -> None:
        self.state = state
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.deliveries: list[Delivery] = []
        self.acks: list[Ack] = []
        self.sent: list[Envelope] = []  # in the order sent
        self.stray_messages: list[str] = []  # text frames that were not acks
        self.connections: list[Connection] = []  # open now
        self.connection_count = 0  # ever opened
        self._tickets: dict[str, str] = {}  # ticket -> app id
        self._by_envelope: dict[str, Envelope] = {}
        self._backlog: list[Envelope] = []
        self._timers: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Condition()
        self._closing = False
        #: an outage: open sockets are dropped and new ones refused (503) until it ends
        self.down = False

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/link/", self.handle_ws)]

    def issue_url(self, grant: Grant) -> str:
        ticket = uuid.uuid4().hex
        app_id = self.state.team(grant.team_id).app_id
        self._tickets[ticket] = app_id
        ws_base = self.state.base_url.replace("http://", "ws://", 1)
        return f"{ws_base}link/?ticket={ticket}&app_id={app_id}"

    # ---------------------------------------------------------------- the socket

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        if self.down:  # the edge answers; the ticket is not spent
            return web.Response(status=503, text="upstream connect error")
        app_id = self._tickets.pop(request.query.get("ticket", ""), None)  # single use
        if app_id is None or self._closing:
            return web.Response(status=401, text="invalid or used ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connection_count += 1
        conn = Connection(self.connection_count, app_id, ws)
        self.connections.append(conn)
        try:
            await conn.send(
                {
                    "type": "hello",
                    "num_connections": len(self.connections),
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": app_id},
                }
            )
            while self._backlog:
                await self._send(conn, self._backlog.pop(0))
            # no await between the emptiness check and this: no envelope can slip past
            conn.ready = True
            async with self._connected:
                self._connected.notify_all()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
        finally:
            self.connections.remove(conn)
        return ws

    def _on_text(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            self.stray_messages.append(text)
            return
        ack = Ack(message["envelope_id"], message.get("payload"), conn.number)
        self.acks.append(ack)
        self.state.touch()
        envelope = self._by_envelope.get(ack.envelope_id)
        if envelope is not None and envelope.delivery.ack is None:
            envelope.delivery.ack = ack
            envelope.delivery.acked.set()

    async def _send(self, conn: Connection, envelope: Envelope) -> None:
        envelope.sent_to = conn.number
        self.sent.append(envelope)
        await conn.send(envelope.to_dict())
        if envelope.delivery.type == EVENTS_API and envelope.retry_attempt < self.max_retries:
            timer = asyncio.create_task(self._retry_unless_acked(envelope))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)

    async def _retry_unless_acked(self, envelope: Envelope) -> None:
        await asyncio.sleep(self.ack_timeout)
        delivery = envelope.delivery
        if delivery.ack is None and delivery.envelopes[-1] is envelope and not self._closing:
            await self.redeliver(delivery, reason="timeout")

    # ---------------------------------------------------------------- for tests

    async def deliver(
        self, type: str, payload: JSON, *, accepts_response_payload: bool = False
    ) -> Delivery:
        """Send to the newest connection, or queue until one is open."""
        delivery = Delivery(type, payload, accepts_response_payload)
        self.deliveries.append(delivery)
        await self._attempt(delivery, retry_attempt=0, reason="")
        return delivery

    async def deliver_event(self, envelope: JSON) -> Delivery:
        """An Events API envelope (type event_callback), as `SlackEvents` builds them."""
        return await self.deliver(EVENTS_API, envelope)

    async def deliver_command(self, form: dict[str, str]) -> Delivery:
        return await self.deliver(SLASH_COMMANDS, dict(form), accepts_response_payload=True)

    async def deliver_interactive(self, payload: JSON) -> Delivery:
        # Slack lets apps answer these in the ack only for some kinds (e.g. block_suggestion).
        answers = payload.get("type") in ("block_suggestion", "view_submission")
        return await self.deliver(INTERACTIVE, payload, accepts_response_payload=answers)

    async def redeliver(self, delivery: Delivery, *, reason: str = "timeout") -> Envelope:
        """Deliver again, as Slack retries: new envelope id, retry_attempt + 1."""
        return await self._attempt(delivery, len(delivery.envelopes), reason)

    async def _attempt(self, delivery: Delivery, retry_attempt: int, reason: str) -> Envelope:
        envelope = Envelope(str(uuid.uuid4()), retry_attempt, reason, delivery)
        delivery.envelopes.append(envelope)
        self._by_envelope[envelope.envelope_id] = envelope
        ready = [c for c in self.connections if c.ready]
        if ready:
            await self._send(ready[-1], envelope)
        else:
            self._backlog.append(envelope)
        return envelope

    async def wait_for_connections(self, count: int = 1) -> None:
        """Until `count` connections have been opened since the start and one is ready."""

        def enough() -> bool:
            ready = any(c.ready for c in self.connections)
            return ready and self.connection_count >= count

        async with asyncio.timeout(WAIT), self._connected:
            await self._connected.wait_for(enough)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every connected client to reconnect ("warning", "refresh_requested", ...)."""
        for conn in list(self.connections):
            await conn.send(
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": "applink-fake"},
                }
            )

    async def outage(self) -> None:
        """Drop every connection without a word and refuse new ones until `recover`."""
        self.down = True
        for conn in list(self.connections):
            await conn.ws.close(code=1011, message=b"internal error")

    def recover(self) -> None:
        self.down = False

    async def close(self) -> None:
        self._closing = True
        for timer in list(self._timers):
            timer.cancel()
        for timer in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"server shutdown")
