"""The line between the core and the chat platforms, and the plain values that cross it.

    adapter ──Trigger──▶ Core.take()          what someone posted or asked for
    adapter ◀──Taken───                        what to tell them, if anything
    engine  ──post/edit/react/open_file──▶ ChatPlatform (the adapter)

An adapter translates: a platform event becomes a `Trigger` handed to the `Core`; the
core's answer becomes the platform's calls. What both platforms share (which files and
links are media, the link policy, auto-transcribe, refusals and their wording) is the
core's. The engine drives the adapter through `ChatPlatform`. Everything here is a plain
value or a protocol: no live platform object, no token. Adapters import the core's types
from here, never from `bot.jobs` or `bot.engine`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiohttp
from aiohttp import web

from bot.errors import FileUnavailable, PlatformError, PlatformRefused, PlatformUnavailable
from bot.jobs import (
    ChannelPolicy,
    FileSource,
    Job,
    JobOptions,
    JobState,
    Platform,
    Source,
    UrlSource,
)
from bot.jobs.records import JSONScalar
from bot.render import Document, RenderedFile
from bot.speakers import Person

if TYPE_CHECKING:
    # Named apart from `Controls` below (a result's Rename and Redo).
    from bot.controls import Controls as PrivacyControls

__all__ = [
    "Adapter",
    "Answer",
    "Attachment",
    "ChannelPolicy",
    "ChannelRef",
    "ChatPlatform",
    "Controls",
    "Core",
    "FileSource",
    "FileStream",
    "FileUnavailable",
    "JSONScalar",
    "JobOptions",
    "JobRef",
    "JobState",
    "MenuGroup",
    "MenuItem",
    "Person",
    "Platform",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Post",
    "Progress",
    "Reaction",
    "RenameField",
    "RenameForm",
    "Source",
    "Taken",
    "ThreadRef",
    "Trigger",
    "UrlSource",
    "stream_body",
]


class Reaction(enum.StrEnum):
    """The state shown on the source message (⏳ → ✅ | ❌ on Slack and Discord)."""

    WORKING = "working"
    DONE = "done"
    FAILED = "failed"


# -- into the core -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file on a platform message, as the core needs to judge it and the adapter needs
    to fetch it later. `ref` is what the adapter stores to find the file again (ids, its
    URL without any token): JSON scalars only, `ref["id"]` the file's id."""

    ref: Mapping[str, JSONScalar]
    name: str | None = None
    mimetype: str | None = None
    size: int | None = None
    #: seconds, when the platform measured it (voice messages, Slack's audio files)
    duration: float | None = None
    #: what to call the recording in replies, if not its name ("voice message from Ada")
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something a person posted, or asked the bot to transcribe.

    `message` is the platform message it is about (replies go under it); `event_id` names
    a trigger without one (a slash command). `text` is where links are looked for, already
    decoded from the platform's markup. `explicit`: someone asked (a command, a mention,
    a message action), so auto-transcribe does not apply. `direct`: a direct message.
    `own_hosts`: the platform's own link hosts, never media (Slack's file pages).
    """

    platform: Platform
    workspace: str
    channel: str
    requester: str
    message: str | None = None
    thread: str | None = None
    event_id: str | None = None
    text: str = ""
    attachments: Sequence[Attachment] = ()
    explicit: bool = False
    direct: bool = False
    options: JobOptions = field(default_factory=JobOptions)
    own_hosts: Sequence[str] = ()
    #: the channel whose settings apply, when not `channel` (a Discord thread: its parent)
    settings_channel: str | None = None
    #: who posted the message, when that is not `requester` (someone used Transcribe or a
    #: mention on another person's message): their opt-out applies, and they may forget it
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of a trigger.

    `created`/`existing`: titles of the recordings whose jobs this trigger made, or that
    had jobs already (a retried event, a second request). `refusals`: why some were not
    taken, each said once (a retried event does not repeat them). `other_files`: names of
    files that are not audio or video. `refused` is the one line to tell the person, when
    there is something to tell (None: say nothing, the thread will show the job).
    """

    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    other_files: tuple[str, ...] = ()
    #: ids of the jobs this trigger created (nothing of them can be on the platform yet)
    created_ids: tuple[str, ...] = ()
    #: ids of the jobs it found made already
    existing_ids: tuple[str, ...] = ()
    #: what to tell the person besides (a request with options redid an existing job)
    answers: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        """Whether the trigger held any recording at all."""
        return bool(self.created or self.existing or self.refusals)


