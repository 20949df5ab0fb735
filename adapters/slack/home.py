"""The app's Home tab: for everyone their own opt-out switch and recent transcripts; for
admins also this month's usage against the budget and every channel the bot is in, each
with its policy, changeable there.

Published with `views.publish` when someone opens the tab (`app_home_opened`) and again
after each change made in it (`block_actions`), as tracked background tasks: Slack's
acknowledgement never waits for the look-ups a view needs. Block Kit's limits hold whatever the
workspace: at most 100 blocks (channels past `MAX_CHANNELS` are counted, not listed),
3,000 characters a section, 75 an option's text. A change is checked again when it
arrives: a forged action from someone who is not an admin changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import texts
from adapters.slack.admins import Admins
from adapters.slack.blocks import HEADER_LIMIT, escape, mrkdwn
from adapters.slack.controls import channel, person
from adapters.slack.errors import CALL_ERRORS, error_code
from bot import reports
from bot.chat import ChannelPolicy, Core, Platform
from bot.controls import Overview
from bot.render import SLACK_SECTION_LIMIT
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

POLICY_ACTION: Final = "home_policy"
OPT_OUT_ACTION: Final = "home_optout"
OPT_IN_ACTION: Final = "home_optin"
#: Channels listed with their own select; the rest are counted (100 blocks at most).
MAX_CHANNELS: Final = 80
#: Channels read with users.conversations at most.
MAX_READ: Final = 1000
_OPTION_TEXT: Final = {
    ChannelPolicy.AUTO: "auto: every recording",
    ChannelPolicy.ON_REQUEST: "on-request: when someone asks",
    ChannelPolicy.OFF: "off: nothing",
}

Block = dict[str, Any]


class Home:
    def __init__(self, *, core: Core, admins: Admins, tasks: TaskSet) -> None:
        self._core = core
        self._admins = admins
        self._tasks = tasks

    async def opened(self, event: Mapping[str, Any], team: str, client: AsyncWebClient) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return  # the Messages tab is a DM like any other
        self._tasks.spawn(self.publish(client, team, str(event["user"])), "home")

    async def action(self, body: Mapping[str, Any], client: AsyncWebClient) -> None:
        """A select or button of the Home tab (acknowledged already): handled after."""
        self._tasks.spawn(self._act(body, client), "home-action")

    async def _act(self, body: Mapping[str, Any], client: AsyncWebClient) -> None:
        """A select or button of the Home tab: checked, applied, and the tab published again."""
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id", ""))
        actions = body.get("actions") or [{}]
        action: Mapping[str, Any] = actions[0]
        controls = self._core.controls
        note = None
        kind = action.get("action_id")
        admin = await self._admins.is_admin(team, user, client)  # once: the tab needs it too
        if kind == POLICY_ACTION:
            where = str(action.get("block_id", "")).removeprefix("policy:")
            value = str((action.get("selected_option") or {}).get("value", ""))
            if not admin:
                log.info("%s is not an admin: the policy of %s stays as it is", user, where)
                note = texts.ADMINS_ONLY
            else:
                try:
                    policy = ChannelPolicy(value)
                except ValueError:
                    note = f"{value!r} is not a policy"
                else:
                    await controls.set_policy(Platform.SLACK, team, where, policy, by=user)
        elif kind in (OPT_OUT_ACTION, OPT_IN_ACTION):
            await controls.set_opt_out(Platform.SLACK, user, kind == OPT_OUT_ACTION)
        await self.publish(client, team, user, note=note, admin=admin)

    async def publish(
        self,
        client: AsyncWebClient,
        team: str,
        user: str,
        *,
        note: str | None = None,
        admin: bool | None = None,
    ) -> None:
        """Publish the tab; `admin`: whether `user` is one, when already asked."""
        if admin is None:
            admin = await self._admins.is_admin(team, user, client)
        names = await self._channels(client) if admin else {}
        overview = await self._core.controls.overview(
            Platform.SLACK, team, user, admin=admin, channels=list(names)
        )
        view = home_view(overview, names, note=note)
        try:
            await client.views_publish(user_id=user, view=view)
        except CALL_ERRORS as exc:
            log.warning("the Home tab of %s was not published: %s", user, error_code(exc))

    @staticmethod
    async def _channels(client: AsyncWebClient) -> dict[str, str]:
        """The channels the bot is in, id -> name, in Slack's order."""
        found: dict[str, str] = {}
        cursor: str | None = None
        try:
            while len(found) < MAX_READ:
                page = await client.users_conversations(
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    cursor=cursor,
                )
                for item in page.get("channels") or ():
                    found[str(item["id"])] = str(item.get("name") or item["id"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except CALL_ERRORS as exc:
            log.warning("users.conversations failed: %s", error_code(exc))
        return found


def _section(text: str, accessory: Block | None = None, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(_clip(text, SLACK_SECTION_LIMIT))}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    return block


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:HEADER_LIMIT]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(_clip(text, SLACK_SECTION_LIMIT))]}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _option(policy: ChannelPolicy) -> Block:
    return {"text": {"type": "plain_text", "text": _OPTION_TEXT[policy]}, "value": policy.value}


