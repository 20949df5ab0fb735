"""Who may be speaking in a recording shared on Discord, for speaker identification.

In order: who posted it, who the message mentions, who asked for it, who has written in
its thread, and, in a small server, its members; each once, bots left out, with the name
Discord shows for them in the server (`display_name`: the nickname, else the global
name, else the user name). A server's member list needs the Server Members intent
switched on in the Developer Portal; without it Discord answers 403 and the others
still count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

import discord

from adapters.discord.errors import converted
from bot.chat import Person, ThreadRef

log = logging.getLogger(__name__)

#: A server of at most this many members offers them all as candidates.
SMALL_SERVER: Final = 12
THREAD_MESSAGES: Final = 100


class People:
    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def of(self, where: ThreadRef) -> list[Person]:
        guild = self._client.get_guild(int(where.workspace)) if where.workspace.isdigit() else None
        found: list[discord.abc.User | Person] = []
        async with converted():
            if where.message is not None:
                found += await self._message(where, guild)
            if where.requester.isdigit():
                found += await self._member(guild, int(where.requester))
            found += await self._thread(where)
            if guild is not None:
                found += await self._small_server(guild)
        return _people(found)

    async def _message(
        self, where: ThreadRef, guild: discord.Guild | None
    ) -> list[discord.abc.User]:
        assert where.message is not None
        channel = self._client.get_partial_messageable(
            int(where.channel), guild_id=guild.id if guild else None
        )
        try:
            message = await channel.fetch_message(int(where.message))
        except discord.NotFound:
            return []
        return [message.author, *message.mentions]

    async def _member(self, guild: discord.Guild | None, user_id: int) -> list[discord.abc.User]:
        if guild is None:
            return []
        member = guild.get_member(user_id)
        if member is not None:
            return [member]
        try:
            return [await guild.fetch_member(user_id)]
        except discord.NotFound:
            return []

    async def _thread(self, where: ThreadRef) -> list[discord.abc.User]:
        """Authors in the job's thread: one started from its message, or the thread it
        was posted in."""
        thread_id = where.thread
        if where.message is not None and self._client.get_channel(int(where.message)) is not None:
            thread_id = where.message
        if thread_id is None or not thread_id.isdigit():
            return []
        channel = self._client.get_partial_messageable(int(thread_id))
        authors: list[discord.abc.User] = []
        try:
            async for message in channel.history(limit=THREAD_MESSAGES, oldest_first=True):
                authors.append(message.author)
        except (discord.NotFound, discord.Forbidden):
            return []
        return authors

    async def _small_server(self, guild: discord.Guild) -> list[Person]:
        """A small server's members (List Guild Members: discord.py's `fetch_members`
        insists on the members intent over the gateway, which the bot does not ask for;
        REST needs only the Server Members switch in the Developer Portal)."""
        if guild.member_count is None or guild.member_count > SMALL_SERVER:
            return []
        try:
            payload = await self._client.http.get_members(guild.id, SMALL_SERVER + 1, None)
        except discord.Forbidden:
            log.info("no member list for server %s (the Server Members intent is off)", guild.id)
            return []
        found = []
        for member in payload:
            user: Mapping[str, object] = member.get("user", {})
            if user.get("bot") or "id" not in user:
                continue
            name = member.get("nick") or user.get("global_name") or user.get("username")
            if isinstance(name, str) and name.strip():
                handle = user.get("username")
                login = handle if isinstance(handle, str) else None
                found.append(Person(str(user["id"]), name.strip(), login))
        return found


def _people(users: Iterable[discord.abc.User | Person]) -> list[Person]:
    out: dict[str, Person] = {}
    for user in users:
        if isinstance(user, Person):
            out.setdefault(user.id, user)
            continue
        if user.bot or str(user.id) in out:
            continue
        name = user.display_name.strip()
        if name:
            out[str(user.id)] = Person(str(user.id), name, user.name)
    return list(out.values())
