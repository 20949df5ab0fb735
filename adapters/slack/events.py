"""Messages, mentions and the "Transcribe" shortcut, translated into the core's triggers.

Listeners run with Bolt's `process_before_response`: Slack gets its acknowledgement when
the listener returns, so every job is in the store before Slack hears back, and a crash
before that makes Slack deliver the event again (the core's dedupe key absorbs the
repeat). What is only feedback (a refusal in the thread, an ephemeral note) runs after,
as a tracked background task, so the acknowledgement never waits for it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.blocks import escape
from adapters.slack.chat import SlackChat
from adapters.slack.errors import CALL_ERRORS, error_code
from adapters.slack.incoming import TRIGGER_SUBTYPES, SlackMessage, needs_file_info
from bot import messages
from bot.chat import Core, Taken
from bot.errors import OptionsError
from bot.intake import parse_request
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


class Events:
    def __init__(self, *, core: Core, chat: SlackChat, tasks: TaskSet) -> None:
        self._core = core
        self._chat = chat
        self._tasks = tasks

    # -- messages people post ------------------------------------------------------------

    async def message(
        self, event: Mapping[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """A message in a channel the bot is in: its recordings, if auto-transcribe is on
        there (the core decides)."""
        if event.get("subtype") not in TRIGGER_SUBTYPES or "channel" not in event:
            return
        msg = SlackMessage.of(event, team=_team(event, context), channel=event["channel"])
        if not msg.from_person(context.bot_user_id, context.bot_id):
            return
        if not msg.direct and context.bot_user_id in _MENTION.findall(msg.text):
            return  # an explicit request: the app_mention event answers it
        if not msg.files and "http" not in msg.text:
            return  # nothing to look at: no need to ask the core about the channel
        files = await self._files(msg.files, client)
        taken = await self._take(msg.trigger(files, requester=msg.user or "", explicit=False))
        if taken.refusals:
            text = messages.refused(taken.refusals)
            self._tasks.spawn(self._reply_in_thread(client, msg, text), "refusal")

    async def mention(
        self, event: Mapping[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """`@threadscribe` on a message with audio, or in the thread under one."""
        msg = SlackMessage.of(event, team=_team(event, context), channel=event["channel"])
        if not msg.from_person(context.bot_user_id, context.bot_id):
            return
        text = _MENTION.sub(" ", msg.text)
        try:
            request = parse_request(text, words=True)
        except OptionsError as exc:
            self._tasks.spawn(self._whisper(client, msg, str(exc)), "options")
            return
        target, own_text = msg, text
        if not msg.files and not _has_links(text) and msg.thread_ts is not None:
            parent = await self._parent(client, msg)
            if parent is not None:
                target, own_text = parent, parent.text
        files = await self._files(target.files, client)
        trigger = target.trigger(
            files, requester=msg.user or "", explicit=True, text=own_text, options=request.options
        )
        note = _reply(await self._take(trigger))
        if note is not None:
            self._tasks.spawn(self._whisper(client, msg, note), "mention-reply")

    async def shortcut(
        self, body: Mapping[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """The "Transcribe" message shortcut: one message's audio, on request."""
        team = body.get("team") or {}
        channel = (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id", "")
        msg = SlackMessage.of(body.get("message") or {}, team=team.get("id", ""), channel=channel)
        if not await can_post(client, channel):
            note: str | None = texts.INVITE_ME
        else:
            files = await self._files(msg.files, client)
            note = _reply(await self._take(msg.trigger(files, requester=user, explicit=True)))
        if note is not None:
            self._tasks.spawn(_respond(respond, note), "shortcut")

    # -- helpers ---------------------------------------------------------------------------

    async def _take(self, trigger: Any) -> Taken:
        taken = await self._core.take(trigger)
        for job_id in taken.created_ids:
            self._chat.created(job_id)
        return taken

    async def _files(
        self, files: Sequence[Mapping[str, Any]], client: AsyncWebClient
    ) -> list[Mapping[str, Any]]:
        """The message's files, the stubs Slack sometimes sends looked up with files.info."""
        found = []
        for file in files:
            if needs_file_info(file) and file.get("id"):
                info = await self._file_info(file, client)
                found.append(info if info is not None else file)
            else:
                found.append(file)
        return found

    @staticmethod
    async def _file_info(
        file: Mapping[str, Any], client: AsyncWebClient
    ) -> Mapping[str, Any] | None:
        try:
            response = await client.files_info(file=file["id"])
        except CALL_ERRORS as exc:
            log.info("files.info %s: %s", file.get("id"), error_code(exc))
            return None
        info = response.get("file")
        return info if isinstance(info, Mapping) else None

    @staticmethod
    async def _parent(client: AsyncWebClient, msg: SlackMessage) -> SlackMessage | None:
        assert msg.thread_ts is not None
        try:
            page = await client.conversations_replies(
                channel=msg.channel, ts=msg.thread_ts, limit=1, inclusive=True
            )
        except CALL_ERRORS as exc:
            log.info("could not read the thread's parent: %s", error_code(exc))
            return None
        first = (page.get("messages") or [None])[0]
        if not isinstance(first, Mapping) or first.get("ts") != msg.thread_ts:
            return None
        return SlackMessage.of(first, team=msg.team, channel=msg.channel)

    @staticmethod
    async def _reply_in_thread(client: AsyncWebClient, msg: SlackMessage, text: str) -> None:
        await client.chat_postMessage(
            channel=msg.channel, thread_ts=msg.thread_ts or msg.ts, text=escape(text)
        )

    @staticmethod
    async def _whisper(client: AsyncWebClient, msg: SlackMessage, text: str) -> None:
        await client.chat_postEphemeral(
            channel=msg.channel,
            user=msg.user or "",
            thread_ts=msg.thread_ts,
            text=escape(text),
        )


def _reply(taken: Taken) -> str | None:
    """What to tell someone who asked: why not, that it is done already, or nothing (the
    thread shows the new job)."""
    if taken.answers:
        return "\n".join(taken.answers)
    if taken.refusals:
        return messages.refused(taken.refusals)
    if taken.created:
        return None
    if taken.existing:
        return messages.ALREADY
    return messages.not_media(taken.other_files) if taken.other_files else messages.NO_MEDIA


def _has_links(text: str) -> bool:
    return "http://" in text or "https://" in text


async def can_post(client: AsyncWebClient, channel: str) -> bool:
    """Whether the bot is in `channel` (slash commands and shortcuts reach it anywhere)."""
    try:
        info = await client.conversations_info(channel=channel)
    except CALL_ERRORS as exc:
        # A private channel without the bot does not exist for it; for other failures
        # (a DM, where reading needs im:read) let the post itself find out.
        return error_code(exc) != "channel_not_found"
    conversation = info.get("channel") or {}
    return bool(conversation.get("is_member") or conversation.get("is_im"))


async def _respond(respond: AsyncRespond, text: str) -> None:
    await respond(text=escape(text), response_type="ephemeral")


def _team(event: Mapping[str, Any], context: AsyncBoltContext) -> str:
    return str(context.team_id or event.get("team") or "")
