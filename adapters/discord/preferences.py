"""`/transcribe-settings` beyond auto-transcribe: speaker names, the summary, a
translation and the vocabulary of a channel, each handed to the core as the settings
command every platform says the same way (bot/revisions.py). The group needs Manage
Server (its default permissions; a server may change that), so whoever can run these may
change the settings."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands

from adapters.discord.events import Events, settings_channel
from adapters.discord.replies import NO_MENTIONS, refused
from bot.chat import ChannelRef, Platform


def add_commands(settings: app_commands.Group, intake: Events) -> None:
    @settings.command(
        name="names", description="Show speakers by their names where AssemblyAI can tell"
    )
    @app_commands.describe(state="on: name the people of the conversation (default)")
    async def names(interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
        await configure(intake, interaction, f"names {state}")

    @settings.command(name="summary", description="Start results with an AI summary")
    @app_commands.describe(state="on: points, decisions and action items (default)")
    async def summary(interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
        await configure(intake, interaction, f"summary {state}")

    @settings.command(name="translate", description="Translate every result in this channel")
    @app_commands.describe(language="A language code such as es, fr or de, or off")
    async def translate(
        interaction: discord.Interaction, language: app_commands.Range[str, 2, 8]
    ) -> None:
        await configure(intake, interaction, f"translate {language}")

    vocab = app_commands.Group(
        name="vocab",
        description="Words this channel's transcripts should get right",
        parent=settings,
    )

    @vocab.command(name="add", description="Add names and jargon, separated by commas")
    @app_commands.describe(terms="For example: Kubernetes, Thessaloniki")
    async def add(interaction: discord.Interaction, terms: str) -> None:
        await configure(intake, interaction, f"vocab add {terms}")

    @vocab.command(name="remove", description="Remove words, separated by commas")
    async def remove(interaction: discord.Interaction, terms: str) -> None:
        await configure(intake, interaction, f"vocab remove {terms}")

    @vocab.command(name="list", description="The words and spellings this channel has")
    async def listing(interaction: discord.Interaction) -> None:
        await configure(intake, interaction, "vocab list")

    @vocab.command(name="spell", description="Always write these words as one word")
    @app_commands.describe(
        words="What is heard, separated by commas", write="The one word to write"
    )
    async def spell(interaction: discord.Interaction, words: str, write: str) -> None:
        await configure(intake, interaction, f"vocab spell {words} as {write}")

    @vocab.command(name="unspell", description="Stop replacing words with this one")
    async def unspell(interaction: discord.Interaction, word: str) -> None:
        await configure(intake, interaction, f"vocab unspell {word}")


async def configure(intake: Events, interaction: discord.Interaction, command: str) -> None:
    async with intake.holding():
        if await refused(interaction, accepting=intake.accepting):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        where = ChannelRef(
            Platform.DISCORD, str(interaction.guild_id), str(settings_channel(interaction.channel))
        )
        answer = await intake.core.configure(
            where, command, by=str(interaction.user.id), admin=True
        )
        await interaction.followup.send(answer, ephemeral=True, allowed_mentions=NO_MENTIONS)
