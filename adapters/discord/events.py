"""Discord's triggers (messages, the `/transcribe` command, the "Transcribe" message
command, `/transcribe-settings`), each translated into the core's `Trigger`.

Order of work, and why:

- Messages: the core takes the trigger, then nothing else; the engine reacts and posts
  the status. A replayed MESSAGE_CREATE (after a gateway resume) finds its job by the
  dedupe key (platform + guild + channel + message + file) and does nothing.
- Interactions must be acknowledged within 3 s. Checks that need no I/O answer at once
  (ephemeral); otherwise the interaction is deferred *first*, then the trigger taken in,
  then answered. The deferral promises nothing ("thinking…"): what the user is told comes
  after the job is stored. Doing the intake first would risk the 3-s window whenever the
  database is slow (SQLite waits for its write lock), and a missed window loses the
  interaction's token for good.
- A refusal (a limit, an empty or oversized file) is answered in place: a reply to the
  message, or, for interactions, an ephemeral message (a public deferral is replaced).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from typing import Literal

import discord

from adapters.discord import texts
from adapters.discord.answers import answer_content, search_content
from adapters.discord.delivery import Hints, Interactions, Reply, reply_mode
from adapters.discord.files import attachment_of
from adapters.discord.format import nonce
from adapters.discord.replies import NO_MENTIONS, refused, say
from bot import messages
from bot.chat import (
    Attachment,
    ChannelRef,
    Core,
    JobOptions,
    Platform,
    Question,
    Taken,
    Trigger,
    UrlSource,
)
from bot.errors import OptionsError
from bot.intake import find_links, is_media, language_code
from bot.revisions import translation_target
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

DM_WORKSPACE = "@me"  # what Discord's own links call the DM "guild"
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)
Subtitles = Literal["srt", "vtt", "srt+vtt"]


class Events:
    """Hands Discord's triggers to the core, and answers the interactions."""

    def __init__(self, core: Core, interactions: Interactions) -> None:
        self.core = core  # the result's buttons (adapters/discord/actions.py) find it here
        self._interactions = interactions
        self._accepting = False
        self._running = TaskSet("discord")

    def resume(self) -> None:
        """Start taking triggers (the gateway is up)."""
        self._accepting = True

    def pause(self) -> None:
        """Stop taking triggers (shutdown, phase one); handlers under way finish."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Wait (at most `grace` seconds) for handlers under way; discord.py owns them."""
        await self._running.drain(grace, cancel=False)

    def holding(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Count a handler as under way (for `drain`)."""
        return self._running.holding()

    @property
    def accepting(self) -> bool:
        return self._accepting and self.core.accepting

    @property
    def running(self) -> TaskSet:
        """The handlers under way (the controls' too, so that a drain waits for them)."""
        return self._running

    # -- messages --------------------------------------------------------------------------

    async def on_message(self, message: discord.Message, me: discord.abc.User) -> None:
        if not self._accepting or message.author.id == me.id:
            return  # the bot's own messages never trigger a job
        if message.type not in _USER_MESSAGES:
            return  # system messages: pins, thread starters, joins
        if not message.attachments and "http" not in message.content:
            question = _question(message, me)
            if question is not None:
                async with self._running.holding():
                    await self._ask(message, question)
            return  # nothing else to look at
        async with self._running.holding():
            taken = await self.core.take(
                message_trigger(message, requester=message.author.id, explicit=False)
            )
            if taken.refusals:
                await self._reply_refused(message, taken)
        log.info(
            "message %s: %d new job(s), %d known",
            message.id,
            len(taken.created),
            len(taken.existing),
            extra={"discord_message": message.id},
        )

    # -- questions in a transcript's thread ------------------------------------------------

    async def _ask(self, message: discord.Message, question: Question) -> None:
        """A reply to a result, or a mention in a transcript's thread: answered in reply,
        the typing indicator showing meanwhile."""
        if not await self.core.about_a_transcript(question):
            return
        try:
            await message.channel.typing()  # "threadscribe is typing…" for ten seconds
        except discord.HTTPException as exc:
            log.info("typing indicator not shown: %s", exc)
        answered = await self.core.ask(question)  # never raises for the gateway or AssemblyAI
        if answered is None:
            return
        try:
            await message.channel.send(
                answer_content(answered),
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
                nonce=nonce(f"answer:{message.channel.id}:{message.id}"),
                suppress_embeds=True,
            )
        except discord.HTTPException as exc:
            log.warning("could not post the answer to %s: %s", message.id, exc)

    # -- /transcribe search:<words> -------------------------------------------------------

    async def search_command(self, interaction: discord.Interaction, words: str) -> None:
        """This channel's recordings only, answered to the asker only (ephemeral)."""
        async with self._running.holding():
            if not self.accepting:
                await say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            where = ChannelRef(
                Platform.DISCORD,
                str(interaction.guild_id or DM_WORKSPACE),
                str(interaction.channel_id or 0),
            )
            results = await self.core.search(where, words, by=str(interaction.user.id))
            await interaction.followup.send(
                search_content(results),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
            )

    async def _reply_refused(self, message: discord.Message, taken: Taken) -> None:
        try:
            await message.channel.send(
                messages.refused(taken.refusals),
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
                nonce=nonce(f"refused:{message.channel.id}:{message.id}"),
            )
        except discord.HTTPException as exc:
            log.warning("could not tell %s why it was refused: %s", message.id, exc)

    # -- /transcribe ---------------------------------------------------------------------

    async def transcribe_command(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment | None,
        url: str | None,
        speakers: int | None,
        language: str | None,
        subtitles: Subtitles | None,
        translate: str | None = None,
    ) -> None:
        async with self._running.holding():
            try:
                options = command_options(speakers, language, subtitles, translate)
            except OptionsError as exc:
                await say(interaction, f"{exc}. {texts.USAGE}")
                return
            url = url.strip() if url else None
            if (file is None) == (url is None):
                await say(interaction, texts.USAGE)
                return
            if url is not None:
                try:
                    UrlSource(url)
                except ValueError as exc:
                    await say(interaction, f"url: {exc}. {texts.USAGE}")
                    return
            if file is not None and not is_media(file.content_type, file.filename):
                await say(interaction, texts.not_media(file.filename, file.content_type))
                return
            if not self.accepting:
                await say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(thinking=True)  # the ack, before any I/O of ours
            await self._command_intake(interaction, options, file, url)

    async def _command_intake(
        self,
        interaction: discord.Interaction,
        options: JobOptions,
        file: discord.Attachment | None,
        url: str | None,
    ) -> None:
        channel_id = interaction.channel_id or 0
        hints = Hints(
            reply=reply_mode(interaction.channel),
            interaction=self._interactions.add(interaction),
            embeds=interaction.app_permissions.embed_links,
        )
        attachments: tuple[Attachment, ...] = ()
        if file is not None:
            attachments = (attachment_of(file, channel_id=channel_id, message_id=None),)
        trigger = Trigger(
            platform=Platform.DISCORD,
            workspace=str(interaction.guild_id or DM_WORKSPACE),
            channel=str(channel_id),
            requester=str(interaction.user.id),
            event_id=str(interaction.id),
            text=url or "",
            attachments=attachments,
            explicit=True,
            options=dataclasses.replace(options, platform=hints.extra()),
        )
        taken = await self.core.take(trigger)
        if taken.created:
            return  # the engine fills in the deferred response with the status line
        self._interactions.forget(hints.interaction)
        # The deferral was public; what went wrong is for the requester only.
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        if taken.refusals:
            text = messages.refused(taken.refusals)
        elif taken.existing:
            text = messages.ALREADY
        else:
            text = texts.NOT_A_RECORDING
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # -- the "Transcribe" message command ---------------------------------------------------

    async def transcribe_message(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        async with self._running.holding():
            if not message.attachments and not find_links(message.content):
                await say(interaction, texts.NO_MEDIA_IN_MESSAGE)  # no need to ask anyone
                return
            if not self.accepting:
                await say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            trigger = message_trigger(message, requester=interaction.user.id, explicit=True)
            taken = await self.core.take(trigger)
            where = _where_results(message)
            if taken.refusals:
                text = messages.refused(taken.refusals)
            elif taken.created:
                text = texts.started([*taken.created, *taken.existing], where)
            elif taken.existing:
                text = texts.already(list(taken.existing), where)
            else:
                text = texts.NO_MEDIA_IN_MESSAGE
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # -- /transcribe-settings auto on|off ---------------------------------------------------

    async def set_auto(self, interaction: discord.Interaction, enabled: bool) -> None:
        async with self._running.holding():
            if await refused(interaction, accepting=self._accepting):
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            channel_id = settings_channel(interaction.channel)
            await self.core.set_auto_transcribe(
                Platform.DISCORD,
                str(interaction.guild_id),
                str(channel_id),
                enabled,
                by=str(interaction.user.id),
            )
            reply = texts.auto_set(enabled, f"<#{channel_id}>")
            await interaction.followup.send(reply, ephemeral=True)


def message_trigger(message: discord.Message, *, requester: int, explicit: bool) -> Trigger:
    """The core's view of a Discord message: its attachments (voice messages named for
    who sent them) and its text, with how replies will be made there."""
    channel = message.channel
    guild = message.guild
    embeds = True
    if guild is not None and guild.me is not None and hasattr(channel, "permissions_for"):
        embeds = channel.permissions_for(guild.me).embed_links
    attachments = []
    for attachment in message.attachments:
        voice = attachment.is_voice_message() or message.flags.voice
        title = f"voice message from {message.author.display_name}" if voice else None
        attachments.append(
            attachment_of(attachment, channel_id=channel.id, message_id=message.id, title=title)
        )
    hints = Hints(reply=reply_mode(channel), embeds=embeds)
    return Trigger(
        platform=Platform.DISCORD,
        workspace=str(guild.id) if guild is not None else DM_WORKSPACE,
        channel=str(channel.id),
        requester=str(requester),
        message=str(message.id),
        text=message.content,
        attachments=tuple(attachments),
        explicit=explicit,
        # Sending the bot a recording in a DM is asking for a transcript.
        direct=guild is None,
        options=JobOptions(platform=hints.extra()),
        # Auto-transcribe is set on a channel; a thread (or forum post) follows its parent.
        settings_channel=str(settings_channel(channel)),
        author=str(message.author.id),
    )


def _question(message: discord.Message, me: discord.abc.User) -> Question | None:
    """The question a message asks, if it is one: a reply to one of the bot's messages,
    or a message mentioning the bot inside a thread (the core then decides whether it is
    a transcript's). The bot's mention is taken out; other people's stay `<@id>`."""
    reference = message.reference
    replied_to = None
    if reference is not None and reference.message_id is not None:
        resolved = reference.resolved
        if isinstance(resolved, discord.Message) and resolved.author.id != me.id:
            return None  # a reply to someone else
        replied_to = str(reference.message_id)
    mentioned = any(user.id == me.id for user in message.mentions)
    if replied_to is None and not (mentioned and isinstance(message.channel, discord.Thread)):
        return None
    text = re.sub(rf"<@!?{me.id}>", " ", message.content)
    guild = message.guild
    return Question(
        platform=Platform.DISCORD,
        workspace=str(guild.id) if guild is not None else DM_WORKSPACE,
        channel=str(message.channel.id),
        requester=str(message.author.id),
        text=" ".join(text.split()),
        thread=str(message.channel.id),
        replied_to=replied_to,
        settings_channel=str(settings_channel(message.channel)),
    )


def command_options(
    speakers: int | None,
    language: str | None,
    subtitles: Subtitles | None,
    translate: str | None = None,
) -> JobOptions:
    """`/transcribe`'s options, checked by the same rules as Slack's `/transcribe` text."""
    for name, value in (("language", language), ("translate", translate)):
        if value is not None and len(value.split()) != 1:
            raise OptionsError(f"{name} must be a code such as en or fr, not {value!r}")
    return JobOptions(
        speakers_expected=speakers,
        language_code=language_code(language) if language is not None else None,
        formats=tuple(subtitles.split("+")) if subtitles else (),
        translate_to=translation_target(translate) if translate is not None else None,
    )


def settings_channel(channel: object) -> int:
    """Where auto-transcribe is set: a thread (or forum post) follows its parent."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return int(getattr(channel, "id", 0))


def _where_results(message: discord.Message) -> str:
    if reply_mode(message.channel) is Reply.THREAD:
        return f"in the thread on {message.jump_url}"
    return f"in reply to {message.jump_url}"
