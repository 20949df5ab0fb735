"""Discord's side of the privacy and cost controls: `/transcribe-settings show | policy |
redaction | optout | optin | usage` and the "Forget transcript" message command. What they
do is the core's (`core.controls`); this module reads the interactions, asks Discord who
may (Manage Server, as Discord computed it for the member in that channel), and answers
ephemerally, within Discord's 2,000 characters.

`show` is the overview Slack shows in its Home tab: for everyone their own switch and
recent transcripts, for members with Manage Server also every text channel the bot can see
with its policy, and the month's usage against the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal

import discord

from adapters.discord import texts
from adapters.discord.events import DM_WORKSPACE, Events, settings_channel
from adapters.discord.format import CONTENT_LIMIT, clip, escape
from adapters.discord.replies import NO_MENTIONS, is_admin, refused, say
from bot import reports
from bot.chat import ChannelPolicy, ChannelRef, Core, Platform
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

Switch = Literal["on", "off", "default"]
_SWITCH: Final = {"on": True, "off": False, "default": None}
#: Channels listed in the overview; the rest are counted.
MAX_CHANNELS: Final = 25


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def person(user_id: str) -> str:
    return f"<@{user_id}>"


class DiscordControls:
    def __init__(self, core: Core, intake: Events) -> None:
        self._core = core
        self._intake = intake  # its handlers under way, and whether it takes any now
        self._running: TaskSet = intake.running

    async def _answer(
        self,
        interaction: discord.Interaction,
        work: Callable[[], Coroutine[Any, Any, str]],
        *,
        admins_only: bool = False,
    ) -> None:
        """Answer within the 3 s: refusals at once, anything that needs the store after a
        deferral (ephemeral, as every answer here)."""
        async with self._running.holding():
            accepting = self._intake.accepting
            if await refused(interaction, admins_only=admins_only, accepting=accepting):
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            text = await work()
            await interaction.followup.send(
                clip(text, CONTENT_LIMIT), ephemeral=True, allowed_mentions=NO_MENTIONS
            )

    # -- the channel's settings -------------------------------------------------------------

    async def policy(self, interaction: discord.Interaction, mode: str) -> None:
        async def work() -> str:
            policy = None if mode == "default" else ChannelPolicy.parse(mode)
            where = str(settings_channel(interaction.channel))
            view = await self._core.controls.set_policy(
                Platform.DISCORD, str(interaction.guild_id), where, policy, by=_who(interaction)
            )
            return self._settings_text(view)

        await self._answer(interaction, work, admins_only=True)

    async def redaction(
        self, interaction: discord.Interaction, pii: Switch, audio: Switch | None
    ) -> None:
        async def work() -> str:
            text = _SWITCH[pii]
            sound = _SWITCH[audio] if audio is not None else None
            if sound:
                text = True  # redacted audio is made from a redacted transcript only
            where = str(settings_channel(interaction.channel))
            view = await self._core.controls.set_redaction(
                Platform.DISCORD,
                str(interaction.guild_id),
                where,
                text=text,
                audio=sound,
                by=_who(interaction),
            )
            return self._settings_text(view)

        await self._answer(interaction, work, admins_only=True)

    def _settings_text(self, view: Any) -> str:
        policies = self._core.controls.settings.redact_pii_policies
        return reports.channel_settings(view, channel(view.channel), policies)

    # -- a person's own choice ---------------------------------------------------------------

    async def opt(self, interaction: discord.Interaction, *, out: bool) -> None:
        async def work() -> str:
            return await self._core.controls.set_opt_out(Platform.DISCORD, _who(interaction), out)

        await self._answer(interaction, work)

    # -- usage and the overview ---------------------------------------------------------------

    async def usage(self, interaction: discord.Interaction) -> None:
        async def work() -> str:
            summary = await self._core.controls.usage(Platform.DISCORD, str(interaction.guild_id))
            return reports.usage(summary, channel=channel, person=person, escape=escape)

        await self._answer(interaction, work, admins_only=True)

    async def show(self, interaction: discord.Interaction) -> None:
        async def work() -> str:
            admin = is_admin(interaction)
            seen = _visible_channels(interaction) if admin else []
            overview = await self._core.controls.overview(
                Platform.DISCORD,
                str(interaction.guild_id),
                _who(interaction),
                admin=admin,
                channels=seen,
            )
            here = await self._core.controls.channel(
                Platform.DISCORD,
                str(interaction.guild_id),
                str(settings_channel(interaction.channel)),
            )
            # Speaker names, the summary, translation and vocabulary (bot/revisions.py).
            where = ChannelRef(
                Platform.DISCORD,
                str(interaction.guild_id),
                str(settings_channel(interaction.channel)),
            )
            preferences = await self._core.configure(
                where, "settings", by=str(interaction.user.id), admin=False
            )
            lines = [
                self._settings_text(here),
                escape(preferences),
                "",
                "**You**",
                reports.opt_out_line(overview.opted_out),
            ]
            lines += [reports.recent_line(r, channel, escape) for r in overview.recent[:5]]
            if overview.admin and overview.usage is not None:
                lines += ["", "**This month**"]
                lines.append(
                    reports.usage(
                        overview.usage, channel=channel, person=person, escape=escape, top=5
                    )
                )
                lines += ["", "**Channels**"]
                for view in overview.channels[:MAX_CHANNELS]:
                    default = " (default)" if view.policy_is_default else ""
                    lines.append(f"• {channel(view.channel)}: {view.policy.value}{default}")
                if len(overview.channels) > MAX_CHANNELS:
                    lines.append(f"• … and {len(overview.channels) - MAX_CHANNELS} more")
            return "\n".join(lines)

        await self._answer(interaction, work)

    # -- Forget transcript ---------------------------------------------------------------------

    async def forget(self, interaction: discord.Interaction, message: discord.Message) -> None:
        async with self._running.holding():
            if not self._intake.accepting:
                await say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            where = message.channel
            channels = [str(where.id)]
            ids = [str(message.id)]
            if isinstance(where, discord.Thread):
                # A thread the bot started from a recording's message takes its id.
                channels.append(str(where.parent_id))
                ids.append(str(where.id))
            workspace = str(message.guild.id) if message.guild is not None else DM_WORKSPACE
            outcome = await self._core.controls.forget(
                Platform.DISCORD,
                workspace,
                channels=channels,
                ids=ids,
                by=_who(interaction),
                admin=is_admin(interaction),
            )
            await interaction.followup.send(
                outcome.text, ephemeral=True, allowed_mentions=NO_MENTIONS
            )


def _who(interaction: discord.Interaction) -> str:
    return str(interaction.user.id)


def _visible_channels(interaction: discord.Interaction) -> list[str]:
    """The server's text channels the bot can see (from the gateway's cache)."""
    guild = interaction.guild
    if guild is None:
        return []
    me = guild.me
    found = []
    for text_channel in guild.text_channels:
        if me is None or text_channel.permissions_for(me).view_channel:
            found.append(str(text_channel.id))
    return found
