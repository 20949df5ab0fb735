"""Ephemeral answers to interactions, and the checks every settings command makes before
it may defer: one place, so the commands of every module refuse alike."""

from __future__ import annotations

from typing import Final

import discord

from adapters.discord import texts

#: Every message of the bot's mentions no one (also adapters.discord.format's).
NO_MENTIONS: Final = discord.AllowedMentions.none()


async def say(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer, as the first response or after a deferral."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server in a server: who may change a channel's settings."""
    return interaction.guild_id is not None and interaction.permissions.manage_guild


async def refused(
    interaction: discord.Interaction, *, admins_only: bool = True, accepting: bool = True
) -> bool:
    """Answer with the reason and return True when the command cannot go on: outside a
    server, without Manage Server (Discord hides such commands from others by default, but
    a server may override that), or while the bot shuts down."""
    if interaction.guild_id is None or interaction.channel is None:
        reason = texts.GUILD_ONLY
    elif admins_only and not is_admin(interaction):
        reason = texts.NEED_MANAGE_SERVER
    elif not accepting:
        reason = texts.SHUTTING_DOWN
    else:
        return False
    await say(interaction, reason)
    return True
