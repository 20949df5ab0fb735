"""Discord's part of `threadscribe doctor`: the token, the Message Content intent, a server.

Each finding says what to fix: a token Discord rejects; the Message Content intent off in
the Developer Portal (read from the application's flags: without it Discord blanks the
content and the attachments of other people's messages, and the gateway refuses the bot);
a bot that is in no server yet (the invite link, with exactly the permissions it uses).
Only reads are made.
"""

from __future__ import annotations

from typing import Final

import aiohttp
import discord

from adapters.discord import configure_endpoints, texts
from adapters.discord.client import invite_url
from bot.config import Settings
from bot.doctor import Finding, fail, ok

AREA: Final = "Discord"


async def check(settings: Settings) -> list[Finding]:
    if settings.discord_token is None:
        return [fail(AREA, texts.TOKEN_MISSING)]
    configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    client = discord.Client(intents=discord.Intents.none())
    try:
        return await _checks(client, settings.discord_token.value)
    finally:
        await client.close()


async def _checks(client: discord.Client, token: str) -> list[Finding]:
    try:
        await client.login(token)
    except discord.LoginFailure:
        return [fail(AREA, texts.TOKEN_REJECTED)]
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        return [fail(AREA, texts.unreachable(discord.http.Route.BASE, reason))]
    user = client.user
    findings = [ok(AREA, f"the token logs in as {user} ({getattr(user, 'id', '?')})")]
    try:
        app = await client.application_info()
        guilds = [guild async for guild in client.fetch_guilds(limit=1)]
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        findings.append(fail(AREA, texts.unreachable(discord.http.Route.BASE, str(exc))))
        return findings
    flags = app.flags
    if flags.gateway_message_content or flags.gateway_message_content_limited:
        findings.append(ok(AREA, "the Message Content intent is on"))
    else:
        findings.append(fail(AREA, texts.INTENT_OFF))
    if guilds:
        findings.append(ok(AREA, f"the bot is in at least one server ({guilds[0].name})"))
    else:
        findings.append(fail(AREA, texts.no_server(invite_url(app.id))))
    return findings
