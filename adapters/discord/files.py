"""Attachments: their reference in a job, and streaming their bytes from Discord's CDN.

A job keeps where the file is (`FileSource.ref`: attachment id, CDN URL, name, size, type,
channel and message ids), never its bytes. CDN URLs are public but signed, and the
signature expires (`ex`, hex seconds; 24 h on Discord). Fetching the message again with
the bot token returns freshly signed URLs, so a stale URL is renewed before the download,
or after the CDN refuses it. The CDN is always fetched without the bot token.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qs, urlsplit

import aiohttp
import discord

from adapters.discord import texts
from adapters.discord.errors import NO_ANSWER, convert
from bot.chat import (
    Attachment,
    FileSource,
    FileStream,
    FileUnavailable,
    JSONScalar,
    PlatformUnavailable,
    stream_body,
)

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1 << 16
#: Renew a URL whose signature runs out sooner than this (the download takes a while).
EXPIRY_MARGIN: Final = 10 * 60.0


def attachment_of(
    attachment: discord.Attachment,
    *,
    channel_id: int,
    message_id: int | None,
    title: str | None = None,
) -> Attachment:
    """The core's view of `attachment`. `message_id` is None for a file given to a slash
    command: it belongs to no message, so its URL cannot be renewed."""
    ref: dict[str, JSONScalar] = {
        "id": str(attachment.id),
        "url": attachment.url,
        "filename": attachment.filename,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "channel": str(channel_id),
        "message": None if message_id is None else str(message_id),
        "duration": attachment.duration,
    }
    return Attachment(
        ref=ref,
        name=attachment.filename,
        mimetype=attachment.content_type,
        size=attachment.size,
        duration=attachment.duration,
        title=title,
    )


def expires_at(url: str) -> float | None:
    """When a signed CDN URL stops working (epoch seconds), if it says."""
    values = parse_qs(urlsplit(url).query).get("ex")
    try:
        return float(int(values[0], 16)) if values else None
    except ValueError:
        return None


class AttachmentFetcher:
    """Opens attachments for streaming. Owns one aiohttp session for the CDN."""

    def __init__(self, client: discord.Client, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # Responses handed out and not yet read to the end, closed at shutdown.
        self._open: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()

    async def open(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        for response in list(self._open):
            response.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def public_url(self, source: FileSource, *, valid_for: float) -> str | None:
        """A URL anyone (AssemblyAI) can fetch for at least `valid_for` more seconds,
        renewed from the message if need be; None if there is none (a command's file)."""
        ref = source.ref
        url = str(ref["url"])
        expiry = expires_at(url)
        if expiry is not None and expiry - self._clock() >= valid_for:
            return url
        try:
            return await self._renewed_url(ref)
        except FileUnavailable:
            return None

    async def open_file(self, source: FileSource) -> FileStream:
        """Start the download; errors (gone, refused) surface here, not mid-stream."""
        ref = source.ref
        url = str(ref["url"])
        renewed = False
        expiry = expires_at(url)
        if expiry is not None and expiry - self._clock() < EXPIRY_MARGIN:
            url, renewed = await self._renewed_url(ref), True
        response = await self._get(url)
        if response.status in (403, 404, 410) and not renewed:
            log.info("CDN refused attachment %s (%d); renewing its URL", ref["id"], response.status)
            response.close()
            response = await self._get(await self._renewed_url(ref))
        if response.status != 200:
            response.close()
            if response.status >= 500 or response.status == 429:
                raise PlatformUnavailable(texts.cdn_refused(response.status))
            raise FileUnavailable(texts.cdn_refused(response.status))
        self._open.add(response)
        size = response.content_length
        declared = ref.get("size")
        if size is None and isinstance(declared, int):
            size = declared
        content_type = ref.get("content_type")
        return FileStream(
            stream_body(response, chunk_size=CHUNK_BYTES, broke_off=_broke_off),
            size=size,
            content_type=content_type if isinstance(content_type, str) else None,
        )

    async def _get(self, url: str) -> aiohttp.ClientResponse:
        if self._session is None:
            raise PlatformUnavailable("the Discord adapter is not started")
        try:
            return await self._session.get(url)  # no Authorization: the CDN is public
        except NO_ANSWER as exc:
            raise convert(exc, what="CDN") from exc

    async def _renewed_url(self, ref: Mapping[str, JSONScalar]) -> str:
        """A freshly signed URL for the attachment, read from its message."""
        message_id = ref.get("message")
        if not message_id:
            raise FileUnavailable(texts.COMMAND_FILE_EXPIRED)
        channel = self._client.get_partial_messageable(int(str(ref["channel"])))
        try:
            message = await channel.fetch_message(int(str(message_id)))
        except discord.NotFound as exc:
            raise FileUnavailable(texts.MESSAGE_GONE) from exc
        except discord.Forbidden as exc:
            raise FileUnavailable(texts.CANNOT_READ_HISTORY) from exc
        except (discord.HTTPException, *NO_ANSWER) as exc:
            raise convert(exc) from exc
        for attachment in message.attachments:
            if str(attachment.id) == str(ref["id"]):
                return attachment.url
        raise FileUnavailable(texts.ATTACHMENT_GONE)


def _broke_off(exc: BaseException) -> PlatformUnavailable:
    return PlatformUnavailable(
        texts.unreachable("CDN", f"the download broke off ({type(exc).__name__})")
    )
