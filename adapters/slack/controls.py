"""Slack's side of the privacy and cost controls: `/transcribe-settings` (a channel's
policy and PII redaction), `/transcribe optout | optin | usage`, and the "Forget
transcript" message shortcut. What they do is the core's (`core.controls`); this module
reads Slack's payloads, asks who is an admin, and answers ephemerally.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import preferences, texts
from adapters.slack.admins import Admins
from adapters.slack.blocks import escape
from bot import reports
from bot.chat import ChannelPolicy, Core, Platform
from bot.controls import ChannelView

log = logging.getLogger(__name__)

SETTINGS_COMMAND: Final = "/transcribe-settings"
FORGET_SHORTCUT: Final = "forget"  # the message shortcut's callback_id (slack-manifest.yml)
#: `/transcribe` words this module answers.
WORDS: Final = frozenset({"optout", "opt-out", "optin", "opt-in", "usage", "forget"})
_SWITCH: Final = {"on": True, "off": False, "default": None}


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def person(user_id: str) -> str:
    return f"<@{user_id}>"


class SlackControls:
    def __init__(self, *, core: Core, admins: Admins) -> None:
        self._core = core
        self._admins = admins

    # -- /transcribe optout | optin | usage ------------------------------------------------

    async def word(self, word: str, body: Mapping[str, Any], client: AsyncWebClient) -> str:
        """The answer to `/transcribe <word>`, as mrkdwn (already escaped)."""
        controls = self._core.controls
        user, team = body["user_id"], body["team_id"]
        if word == "forget":
            return escape(texts.FORGET_HOW)  # a command names no message: the shortcut does
        if word in ("optout", "opt-out", "optin", "opt-in"):
            answer = await controls.set_opt_out(Platform.SLACK, user, word.endswith("out"))
            return escape(answer)
        if not await self._admins.is_admin(team, user, client):
            return escape(texts.ADMINS_ONLY)
        summary = await controls.usage(Platform.SLACK, team)
        return reports.usage(summary, channel=channel, person=person, escape=escape)

    # -- /transcribe-settings ----------------------------------------------------------------

    async def settings(self, body: Mapping[str, Any], client: AsyncWebClient) -> str:
        """The answer to `/transcribe-settings [...]`, as mrkdwn (already escaped)."""
        text = str(body.get("text") or "")
        if preferences.is_preference(text):  # names, summary, translate, vocab (issue 11)
            answer = await preferences.configure(self._core, self._admins, body, text, client)
            return escape(answer)
        words = text.lower().split()
        team, where, user = body["team_id"], body["channel_id"], body["user_id"]
        controls = self._core.controls
        policies = controls.settings.redact_pii_policies
        if not words or words == ["show"]:
            view = await controls.channel(Platform.SLACK, team, where)
            more = escape(await preferences.described(self._core, body))
            return f"{_shown(view, where, policies)}\n{more}"
        if words[0] == "help" or len(words) != 2:
            return escape(texts.SETTINGS_HELP)
        what, value = words
        if what not in ("policy", "redact", "redacted-audio"):
            return escape(texts.SETTINGS_HELP)
        try:
            if what == "policy":
                policy = None if value == "default" else ChannelPolicy.parse(value)
            elif value not in _SWITCH:
                return escape(f"{what} takes on, off or default, not {value!r}")
        except ValueError as exc:
            return escape(f"policy {exc}")
        if not await self._admins.is_admin(team, user, client):
            return escape(texts.ADMINS_ONLY)
        if what == "policy":
            view = await controls.set_policy(Platform.SLACK, team, where, policy, by=user)
        elif what == "redact":
            view = await controls.set_redaction(
                Platform.SLACK, team, where, text=_SWITCH[value], audio=None, by=user
            )
        else:
            switch = _SWITCH[value]
            view = await controls.set_redaction(
                Platform.SLACK, team, where, text=True if switch else None, audio=switch, by=user
            )
        return _shown(view, where, policies)

    # -- the "Forget transcript" shortcut ----------------------------------------------------

    async def forget(self, body: Mapping[str, Any], client: AsyncWebClient) -> str:
        team = (body.get("team") or {}).get("id", "")
        where = (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id", "")
        message = body.get("message") or {}
        ids = [str(i) for i in (message.get("ts"), message.get("thread_ts")) if i]
        if not ids:
            return escape(texts.NO_MESSAGE)
        admin = await self._admins.is_admin(team, user, client)
        outcome = await self._core.controls.forget(
            Platform.SLACK, team, channels=[where], ids=ids, by=user, admin=admin
        )
        return escape(outcome.text)


def _shown(view: ChannelView, where: str, policies: tuple[str, ...]) -> str:
    return reports.channel_settings(view, channel(where), policies, escape)
