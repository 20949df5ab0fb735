"""`/transcribe`: help, a link, `on`/`off` for the channel, `status`.

Slash commands carry no message to answer under: the job is taken in with the command's
trigger id, the acknowledgement tells the user (ephemerally) that it is on its way, and
the engine's first post starts the thread the result goes in.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_texts as texts
from adapters.base import OptionsError, Platform, UrlSource, parse_transcribe_args
from adapters.slack_format import escape
from adapters.slack_intake import command_record
from adapters.slack_triggers import Intake, can_post
from bot import messages
from bot.jobs import Job, JobState, JobStore

log = logging.getLogger(__name__)

COMMAND = "/transcribe"


class Commands:
    def __init__(self, *, store: JobStore, intake: Intake, admins: Collection[str]) -> None:
        self._store = store
        self._intake = intake
        self._admins = frozenset(admins)

    async def transcribe(
        self, ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient
    ) -> None:
        text = str(body.get("text") or "").strip()
        word = text.lower()
        if word in ("", "help"):
            answer = texts.HELP
        elif word in ("on", "off"):
            answer = await self._auto(body, client, enabled=word == "on")
        elif word == "status":
            answer = await self._status(body)
        else:
            answer = await self._link(body, text, client)
        await ack(text=escape(answer), response_type="ephemeral")

    async def _link(self, body: Mapping[str, Any], text: str, client: AsyncWebClient) -> str:
        try:
            args = parse_transcribe_args(text)
        except OptionsError as exc:
            return str(exc)
        if args.url is None:
            return texts.NEED_LINK
        if not await can_post(client, body["channel_id"]):
            return texts.INVITE_ME
        record = command_record(
            team=body["team_id"],
            channel=body["channel_id"],
            user=body["user_id"],
            trigger_id=body["trigger_id"],
            url=args.url,
            options=args.options(),
        )
        [outcome] = await self._intake.submit([record])
        if outcome.refused is not None:
            return messages.failed(outcome.refused)
        return texts.STARTED_BY_COMMAND if outcome.created else texts.ALREADY

    async def _auto(self, body: Mapping[str, Any], client: AsyncWebClient, *, enabled: bool) -> str:
        user = body["user_id"]
        if not await self.may_configure(client, user):
            return texts.NOT_ALLOWED
        await self._store.set_auto_transcribe(
            Platform.SLACK, body["team_id"], body["channel_id"], enabled, updated_by=user
        )
        log.info(
            "auto-transcribe %s", "on" if enabled else "off", extra={"channel": body["channel_id"]}
        )
        return texts.auto_changed(enabled, str(body.get("channel_name") or body["channel_id"]))

    async def may_configure(self, client: AsyncWebClient, user: str) -> bool:
        """Workspace admins and owners, and the configured allowlist."""
        if user in self._admins:
            return True
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info failed: %s", exc.response.get("error"))
            return False
        person = info.get("user") or {}
        return any(person.get(flag) for flag in ("is_admin", "is_owner", "is_primary_owner"))

    async def _status(self, body: Mapping[str, Any]) -> str:
        mine = await self._store.jobs_of(Platform.SLACK, body["team_id"], body["user_id"])
        if not mine:
            return texts.NO_JOBS
        return texts.status_lines([(_what(job), await self._state(job)) for job in mine])

    async def _state(self, job: Job) -> str:
        if job.state is JobState.RECEIVED:
            # The queue is global (one concurrency limit towards AssemblyAI), so a
            # position counts every waiting job, not only this workspace's.
            return texts.queued(await self._store.ahead_of(job))
        return texts.STATE_WORDS.get(job.state.value, job.state.value)


def _what(job: Job) -> str:
    if isinstance(job.source, UrlSource):
        return job.source.url
    return str(job.source.ref.get("name") or "a file")
