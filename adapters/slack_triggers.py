"""Messages, mentions and the "Transcribe" shortcut, turned into intakes.

Listeners run with Bolt's `process_before_response`: Slack gets its acknowledgement when
the listener returns, so every job is in the store before Slack hears back, and a crash
before that makes Slack deliver the event again (the dedupe key absorbs the repeat).
What is only feedback (a refusal in the thread, an ephemeral note) runs after, as a
tracked background task, so the acknowledgement never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_texts as texts
from adapters.base import IntakeRecord, OptionsError, Platform, parse_transcribe_args
from adapters.slack_chat import SlackChat
from adapters.slack_format import escape
from adapters.slack_intake import (
    TRIGGER_SUBTYPES,
    Found,
    LinkProbe,
    SlackMessage,
    inspect,
    records,
    split_files,
)
from bot import messages
from bot.jobs import JobStore

if TYPE_CHECKING:
    from bot.engine import Engine, IntakeOutcome

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_REFUSALS_KEPT = 1_000


class Tasks:
    """Background tasks, each kept until done, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._logged(coro, name), name=f"slack-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack %s failed: %s", name, exc)

    async def drain(self, grace: float) -> None:
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


class Intake:
    """Hands records to the engine; remembers refusals so a retried event is not refused
    out loud twice."""

    def __init__(self, chat: SlackChat) -> None:
        self.engine: Engine | None = None
        self._chat = chat
        self._refused: OrderedDict[str, None] = OrderedDict()

    async def submit(self, batch: Sequence[IntakeRecord]) -> list[IntakeOutcome]:
        if self.engine is None:
            raise RuntimeError("the Slack adapter got an event before start()")
        outcomes = []
        for record in batch:
            outcome = await self.engine.intake(record)
            if outcome.created and outcome.job is not None:
                self._chat.created(outcome.job.id)
            outcomes.append(outcome)
        return outcomes

    def refusal(
        self, batch: Sequence[IntakeRecord], outcomes: Sequence[IntakeOutcome]
    ) -> str | None:
        """The first refusal not reported before, as the user is told it."""
        for record, outcome in zip(batch, outcomes, strict=True):
            if outcome.refused is None or record.dedupe_key in self._refused:
                continue
            self._refused[record.dedupe_key] = None
            while len(self._refused) > _REFUSALS_KEPT:
                self._refused.popitem(last=False)
            return messages.failed(outcome.refused)
        return None


class Triggers:
    def __init__(
        self,
        *,
        store: JobStore,
        intake: Intake,
        probe: LinkProbe,
        tasks: Tasks,
        auto_default: bool,
    ) -> None:
        self._store = store
        self._intake = intake
        self._probe = probe
        self._tasks = tasks
        self._auto_default = auto_default

    # -- messages people post ------------------------------------------------------------

    async def message(
        self, event: Mapping[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """A message in a channel the bot is in: transcribe its media if auto is on."""
        if event.get("subtype") not in TRIGGER_SUBTYPES or "channel" not in event:
            return
        msg = SlackMessage.of(event, team=_team(event, context), channel=event["channel"])
        if not msg.from_person(context.bot_user_id, context.bot_id):
            return
        direct = event.get("channel_type") == "im"
        if not direct and context.bot_user_id in _MENTION.findall(msg.text):
            return  # an explicit request: the app_mention event answers it
        found = inspect(msg)
        if not found.anything or not (direct or await self.auto_on(msg.team, msg.channel)):
            return
        files, links = await self._media(found, client)
        if not files and not links:
            return
        batch = records(msg, files, links, requester=msg.user or "")
        outcomes = await self._intake.submit(batch)
        refusal = self._intake.refusal(batch, outcomes)
        if refusal is not None:
            self._tasks.spawn(self._reply_in_thread(client, msg, refusal), "refusal")

    async def mention(
        self, event: Mapping[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """`@threadscribe` on a message with audio, or in the thread under one."""
        msg = SlackMessage.of(event, team=_team(event, context), channel=event["channel"])
        if not msg.from_person(context.bot_user_id, context.bot_id):
            return
        text = _MENTION.sub(" ", msg.text)
        try:
            options = mention_options(text)
        except OptionsError as exc:
            self._tasks.spawn(self._whisper(client, msg, str(exc)), "options")
            return
        target, found = msg, inspect(msg, text=text)
        if not found.anything and msg.thread_ts is not None:
            parent = await self._parent(client, msg)
            if parent is not None:
                target, found = parent, inspect(parent)
        note = await self._explicit(target, found, msg.user or "", options, client)
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
            note = await self._explicit(msg, inspect(msg), user, {}, client)
        if note is not None:
            self._tasks.spawn(_respond(respond, note), "shortcut")

    async def _explicit(
        self,
        msg: SlackMessage,
        found: Found,
        user: str,
        options: Mapping[str, Any],
        client: AsyncWebClient,
    ) -> str | None:
        """Intake for a request someone made; what to tell them, if anything."""
        files, links = await self._media(found, client)
        if not files and not links:
            return texts.not_media(found.other_files) if found.other_files else texts.NO_MEDIA
        batch = records(msg, files, links, requester=user, options=options)
        outcomes = await self._intake.submit(batch)
        refusal = self._intake.refusal(batch, outcomes)
        if refusal is not None:
            return refusal
        if not any(o.created for o in outcomes):
            return texts.ALREADY
        return None

    # -- helpers ---------------------------------------------------------------------------

    async def auto_on(self, team: str, channel: str) -> bool:
        settings = await self._store.channel_settings(Platform.SLACK, team, channel)
        return self._auto_default if settings is None else settings.auto_transcribe

    async def _media(
        self, found: Found, client: AsyncWebClient
    ) -> tuple[list[Mapping[str, Any]], list[str]]:
        """The media files (stubs looked up) and links (unclear ones probed) of `found`."""
        looked_up = [await self._file_info(stub, client) for stub in found.stubs]
        media, _other, _stubs = split_files(f for f in looked_up if f is not None)
        links = [*found.links, *await self._probe.media(found.unclear)]
        return [*found.files, *media], links

    @staticmethod
    async def _file_info(
        file: Mapping[str, Any], client: AsyncWebClient
    ) -> Mapping[str, Any] | None:
        try:
            response = await client.files_info(file=file["id"])
        except SlackApiError as exc:
            log.info("files.info %s: %s", file.get("id"), exc.response.get("error"))
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
        except SlackApiError as exc:
            log.info("could not read the thread's parent: %s", exc.response.get("error"))
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


def mention_options(text: str) -> dict[str, object]:
    """Options written beside a mention (`speakers=2 lang=fr srt`); other words are talk."""
    tokens = [t for t in text.split() if "=" in t or t.lower() in ("srt", "vtt")]
    return parse_transcribe_args(" ".join(tokens)).options()


async def can_post(client: AsyncWebClient, channel: str) -> bool:
    """Whether the bot is in `channel` (slash commands and shortcuts reach it anywhere)."""
    try:
        info = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        # A private channel without the bot does not exist for it; for other failures
        # (a DM, where reading needs im:read) let the post itself find out.
        return exc.response.get("error") != "channel_not_found"
    conversation = info.get("channel") or {}
    return bool(conversation.get("is_member") or conversation.get("is_im"))


async def _respond(respond: AsyncRespond, text: str) -> None:
    await respond(text=escape(text), response_type="ephemeral")


def _team(event: Mapping[str, Any], context: AsyncBoltContext) -> str:
    return str(context.team_id or event.get("team") or "")
