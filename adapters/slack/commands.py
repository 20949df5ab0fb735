"""`/transcribe`: help, a link, `on`/`off` for the channel, `status`.

Slash commands carry no message to answer under: the job is taken in with the command's
trigger id, the acknowledgement tells the user (ephemerally) that it is on its way, and
the engine's first post starts the thread the result goes in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import preferences, texts
from adapters.slack.admins import Admins
from adapters.slack.answers import SHOWN_HITS, search_message
from adapters.slack.blocks import escape
from adapters.slack.chat import SlackChat
from adapters.slack.controls import WORDS, SlackControls
from adapters.slack.errors import CALL_ERRORS, error_code
from adapters.slack.events import can_post
from adapters.slack.incoming import command_trigger
from bot import messages
from bot.chat import ChannelRef, Core, JobState, Platform
from bot.errors import OptionsError
from bot.intake import parse_request
from bot.tasks import TaskSet

log = logging.getLogger(__name__)


async def _permalink(client: AsyncWebClient, channel: str, ts: str | None) -> str | None:
    """A link to a message (a search hit's result), None when Slack gives none."""
    if ts is None:
        return None
    try:
        found = await client.chat_getPermalink(channel=channel, message_ts=ts)
    except CALL_ERRORS as exc:
        log.info("chat.getPermalink: %s", error_code(exc))
        return None
    link = found.get("permalink")
    return link if isinstance(link, str) and link.startswith("https://") else None


COMMAND: Final = "/transcribe"


class Commands:
    def __init__(
        self,
        *,
        core: Core,
        chat: SlackChat,
        admins: Admins,
        controls: SlackControls,
        tasks: TaskSet,
    ) -> None:
        self._core = core
        self._chat = chat
        self._admins = admins
        self._controls = controls
        self._tasks = tasks

    async def transcribe(
        self,
        ack: AsyncAck,
        body: Mapping[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        text = str(body.get("text") or "").strip()
        word = text.lower()
        first = word.split(None, 1)[0] if word else ""
        if first == "search":
            await self._search(ack, body, text[len("search") :].strip(), client, respond)
            return
        if word in WORDS:
            # Already mrkdwn: it mentions channels and people.
            answer = await self._controls.word(word, body, client)
            await ack(text=answer, response_type="ephemeral")
            return
        if word in ("", "help"):
            answer = texts.HELP
        elif preferences.is_preference(text):
            answer = await preferences.configure(self._core, self._admins, body, text, client)
        elif word in ("on", "off"):
            answer = await self._auto(body, client, enabled=word == "on")
        elif word == "status":
            answer = await self._status(body)
        else:
            answer = await self._link(body, text, client)
        await ack(text=escape(answer), response_type="ephemeral")

    async def _search(
        self,
        ack: AsyncAck,
        body: Mapping[str, Any],
        words: str,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """`/transcribe search <words>`: this channel's recordings only, for the asker
        only. Acknowledged at once (the word searches take a moment), answered through
        the command's response_url, ephemeral."""
        if not words:
            await ack(text=escape(messages.SEARCH_USAGE), response_type="ephemeral")
            return
        await ack(text=escape(texts.searching(words)), response_type="ephemeral")
        where = ChannelRef(Platform.SLACK, body["team_id"], body["channel_id"])
        self._tasks.spawn(self._search_answer(where, words, body, client, respond), "search")

    async def _search_answer(
        self,
        where: ChannelRef,
        words: str,
        body: Mapping[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        results = await self._core.search(where, words, by=body["user_id"])
        links: dict[int, str | None] = {}
        for index, hit in enumerate(results.hits[:SHOWN_HITS]):
            links[index] = await _permalink(client, hit.where.channel, hit.result_message)
        message = search_message(results, links)
        await respond(
            text=message.text,
            blocks=message.blocks,
            response_type="ephemeral",
            replace_original=True,
        )

    async def _link(self, body: Mapping[str, Any], text: str, client: AsyncWebClient) -> str:
        try:
            request = parse_request(text)
        except OptionsError as exc:
            return str(exc)
        if request.url is None:
            return messages.NEED_LINK
        if not self._core.accepting:
            return messages.SHUTTING_DOWN
        if not await can_post(client, body["channel_id"]):
            return texts.INVITE_ME
        trigger = command_trigger(
            team=body["team_id"],
            channel=body["channel_id"],
            user=body["user_id"],
            trigger_id=body["trigger_id"],
            text=request.url,
            options=request.options,
        )
        taken = await self._core.take(trigger)
        for job_id in taken.created_ids:
            self._chat.created(job_id)
        if taken.refusals:
            return messages.refused(taken.refusals)
        if taken.created:
            return messages.STARTED
        return messages.ALREADY if taken.existing else messages.NO_MEDIA

    async def _auto(self, body: Mapping[str, Any], client: AsyncWebClient, *, enabled: bool) -> str:
        user = body["user_id"]
        if not await self.may_configure(client, body["team_id"], user):
            return messages.NOT_ALLOWED
        await self._core.set_auto_transcribe(
            Platform.SLACK, body["team_id"], body["channel_id"], enabled, by=user
        )
        channel = str(body.get("channel_name") or body["channel_id"])
        return messages.auto_changed(enabled, f"#{channel}")

    async def may_configure(self, client: AsyncWebClient, team: str, user: str) -> bool:
        """Workspace admins and owners, and the configured allowlist."""
        return await self._admins.is_admin(team, user, client)

    async def _status(self, body: Mapping[str, Any]) -> str:
        mine = await self._core.progress(Platform.SLACK, body["team_id"], body["user_id"])
        if not mine:
            return messages.NO_JOBS
        entries = []
        for job in mine:
            if job.state is JobState.RECEIVED:
                state = messages.queued(job.ahead or 0)
            else:
                state = messages.STATE_WORDS.get(job.state.value, job.state.value)
            entries.append((job.title, state))
        return messages.status_lines(entries)
