"""The in-memory world of the Slack fake, and the record of what was done to it.

Workspaces own users and channels; channels own messages; tokens are grants of scopes to a
bot, a person or the app. Everything the code under test does (Web API calls, uploads,
downloads, posts to response URLs) is appended to a record that tests read afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

JSON = dict[str, Any]
T = TypeVar("T")
WAIT = 5.0  # seconds the fake's waits give up after, with TimeoutError

# What the bot's token is granted unless a test says otherwise: what threadscribe needs.
DEFAULT_BOT_SCOPES: frozenset[str] = frozenset(
    {
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
        "reactions:read",
        "reactions:write",
        "users:read",
    }
)
DEFAULT_APP_SCOPES: frozenset[str] = frozenset({"connections:write"})


class TokenKind(StrEnum):
    BOT = "bot"
    USER = "user"
    APP = "app"

    @classmethod
    def of(cls, token: str) -> TokenKind | None:
        for prefix, kind in (("xoxb-", cls.BOT), ("xoxp-", cls.USER), ("xapp-", cls.APP)):
            if token.startswith(prefix):
                return kind
        return None


@dataclass
class Grant:
    """A token and what it may do."""

    token: str = field(repr=False)
    kind: TokenKind
    team_id: str
    user_id: str | None  # the bot user for bot tokens, the person for user tokens
    scopes: set[str]
    revoked: bool = False


@dataclass
class User:
    id: str
    team_id: str
    name: str
    real_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    tz: str = "Europe/London"
    #: what the profile's display name is (None: the user name; "": none set, as many have)
    display_name: str | None = None

    def to_dict(self) -> JSON:
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "tz_offset": 0,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_primary_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": real_name,
                "display_name": self.name if self.display_name is None else self.display_name,
                "team": self.team_id,
                **({"bot_id": self.bot_id} if self.bot_id else {}),
            },
        }


@dataclass
class Channel:
    id: str
    team_id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    is_im: bool = False
    is_archived: bool = False
    is_general: bool = False
    created: int = 1_700_000_000
    creator: str | None = None
    messages: list[Message] = field(default_factory=list, repr=False)

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events in this conversation."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def to_dict(self, viewer: str | None) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private and not self.is_im,
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": self.creator or "",
            "context_team_id": self.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass
class Team:
    id: str
    name: str
    domain: str
    bot_user_id: str
    bot_id: str
    app_id: str
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)


@dataclass
class Message:
    """A message as stored; `SlackState.message_dict` gives Slack's wire shape."""

    channel: str
    ts: str
    team: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    files: list[str] = field(default_factory=list)  # file ids
    upload: bool = False
    reply_broadcast: bool = False
    metadata: JSON | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)  # name -> user ids
    history: list[tuple[str, list[JSON] | None]] = field(default_factory=list)  # before edits
    edited_ts: str | None = None
    deleted: bool = False
    token: str | None = field(default=None, repr=False)  # the token that posted it, if any

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edit_count(self) -> int:
        return len(self.history)


