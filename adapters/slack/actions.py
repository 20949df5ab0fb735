"""The result's actions on Slack: "Rename speakers" (a button that opens a modal) and
"Redo with…" (a menu), handed to the core; and the rename modal's submission.

Slack wants each acknowledged within 3 s, and `views.open` needs the click's
`trigger_id` within those 3 s: the form comes from the job record (no AssemblyAI call),
so it opens at once. What the core answers goes back ephemerally to the person who
clicked (the click's `response_url`; after a modal, `chat.postEphemeral`), and the result
itself changes in the thread when the redo is done. Anyone who can see the result may
use them: the core checks that the job is the channel's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as fmt
from adapters.slack import texts
from adapters.slack.errors import CALL_ERRORS, error_code
from bot import messages
from bot.chat import Answer, Core, JobRef, Platform
from bot.tasks import TaskSet

log = logging.getLogger(__name__)


class Actions:
    def __init__(self, *, core: Core, tasks: TaskSet) -> None:
        self._core = core
        self._tasks = tasks

    async def rename_clicked(
        self, ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        action = _action(body)
        ref = _ref(body, str(action.get("value") or ""))
        if ref is None:
            return
        if not self._core.accepting:
            self._whisper(respond, messages.SHUTTING_DOWN)
            return
        form = await self._core.rename_form(ref)
        if isinstance(form, Answer):
            self._whisper(respond, form.text)
            return
        view = fmt.rename_modal(form, channel=ref.channel)
        try:
            await client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
        except CALL_ERRORS as exc:
            log.warning("views.open failed: %s", error_code(exc))
            self._whisper(respond, texts.FORM_NOT_OPENED)

    async def redo_chosen(
        self, ack: AsyncAck, body: Mapping[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        selected = (_action(body).get("selected_option") or {}).get("value")
        job_id, choice = fmt.parse_redo_value(str(selected or ""))
        ref = _ref(body, job_id)
        if ref is None or not choice:
            return
        if not self._core.accepting:
            self._whisper(respond, messages.SHUTTING_DOWN)
            return
        user = str((body.get("user") or {}).get("id") or "")
        answer = await self._core.redo(ref, choice, by=user)
        self._whisper(respond, answer.text)

    async def rename_submitted(
        self, ack: AsyncAck, body: Mapping[str, Any], client: AsyncWebClient
    ) -> None:
        view = body.get("view") or {}
        try:
            meta = json.loads(str(view.get("private_metadata") or "{}"))
        except ValueError:
            meta = {}
        team = str(
            (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or ""
        )
        user = str((body.get("user") or {}).get("id") or "")
        job_id, channel = str(meta.get("job") or ""), str(meta.get("channel") or "")
        if not (team and user and job_id and channel):
            await ack()
            return
        ref = JobRef(Platform.SLACK, team, channel, job_id)
        if not self._core.accepting:
            await ack(response_action="errors", errors=_everywhere(view, messages.SHUTTING_DOWN))
            return
        answer = await self._core.rename(ref, fmt.rename_values(view), by=user)
        if answer.errors:
            errors = {f"speaker_{key}": text for key, text in answer.errors.items()}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self._tasks.spawn(_ephemeral(client, channel, user, answer.text), "rename-answer")

    def _whisper(self, respond: AsyncRespond, text: str) -> None:
        self._tasks.spawn(_respond(respond, text), "action-answer")


def _action(body: Mapping[str, Any]) -> Mapping[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0] if isinstance(actions, list) and actions else {}
    return first if isinstance(first, Mapping) else {}


def _ref(body: Mapping[str, Any], job_id: str) -> JobRef | None:
    team = str((body.get("team") or {}).get("id") or "")
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    if not (team and channel and job_id):
        return None
    return JobRef(Platform.SLACK, team, channel, job_id)


def _everywhere(view: Mapping[str, Any], text: str) -> dict[str, str]:
    values = ((view.get("state") or {}).get("values") or {}).keys()
    return dict.fromkeys(values, text) or {"speaker_0": text}


async def _respond(respond: AsyncRespond, text: str) -> None:
    await respond(text=fmt.escape(text), response_type="ephemeral", replace_original=False)


async def _ephemeral(client: AsyncWebClient, channel: str, user: str, text: str) -> None:
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=fmt.escape(text))
    except CALL_ERRORS as exc:
        log.info("could not tell %s about the rename: %s", user, error_code(exc))
