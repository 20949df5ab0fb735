"""The world of the Discord fake: ids, clock, users, guild, channels and payload shapes.

Everything here is plain data and the JSON shapes Discord sends for it (snowflakes as
strings, ISO timestamps, permissions as decimal strings). The gateway, REST and
interaction halves of the fake (`discord_gateway`, `discord_rest`, `discord_http`,
`discord_interactions`) and the façade (`tests.fakes.discord`) build on it; nothing here
does I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import itertools
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_CONTENT_LENGTH = 2000


class Intent(enum.IntFlag):
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25


ALL_INTENTS = Intent(sum(Intent))
PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT


class ApplicationFlag(enum.IntFlag):
    # The "_LIMITED" flags are what an unverified app (< 100 guilds) has once the
    # intent is switched on in the Developer Portal.
    GATEWAY_PRESENCE_LIMITED = 1 << 13
    GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
    GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
    APPLICATION_COMMAND_BADGE = 1 << 23


def application_flags(privileged: Intent) -> int:
    flags = ApplicationFlag.APPLICATION_COMMAND_BADGE
    if privileged & Intent.GUILD_PRESENCES:
        flags |= ApplicationFlag.GATEWAY_PRESENCE_LIMITED
    if privileged & Intent.GUILD_MEMBERS:
        flags |= ApplicationFlag.GATEWAY_GUILD_MEMBERS_LIMITED
    if privileged & Intent.MESSAGE_CONTENT:
        flags |= ApplicationFlag.GATEWAY_MESSAGE_CONTENT_LIMITED
    return int(flags)


class Permission(enum.IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38


ALL_PERMISSIONS = Permission(sum(Permission))
EVERYONE_PERMISSIONS = (
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.CHANGE_NICKNAME
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.SEND_MESSAGES_IN_THREADS
)
# What the bot's invite asks for (and so what its managed role holds).
BOT_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
)


class ChannelType(enum.IntEnum):
    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_FORUM = 15


THREAD_TYPES = {
    ChannelType.ANNOUNCEMENT_THREAD,
    ChannelType.PUBLIC_THREAD,
    ChannelType.PRIVATE_THREAD,
}


class MessageType(enum.IntEnum):
    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    THREAD_STARTER_MESSAGE = 21
    CONTEXT_MENU_COMMAND = 23


class MessageFlag(enum.IntFlag):
    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    IS_VOICE_MESSAGE = 1 << 13


class OptionType(enum.IntEnum):
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class CommandType(enum.IntEnum):
    CHAT_INPUT = 1
    USER = 2
    MESSAGE = 3


# -- time and ids -----------------------------------------------------------------------


class FakeClock:
    """Wall-clock time that a test can move forward (never back).

    It follows real time so that snowflakes minted by the fake agree with discord.py's
    own `utcnow()` checks (e.g. `Interaction.is_expired()`); `advance()` adds an offset,
    which is how a test ages interaction tokens and CDN signatures.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the fake clock only moves forward")
        self._offset += seconds

    def iso(self, at: float | None = None) -> str:
        return iso_timestamp(self.now() if at is None else at)


def iso_timestamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="microseconds")


class Snowflakes:
    """Mints snowflakes from the clock: (ms since 2015) << 22 | worker | increment."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._increment = itertools.count()

    def next(self, *, at: float | None = None) -> int:
        ms = int((self._clock.now() if at is None else at) * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (1 << 17) | (next(self._increment) & 0xFFF)


def snowflake_time(snowflake: int) -> float:
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


# -- the world -------------------------------------------------------------------------


@dataclass
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed_by_bot: int | None = None  # the bot user id for an integration's role

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed_by_bot is not None,
            "mentionable": False,
            "flags": 0,
        }
        if self.managed_by_bot is not None:
            data["tags"] = {"bot_id": str(self.managed_by_bot)}
        return data


@dataclass
class FakeMember:
    user: FakeUser
    role_ids: list[int]
    joined_at: str
    nick: str | None = None

    def payload(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class FakeChannel:
    id: int
    type: ChannelType
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    position: int = 0
    recipients: list[FakeUser] = field(default_factory=list)  # DMs
    owner_id: int | None = None  # threads
    created_at: str | None = None  # threads
    message_count: int = 0
    last_message_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self, *, with_guild_id: bool = True) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "type": int(self.type),
            "flags": 0,
            "last_message_id": None if self.last_message_id is None else str(self.last_message_id),
        }
        if self.type is ChannelType.DM:
            data["recipients"] = [u.payload() for u in self.recipients]
            return data
        if with_guild_id and self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        data["name"] = self.name
        data["parent_id"] = None if self.parent_id is None else str(self.parent_id)
        data["rate_limit_per_user"] = 0
        data["nsfw"] = False
        if self.is_thread:
            data.update(
                owner_id=str(self.owner_id),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=1,
                applied_tags=[],
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": self.created_at,
                    "locked": False,
                    "create_timestamp": self.created_at,
                },
            )
            return data
        data["position"] = self.position
        data["permission_overwrites"] = []
        if self.type in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            data.update(topic=None, default_auto_archive_duration=1440)
        if self.type is ChannelType.GUILD_FORUM:
            data.update(
                topic=None,
                available_tags=[],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
                default_thread_rate_limit_per_user=0,
            )
        return data


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: list[FakeRole]
    members: list[FakeMember]

    def member(self, user_id: int) -> FakeMember | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions (no channel overwrites exist in the fake's world)."""
        if user_id == self.owner_id:
            return int(ALL_PERMISSIONS)
        member = self.member(user_id)
        perms = 0
        for role in self.roles:
            if role.id == self.id or (member is not None and role.id in member.role_ids):
                perms |= role.permissions
        if perms & Permission.ADMINISTRATOR:
            return int(ALL_PERMISSIONS)
        return perms


