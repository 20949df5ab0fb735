"""A chat platform in a server of its own, for tests that run the bot as a real process.

Two halves, one on each side of a socket:

- `Recorder`, an aiohttp server the test runs in its own event loop (127.0.0.1, a free
  port). It plays the chat platform: it records posts (thread, text, key, files), edits
  and reactions; it deduplicates posts by `key` the way Discord's `enforce_nonce` does (a
  repeated key answers the first message's id and counts as a duplicate attempt, but the
  thread shows one message); it serves private files by id, streamed in chunks; and it
  keeps an inbox of intakes that the bot fetches and acknowledges only once
  `engine.intake()` has returned, so "persisted before acknowledged" is observable.
  A `Hold` stops chosen requests at a chosen point until released: a file stream after
  its first chunk; a post, an edit or an ack before it is recorded; or the *answer* to a
  post after it was recorded (the gap between the platform having the message and the
  bot knowing its id). A held request whose client dies (a killed bot) is dropped.

- `create(settings, store)`, the `THREADSCRIBE_ADAPTERS=tests.fakes.recorder:create` factory
  that `threadscribe run` loads: a `RecorderAdapter` that implements the ChatPlatform
  calls as HTTP calls to the recorder found at `THREADSCRIBE_RECORDER_URL`, and takes
  intakes from its inbox in a task that `start(engine)` begins and `stop()` ends.

tests/helpers/processes.py starts such a bot (`bot_env`, `BotProcess`).

    POST /post    {where, text, key, files: [{name, data (base64)}]} -> {id}
    POST /edit    {where, message_id, text}                        -> {} | 404
    POST /react   {where, reaction}                                -> {}
    GET  /files/{id}                                               -> the bytes, chunked
    GET  /inbox?after=N&wait=S   unacknowledged intakes after N    -> {intakes: [...]}
    POST /ack     {seq, job_id, created, refused}                  -> {}
"""

from __future__ import annotations

import asyncio
import base64
import enum
import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp
from aiohttp import web

from bot.chat import Attachment, Core, FileStream, Person, Post, Reaction, ThreadRef, Trigger
from bot.config import Settings
from bot.errors import FileUnavailable, PlatformError, PlatformRefused, PlatformUnavailable
from bot.jobs import FileSource, IntakeRecord, JobOptions, Platform
from bot.jobs.records import source_from_json

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
T = TypeVar("T")

URL_ENV: Final = "THREADSCRIBE_RECORDER_URL"
FACTORY: Final = "tests.fakes.recorder:create"
PID_HEADER: Final = "X-Recorder-Pid"
#: characters a message may hold (the adapter says so; the recorder refuses longer ones)
MESSAGE_LIMIT: Final = 3000


# == the platform side ==================================================================


@dataclass
class Message:
    """One message as the thread shows it."""

    id: str
    where: dict[str, Any]
    text: str
    key: str
    files: dict[str, bytes]
    pid: int | None  # the bot process that posted it
    edits: list[str] = field(default_factory=list)

    @property
    def current(self) -> str:
        return self.edits[-1] if self.edits else self.text

    @property
    def job_id(self) -> str:
        return self.key.rpartition(":")[0]


@dataclass(frozen=True)
class Attempt:
    """One POST /post: `duplicate` when its key had been posted before."""

    key: str
    message_id: str
    duplicate: bool
    pid: int | None


@dataclass
class Intake:
    seq: int
    record: dict[str, Any]
    offered: int = 0  # times handed to a bot
    acks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return bool(self.acks)


class Stage(enum.Enum):
    """Where a held request waits."""

    BEFORE = "before"  # nothing recorded yet: if the client dies, the request never was
    ANSWER = "answer"  # recorded, the answer not sent: the client never learns the result
    STREAM = "stream"  # a file's first chunk sent, the rest not


