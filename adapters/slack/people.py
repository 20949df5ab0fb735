"""Who may be speaking in a recording shared on Slack, for speaker identification.

In order: who shared it, who its message mentions (`<@U…>`), who takes part in its
thread, and, in a small channel, its members; each once, bots and deactivated accounts
left out, with the name Slack shows for them (`users.info`: the display name, else the
full name). Uses the scopes the app has already: `channels:history` and
`groups:history` (the thread), `channels:read` and `groups:read` (a channel's members),
`users:read` (names). Names are cached per workspace for a while: a busy channel asks
Slack once, not per recording.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import CALL_ERRORS, error_code, platform_error
from bot.chat import Person, ThreadRef

log = logging.getLogger(__name__)

#: A channel of at most this many members offers them all as candidates.
SMALL_CHANNEL: Final = 12
#: Replies of a thread read for its participants.
THREAD_MESSAGES: Final = 200
NAMES_TTL: Final = 600.0
_CACHED_NAMES: Final = 10_000
_MENTION: Final = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")

Clients = Callable[[str], Awaitable[AsyncWebClient]]


class People:
    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._names: OrderedDict[tuple[str, str], tuple[float, Person | None]] = OrderedDict()

    async def of(self, where: ThreadRef) -> list[Person]:
        client = await self._clients(where.workspace)
        try:
            ids = await self._ids(client, where)
            found = []
            for user in ids:
                person = await self._person(client, where.workspace, user)
                if person is not None:
                    found.append(person)
        except CALL_ERRORS as exc:
            raise platform_error(exc, "look up the people in the thread") from exc
        return found

    async def _ids(self, client: AsyncWebClient, where: ThreadRef) -> list[str]:
        ids: list[str] = []
        root = where.thread or where.message
        if root is not None:
            page = await client.conversations_replies(
                channel=where.channel, ts=root, limit=THREAD_MESSAGES, inclusive=True
            )
            messages: Sequence[Mapping[str, Any]] = page.get("messages") or ()
            source = next((m for m in messages if m.get("ts") == where.message), None)
            if source is not None:
                ids += _authors([source]) + _MENTION.findall(str(source.get("text") or ""))
            if where.requester:
                ids.append(where.requester)
            ids += _authors(messages)
            for message in messages:
                ids += _MENTION.findall(str(message.get("text") or ""))
        elif where.requester:
            ids.append(where.requester)
        ids += await self._small_channel(client, where.channel)
        return [i for i in dict.fromkeys(ids) if i]  # bots are known by users.info

    @staticmethod
    async def _small_channel(client: AsyncWebClient, channel: str) -> list[str]:
        """The members of a small channel; none for a large one, or where Slack will not
        say (a DM needs a scope the app does not ask for: the thread has told us who)."""
        try:
            info = await client.conversations_info(channel=channel, include_num_members=True)
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", channel, error_code(exc))
            return []
        count = (info.get("channel") or {}).get("num_members")
        if not isinstance(count, int) or count > SMALL_CHANNEL:
            return []
        page = await client.conversations_members(channel=channel, limit=SMALL_CHANNEL + 1)
        members = page.get("members") or []
        return [m for m in members if isinstance(m, str)]

    async def _person(self, client: AsyncWebClient, team: str, user: str) -> Person | None:
        key = (team, user)
        cached = self._names.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            if error_code(exc) not in ("user_not_found", "user_not_visible"):
                raise
            person = None
        else:
            person = _person_of(info.get("user") or {})
        self._names[key] = (time.monotonic() + NAMES_TTL, person)
        while len(self._names) > _CACHED_NAMES:
            self._names.popitem(last=False)
        return person


def _authors(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(m["user"]) for m in messages if m.get("user") and not m.get("bot_id")]


def _person_of(user: Mapping[str, Any]) -> Person | None:
    if user.get("is_bot") or user.get("deleted") or user.get("id") == "USLACKBOT":
        return None
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name")
    name = name or user.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    handle = user.get("name") if isinstance(user.get("name"), str) else None
    return Person(str(user["id"]), name.strip(), handle)