@dataclass
class World:
    """Who and what exists. Ids are fixed so that failures read the same every run."""

    application_id: int
    bot: FakeUser
    owner: FakeUser
    alice: FakeUser  # an ordinary member
    mod: FakeUser  # a member whose role has Manage Server
    guild: FakeGuild
    general: FakeChannel  # a text channel: threads start here
    forum: FakeChannel
    thread: FakeChannel  # an existing public thread in #general
    forum_post: FakeChannel  # an existing post (a thread) in the forum
    dm: FakeChannel  # alice's DM with the bot
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    users: dict[int, FakeUser] = field(default_factory=dict)

    def guild_channels(self) -> list[FakeChannel]:
        return [c for c in self.channels.values() if c.guild_id is not None and not c.is_thread]

    def guild_threads(self) -> list[FakeChannel]:
        return [c for c in self.channels.values() if c.guild_id is not None and c.is_thread]


def default_world(*, joined_at: str = "2025-01-06T09:30:00.000000+00:00") -> World:
    base = 1_310_000_000_000_000_000
    application_id = base + 1
    bot = FakeUser(application_id, "threadscribe", bot=True)
    owner = FakeUser(base + 2, "olivia", "Olivia")
    alice = FakeUser(base + 3, "alice", "Alice")
    mod = FakeUser(base + 4, "morgan", "Morgan")
    guild_id = base + 100
    moderator_role = FakeRole(base + 101, "Moderator", int(Permission.MANAGE_GUILD), 2)
    bot_role = FakeRole(base + 102, "threadscribe", int(BOT_PERMISSIONS), 1, managed_by_bot=bot.id)
    everyone = FakeRole(guild_id, "@everyone", int(EVERYONE_PERMISSIONS), 0)
    guild = FakeGuild(
        id=guild_id,
        name="Threadscribe Test Guild",
        owner_id=owner.id,
        roles=[everyone, bot_role, moderator_role],
        members=[
            FakeMember(owner, [], joined_at),
            FakeMember(bot, [bot_role.id], joined_at),
            FakeMember(alice, [], joined_at),
            FakeMember(mod, [moderator_role.id], joined_at),
        ],
    )
    general = FakeChannel(base + 200, ChannelType.GUILD_TEXT, "general", guild_id, position=0)
    forum = FakeChannel(base + 201, ChannelType.GUILD_FORUM, "recordings", guild_id, position=1)
    thread = FakeChannel(
        base + 202,
        ChannelType.PUBLIC_THREAD,
        "standup notes",
        guild_id,
        parent_id=general.id,
        owner_id=alice.id,
        created_at=joined_at,
    )
    forum_post = FakeChannel(
        base + 203,
        ChannelType.PUBLIC_THREAD,
        "Interview with the mayor",
        guild_id,
        parent_id=forum.id,
        owner_id=alice.id,
        created_at=joined_at,
    )
    dm = FakeChannel(base + 300, ChannelType.DM, recipients=[alice])
    world = World(
        application_id=application_id,
        bot=bot,
        owner=owner,
        alice=alice,
        mod=mod,
        guild=guild,
        general=general,
        forum=forum,
        thread=thread,
        forum_post=forum_post,
        dm=dm,
    )
    for channel in (general, forum, thread, forum_post, dm):
        world.channels[channel.id] = channel
    for user in (bot, owner, alice, mod):
        world.users[user.id] = user
    return world


