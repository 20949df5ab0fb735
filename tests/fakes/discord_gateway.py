"""The gateway half of the Discord fake: a websocket speaking Discord's gateway protocol.

HELLO -> IDENTIFY (token and intents checked, closing 4004 / 4013 / 4014 as Discord does)
-> READY -> GUILD_CREATE; heartbeats ACKed; sequence numbers; RESUME replays what a
session missed and ends with RESUMED. Transport compression (`compress=zlib-stream`,
which discord.py asks for) is honoured. A test can force a disconnect (op 7 RECONNECT, a
close frame, or a dropped TCP connection) and, with `outage()`, hold the client out while
events pile up to be replayed on RESUME.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.discord_model import (
    ALL_INTENTS,
    JSON,
    PRIVILEGED_INTENTS,
    Intent,
    application_flags,
    guild_payload,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

log = logging.getLogger(__name__)

# How long the fake's own waits (a session, a RESUME, a recorded call) may take before
# they fail the test with a clear error, rather than running into the test timeout.
WAIT_LIMIT = 10.0


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Close:
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    INVALID_SHARD = 4010
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


class _Encoder(Protocol):
    def encode(self, text: str) -> bytes: ...


class _ZlibStream:
    """One zlib context for the whole connection; every message ends in a sync flush
    (00 00 ff ff), which is how the client knows a message is complete."""

    def __init__(self) -> None:
        self._context = zlib.compressobj()

    def encode(self, text: str) -> bytes:
        return self._context.compress(text.encode()) + self._context.flush(zlib.Z_SYNC_FLUSH)


class _ZstdStream:
    """One zstd stream per connection, flushed at the end of every message. Used only if
    the interpreter has a zstd module, which is also the only case discord.py asks for it."""

    def __init__(self) -> None:
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
        except ImportError:
            import zstandard  # type: ignore[import-not-found]

            stream = zstandard.ZstdCompressor().compressobj()
            self._encode: Callable[[bytes], bytes] = lambda data: (
                stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            )
        else:
            compressor = zstd.ZstdCompressor()
            self._encode = lambda data: compressor.compress(
                data, mode=zstd.ZstdCompressor.FLUSH_BLOCK
            )

    def encode(self, text: str) -> bytes:
        return self._encode(text.encode())


@dataclass
class Connection:
    """One websocket connection (a session may see several over its life)."""

    ws: web.WebSocketResponse
    request: web.Request
    path: str
    query: dict[str, str]
    encoder: _Encoder | None
    received: list[JSON] = field(default_factory=list)
    heartbeats: int = 0
    close_code: int | None = None  # the code the fake closed with, else the client's
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def compress(self) -> str | None:
        return self.query.get("compress")

    async def close(self, code: int, reason: str) -> None:
        self.close_code = code
        await self.ws.close(code=code, message=reason.encode())

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload)
        # Compression contexts are stateful: frames must leave in the order encoded.
        async with self._send_lock:
            if self.ws.closed:
                return
            try:
                if self.encoder is None:
                    await self.ws.send_str(text)
                else:
                    await self.ws.send_bytes(self.encoder.encode(text))
            except ConnectionError:
                log.debug("gateway send on a closing connection dropped")


@dataclass(frozen=True)
class Dispatched:
    seq: int
    event: str
    data: JSON


@dataclass
class Session:
    id: str
    intents: Intent
    identify: JSON
    shard: tuple[int, int] | None
    log: list[Dispatched] = field(default_factory=list)
    seq: int = 0
    connection: Connection | None = None
    invalidated: bool = False
    resumes: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def has(self, intent: Intent) -> bool:
        return bool(self.intents & intent)

    async def dispatch(self, event: str, data: JSON) -> Dispatched:
        async with self.lock:
            return await self._dispatch_locked(event, data)

    async def _dispatch_locked(self, event: str, data: JSON) -> Dispatched:
        self.seq += 1
        item = Dispatched(self.seq, event, data)
        self.log.append(item)
        if self.connection is not None:
            await self.connection.send({"op": Op.DISPATCH, "s": item.seq, "t": event, "d": data})
        return item


Transform = Callable[[Session, JSON], JSON | None]
Redeliver = Callable[[Session], Iterable[tuple[str, JSON]]]


class Gateway:
    def __init__(self, fake: FakeDiscord, *, heartbeat_interval: float) -> None:
        self._fake = fake
        self.heartbeat_interval = heartbeat_interval
        self.sessions: list[Session] = []
        self.connections: list[Connection] = []
        self._session_ids = itertools.count(1)
        self._resume_gate = asyncio.Event()
        self._resume_gate.set()
        self._changed = asyncio.Condition()
        self._redeliver: Redeliver | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway/", self._handle)
        app.router.add_get("/resume/", self._handle)

    @property
    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions if not s.invalidated]

    def session(self) -> Session:
        """The one live session (what a single-process bot has)."""
        live = self.live_sessions
        if len(live) != 1:
            raise RuntimeError(f"expected one live gateway session, found {len(live)}")
        return live[0]

    async def wait_for_session(self) -> Session:
        async with asyncio.timeout(WAIT_LIMIT), self._changed:
            await self._changed.wait_for(lambda: any(s.connection for s in self.live_sessions))
        return self.session()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- dispatching -------------------------------------------------------------------

    async def dispatch(
        self,
        event: str,
        data: JSON,
        *,
        intent: Intent | None = None,
        transform: Transform | None = None,
    ) -> list[Dispatched]:
        """Send one event to every live session that asked for `intent`. `transform` may
        reshape the data per session (or return None to skip it)."""
        sent = []
        for session in self.live_sessions:
            if intent is not None and not session.has(intent):
                continue
            payload = data if transform is None else transform(session, data)
            if payload is not None:
                sent.append(await session.dispatch(event, payload))
        return sent

    # -- forcing disconnects -----------------------------------------------------------

    async def disconnect(
        self,
        how: Literal["reconnect", "close", "drop"] = "reconnect",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
    ) -> Session:
        """Cut the live session's connection; events from now on wait in its log."""
        session = self.session()
        await self._cut(session, how, close_code)
        return session

    async def invalidate(
        self,
        how: Literal["reconnect", "close", "drop"] = "close",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
    ) -> Session:
        """End the live session and cut its connection: the client's RESUME will get
        op 9 INVALID_SESSION (d=false) and it must IDENTIFY afresh, with no replay."""
        session = self.session()
        session.invalidated = True
        await self._cut(session, how, close_code)
        return session

    async def _cut(
        self, session: Session, how: Literal["reconnect", "close", "drop"], close_code: int
    ) -> None:
        async with session.lock:
            connection, session.connection = session.connection, None
        if connection is None:
            return
        if how == "reconnect":
            await connection.send({"op": Op.RECONNECT, "d": None, "s": None, "t": None})
        elif how == "close":
            await connection.close(close_code, "fake: forced disconnect")
        else:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()

    @contextlib.asynccontextmanager
    async def outage(
        self,
        how: Literal["reconnect", "close", "drop"] = "reconnect",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
        redeliver: Redeliver | None = None,
    ) -> AsyncIterator[Session]:
        """Disconnect the client and keep its RESUME waiting until the block ends; events
        dispatched inside are missed and then replayed. On exit, waits for RESUMED."""
        self._resume_gate.clear()
        self._redeliver = redeliver
        try:
            session = await self.disconnect(how, close_code=close_code)
            resumes = session.resumes
            yield session
        except BaseException:
            self._redeliver = None
            raise
        finally:
            self._resume_gate.set()
        async with asyncio.timeout(WAIT_LIMIT), self._changed:
            await self._changed.wait_for(lambda: session.resumes > resumes)
        self._redeliver = None

    async def close_all(self) -> None:
        for connection in self.connections:
            if not connection.ws.closed:
                await connection.close(WSCloseCode.GOING_AWAY, "fake: shutting down")

    # -- the websocket ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        connection = Connection(ws, request, request.path, query, encoder=None)
        self.connections.append(connection)
        try:
            await self._serve(connection)
        finally:
            if connection.close_code is None:
                connection.close_code = ws.close_code
            await self._on_closed(connection)
        return ws

    async def _serve(self, connection: Connection) -> None:
        ws, query = connection.ws, connection.query
        if query.get("v") not in ("9", "10"):
            await connection.close(Close.INVALID_API_VERSION, "Invalid API version.")
            return
        if query.get("encoding", "json") != "json":
            await connection.close(Close.DECODE_ERROR, "fake: encoding=json only")
            return
        compress = query.get("compress")
        if compress == "zlib-stream":
            connection.encoder = _ZlibStream()
        elif compress == "zstd-stream":
            connection.encoder = _ZstdStream()
        elif compress is not None:
            await connection.close(Close.DECODE_ERROR, "Unknown compression.")
            return
        hello = {"heartbeat_interval": int(self.heartbeat_interval * 1000)}
        await connection.send({"op": Op.HELLO, "d": hello, "s": None, "t": None})

        session: Session | None = None
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                await connection.close(Close.DECODE_ERROR, "Decode error.")
                return
            try:
                payload = json.loads(msg.data)
                op = payload["op"]
            except (ValueError, KeyError, TypeError):
                await connection.close(Close.DECODE_ERROR, "Decode error.")
                return
            connection.received.append(payload)
            if connection.close_code is not None:
                return
            if op == Op.HEARTBEAT:
                connection.heartbeats += 1
                await connection.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            elif op == Op.IDENTIFY:
                if session is not None:
                    await connection.close(Close.ALREADY_AUTHENTICATED, "Already authed.")
                    return
                session = await self._identify(connection, payload.get("d"))
            elif op == Op.RESUME:
                if session is not None:
                    await connection.close(Close.ALREADY_AUTHENTICATED, "Already authed.")
                    return
                # None after op 9: the client may IDENTIFY here or reconnect.
                session = await self._resume(connection, payload.get("d"))
            elif session is None:
                await connection.close(Close.NOT_AUTHENTICATED, "Not authenticated.")
                return
            elif op == Op.REQUEST_GUILD_MEMBERS:
                await self._members_chunk(session, payload.get("d") or {})
            elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE):
                pass  # recorded in connection.received; nothing to answer
            else:
                await connection.close(Close.UNKNOWN_OPCODE, "Unknown opcode.")
            if connection.close_code is not None:
                return

    async def _on_closed(self, connection: Connection) -> None:
        for session in self.sessions:
            if session.connection is connection:
                session.connection = None
                # Closing with 1000/1001 ends the session; any other way keeps it resumable.
                if connection.close_code in (1000, 1001):
                    session.invalidated = True
        await self._notify()

    async def _identify(self, connection: Connection, d: Any) -> Session | None:
        fake = self._fake
        if not isinstance(d, dict) or not isinstance(d.get("token"), str):
            await connection.close(Close.DECODE_ERROR, "Decode error.")
            return None
        if d["token"].removeprefix("Bot ") != fake.token:
            await connection.close(Close.AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        intents = d.get("intents")
        if not isinstance(intents, int) or intents & ~int(ALL_INTENTS):
            await connection.close(Close.INVALID_INTENTS, "Invalid intent(s).")
            return None
        if intents & int(PRIVILEGED_INTENTS) & ~int(fake.privileged_intents):
            await connection.close(Close.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None
        shard = d.get("shard")
        if shard is not None and not (
            isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]
        ):
            await connection.close(Close.INVALID_SHARD, "Invalid shard.")
            return None

        n = next(self._session_ids)
        session = Session(
            id=hashlib.sha256(f"fake-session-{n}".encode()).hexdigest()[:32],
            intents=Intent(intents),
            identify=d,
            shard=None if shard is None else (shard[0], shard[1]),
        )
        world = fake.world
        in_shard = shard is None or (world.guild.id >> 22) % shard[1] == shard[0]
        async with session.lock:
            session.connection = connection
            self.sessions.append(session)
            ready: JSON = {
                "v": int(connection.query["v"]),
                "user": fake.bot_user_payload(),
                "guilds": [{"id": str(world.guild.id), "unavailable": True}] if in_shard else [],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": fake.resume_gateway_url,
                "application": {
                    "id": str(world.application_id),
                    "flags": application_flags(fake.privileged_intents),
                },
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["fake"],
                "user_settings": {},
                "auth": {},
                "_trace": ['["fake-gateway",{"micros":1}]'],
            }
            if shard is not None:
                ready["shard"] = shard
            await session._dispatch_locked("READY", ready)
            if in_shard and session.has(Intent.GUILDS):
                await session._dispatch_locked("GUILD_CREATE", self._guild_create(session))
        await self._notify()
        return session

    def _guild_create(self, session: Session) -> JSON:
        world = self._fake.world
        me = world.guild.member(world.bot.id)
        assert me is not None, "the bot must be a member of its guild"
        # Without GUILD_MEMBERS, Discord sends only the bot's own member (and voice users).
        members = world.guild.members if session.has(Intent.GUILD_MEMBERS) else [me]
        return guild_payload(world, members=members, joined_at=me.joined_at)

    async def _resume(self, connection: Connection, d: Any) -> Session | None:
        if not isinstance(d, dict):
            await connection.close(Close.DECODE_ERROR, "Decode error.")
            return None
        await self._resume_gate.wait()
        if str(d.get("token", "")).removeprefix("Bot ") != self._fake.token:
            await connection.close(Close.AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        session = next((s for s in self.live_sessions if s.id == d.get("session_id")), None)
        if session is None:
            await connection.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        seq = d.get("seq") or 0
        if not isinstance(seq, int) or seq > session.seq:
            await connection.close(Close.INVALID_SEQ, "Invalid seq.")
            return None
        async with session.lock:
            if session.connection is not None:
                # The old connection lost the race; Discord drops it.
                await session.connection.close(Close.UNKNOWN_ERROR, "Session resumed elsewhere.")
            session.connection = connection
            for item in session.log:
                if item.seq > seq:
                    await connection.send(
                        {"op": Op.DISPATCH, "s": item.seq, "t": item.event, "d": item.data}
                    )
            if self._redeliver is not None:
                for event, data in self._redeliver(session):
                    await session._dispatch_locked(event, data)
            await session._dispatch_locked("RESUMED", {"_trace": ['["fake-gateway"]']})
            session.resumes += 1
        await self._notify()
        return session

    async def _members_chunk(self, session: Session, d: JSON) -> None:
        guild = self._fake.world.guild
        members = guild.members
        if not session.has(Intent.GUILD_MEMBERS):
            members = [m for m in members if m.user.id == self._fake.world.bot.id]
        user_ids = d.get("user_ids")
        if user_ids is not None:
            wanted = {int(u) for u in ([user_ids] if isinstance(user_ids, str | int) else user_ids)}
            members = [m for m in guild.members if m.user.id in wanted]
        elif d.get("query"):
            members = [m for m in members if m.user.username.startswith(str(d["query"]))]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
