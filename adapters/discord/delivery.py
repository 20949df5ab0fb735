"""Where and how a job's posts appear on Discord: the ChatPlatform half of the adapter.

- A trigger in a guild text channel gets a thread started from its source message; the
  thread's id is the message's id, so it is found again after any restart, and Discord's
  160004 ("a thread has already been created") just means: use it.
- DMs, threads, forum posts and voice-channel chats get replies in place.
- A slash command has no source message: its deferred response becomes the status
  message (the thread root), edited through the interaction token while the token is
  valid (15 minutes, kept in memory only), through the bot token after that.
- Every new message carries a nonce derived from the engine's key, with
  `enforce_nonce`, so a post repeated soon after a crash is not shown twice. Discord
  honours a nonce for a few minutes only and never shows it in a channel's history, so
  each post also ends with a reference line derived from the key (`format.marker`), and
  a post that an earlier attempt (or process) may have made is looked for there first.

What the adapter chose at intake travels in the job's platform options under "discord"
(`Hints`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import discord

from adapters.discord import texts
from adapters.discord.errors import converted
from adapters.discord.format import (
    Outgoing,
    is_marked,
    nonce,
    outgoing,
    thread_name,
)
from adapters.discord.replies import NO_MENTIONS
from bot.chat import PlatformError, PlatformRefused, Post, Reaction, ThreadRef

log = logging.getLogger(__name__)

INTERACTION_LIFETIME: Final = timedelta(minutes=15)
#: Stop using a token this long before Discord does (a call may be slow to arrive).
TOKEN_MARGIN: Final = timedelta(seconds=30)
#: Errors that mean the interaction token can no longer be used.
TOKEN_GONE: Final = frozenset({10015, 10062, 50027})  # unknown webhook/interaction, invalid token
THREAD_EXISTS: Final = 160004
UNKNOWN_MESSAGE: Final = 10008
CANNOT_THREAD_HERE: Final = 50024  # "Cannot execute action on this channel type"
EMOJI: Final = {Reaction.WORKING: "⏳", Reaction.DONE: "✅", Reaction.FAILED: "❌"}
#: How many messages after a job began are read when looking for a post it may have made
#: (a thread of its own holds a few; a busy channel, more). Not found within: post.
SEARCH_LIMIT: Final = 500
#: Before the job's creation, what clocks may disagree by.
SEARCH_SKEW: Final = timedelta(minutes=2)
#: Keys this process has posted under, remembered (bounded) to know a retry from a first try.
REMEMBERED_KEYS: Final = 10_000


class Reply(enum.StrEnum):
    THREAD = "thread"  # start (or reuse) a thread from the source message
    IN_PLACE = "in_place"  # DMs, threads, forum posts, voice-channel chats


@dataclass(frozen=True, slots=True)
class Hints:
    """What the adapter decided at intake, stored with the job in its options' platform
    field under "discord" (JSON; never a token)."""

    reply: Reply = Reply.IN_PLACE
    interaction: str | None = None  # the deferred interaction's id, for its in-memory token
    embeds: bool = True  # the bot may embed links there

    def extra(self) -> dict[str, Any]:
        """What goes in `JobOptions.platform`."""
        return {"discord": asdict(self)}

    @classmethod
    def of(cls, extra: Mapping[str, Any]) -> Hints:
        raw = extra.get("discord")
        if not isinstance(raw, Mapping):
            return cls()
        return cls(
            reply=Reply(raw.get("reply", Reply.IN_PLACE)),
            interaction=raw.get("interaction"),
            embeds=bool(raw.get("embeds", True)),
        )


def reply_mode(channel: object) -> Reply:
    """Threads can be started from messages in text and announcement channels only."""
    if isinstance(channel, discord.TextChannel):  # announcement channels are TextChannels too
        return Reply.THREAD
    return Reply.IN_PLACE


class Interactions:
    """Interactions answered with a deferral, by id, while their tokens can be used.

    Tokens are credentials: they live here, in memory, and nowhere else. After a restart
    they are gone, and the bot token takes over.
    """

    def __init__(self, *, now: Callable[[], datetime] = discord.utils.utcnow) -> None:
        self._now = now
        self._by_id: dict[str, discord.Interaction] = {}

    def add(self, interaction: discord.Interaction) -> str:
        self._prune()
        key = str(interaction.id)
        self._by_id[key] = interaction
        return key

    def get(self, interaction_id: str | None) -> discord.Interaction | None:
        interaction = self._by_id.get(interaction_id or "")
        if interaction is None or self._expired(interaction):
            return None
        return interaction

    def forget(self, interaction_id: str | None) -> None:
        self._by_id.pop(interaction_id or "", None)

    def __len__(self) -> int:
        return len(self._by_id)

    def _expired(self, interaction: discord.Interaction) -> bool:
        return self._now() >= interaction.created_at + INTERACTION_LIFETIME - TOKEN_MARGIN

    def _prune(self) -> None:
        for key in [k for k, ix in self._by_id.items() if self._expired(ix)]:
            del self._by_id[key]


class Delivery:
    def __init__(
        self,
        client: discord.Client,
        interactions: Interactions,
        *,
        shared_store: bool = False,
        now: Callable[[], datetime] = discord.utils.utcnow,
    ) -> None:
        self._client = client
        self._interactions = interactions
        self._shared_store = shared_store  # other processes may work on the same jobs
        self._started = now()
        self._tried: OrderedDict[str, None] = OrderedDict()

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        hints = Hints.of(where.extra)
        out = outgoing(post, key=key, embeds=hints.embeds)
        async with converted():
            if where.message is None and where.thread is None:
                return await self._first_of_command(where, hints, out, key)
            if hints.reply is Reply.THREAD:
                anchor = int(where.message or where.thread or 0)
                thread = await self._thread(where, anchor, where.title)
                if thread is not None:
                    try:
                        return await self._send_once(where, thread, out, key)
                    except discord.Forbidden:
                        log.info("may not post in thread %s; replying in place", thread)
            # In place: a reply to the source message, or to a slash command's status.
            reply_to = where.message or where.thread
            try:
                return await self._send_once(where, int(where.channel), out, key, reply_to=reply_to)
            except discord.Forbidden:
                # The bot may not post here, but the interaction may still answer.
                interaction = self._interactions.get(hints.interaction)
                if interaction is None:
                    raise
                sent = await interaction.followup.send(**_send_kwargs(out), wait=True)
                return str(sent.id)

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        hints = Hints.of(where.extra)
        out = outgoing(post, key=key, embeds=hints.embeds)
        kwargs: dict[str, Any] = {
            "content": out.content,
            "embeds": list(out.embeds),
            "allowed_mentions": NO_MENTIONS,
        }
        if post.document is not None:
            # A result is replaced whole: its buttons and its files go with it.
            kwargs["view"] = out.view
            kwargs["attachments"] = out.discord_files()
        async with converted():
            if where.message is None and message_id == where.thread:
                # A slash command's status: the deferred response itself, in the channel.
                if await self._edit_response(hints, kwargs):
                    return
                channel = int(where.channel)
            elif hints.reply is Reply.THREAD:
                channel = int(where.message or where.thread or 0)
            else:
                channel = int(where.channel)
            try:
                await self._message(channel, message_id).edit(**kwargs)
            except (discord.NotFound, discord.Forbidden):
                if channel == int(where.channel):
                    raise
                # No thread could be used, so the message went in place.
                await self._message(int(where.channel), message_id).edit(**kwargs)

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        """⏳ while working, then ✅ or ❌ in its place. A slash command has no source
        message to react on: its status message says it all."""
        if where.message is None:
            return
        message = self._message(int(where.channel), where.message)
        me = self._client.user
        try:
            async with converted():
                await message.add_reaction(EMOJI[reaction])
                if reaction is not Reaction.WORKING and me is not None:
                    await message.remove_reaction(EMOJI[Reaction.WORKING], me)
        except PlatformError as exc:
            if exc.retryable:
                raise
            # Cosmetic: a deleted message or a missing Add Reactions must not fail a job.
            log.info("reaction %s not shown on %s: %s", reaction.value, where.message, exc)

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        """Delete the job's posts (their attachments go with them) wherever they were made:
        in the thread started from the source message, in place, or as a slash command's
        deferred response; then take the bot's reactions off the source message. A post
        already gone is no error. The thread itself stays: deleting it needs Manage
        Threads, which the bot is not given."""
        hints = Hints.of(where.extra)
        places = [int(where.channel)]
        if hints.reply is Reply.THREAD and (where.message or where.thread):
            places.insert(0, int(where.message or where.thread or 0))
        async with converted():
            for message_id in message_ids:
                await self._delete(places, message_id, hints)
            if where.message is not None:
                message = self._message(int(where.channel), where.message)
                me = self._client.user
                for emoji in EMOJI.values():
                    with contextlib.suppress(discord.NotFound):
                        if me is not None:
                            await message.remove_reaction(emoji, me)

    async def _delete(self, places: Sequence[int], message_id: str, hints: Hints) -> None:
        interaction = self._interactions.get(hints.interaction)
        for channel in places:
            try:
                await self._message(channel, message_id).delete()
                return
            except discord.NotFound:
                continue
        if interaction is not None:
            # A slash command's deferred response, while its token is good.
            with contextlib.suppress(discord.NotFound):
                await interaction.delete_original_response()

    async def tell_owner(self, guild_id: int, text: str) -> None:
        """Send the server's owner `text` in a direct message."""
        guild = self._client.get_guild(guild_id)
        if guild is None:
            await self._client.wait_until_ready()
            guild = self._client.get_guild(guild_id)
        if guild is None or guild.owner_id is None:
            raise PlatformRefused(texts.CHANNEL_GONE)
        async with converted():
            owner = self._client.get_user(guild.owner_id) or await self._client.fetch_user(
                guild.owner_id
            )
            channel = owner.dm_channel or await owner.create_dm()
            await channel.send(text, allowed_mentions=NO_MENTIONS)

    # -- the pieces ----------------------------------------------------------------------

    def _message(self, channel_id: int, message_id: str | int) -> discord.PartialMessage:
        channel = self._client.get_partial_messageable(channel_id)
        return channel.get_partial_message(int(message_id))

    async def _send_once(
        self,
        where: ThreadRef,
        channel_id: int,
        out: Outgoing,
        key: str,
        *,
        reply_to: str | None = None,
    ) -> str:
        """Post `out` in the channel unless an earlier attempt did: within minutes the nonce
        makes sure of it, after that the reference line found in the channel."""
        if self._may_exist(where, key):
            found = await self._find(where, channel_id, key)
            if found is not None:
                log.info("post %s was made before; not posting it again", key)
                return found
        self._tried[key] = None
        while len(self._tried) > REMEMBERED_KEYS:
            self._tried.popitem(last=False)
        return await self._send(channel_id, out, nonce(key), reply_to=reply_to)

    def _may_exist(self, where: ThreadRef, key: str) -> bool:
        """Could an earlier attempt have made this post? Not when the job began after this
        process did and this process never posted under the key (and no other process
        shares the job store)."""
        if self._shared_store or key in self._tried or where.created_at is None:
            return True
        created = where.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return created < self._started

    async def _find(self, where: ThreadRef, channel_id: int, key: str) -> str | None:
        me = self._client.user
        if me is None:
            await self._client.wait_until_ready()
            me = self._client.user
        created = where.created_at or self._started
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        channel = self._client.get_partial_messageable(channel_id)
        after = created - SEARCH_SKEW
        async for message in channel.history(after=after, limit=SEARCH_LIMIT, oldest_first=True):
            if me is not None and message.author.id == me.id and is_marked(message.content, key):
                return str(message.id)
        return None

    async def _send(
        self, channel_id: int, out: Outgoing, key_nonce: str, *, reply_to: str | None = None
    ) -> str:
        channel = self._client.get_partial_messageable(channel_id)
        kwargs = _send_kwargs(out)
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=int(reply_to), channel_id=channel_id, fail_if_not_exists=False
            )
        sent = await channel.send(**kwargs, nonce=key_nonce)
        return str(sent.id)

    async def _thread(self, where: ThreadRef, anchor: int, title: str) -> int | None:
        """The thread started from message `anchor` (made now, or found): its id, or None
        when none can be made here, and the reply goes in place."""
        if not where.workspace.isdigit():
            return None  # not in a server (DMs have no threads)
        guild_id = int(where.workspace)
        if self._client.get_guild(guild_id) is None:
            await self._client.wait_until_ready()
            if self._client.get_guild(guild_id) is None:
                raise PlatformRefused(texts.CHANNEL_GONE)
        channel = self._client.get_partial_messageable(int(where.channel), guild_id=guild_id)
        try:
            thread = await channel.get_partial_message(anchor).create_thread(
                name=thread_name(title)
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:
                return anchor  # a thread started from a message takes the message's id
            if exc.code == UNKNOWN_MESSAGE:
                # The message was deleted; a thread started from it earlier lives on.
                return anchor if self._client.get_channel(anchor) is not None else None
            if exc.code == CANNOT_THREAD_HERE or isinstance(exc, discord.Forbidden):
                log.info("no thread in channel %s (%s); replying in place", where.channel, exc)
                return None
            raise
        return thread.id

    async def _first_of_command(
        self, where: ThreadRef, hints: Hints, out: Outgoing, key: str
    ) -> str:
        """A slash command's first post fills in its deferred response; without a usable
        token (expired, or lost in a restart) a new message becomes the root instead."""
        interaction = self._interactions.get(hints.interaction)
        if interaction is not None:
            try:
                sent = await interaction.edit_original_response(
                    content=out.content,
                    embeds=list(out.embeds),
                    attachments=out.discord_files(),
                    allowed_mentions=NO_MENTIONS,
                    view=out.view,
                )
                return str(sent.id)
            except discord.HTTPException as exc:
                if exc.code not in TOKEN_GONE:
                    raise
                self._interactions.forget(hints.interaction)
        return await self._send_once(where, int(where.channel), out, key)

    async def _edit_response(self, hints: Hints, kwargs: dict[str, Any]) -> bool:
        interaction = self._interactions.get(hints.interaction)
        if interaction is None:
            return False
        try:
            await interaction.edit_original_response(**kwargs)
        except discord.HTTPException as exc:
            if exc.code not in TOKEN_GONE:
                raise
            log.info("interaction token unusable (%s); editing with the bot token", exc.code)
            self._interactions.forget(hints.interaction)
            return False
        return True


def _send_kwargs(out: Outgoing) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if out.content:
        kwargs["content"] = out.content
    if out.embeds:
        kwargs["embeds"] = list(out.embeds)
    if out.files:
        kwargs["files"] = out.discord_files()
    if out.view is not None:
        kwargs["view"] = out.view
    return kwargs