class Hold:
    """Stops matching requests (from process `pid`, if given; the first `limit` of them,
    if given) at its stage while armed. `reached` is set when one is caught; `release()`
    lets them all go on and disarms the hold."""

    def __init__(
        self,
        route: str,
        match: Callable[[str], bool],
        stage: Stage,
        *,
        pid: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.route = route
        self.match = match
        self.stage = stage
        self.pid = pid
        self.limit = limit
        self.caught: list[str] = []
        self.abandoned: list[str] = []  # caught, then the client went away
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    @property
    def armed(self) -> bool:
        full = self.limit is not None and len(self.caught) >= self.limit
        return not (full or self._released.is_set())

    def release(self) -> None:
        self._released.set()

    async def wait(self, timeout: float = 20.0) -> str:
        """Wait until a request is caught; returns what it was (a key, a file id)."""
        async with asyncio.timeout(timeout):
            await self.reached.wait()
        return self.caught[0]

    async def _pause(self, what: str, changed: Callable[[], None]) -> None:
        self.caught.append(what)
        self.reached.set()
        changed()
        try:
            await self._released.wait()
        except asyncio.CancelledError:
            # The server cancels a handler whose client disconnected (a killed bot).
            self.abandoned.append(what)
            changed()
            raise


def _pid(request: web.Request) -> int | None:
    raw = request.headers.get(PID_HEADER, "")
    return int(raw) if raw.isdigit() else None


class Recorder:
    """The platform the bot talks to over HTTP. Use as `async with Recorder() as r:`."""

    def __init__(self, *, chunk: int = 16 * 1024) -> None:
        self.chunk = chunk
        self.messages: list[Message] = []
        self.attempts: list[Attempt] = []
        self.reactions: list[tuple[str | None, str, int | None]] = []  # message, reaction, pid
        self.files: dict[str, bytes] = {}
        self.file_reads: list[tuple[str, int | None]] = []  # file id, pid
        self.inbox: list[Intake] = []
        self.polls_dropped: list[int | None] = []  # pids whose inbox long poll was cut off
        #: awaited with each ack before it is recorded (to check what the bot persisted)
        self.on_ack: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self._by_key: dict[str, Message] = {}
        self._ids = itertools.count(1)
        self._holds: list[Hold] = []
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Recorder:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/post", self._post)
        app.router.add_post("/edit", self._edit)
        app.router.add_post("/react", self._react)
        app.router.add_get("/files/{file_id}", self._file)
        app.router.add_get("/inbox", self._inbox)
        app.router.add_post("/ack", self._ack)
        # Cancel the handler of a request whose client went away: a held request from a
        # killed bot is then dropped instead of completing later.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for hold in self._holds:
            hold.release()
        self._changed()  # wake long polls
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the test does --------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def send(self, record: IntakeRecord) -> int:
        """Put an intake in the inbox (a trigger on the platform); returns its number."""
        intake = Intake(len(self.inbox) + 1, intake_to_json(record))
        self.inbox.append(intake)
        self._changed()
        return intake.seq

    def hold_post(self, suffix: str, *, answer: bool = False, pid: int | None = None) -> Hold:
        """Hold posts whose key ends with `suffix` (":result", ":status"): before they are
        recorded, or with `answer=True` after recording, before answering. With `pid`,
        only the posts of that bot process."""
        stage = Stage.ANSWER if answer else Stage.BEFORE
        return self._hold(Hold("post", lambda key: key.endswith(suffix), stage, pid=pid))

    def hold_edit(self, suffix: str, *, limit: int | None = None) -> Hold:
        """Hold edits of messages whose key ends with `suffix`, before they are recorded
        (with `limit`, only the first `limit` such edits)."""
        stage = Stage.BEFORE
        return self._hold(Hold("edit", lambda key: key.endswith(suffix), stage, limit=limit))

    def hold_file(self, file_id: str) -> Hold:
        """Hold the stream of this file after its first chunk."""
        return self._hold(Hold("file", lambda other: other == file_id, Stage.STREAM))

    def hold_ack(self) -> Hold:
        """Hold acknowledgements before they are recorded."""
        return self._hold(Hold("ack", lambda _seq: True, Stage.BEFORE))

    async def until(self, predicate: Callable[[], T], timeout: float = 20.0) -> T:
        """Wait until `predicate()` (over what was recorded) is truthy; returns its value."""
        async with asyncio.timeout(timeout):
            while True:
                change = self._change
                if value := predicate():
                    return value
                await change.wait()

    # -- what the test reads -------------------------------------------------------------

    def results(self, job_id: str | None = None) -> list[Message]:
        return self._keyed(":result", job_id)

    def statuses(self, job_id: str | None = None) -> list[Message]:
        return self._keyed(":status", job_id)

    def duplicates(self, suffix: str = "") -> list[Attempt]:
        return [a for a in self.attempts if a.duplicate and a.key.endswith(suffix)]

    def acked(self, seq: int) -> bool:
        return self.inbox[seq - 1].acked

    def reactions_on(self, message: str | None) -> list[str]:
        return [reaction for on, reaction, _pid in self.reactions if on == message]

    def _keyed(self, suffix: str, job_id: str | None) -> list[Message]:
        return [
            m
            for m in self.messages
            if m.key.endswith(suffix) and (job_id is None or m.job_id == job_id)
        ]

    # -- the platform's API --------------------------------------------------------------

    def _hold(self, hold: Hold) -> Hold:
        self._holds.append(hold)
        return hold

    async def _wait_if_held(
        self, request: web.Request, route: str, what: str, stage: Stage
    ) -> None:
        pid = _pid(request)
        for hold in self._holds:
            if (
                hold.armed
                and (hold.route, hold.stage) == (route, stage)
                and hold.pid in (None, pid)
                and hold.match(what)
            ):
                await hold._pause(what, self._changed)
                return

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        if len(str(body["text"])) > MESSAGE_LIMIT:  # refused, as Slack and Discord do
            return web.json_response({"error": "msg_too_long"}, status=400)
        key = str(body["key"])
        await self._wait_if_held(request, "post", key, Stage.BEFORE)
        pid = _pid(request)
        first = self._by_key.get(key)
        duplicate = first is not None
        if first is None:
            files = {f["name"]: base64.b64decode(f["data"]) for f in body.get("files", ())}
            first = Message(
                f"m{next(self._ids)}", body["where"], str(body["text"]), key, files, pid
            )
            self.messages.append(first)
            self._by_key[key] = first
        self.attempts.append(Attempt(key, first.id, duplicate, pid))
        self._changed()
        await self._wait_if_held(request, "post", key, Stage.ANSWER)
        return web.json_response({"id": first.id})

    async def _edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        if len(str(body["text"])) > MESSAGE_LIMIT:  # refused, as Slack and Discord do
            return web.json_response({"error": "msg_too_long"}, status=400)
        for message in self.messages:
            if message.id == body["message_id"]:
                await self._wait_if_held(request, "edit", message.key, Stage.BEFORE)
                message.edits.append(str(body["text"]))
                self._changed()
                return web.json_response({})
        return web.json_response({"error": "message_not_found"}, status=404)

    async def _react(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reactions.append((body["where"].get("message"), str(body["reaction"]), _pid(request)))
        self._changed()
        return web.json_response({})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        data = self.files.get(file_id)
        if data is None:
            return web.json_response({"error": "file_not_found"}, status=404)
        self.file_reads.append((file_id, _pid(request)))
        self._changed()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        for offset in range(0, len(data), self.chunk):
            if offset:
                await self._wait_if_held(request, "file", file_id, Stage.STREAM)
            await response.write(data[offset : offset + self.chunk])
        await response.write_eof()
        return response

    async def _inbox(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        wait = float(request.query.get("wait", "5"))

        def waiting() -> list[Intake]:
            return [i for i in self.inbox if i.seq > after and not i.acked][:100]

        try:
            await self.until(waiting, timeout=wait)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            self.polls_dropped.append(_pid(request))  # the bot stopped taking intakes
            self._changed()
            raise
        intakes = waiting()
        for intake in intakes:
            intake.offered += 1
        return web.json_response({"intakes": [{"seq": i.seq, "record": i.record} for i in intakes]})

    async def _ack(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._wait_if_held(request, "ack", str(body["seq"]), Stage.BEFORE)
        if self.on_ack is not None:
            await self.on_ack(body)
        self.inbox[int(body["seq"]) - 1].acks.append({**body, "pid": _pid(request)})
        self._changed()
        return web.json_response({})


def intake_to_json(record: IntakeRecord) -> dict[str, Any]:
    return {
        "platform": record.platform.value,
        "workspace": record.workspace,
        "channel": record.channel,
        "requester": record.requester,
        "source": record.source.to_json(),
        "thread": record.thread,
        "message": record.message,
        "event_id": record.event_id,
        "options": record.options.to_json(),
        "audio_duration": record.audio_duration,
    }


def intake_from_json(data: Mapping[str, Any]) -> IntakeRecord:
    return IntakeRecord(
        platform=Platform(data["platform"]),
        workspace=data["workspace"],
        channel=data["channel"],
        requester=data["requester"],
        source=source_from_json(data["source"]),
        thread=data.get("thread"),
        message=data.get("message"),
        event_id=data.get("event_id"),
        options=JobOptions.from_json(data.get("options") or {}),
        audio_duration=data.get("audio_duration"),
    )


def trigger_of(record: IntakeRecord) -> Trigger:
    """The record as the trigger a platform would hand the core: one file, or one link."""
    attachments: tuple[Attachment, ...] = ()
    text = ""
    if isinstance(record.source, FileSource):
        ref = record.source.ref
        name = ref.get("name")
        attachments = (Attachment(ref=ref, name=name if isinstance(name, str) else None),)
    else:
        text = record.source.url
    return Trigger(
        platform=record.platform,
        workspace=record.workspace,
        channel=record.channel,
        requester=record.requester,
        message=record.message,
        thread=record.thread,
        event_id=record.event_id,
        text=text,
        attachments=attachments,
        explicit=True,
        options=record.options,
    )


# == the bot side =======================================================================


def create(settings: Settings, core: Core) -> RecorderAdapter:
    """The THREADSCRIBE_ADAPTERS factory. A test plugin at the composition root, so it may
    read its one setting from the environment."""
    return RecorderAdapter(os.environ[URL_ENV], core)


def _where_json(where: ThreadRef) -> dict[str, Any]:
    return {
        "platform": where.platform.value,
        "workspace": where.workspace,
        "channel": where.channel,
        "thread": where.thread,
        "message": where.message,
        "job_id": where.job_id,
    }


class RecorderAdapter:
    """The recorder as a platform adapter: ChatPlatform calls become HTTP calls to it."""

    name = Platform.SLACK  # it stands in for a platform
    message_limit = MESSAGE_LIMIT

    def __init__(self, base_url: str, core: Core, *, poll_wait: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._core = core
        self.poll_wait = poll_wait
        self._session: aiohttp.ClientSession | None = None
        self._inbox_task: asyncio.Task[None] | None = None
        self._polling = False  # the inbox task waits on a long poll (safe to cancel)
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return ()

    async def start(self) -> None:
        self._inbox_task = asyncio.create_task(self._take_in(), name="recorder-inbox")

    async def stop(self) -> None:
        """Take no more intakes: an intake being handed to the engine finishes (and is
        acknowledged) first. The HTTP session stays open for the engine's last steps."""
        self._stopping = True
        task, self._inbox_task = self._inbox_task, None
        if task is None:
            return
        if self._polling:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Phase two: let go of the connection (once the engine has drained)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- intake --------------------------------------------------------------------------

    async def _take_in(self) -> None:
        """Fetch intakes and hand each batch to the core at once (a platform delivers
        events concurrently), acknowledging each one once the core has it."""
        after = 0
        while not self._stopping:
            self._polling = True
            try:
                answer = await self._call(
                    "GET", "/inbox", params={"after": after, "wait": self.poll_wait}
                )
            except PlatformError as exc:
                log.warning("recorder inbox: %s", exc.message)
                await asyncio.sleep(0.5)
                continue
            finally:
                self._polling = False
            if self._stopping:
                return  # not acknowledged: the recorder offers them again
            items = answer["intakes"]
            taken = await asyncio.gather(*(self._take(item) for item in items))
            failed = [item["seq"] for item, ok in zip(items, taken, strict=True) if not ok]
            if failed:
                after = min(failed) - 1  # offered again (acknowledged ones are not)
                await asyncio.sleep(0.5)
            elif items:
                after = max(item["seq"] for item in items)

    async def _take(self, item: dict[str, Any]) -> bool:
        try:
            taken = await self._core.take(trigger_of(intake_from_json(item["record"])))
            ids = [*taken.created_ids, *taken.existing_ids]
            ack = {
                "seq": item["seq"],
                "job_id": ids[0] if ids else None,
                "created": bool(taken.created_ids),
                "refused": taken.refusals[0] if taken.refusals else None,
            }
            await self._call("POST", "/ack", json=ack)
        except Exception:
            log.exception("recorder intake %s failed; it will be offered again", item["seq"])
            return False
        return True

    # -- ChatPlatform --------------------------------------------------------------------

    async def public_url(self, where: ThreadRef, source: FileSource) -> str | None:
        return None  # like Slack: private files are always streamed

    async def open_file(self, where: ThreadRef, source: FileSource) -> FileStream:
        file_id = str(source.ref["id"])
        try:
            response = await self._http().get(f"{self.base_url}/files/{file_id}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformUnavailable(f"recorder unreachable: {exc!r}") from exc
        if response.status == 404:
            response.release()
            raise FileUnavailable(f"file {file_id} is gone")
        if response.status != 200:
            response.release()
            raise PlatformUnavailable(f"file {file_id}: HTTP {response.status}")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    yield chunk
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise PlatformUnavailable(f"file {file_id} download interrupted") from exc
            finally:
                response.close()

        return FileStream(chunks(), response.content_length, response.content_type)

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        files = [
            {"name": f.name, "data": base64.b64encode(f.data).decode("ascii")} for f in post.files
        ]
        body = {"where": _where_json(where), "text": post.text, "key": key, "files": files}
        answer = await self._call("POST", "/post", json=body)
        return str(answer["id"])

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        body = {"where": _where_json(where), "message_id": message_id, "text": post.text}
        await self._call("POST", "/edit", json=body)

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        await self._call("POST", "/react", json={"where": _where_json(where), "reaction": reaction})

    async def people(self, where: ThreadRef) -> list[Person]:
        return []  # the recorder's threads have nobody to name

    # -- plumbing ------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Made on first use, inside the running loop (the engine may post before start).
            self._session = aiohttp.ClientSession(headers={PID_HEADER: str(os.getpid())})
        return self._session

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._http().request(method, self.base_url + path, **kwargs) as response:
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PlatformUnavailable(f"recorder {method} {path}: {exc!r}") from exc
        if response.status >= 400:
            error = body.get("error", response.status) if isinstance(body, dict) else body
            kind = PlatformUnavailable if response.status >= 500 else PlatformRefused
            raise kind(f"recorder: {error}")
        return body