def guild_payload(world: World, *, members: list[FakeMember], joined_at: str) -> JSON:
    """A GUILD_CREATE payload: the guild plus the extra gateway-only fields."""
    guild = world.guild
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "features": [],
        "roles": [r.payload() for r in guild.roles],
        "emojis": [],
        "stickers": [],
        "application_id": None,
        "system_channel_id": str(world.general.id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        # gateway-only fields
        "joined_at": joined_at,
        "large": False,
        "unavailable": False,
        "member_count": len(guild.members),
        "voice_states": [],
        "members": [m.payload() for m in members],
        # GUILD_CREATE channels carry no guild_id; threads do.
        "channels": [c.payload(with_guild_id=False) for c in world.guild_channels()],
        "threads": [c.payload() for c in world.guild_threads()],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


# -- attachment bytes -----------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedBytes:
    """Deterministic content of any size, produced chunk by chunk and never held whole."""

    size: int
    seed: int = 0
    chunk_size: int = 1 << 16

    def chunks(self) -> Iterator[bytes]:
        remaining, index = self.size, 0
        while remaining > 0:
            n = min(self.chunk_size, remaining)
            # Each chunk differs (its index is hashed in), so order and offsets matter.
            block = hashlib.sha256(f"threadscribe-fake-{self.seed}-{index}".encode()).digest()
            yield (block * math.ceil(n / len(block)))[:n]
            remaining, index = remaining - n, index + 1

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class Upload:
    """A file a (fake) user attaches to a message or to a /command option."""

    filename: str
    data: bytes | GeneratedBytes
    content_type: str | None = None
    duration_secs: float | None = None  # voice messages
    waveform: bytes | None = None  # voice messages
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.size


@dataclass
class StoredAttachment:
    id: int
    channel_id: int
    filename: str
    data: bytes | GeneratedBytes
    content_type: str | None
    ephemeral: bool = False
    duration_secs: float | None = None
    waveform: bytes | None = None
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.size

    @property
    def path(self) -> str:
        folder = "ephemeral-attachments" if self.ephemeral else "attachments"
        return f"/{folder}/{self.channel_id}/{self.id}/{self.filename}"


class CdnSigner:
    """Discord's attachment URLs carry ex (expiry), is (issued) and hm (signature), hex."""

    def __init__(self, clock: FakeClock, *, lifetime: float, secret: bytes = b"fake-cdn") -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._secret = secret

    def _mac(self, path: str, ex: str, is_: str) -> str:
        return hmac.new(self._secret, f"{path}|{ex}|{is_}".encode(), hashlib.sha256).hexdigest()

    def query(self, path: str) -> str:
        issued = int(self._clock.now())
        ex, is_ = f"{issued + int(self.lifetime):x}", f"{issued:x}"
        return f"ex={ex}&is={is_}&hm={self._mac(path, ex, is_)}&"

    def valid(self, path: str, ex: str | None, is_: str | None, hm: str | None) -> bool:
        if not (ex and is_ and hm):
            return False
        if not hmac.compare_digest(hm, self._mac(path, ex, is_)):
            return False
        try:
            return int(ex, 16) > self._clock.now()
        except ValueError:
            return False


def attachment_payload(att: StoredAttachment, *, base_url: str, signer: CdnSigner) -> JSON:
    url = f"{base_url}{att.path}?{signer.query(att.path)}"
    data: JSON = {
        "id": str(att.id),
        "filename": att.filename,
        "size": att.size,
        "url": url,
        "proxy_url": url,
        "content_type": att.content_type,
    }
    if att.description is not None:
        data["description"] = att.description
    if att.ephemeral:
        data["ephemeral"] = True
    if att.duration_secs is not None:
        data["duration_secs"] = att.duration_secs
    if att.waveform is not None:
        data["waveform"] = base64.b64encode(att.waveform).decode()
    return data


def default_waveform(duration_secs: float) -> bytes:
    """Discord samples a voice message at most 256 times, one byte per sample."""
    n = max(1, min(256, math.ceil(duration_secs * 10)))
    return bytes((37 * i) % 256 for i in range(n))


# -- messages ---------------------------------------------------------------------------

_USER_MENTION = re.compile(r"<@!?(\d+)>")


def mentioned_ids(content: str) -> list[int]:
    return [int(m) for m in _USER_MENTION.findall(content)]
