"""Triggers in, intakes out: messages, `/transcribe`, the "Transcribe" message command and
`/transcribe-settings`, each translated into `IntakeRecord`s for `engine.intake()`.

Order of work, and why:

- Messages: intake first, then nothing else; the engine reacts and posts the status.
  A replayed MESSAGE_CREATE (after a gateway resume) finds its job by the dedupe key
  (platform + guild + channel + message + file) and does nothing.
- Interactions must be acknowledged within 3 s. Checks that need no I/O answer at once
  (ephemeral); otherwise the interaction is deferred *first*, then the intake persisted,
  then answered. The deferral promises nothing ("thinking…"): what the user is told comes
  after the job is stored. Doing the intake first would risk the 3-s window whenever the
  database is slow (SQLite waits for its write lock), and a missed window loses the
  interaction's token for good.
- A refusal (a limit, an empty or oversized file) is answered in place: a reply to the
  message, or, for interactions, an ephemeral message (a public deferral is replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

import discord

from adapters import discord_texts as texts
from adapters.base import (
    FileSource,
    IntakeRecord,
    OptionsError,
    Platform,
    TranscribeArgs,
    UrlSource,
    find_media_links,
    is_media,
    is_media_url,
    parse_transcribe_args,
)
from adapters.discord_delivery import Hints, Interactions, Reply, reply_mode
from adapters.discord_files import attachment_ref
from adapters.discord_format import NO_MENTIONS, nonce
from bot.jobs import JobStore

if TYPE_CHECKING:
    from bot.engine import Engine, IntakeOutcome

log = logging.getLogger(__name__)

DM_WORKSPACE = "@me"  # what Discord's own links call the DM "guild"
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)
Subtitles = Literal["srt", "vtt", "srt+vtt"]


class Intake:
    """Hands triggers to the engine. Created before the engine exists: `attach()` it."""

    def __init__(
        self, store: JobStore, interactions: Interactions, *, auto_transcribe: bool = True
    ) -> None:
        self._store = store
        self._interactions = interactions
        self._auto_default = auto_transcribe
        self._engine: Engine | None = None
        self._accepting = False
        self._running: set[asyncio.Task[object]] = set()

    def attach(self, engine: Engine) -> None:
        self._engine = engine
        self._accepting = True

    def pause(self) -> None:
        """Stop taking triggers (shutdown, phase one); handlers under way finish."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Wait (at most `grace` seconds) for handlers under way."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)

    # -- messages --------------------------------------------------------------------------

    async def on_message(self, message: discord.Message, me: discord.abc.User) -> None:
        if not self._accepting or message.author.id == me.id:
            return  # the bot's own messages never trigger a job
        if message.type not in _USER_MESSAGES:
            return  # system messages: pins, thread starters, joins
        records = message_records(message, requester=message.author.id)
        if not records:
            return
        async with self._tracked():
            if not await self._auto_enabled(message):
                return
            outcomes = [await self._intake(record) for record in records]
            refusals = [o.refused for o in outcomes if o.refused]
            if refusals:
                await self._reply_refused(message, refusals)
        created = sum(o.created for o in outcomes)
        log.info(
            "message %s: %d intake(s), %d new",
            message.id,
            len(outcomes),
            created,
            extra={"discord_message": message.id, "intakes": len(outcomes), "new_jobs": created},
        )

    async def _auto_enabled(self, message: discord.Message) -> bool:
        if message.guild is None:
            return True  # sending the bot a recording in a DM is asking for a transcript
        settings = await self._store.channel_settings(
            Platform.DISCORD, str(message.guild.id), str(settings_channel(message.channel))
        )
        return self._auto_default if settings is None else settings.auto_transcribe

    async def _reply_refused(self, message: discord.Message, refusals: list[str]) -> None:
        try:
            await message.channel.send(
                texts.refused(refusals),
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
    ) -> None:
        async with self._tracked():
            try:
                args = command_args(url, speakers, language, subtitles)
            except OptionsError as exc:
                await _say(interaction, f"{exc}. {texts.USAGE}")
                return
            if (file is None) == (args.url is None):
                await _say(interaction, texts.USAGE)
                return
            if file is not None and not is_media(file.content_type, file.filename):
                await _say(interaction, texts.not_media(file.filename, file.content_type))
                return
            if not self._accepting:
                await _say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(thinking=True)  # the ack, before any I/O of ours
            await self._command_intake(interaction, args, file)

    async def _command_intake(
        self,
        interaction: discord.Interaction,
        args: TranscribeArgs,
        file: discord.Attachment | None,
    ) -> None:
        channel_id = interaction.channel_id or 0
        if file is not None:
            source: FileSource | UrlSource = attachment_ref(
                file, channel_id=channel_id, message_id=None
            )
            title = file.filename
        else:
            assert args.url is not None
            source, title = UrlSource(args.url), link_title(args.url)
        hints = Hints(
            reply=reply_mode(interaction.channel),
            title=title,
            interaction=self._interactions.add(interaction),
            embeds=interaction.app_permissions.embed_links,
        )
        record = IntakeRecord(
            platform=Platform.DISCORD,
            workspace=str(interaction.guild_id or DM_WORKSPACE),
            channel=str(channel_id),
            requester=str(interaction.user.id),
            source=source,
            event_id=str(interaction.id),
            options={**args.options(), **hints.options()},
            audio_duration=file.duration if file is not None else None,
        )
        outcome = await self._intake(record)
        if outcome.refused is not None:
            self._interactions.forget(hints.interaction)
            # The deferral was public; a refusal is for the requester only.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            await interaction.followup.send(texts.refused([outcome.refused]), ephemeral=True)
        # Accepted: the engine fills in the deferred response with the status line.

    # -- the "Transcribe" message command ---------------------------------------------------

    async def transcribe_message(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        async with self._tracked():
            records = message_records(message, requester=interaction.user.id)
            if not records:
                await _say(interaction, texts.NO_MEDIA_IN_MESSAGE)
                return
            if not self._accepting:
                await _say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            outcomes = [await self._intake(record) for record in records]
            titles = [Hints.of(r.options).title for r in records]
            where = _where_results(message)
            refusals = [o.refused for o in outcomes if o.refused]
            if refusals:
                text = texts.refused(refusals)
            elif any(o.created for o in outcomes):
                text = texts.started(titles, where)
            else:
                text = texts.already(titles, where)
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # -- /transcribe-settings auto on|off ---------------------------------------------------

    async def set_auto(self, interaction: discord.Interaction, enabled: bool) -> None:
        async with self._tracked():
            if interaction.guild_id is None or interaction.channel is None:
                await _say(interaction, texts.GUILD_ONLY)
                return
            # Discord hides the command from others by default; a server may override that.
            if not interaction.permissions.manage_guild:
                await _say(interaction, texts.NEED_MANAGE_SERVER)
                return
            if not self._accepting:
                await _say(interaction, texts.SHUTTING_DOWN)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            channel_id = settings_channel(interaction.channel)
            await self._store.set_auto_transcribe(
                Platform.DISCORD,
                str(interaction.guild_id),
                str(channel_id),
                enabled,
                updated_by=str(interaction.user.id),
            )
            log.info("auto-transcribe %s in %s by %s", enabled, channel_id, interaction.user.id)
            reply = texts.auto_set(enabled, f"<#{channel_id}>")
            await interaction.followup.send(reply, ephemeral=True)

    # -- helpers ---------------------------------------------------------------------------

    async def _intake(self, record: IntakeRecord) -> IntakeOutcome:
        if self._engine is None:
            raise RuntimeError("Intake.attach(engine) was not called")
        return await self._engine.intake(record)

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        """Count the current handler as running until it has answered (for `drain`)."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._running.add(task)
        try:
            yield
        finally:
            self._running.discard(task)


def message_records(message: discord.Message, *, requester: int) -> list[IntakeRecord]:
    """One intake per audio/video attachment (voice messages included) and per link to
    audio/video in the message, in order."""
    channel = message.channel
    guild = message.guild
    common = {
        "platform": Platform.DISCORD,
        "workspace": str(guild.id) if guild is not None else DM_WORKSPACE,
        "channel": str(channel.id),
        "requester": str(requester),
        "message": str(message.id),
    }
    embeds = True
    if guild is not None and guild.me is not None and hasattr(channel, "permissions_for"):
        embeds = channel.permissions_for(guild.me).embed_links
    reply = reply_mode(channel)
    records: list[IntakeRecord] = []
    for attachment in message.attachments:
        if not is_media(attachment.content_type, attachment.filename):
            continue
        voice = attachment.is_voice_message() or message.flags.voice
        title = f"voice message from {message.author.display_name}" if voice else None
        hints = Hints(reply=reply, title=title or attachment.filename, embeds=embeds)
        records.append(
            IntakeRecord(
                **common,
                source=attachment_ref(attachment, channel_id=channel.id, message_id=message.id),
                options=hints.options(),
                audio_duration=attachment.duration,
            )
        )
    for link in find_media_links(message.content):
        if not is_media_url(link):
            continue
        try:
            source = UrlSource(link)
        except ValueError:
            continue  # not a plain public http(s) URL
        hints = Hints(reply=reply, title=link_title(link), embeds=embeds)
        records.append(IntakeRecord(**common, source=source, options=hints.options()))
    return records


def command_args(
    url: str | None, speakers: int | None, language: str | None, subtitles: Subtitles | None
) -> TranscribeArgs:
    """`/transcribe`'s options, checked by the same rules as Slack's `/transcribe` text."""
    if url is not None:
        try:
            UrlSource(url.strip())
        except ValueError as exc:
            raise OptionsError(f"url: {exc}") from None
        url = url.strip()
    if language is not None:
        if len(language.split()) != 1:
            raise OptionsError(f"language must be a code such as en or fr, not {language!r}")
        language = parse_transcribe_args(f"lang={language}").language
    formats = tuple(subtitles.split("+")) if subtitles else ()
    return TranscribeArgs(url=url, speakers=speakers, language=language, formats=formats)


def settings_channel(channel: object) -> int:
    """Where auto-transcribe is set: a thread (or forum post) follows its parent."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return int(getattr(channel, "id", 0))


def link_title(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name or urlsplit(url).netloc


def _where_results(message: discord.Message) -> str:
    if reply_mode(message.channel) is Reply.THREAD:
        return f"in the thread on {message.jump_url}"
    return f"in reply to {message.jump_url}"


async def _say(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer, as the first response or after a deferral."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
