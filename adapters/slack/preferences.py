"""A channel's speaker names, summary, translation and vocabulary on Slack (the core's
settings commands, bot/revisions.py): `names on|off`, `summary on|off`, `translate
es|off`, `vocab add|remove|spell|unspell|list`, `settings`. Said after `/transcribe` or
`/transcribe-settings`, the same either way. Changing a setting is for workspace admins
(and SLACK_ADMIN_USERS); the vocabulary and reading the settings are anyone's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.admins import Admins
from bot.chat import ChannelRef, Core, Platform

#: First words of a channel's settings commands (what bot/revisions.py reads).
WORDS: Final = frozenset({"names", "summary", "translate", "vocab", "vocabulary", "settings"})
_ANYONE: Final = ("vocab", "settings")


def is_preference(text: str) -> bool:
    words = text.strip().lower().split(None, 1)
    return bool(words) and words[0] in WORDS


async def configure(
    core: Core, admins: Admins, body: Mapping[str, Any], text: str, client: AsyncWebClient
) -> str:
    """The core's answer to a settings command for the command's channel (plain text)."""
    user, team = body["user_id"], body["team_id"]
    where = ChannelRef(Platform.SLACK, team, body["channel_id"])
    admin = text.strip().lower().startswith(_ANYONE) or await admins.is_admin(team, user, client)
    return await core.configure(where, text.strip(), by=user, admin=admin)


async def described(core: Core, body: Mapping[str, Any]) -> str:
    """The channel's names, summary, translation and vocabulary, in one line."""
    where = ChannelRef(Platform.SLACK, body["team_id"], body["channel_id"])
    return await core.configure(where, "settings", by=body["user_id"], admin=False)