class ByteSource(Protocol):
    """The contents of a file, produced on demand so that a big file is never held whole."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class StaticBytes:
    data: bytes
    chunk_size: int = 64 * 1024

    @property
    def size(self) -> int:
        return len(self.data)

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk_size):
            yield self.data[start : start + self.chunk_size]


@dataclass(frozen=True)
class ChunkedSource:
    """Any producer of chunks, e.g. a generator reading a file from disk.

    `size` is what Slack reports and sends as Content-Length; a factory that yields fewer
    bytes makes the download drop mid-file (the fake closes the connection).
    """

    size: int
    factory: Callable[[], Iterable[bytes]]

    def chunks(self) -> Iterator[bytes]:
        yield from self.factory()


class GeneratedBytes:
    """`size` deterministic pseudo-random bytes, made chunk by chunk (1 GiB costs 1 MiB).

    Every 64 KiB segment starts with its own offset, so a byte moved, lost or repeated
    anywhere changes the digest. `generated` counts the bytes handed out by `chunks()`,
    which lets a test see how far a producer ran ahead of its consumer.
    """

    SEGMENT = 64 * 1024
    BLOCK = 1024 * 1024

    def __init__(self, size: int, *, seed: int = 0, chunk_size: int = 256 * 1024) -> None:
        if size < 0 or chunk_size <= 0 or chunk_size % self.SEGMENT:
            raise ValueError("size >= 0 and chunk_size a positive multiple of 64 KiB")
        self._size = size
        self.chunk_size = chunk_size
        self.generated = 0
        self._block = hashlib.shake_256(f"threadscribe-fake-{seed}".encode()).digest(self.BLOCK)

    @property
    def size(self) -> int:
        return self._size

    def _produce(self) -> Iterator[bytes]:
        for start in range(0, self._size, self.chunk_size):
            end = min(start + self.chunk_size, self._size)
            parts = []
            for seg in range(start, end, self.SEGMENT):
                n = min(self.SEGMENT, end - seg)
                at = seg % self.BLOCK
                parts.append((struct.pack(">Q", seg) + self._block[at + 8 : at + self.SEGMENT])[:n])
            yield b"".join(parts)

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._produce():
            self.generated += len(chunk)
            yield chunk

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self._produce():
            digest.update(chunk)
        return digest.hexdigest()

    def read(self) -> bytes:
        """All of it at once: for small sizes only."""
        return b"".join(self._produce())


# extension -> (mimetype, filetype, pretty_type), as Slack reports them.
FILE_TYPES: dict[str, tuple[str, str, str]] = {
    "mp3": ("audio/mpeg", "mp3", "MP3"),
    "m4a": ("audio/x-m4a", "m4a", "MPEG 4 Audio"),
    "wav": ("audio/wav", "wav", "WAV"),
    "ogg": ("audio/ogg", "ogg", "Ogg Vorbis"),
    "webm": ("audio/webm", "webm", "WebM"),
    "flac": ("audio/flac", "flac", "FLAC"),
    "mp4": ("video/mp4", "mp4", "MPEG 4 Video"),
    "mov": ("video/quicktime", "mov", "QuickTime Movie"),
    "txt": ("text/plain", "text", "Plain Text"),
    "srt": ("text/plain", "text", "Plain Text"),
    "vtt": ("text/vtt", "text", "Plain Text"),
    "pdf": ("application/pdf", "pdf", "PDF"),
    "png": ("image/png", "png", "PNG"),
}


def file_type(name: str) -> tuple[str, str, str]:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return FILE_TYPES.get(ext, ("application/octet-stream", ext or "binary", "Binary"))


@dataclass
class SlackFile:
    id: str
    team_id: str
    user: str
    name: str
    title: str
    mimetype: str
    filetype: str
    pretty_type: str
    source: ByteSource = field(repr=False)
    created: int
    subtype: str | None = None  # e.g. "slack_audio" for a recorded clip
    duration_ms: int | None = None
    channels: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def size(self) -> int:
        return self.source.size


@dataclass
class PendingUpload:
    """Step one of `files_upload_v2` done: a file id and an upload URL, no bytes yet."""

    file_id: str
    ticket: str
    filename: str
    length: int
    team_id: str
    user_id: str
    token: str = field(repr=False)
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = field(default=None, repr=False)
    content_type: str | None = None  # of the upload POST
    completed: bool = False


@dataclass
class UploadedFile:
    """A file the code under test uploaded and shared (all three steps done)."""

    file_id: str
    filename: str
    title: str
    declared_length: int
    data: bytes = field(repr=False)
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None
    message_ts: str | None
    token: str = field(repr=False)
    upload_content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass
class ApiCall:
    """One Web API request as the fake received and answered it."""

    method: str
    params: JSON  # query string and body merged; the token is kept apart
    token: str | None = field(repr=False)
    token_source: str | None  # "header" | "form" | None
    encoding: str  # "json" | "form" | "multipart" | "query"
    http_status: int = 200
    response: JSON = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class Download:
    file_id: str | None
    token: str | None = field(repr=False)
    served: bool  # False: the HTML login page was served instead
    http_method: str = "GET"
    bytes_sent: int = 0
    complete: bool = False


@dataclass
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON] | None
    thread_ts: str | None


@dataclass
class TriggerId:
    """A trigger id the fake handed to the app (with a command, a shortcut, a click):
    views.open takes it once, within TRIGGER_LIFETIME seconds."""

    team_id: str
    user: str
    issued_at: float = field(default_factory=time.monotonic)
    used: bool = False


@dataclass
class OpenedView:
    """A modal the app opened (views.open), and what was done with it."""

    id: str
    team_id: str
    user: str
    view: JSON
    trigger_id: str
    submitted: int = 0


@dataclass
class ResponseUrl:
    url: str
    team_id: str
    channel: str
    user: str
    uses: int = 0
    issued_at: float = field(default_factory=time.monotonic)


@dataclass
class ResponseUrlPost:
    url: str
    payload: JSON
    status: int


@dataclass
class Fault:
    """An answer forced on the next `remaining` calls of a method."""

    method: str
    remaining: int
    status: int = 200
    error: str = "internal_error"
    retry_after: int | None = None
    #: an answer that is not Slack's JSON, as its edge or a proxy sends one: (type, body)
    raw: tuple[str, str] | None = None


class SlackState:
    def __init__(self) -> None:
        self.base_url = ""  # set when the server is listening; ends with "/"
        self.teams: dict[str, Team] = {}
        self.grants: dict[str, Grant] = {}
        self.files: dict[str, SlackFile] = {}
        self.pending_uploads: dict[str, PendingUpload] = {}  # by ticket
        self.response_urls: dict[str, ResponseUrl] = {}  # by path
        self.faults: list[Fault] = []
        self.delays: dict[str, float] = {}  # method -> seconds to wait before answering
        #: file id -> bytes served before the download stalls (headers sent, then nothing)
        self.stalls: dict[str, int] = {}
        # the record
        self.calls: list[ApiCall] = []
        self.uploads: list[UploadedFile] = []
        self.downloads: list[Download] = []
        self.ephemerals: list[Ephemeral] = []
        self.response_posts: list[ResponseUrlPost] = []
        self.triggers: dict[str, TriggerId] = {}
        self.views: dict[str, OpenedView] = {}
        #: seconds a trigger id can open a view (Slack: 3)
        self.trigger_lifetime = 3.0
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self._changed = asyncio.Event()

    # waiting for the code under test

    def touch(self) -> None:
        """Something was handled or recorded: wake whoever waits in `until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, condition: Callable[[], T]) -> T:
        """condition()'s first truthy value, re-checked whenever the fake handles something."""
        async with asyncio.timeout(WAIT):
            while True:
                changed = self._changed
                result = condition()
                if result:
                    return result
                await changed.wait()

    # ids and clocks

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    def next_ts(self) -> str:
        """A message ts: the wall clock, strictly increasing."""
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    # lookups

    def team(self, team_id: str) -> Team:
        return self.teams[team_id]

    def channel(self, team_id: str, ref: str) -> Channel | None:
        """By id, or by name with or without '#', as chat.postMessage accepts."""
        team = self.teams[team_id]
        if ref in team.channels:
            return team.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in team.channels.values() if c.name == name), None)

    def find_channel(self, channel_id: str) -> Channel:
        for team in self.teams.values():
            if channel_id in team.channels:
                return team.channels[channel_id]
        raise KeyError(channel_id)

    def message(self, channel: Channel, ts: str) -> Message | None:
        return next((m for m in channel.messages if m.ts == ts and not m.deleted), None)

    def thread(self, channel: Channel, thread_ts: str) -> list[Message]:
        """The parent and its replies, oldest first."""
        return [
            m
            for m in channel.messages
            if not m.deleted and (m.ts == thread_ts or m.thread_ts == thread_ts)
        ]

    def take_fault(self, method: str, *, raw: bool = False) -> Fault | None:
        """The next fault for `method`: one answered by the edge (`raw`), or by the API."""
        for fault in self.faults:
            if fault.method == method and fault.remaining > 0 and (fault.raw is not None) == raw:
                fault.remaining -= 1
                return fault
        return None

    # wire shapes

    def file_dict(self, file: SlackFile) -> JSON:
        team = self.teams[file.team_id]
        path = f"files-pri/{file.team_id}-{file.id}"
        name = quote(file.name)
        media = file.mimetype.split("/")[0]
        d: JSON = {
            "id": file.id,
            "created": file.created,
            "timestamp": file.created,
            "name": file.name,
            "title": file.title,
            "mimetype": file.mimetype,
            "filetype": file.filetype,
            "pretty_type": file.pretty_type,
            "user": file.user,
            "user_team": file.team_id,
            "editable": False,
            "size": file.size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(file.channels),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.base_url}{path}/{name}",
            "url_private_download": f"{self.base_url}{path}/download/{name}",
            "permalink": f"https://{team.domain}.slack.com/files/{file.user}/{file.id}/{name}",
            "permalink_public": f"https://slack-files.com/{file.team_id}-{file.id}-0000000000",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if media in ("audio", "video"):
            d["media_display_type"] = media
        if file.subtype:
            d["subtype"] = file.subtype
        if file.duration_ms is not None:
            d["duration_ms"] = file.duration_ms
        return d

    def message_dict(self, msg: Message, *, metadata: bool = True) -> JSON:
        """Slack's wire shape. History and replies carry `metadata` only when asked with
        include_all_metadata, as on Slack."""
        d: JSON = {"type": "message", "ts": msg.ts, "text": msg.text, "team": msg.team}
        if msg.subtype:
            d["subtype"] = msg.subtype
        if msg.user:
            d["user"] = msg.user
        if msg.bot_id:
            d["bot_id"] = msg.bot_id
            d["app_id"] = msg.app_id
            d["bot_profile"] = {
                "id": msg.bot_id,
                "app_id": msg.app_id,
                "name": "threadscribe",
                "deleted": False,
                "team_id": msg.team,
            }
        if msg.blocks:
            d["blocks"] = msg.blocks
        if msg.attachments:
            d["attachments"] = msg.attachments
        if msg.metadata and metadata:
            d["metadata"] = msg.metadata
        if msg.files:
            d["files"] = [self.file_dict(self.files[f]) for f in msg.files]
            d["upload"] = msg.upload
            d["display_as_bot"] = False
        if msg.edited_ts:
            d["edited"] = {"user": msg.user or msg.bot_id, "ts": msg.edited_ts}
        if msg.reactions:
            d["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in msg.reactions.items()
            ]
        if msg.thread_ts:
            d["thread_ts"] = msg.thread_ts
            channel = self.find_channel(msg.channel)
            if msg.is_reply:
                parent = self.message(channel, msg.thread_ts)
                if parent is not None:
                    d["parent_user_id"] = parent.user or ""
            else:
                replies = [m for m in self.thread(channel, msg.ts) if m.is_reply]
                if replies:
                    users = list(dict.fromkeys(m.user or "" for m in replies))
                    d["reply_count"] = len(replies)
                    d["reply_users_count"] = len(users)
                    d["reply_users"] = users
                    d["latest_reply"] = replies[-1].ts
        return d