def home_view(overview: Overview, names: Mapping[str, str], *, note: str | None = None) -> Block:
    """The Home tab for one person (within Block Kit's limits, whatever the workspace)."""
    blocks: list[Block] = [_header("threadscribe")]
    if note:
        blocks.append(_section(f"⚠️ {escape(note)}"))
    switch = {
        "type": "button",
        "action_id": OPT_IN_ACTION if overview.opted_out else OPT_OUT_ACTION,
        "text": {
            "type": "plain_text",
            "text": "Opt back in" if overview.opted_out else "Opt out",
        },
    }
    if not overview.opted_out:
        switch["style"] = "danger"
    blocks.append(
        _section(
            "*Your recordings*\n" + escape(reports.opt_out_line(overview.opted_out)),
            switch,
            block_id="optout",
        )
    )
    blocks.append(_header("Your recent transcripts"))
    if overview.recent:
        lines = [
            reports.recent_line(r, channel, lambda t: escape(_clip(t, 80))) for r in overview.recent
        ]
        blocks.append(_section("\n".join(lines)))
    else:
        blocks.append(_context("None yet."))
    if overview.admin and overview.usage is not None:
        blocks += [{"type": "divider"}, _header("This month")]
        text = reports.usage(overview.usage, channel=channel, person=person, escape=escape, top=5)
        blocks.append(_section(text))
        blocks += _channel_blocks(overview, names)
    return {"type": "home", "callback_id": "threadscribe_home", "blocks": blocks}


def _channel_blocks(overview: Overview, names: Mapping[str, str]) -> Sequence[Block]:
    blocks: list[Block] = [
        _header("Channels"),
        _context(
            "Who gets transcribed in each channel threadscribe is in. PII redaction: "
            "/transcribe-settings in the channel."
        ),
    ]
    if not overview.channels:
        blocks.append(_context("threadscribe is in no channel yet: /invite @threadscribe"))
    for view in overview.channels[:MAX_CHANNELS]:
        default = " (default)" if view.policy_is_default else ""
        select = {
            "type": "static_select",
            "action_id": POLICY_ACTION,
            "placeholder": {"type": "plain_text", "text": "Policy"},
            "options": [_option(p) for p in ChannelPolicy],
            "initial_option": _option(view.policy),
        }
        text = f"{channel(view.channel)}{escape(default)}"
        blocks.append(_section(text, select, block_id=f"policy:{view.channel}"))
    hidden = len(overview.channels) - MAX_CHANNELS
    if hidden > 0:
        blocks.append(
            _context(f"… and {hidden} more channels: use /transcribe-settings in each of them.")
        )
    return blocks