@dataclass(frozen=True, slots=True)
class Progress:
    """One of a person's unfinished jobs, for `/transcribe status`."""

    title: str
    state: JobState
    #: jobs ahead of it in the queue (for a job still waiting), else None
    ahead: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel, for its settings (a Discord thread: its parent's)."""

    platform: Platform
    workspace: str
    channel: str


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job someone acts on from its result (Rename, Redo): where they clicked, and the
    job id the result carries. The core checks that the job is that channel's."""

    platform: Platform
    workspace: str
    channel: str
    job_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What to tell someone who asked the core for something: `text`, and, for a form,
    what is wrong with which field (field key -> message)."""

    text: str
    ok: bool = True
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenameField:
    """One speaker of a result, as the rename form shows it."""

    key: str  # what the answer names the field by
    speaker: str  # "Speaker A", or the name speaker identification found
    current: str  # the name shown now ("" when it is still "Speaker A")


@dataclass(frozen=True, slots=True)
class RenameForm:
    job_id: str
    fields: tuple[RenameField, ...]


@dataclass(frozen=True, slots=True)
class MenuItem:
    label: str
    value: str  # what `Core.redo` takes back ("lang:fr", "speakers:3", "translate:es")


@dataclass(frozen=True, slots=True)
class MenuGroup:
    label: str  # "Language", "Speakers", "Translate to"
    items: tuple[MenuItem, ...]
    #: the kind of choice ("lang", "speakers", "translate", "model"), for a platform that
    #: asks in words rather than from a list (Discord's modals)
    kind: str = ""
    #: the value shown first in that case (the language used now)
    current: str = ""


@dataclass(frozen=True, slots=True)
class Controls:
    """The actions a result offers (its buttons): rename its speakers, redo it with other
    options (the menu, the same on every platform)."""

    job_id: str
    rename: bool = False
    redo: tuple[MenuGroup, ...] = ()


@runtime_checkable
class Core(Protocol):
    """What an adapter may ask of the core: take a trigger in, the per-channel switch,
    and a person's jobs. Nothing else of the core is the adapter's business."""

    @property
    def accepting(self) -> bool:
        """False while the bot shuts down (tell people to try again in a minute)."""
        ...

    async def take(self, trigger: Trigger) -> Taken:
        """Find the recordings in `trigger` and make their jobs (stored before this
        returns: acknowledge the platform after it). Never raises for bad input: a file or
        link that cannot be taken is a refusal, and the others go on."""
        ...

    async def auto_transcribe(self, platform: Platform, workspace: str, channel: str) -> bool:
        """Whether recordings shared in the channel are transcribed without being asked."""
        ...

    async def set_auto_transcribe(
        self, platform: Platform, workspace: str, channel: str, enabled: bool, *, by: str
    ) -> None: ...

    async def progress(self, platform: Platform, workspace: str, requester: str) -> list[Progress]:
        """The person's unfinished jobs, oldest first, with queue positions."""
        ...

    # -- a channel's preferences and a result's actions (bot/revisions.py) --------------

    async def configure(self, where: ChannelRef, command: str, *, by: str, admin: bool) -> str:
        """Apply a settings command (`names off`, `summary on`, `translate es`, `vocab add
        Kubernetes, Thessaloniki`, `vocab list`, `settings`), said the same way on every
        platform; the answer to show. `admin`: whether the person may change settings
        (the vocabulary is anyone's)."""
        ...

    async def rename_form(self, ref: JobRef) -> RenameForm | Answer:
        """The speakers of a delivered result, to rename; an Answer when it cannot be."""
        ...

    async def rename(self, ref: JobRef, names: Mapping[str, str], *, by: str) -> Answer:
        """Rename a result's speakers (field key -> name; empty: as it was): a redo of the
        job that edits its result in place, with the summary made again."""
        ...

    async def redo(self, ref: JobRef, choice: str, *, by: str) -> Answer:
        """Redo a job with one option changed (a `MenuItem.value`): a new job whose
        result replaces the old one in the same thread."""
        ...

    @property
    def controls(self) -> PrivacyControls:
        """Privacy and cost controls: channel policies, redaction, opt-outs, usage, the
        overview, forget (bot/controls.py)."""
        ...


# -- out of the core -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where a job's replies go: rebuilt from the job record after any restart.

    `message` is the source message (react on it, reply under it); `thread` the thread
    to reply in when the source was already inside one (Slack: the thread's ts; Discord:
    a thread channel id). With neither (a slash command), the engine's first post starts
    the thread and later posts carry its id as `thread`. `job_id`, `created_at` and
    `extra` (what the adapter chose at intake, `JobOptions.platform`: JSON, never a
    secret) let an adapter find what it keeps for a job, such as a Discord interaction it
    answered, or look for a post it may have made. `requester`, `title` and `source` say
    who asked for what, for a thread the bot starts itself.
    """

    platform: Platform
    workspace: str
    channel: str
    thread: str | None
    message: str | None
    job_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    requester: str = ""
    title: str = "recording"
    source: Source | None = None

    @classmethod
    def of(cls, job: Job, thread: str | None = None) -> ThreadRef:
        return cls(
            job.platform,
            job.workspace,
            job.channel,
            thread or job.thread,
            job.message,
            job.id,
            job.options.platform,
            job.created_at,
            job.requester,
            job.options.title or "recording",
            job.source,
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
    #: the actions the result offers (a result's Rename and Redo)
    controls: Controls | None = None


@runtime_checkable
class ChatPlatform(Protocol):
    """The small surface the engine drives. Every method is idempotent where `key` is given:
    posting the same key twice must not show two messages when the platform allows it to
    be avoided (Slack message metadata, Discord's enforce_nonce)."""

    @property
    def name(self) -> Platform:
        """Which platform this is (the jobs it delivers are the jobs of this platform)."""
        ...

    @property
    def message_limit(self) -> int:
        """Characters one message's text may hold (Slack section: 3,000; Discord: 2,000)."""
        ...

    async def open_file(self, where: ThreadRef, source: FileSource) -> FileStream:
        """Open a private file of the job's workspace for streaming."""
        ...

    async def public_url(self, where: ThreadRef, source: FileSource) -> str | None:
        """A link to the file that anyone may fetch for the next hour (Discord's signed
        CDN links), to hand AssemblyAI instead of streaming the bytes; None when the
        platform has none (Slack's files need the bot token). If AssemblyAI cannot fetch
        it, the engine streams the file after all."""
        ...

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        """Post in the thread and return the new message's id."""
        ...

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        """Replace a message the bot posted earlier (its text, document and controls);
        files in `post` go with it (Discord: as its attachments; Slack: uploaded in the
        thread once, under `key`)."""
        ...

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        """Show `reaction` on the source message (replacing the previous one)."""
        ...

    async def people(self, where: ThreadRef) -> Sequence[Person]:
        """Who may be speaking in the job's recording, likeliest first: who shared it,
        who it mentions, who takes part in its thread, and the members of a small
        channel, each with the name the platform shows for them. Bots are left out."""
        ...

    @property
    def file_limit(self) -> int:
        """Bytes one file the bot posts may hold (Discord's uploads are small)."""
        ...

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        """Delete what the bot posted for the job (`message_ids`, recorded as it posted,
        and whatever it uploaded with them) and take its reaction off the source message
        (`/transcribe forget`). Messages already gone are no error."""
        ...

    async def notify_admins(self, workspace: str, text: str) -> None:
        """Tell the workspace's admins `text` directly (a budget alert)."""
        ...


@runtime_checkable
class Adapter(ChatPlatform, Protocol):
    """A platform as `threadscribe run` starts it: the ChatPlatform the engine drives, plus
    the intake side (events in, handed to the `Core` it was made with) and its lifecycle.

    Order at start-up: construct (settings and the core; no I/O) -> `routes()` mounted on
    the web server -> `start()` connects and begins handing triggers to the core. At
    shutdown `stop()` stops taking events first; the engine then drains (and may still
    post through the adapter); `close()` then disconnects.
    """

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """HTTP routes to mount on the bot's web server (Slack HTTP mode, OAuth)."""
        ...

    async def connected(self) -> bool | None:
        """Whether the connection the adapter keeps to its platform (Socket Mode, the
        gateway) is up; None when it keeps none (Slack's HTTP mode). For /readyz."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop taking events; posting keeps working until `close()`."""
        ...

    async def close(self) -> None:
        """Disconnect and release everything (after the engine has stopped)."""
        ...


async def stream_body(
    response: aiohttp.ClientResponse,
    *,
    chunk_size: int,
    broke_off: Callable[[BaseException], PlatformError],
) -> AsyncIterator[bytes]:
    """A platform's HTTP response body as it arrives (a private file on its way into the
    upload), never whole in memory. The connection is given back however the reader
    stops: reused when the body was read to its end, closed when it was abandoned (or the
    rest of the file would still be read into the pool). A transfer that breaks off is
    `broke_off(exc)`, raised from the aiohttp or timeout error."""
    finished = False
    try:
        async for chunk in response.content.iter_chunked(chunk_size):
            yield chunk
        finished = True
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise broke_off(exc) from exc
    finally:
        response.release() if finished else response.close()
