"""Who counts as an admin in a Slack workspace, and telling the admins something.

An admin is a workspace admin or owner (`users.info`: is_admin, is_owner,
is_primary_owner), or a member named in SLACK_ADMIN_USERS. Admins change channel
policies and read usage; they are told when the month's budget runs low, in the app's
direct messages with each of them (`chat.postMessage` to their member id: the app's
Messages tab, which needs no scope beyond chat:write).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import escape
from adapters.slack.errors import CALL_ERRORS, error_code, platform_error

log = logging.getLogger(__name__)

Clients = Callable[[str], Awaitable[AsyncWebClient]]
_FLAGS: Final = ("is_admin", "is_owner", "is_primary_owner")
#: Members read at most when looking for a workspace's admins (users.list pages).
MAX_MEMBERS: Final = 10_000


class Admins:
    def __init__(self, clients: Clients, allowlist: Collection[str] = ()) -> None:
        self._clients = clients
        self.allowlist = frozenset(allowlist)

    async def is_admin(self, team: str, user: str, client: AsyncWebClient | None = None) -> bool:
        """Whether `user` may change settings and read usage in `team`. Slack not
        answering is a no: nothing is changed on a guess."""
        if user in self.allowlist:
            return True
        client = client or await self._clients(team)
        try:
            info = await client.users_info(user=user)
        except CALL_ERRORS as exc:
            log.warning("users.info failed: %s", error_code(exc))
            return False
        person = info.get("user") or {}
        return any(person.get(flag) for flag in _FLAGS)

    async def of(self, team: str) -> list[str]:
        """The workspace's admins and owners, and the allowlist's members."""
        client = await self._clients(team)
        found = dict.fromkeys(self.allowlist)
        cursor: str | None = None
        seen = 0
        while seen < MAX_MEMBERS:
            page = await client.users_list(limit=200, cursor=cursor)
            members: list[dict[str, Any]] = page.get("members") or []
            seen += len(members) or MAX_MEMBERS
            for person in members:
                if person.get("deleted") or person.get("is_bot"):
                    continue
                if any(person.get(flag) for flag in _FLAGS):
                    found[str(person["id"])] = None
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return list(found)

    async def notify(self, team: str, text: str) -> None:
        """Tell every admin of `team`, each in the app's direct messages with them."""
        try:
            people = await self.of(team)
            client = await self._clients(team)
        except CALL_ERRORS as exc:
            raise platform_error(exc, "list the workspace's admins") from exc
        for person in people:
            try:
                await client.chat_postMessage(channel=person, text=escape(text))
            except CALL_ERRORS as exc:
                log.info("could not tell admin %s: %s", person, error_code(exc))
