"""What the core needs from a chat platform, and the plain values that cross the line.

The engine talks to Slack and Discord only through `ChatPlatform`. Adapters implement it
(adapters/base.py re-exports these names for them); the core never imports an adapter.
Everything here is serialisable or a plain value: no live platform objects, no tokens.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp import web

from bot.errors import FileUnavailable, PlatformError, PlatformRefused, PlatformUnavailable
from bot.jobs import Job, Platform
from bot.render import Document, RenderedFile

__all__ = [
    "Adapter",
    "ChatPlatform",
    "FileStream",
    "FileUnavailable",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Post",
    "Reaction",
    "ThreadRef",
]

if TYPE_CHECKING:
    from bot.engine import Engine


class Reaction(enum.StrEnum):
    """The state shown on the source message (⏳ → ✅ | ❌ on Slack and Discord)."""

    WORKING = "working"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where a job's replies go: rebuilt from the job record after any restart.

    `message` is the source message (react on it, reply under it); `thread` the thread
    to reply in when the source was already inside one (Slack: the thread's ts; Discord:
    a thread channel id). With neither (a slash command), the engine's first post starts
    the thread and later posts carry its id as `thread`. `job_id` and `options` (the job
    options the adapter chose at intake: JSON, never a secret) let an adapter find what it
    keeps for a job, such as a Discord interaction it answered.
    """

    platform: Platform
    workspace: str
    channel: str
    thread: str | None
    message: str | None
    job_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, job: Job, thread: str | None = None) -> ThreadRef:
        return cls(
            job.platform,
            job.workspace,
            job.channel,
            thread or job.thread,
            job.message,
            job.id,
            job.options,
        )


@dataclass(frozen=True, slots=True)
class FileStream:
    """A private platform file, opened for streaming (never read whole, never on disk)."""

    chunks: AsyncIterator[bytes]
    size: int | None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Post:
    """One message to post: plain text that fits the platform's limit, optional files, and
    the structured document so an adapter can format it richly (Block Kit, embeds)."""

    text: str
    files: Sequence[RenderedFile] = ()
    document: Document | None = None


@runtime_checkable
class ChatPlatform(Protocol):
    """The small surface the engine drives. Every method is idempotent where `key` is given:
    posting the same key twice must not show two messages when the platform allows it to
    be avoided (Slack message metadata, Discord's enforce_nonce)."""

    name: Platform
    #: characters one message's text may hold (Slack section: 3,000; Discord: 2,000)
    message_limit: int

    async def open_file(self, job: Job) -> FileStream:
        """Open the job's private file source (job.source is a FileSource)."""
        ...

    async def public_url(self, job: Job) -> str | None:
        """A link to the job's file that anyone may fetch for the next hour (Discord's
        signed CDN links), to hand AssemblyAI instead of streaming the bytes; None when
        the platform has none (Slack's files need the bot token). If AssemblyAI cannot
        fetch it, the engine streams the file after all."""
        ...

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        """Post in the thread and return the new message's id."""
        ...

    async def edit(self, where: ThreadRef, message_id: str, post: Post) -> None:
        """Replace the text of a message the bot posted earlier."""
        ...

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        """Show `reaction` on the source message (replacing the previous one)."""
        ...


@runtime_checkable
class Adapter(ChatPlatform, Protocol):
    """A platform as `threadscribe run` starts it: the ChatPlatform the engine drives, plus
    the intake side (events in) and its lifecycle.

    Order at start-up: construct (settings only, no I/O) -> `routes()` mounted on the web
    server -> `start(engine)` connects and begins handing intakes to `engine.intake()`.
    At shutdown `stop()` stops taking events first; the engine then drains (and may still
    post through the adapter); `close()` then disconnects.
    """

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """HTTP routes to mount on the bot's web server (Slack HTTP mode, OAuth)."""
        ...

    async def start(self, engine: Engine) -> None: ...

    async def stop(self) -> None:
        """Stop taking events; posting keeps working until `close()`."""
        ...

    async def close(self) -> None:
        """Disconnect and release everything (after the engine has stopped)."""
        ...
