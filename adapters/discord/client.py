"""The gateway client: intents, the application commands, and events routed to `Events`.

Intents are the fewest that work: guilds (channels, threads, the bot's own permissions),
guild and direct messages, and the privileged message-content intent, without which
Discord blanks the content *and the attachments* of other people's messages.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Final, Literal

import discord
from discord import app_commands

from adapters.discord import preferences, texts
from adapters.discord.actions import RedoButton, RenameButton
from adapters.discord.controls import DiscordControls, Switch
from adapters.discord.events import Events, Subtitles

log = logging.getLogger(__name__)


#: Exactly what the bot does in a channel; the invite asks for these and nothing else.
INVITE_PERMISSIONS: Final = discord.Permissions(
    view_channel=True,  # see the channel and its messages
    send_messages=True,  # replies in place (DMs, voice-channel chats), refusals
    send_messages_in_threads=True,  # status and results in threads and forum posts
    create_public_threads=True,  # a thread from the source message
    embed_links=True,  # the result's embed (without it Discord drops embeds silently)
    attach_files=True,  # transcript.txt, .srt, .vtt
    read_message_history=True,  # re-fetch a message for a fresh attachment URL; reactions
    add_reactions=True,  # ⏳ ✅ ❌ on the source message
)
INVITE_SCOPES: Final = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    """The install link with exactly the scopes and permissions the code uses."""
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES
    )


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


class GatewayClient(discord.Client):
    def __init__(
        self,
        intake: Events,
        controls: DiscordControls,
        *,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,  # no message cache: every trigger is handled as it arrives
            guild_ready_timeout=guild_ready_timeout,
            enable_debug_events=False,
        )
        self.intake = intake
        self.tree = app_commands.CommandTree(self)
        self.tree.error(self._on_command_error)
        for command in commands(intake, controls):
            self.tree.add_command(command)

    async def setup_hook(self) -> None:
        # The result's buttons, on every result ever posted (their ids carry the job's).
        self.add_dynamic_items(RenameButton, RedoButton)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None:
            await self.intake.on_message(message, self.user)

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        log.exception("error in Discord event %s", event_method)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("error in /%s", interaction.command, exc_info=error)
        try:
            if interaction.response.is_done():
                # A public "thinking…" must not turn into an error everyone sees.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
                await interaction.followup.send(texts.UNEXPECTED, ephemeral=True)
            else:
                await interaction.response.send_message(texts.UNEXPECTED, ephemeral=True)
        except discord.HTTPException:
            log.info("could not tell the user about the error", exc_info=True)


def commands(
    intake: Events, controls: DiscordControls
) -> list[app_commands.Command[Any, ..., None] | app_commands.ContextMenu | app_commands.Group]:
    """`/transcribe`, `/transcribe-settings` and the message commands "Transcribe" and
    "Forget transcript", calling into `intake` and `controls`. Installed to servers (and
    usable in the bot's DMs), not to user accounts."""

    @app_commands.command(name="transcribe", description="Transcribe a recording into this chat")
    @app_commands.describe(
        file="An audio or video file",
        url="A link to an audio or video file",
        speakers="How many people speak (default: detect)",
        language="Language code such as en, fr or de (default: detect)",
        subtitles="Also attach subtitle files",
        translate="Translate into a language code such as es, fr or de",
    )
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def transcribe(
        interaction: discord.Interaction,
        file: discord.Attachment | None = None,
        url: str | None = None,
        speakers: app_commands.Range[int, 1, 10] | None = None,
        language: app_commands.Range[str, 2, 8] | None = None,
        subtitles: Subtitles | None = None,
        translate: app_commands.Range[str, 2, 8] | None = None,
    ) -> None:
        await intake.transcribe_command(
            interaction, file, url, speakers, language, subtitles, translate
        )

    @app_commands.context_menu(name="Transcribe")
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def transcribe_message(
        interaction: discord.Interaction, message: discord.Message
    ) -> None:
        await intake.transcribe_message(interaction, message)

    @app_commands.context_menu(name="Forget transcript")
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def forget_message(interaction: discord.Interaction, message: discord.Message) -> None:
        await controls.forget(interaction, message)

    # Visible to everyone: `show`, `optout` and `optin` are for every member; the others
    # check Manage Server as Discord computed it for the member (and say so).
    settings = app_commands.Group(
        name="transcribe-settings",
        description="How threadscribe behaves in this channel, and your own choice",
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )

    @settings.command(name="auto", description="Transcribe every recording posted here")
    @app_commands.describe(state="on: transcribe audio, video and voice messages automatically")
    async def auto(interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
        await intake.set_auto(interaction, state == "on")

    @settings.command(name="policy", description="Who gets transcribed in this channel")
    @app_commands.describe(
        mode="auto: every recording; on-request: when asked; off: nothing; default: the bot's"
    )
    async def policy(
        interaction: discord.Interaction, mode: Literal["auto", "on-request", "off", "default"]
    ) -> None:
        await controls.policy(interaction, mode)

    @settings.command(name="redaction", description="Redact personal data (PII) here")
    @app_commands.describe(
        pii="Redact phone numbers, emails, card numbers... from transcripts",
        audio="Also post the audio with the personal data beeped out",
    )
    async def redaction(
        interaction: discord.Interaction, pii: Switch, audio: Switch | None = None
    ) -> None:
        await controls.redaction(interaction, pii, audio)

    @settings.command(name="show", description="This channel's settings, yours, and usage")
    async def show(interaction: discord.Interaction) -> None:
        await controls.show(interaction)

    @settings.command(name="optout", description="Never transcribe what you share automatically")
    async def optout(interaction: discord.Interaction) -> None:
        await controls.opt(interaction, out=True)

    @settings.command(name="optin", description="Transcribe what you share where channels do")
    async def optin(interaction: discord.Interaction) -> None:
        await controls.opt(interaction, out=False)

    @settings.command(name="usage", description="This month's hours and estimated cost")
    async def usage(interaction: discord.Interaction) -> None:
        await controls.usage(interaction)

    preferences.add_commands(settings, intake)
    return [transcribe, transcribe_message, forget_message, settings]
