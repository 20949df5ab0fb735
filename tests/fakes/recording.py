"""A chat platform that records what the engine asks of it (the test adapter of issue 3).

It implements bot.chat.ChatPlatform in memory: posts, edits and reactions are recorded
with their thread; private files are served from registered bytes (streamed in chunks);
failures can be injected per call. Posting a key twice is recorded too, so tests can
assert that nothing was posted twice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bot.chat import FileStream, Person, Post, Reaction, ThreadRef
from bot.errors import FileUnavailable, PlatformRefused
from bot.jobs import FileSource, IntakeRecord, Platform


@dataclass
class Posted:
    id: str
    where: ThreadRef
    text: str
    key: str
    files: dict[str, bytes] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)

    @property
    def current(self) -> str:
        return self.edits[-1] if self.edits else self.text


@dataclass
class RecordingPlatform:
    name: Platform = Platform.SLACK
    message_limit: int = 3000
    chunk: int = 64 * 1024
    posts: list[Posted] = field(default_factory=list)
    reactions: list[tuple[str | None, Reaction]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    #: file id -> a public link to hand AssemblyAI instead of streaming (like Discord's CDN)
    links: dict[str, str] = field(default_factory=dict)
    #: method name -> what its next calls do, in order: raise the exception, or (None) work
    faults: dict[str, list[Exception | None]] = field(default_factory=dict)
    #: set to hold open_file streams until released (to catch a job mid-upload)
    hold_files: asyncio.Event | None = None
    #: who `people()` says may be speaking
    known: list[Person] = field(default_factory=list)
    file_limit: int = 10_000_000
    #: (workspace, text) of every notify_admins call
    notices: list[tuple[str, str]] = field(default_factory=list)
    #: ids of the messages erase deleted, in order
    erased: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    # -- test helpers ------------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def fail(self, method: str, *errors: Exception | None) -> None:
        self.faults.setdefault(method, []).extend(errors)

    def results(self, job_id: str | None = None) -> list[Posted]:
        return [
            p
            for p in self.posts
            if p.key.endswith(":result") and (job_id is None or p.key.startswith(job_id))
        ]

    def statuses(self, job_id: str) -> list[Posted]:
        return [p for p in self.posts if p.key == f"{job_id}:status"]

    async def until(self, predicate: object, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)  # type: ignore[arg-type]

    # -- ChatPlatform ------------------------------------------------------------------

    def _fault(self, method: str) -> None:
        queue = self.faults.get(method)
        if queue:
            error = queue.pop(0)
            if error is not None:
                raise error

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def open_file(self, where: ThreadRef, source: FileSource) -> FileStream:
        self._fault("open_file")
        file_id = str(source.ref["id"])
        if file_id not in self.files:
            raise FileUnavailable(f"file {file_id} is gone")
        data = self.files[file_id]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), self.chunk):
                if self.hold_files is not None:
                    await self.hold_files.wait()
                yield data[i : i + self.chunk]

        return FileStream(chunks(), len(data), "application/octet-stream")

    async def public_url(self, where: ThreadRef, source: FileSource) -> str | None:
        return self.links.get(str(source.ref["id"]))

    def _fits(self, post: Post) -> None:
        # As Slack and Discord do, a message longer than the platform allows is refused.
        if len(post.text) > self.message_limit:
            raise PlatformRefused(f"{len(post.text)} characters, over {self.message_limit}")

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        self._fault("post")
        self._fits(post)
        message_id = f"m{next(self._ids)}"
        files = {f.name: f.data for f in post.files}
        self.posts.append(Posted(message_id, where, post.text, key, files))
        await self._notify()
        return message_id

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        self._fault("edit")
        self._fits(post)
        for posted in self.posts:
            if posted.id == message_id:
                posted.edits.append(post.text)
                posted.files.update({f.name: f.data for f in post.files})
                await self._notify()
                return
        raise PlatformRefused(f"no message {message_id}")

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        self._fault("react")
        self.reactions.append((where.message, reaction))
        await self._notify()

    async def people(self, where: ThreadRef) -> list[Person]:
        self._fault("people")
        return list(self.known)

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        self._fault("erase")
        gone = set(message_ids)
        self.erased.extend(message_ids)
        self.posts = [p for p in self.posts if p.id not in gone]
        self.reactions = [r for r in self.reactions if r[0] != where.message]
        await self._notify()

    async def notify_admins(self, workspace: str, text: str) -> None:
        self._fault("notify_admins")
        self.notices.append((workspace, text))
        await self._notify()


def url_intake(url: str, message: str = "1700000000.000100", **kw: object) -> IntakeRecord:
    from bot.jobs import UrlSource

    fields: dict[str, object] = {
        "platform": Platform.SLACK,
        "workspace": "T1",
        "channel": "C1",
        "requester": "U1",
        "message": message,
        "source": UrlSource(url),
    }
    fields.update(kw)
    return IntakeRecord(**fields)  # type: ignore[arg-type]


def file_intake(
    file_id: str, size: int, message: str = "1700000000.000200", **kw: object
) -> IntakeRecord:
    fields: dict[str, object] = {
        "platform": Platform.SLACK,
        "workspace": "T1",
        "channel": "C1",
        "requester": "U1",
        "message": message,
        "source": FileSource({"id": file_id, "name": f"{file_id}.wav", "size": size}),
    }
    fields.update(kw)
    return IntakeRecord(**fields)  # type: ignore[arg-type]
