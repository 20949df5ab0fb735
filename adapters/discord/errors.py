"""Discord's failures, converted once, here, into the core's PlatformError: what went
wrong in words the thread can be shown, and (by its class) whether trying again can help.
discord.py raises `HTTPException` and its subclasses for answers, aiohttp and OS errors
for no answer; both end here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import discord

from adapters.discord import texts
from bot.chat import PlatformError, PlatformRefused, PlatformUnavailable

#: What a Discord REST call can raise besides its answers.
NO_ANSWER: Final = (aiohttp.ClientError, OSError, TimeoutError)


def convert(exc: BaseException, *, what: str = "REST") -> PlatformError:
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, discord.Forbidden):
        return PlatformRefused(texts.forbidden(exc.text or "403"))
    if isinstance(exc, discord.NotFound):
        return PlatformRefused(texts.CHANNEL_GONE)
    if isinstance(exc, discord.HTTPException):
        message = texts.refused_by_discord(exc.status, exc.code, exc.text)
        retryable = exc.status >= 500 or exc.status in (401, 429)
        return (PlatformUnavailable if retryable else PlatformRefused)(message)
    return PlatformUnavailable(texts.unreachable(what, type(exc).__name__))


@contextlib.asynccontextmanager
async def converted(what: str = "REST") -> AsyncIterator[None]:
    """Run a block of discord.py calls; their failures leave it as PlatformError."""
    try:
        yield
    except PlatformError:
        raise
    except (discord.HTTPException, *NO_ANSWER) as exc:
        raise convert(exc, what=what) from exc
