"""Slack's part of `threadscribe doctor`: tokens, scopes, the mode's own needs.

One finding per line, each saying what to fix: the bot token (`auth.test`) and the scopes
Slack granted it (`X-OAuth-Scopes`) against `BOT_SCOPES`; Socket Mode's app token (it
must open a connection); HTTP mode's public request URL (it must answer and check
signatures); OAuth's client id and secret (exchanging a made-up code tells a wrong
secret from a right one without installing anything).
"""

from __future__ import annotations

from typing import Final

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import APP_SCOPES, BOT_SCOPES
from adapters.slack.app import EVENTS_PATH
from adapters.slack.errors import error_code
from adapters.slack.workspaces import web_client
from bot.config import Settings
from bot.doctor import Finding, fail, ok, warn

AREA: Final = "Slack"
_MANIFEST = "update the app from slack-manifest.yml (App Manifest tab) and reinstall it"


async def check(settings: Settings) -> list[Finding]:
    api = settings.slack_api_url
    findings: list[Finding] = []
    if settings.slack_oauth:
        findings.append(await _oauth(settings, web_client(None, base_url=api)))
        if settings.slack_bot_token:
            findings.append(
                warn(
                    AREA,
                    "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET switch on multi-workspace installs, "
                    "so SLACK_BOT_TOKEN is ignored: each workspace's token comes from its "
                    "install at /slack/install. For one workspace, remove the two OAuth lines",
                )
            )
        if not settings.public_url:
            findings.append(
                warn(
                    AREA,
                    "multi-workspace installs: PUBLIC_URL is not set, so Slack sends the "
                    "installing browser to the app's own Redirect URL, which must reach "
                    "/slack/oauth_redirect here. Set PUBLIC_URL, or remove SLACK_CLIENT_ID and "
                    "SLACK_CLIENT_SECRET to use SLACK_BOT_TOKEN",
                )
            )
    elif settings.slack_bot_token:
        if settings.slack_client_id or settings.slack_client_secret:
            findings.append(
                fail(
                    AREA,
                    "only one of SLACK_CLIENT_ID and SLACK_CLIENT_SECRET is set: set both for "
                    "multi-workspace installs, or neither to use SLACK_BOT_TOKEN",
                )
            )
        findings.extend(await _bot(web_client(settings.slack_bot_token.value, base_url=api)))
    else:
        findings.append(
            fail(
                AREA,
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) "
                "from OAuth & Permissions",
            )
        )
    if settings.slack_app_token:
        findings.append(await _socket(settings.slack_app_token.value, api))
    elif settings.slack_signing_secret:
        findings.append(await _http(settings.public_url))
    else:
        findings.append(
            fail(
                AREA,
                "set SLACK_APP_TOKEN (xapp-..., Socket Mode: Basic Information → "
                "App-Level Tokens, scope connections:write) or SLACK_SIGNING_SECRET (HTTP mode)",
            )
        )
    return findings


async def _bot(client: AsyncWebClient) -> list[Finding]:
    try:
        who = await client.auth_test()
    except SlackApiError as exc:
        error = error_code(exc)
        return [
            fail(
                AREA,
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth "
                "Token (xoxb-...) again from OAuth & Permissions; reinstall the app if it "
                "was removed",
            )
        ]
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            fail(
                AREA,
                f"cannot reach {client.base_url} ({type(exc).__name__}): check "
                "SLACK_API_URL and the network",
            )
        ]
    findings = [ok(AREA, f"bot @{who.get('user')} in {who.get('team')} ({who.get('team_id')})")]
    granted = {s.strip() for s in str(who.headers.get("X-OAuth-Scopes", "")).split(",") if s}
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    if missing:
        findings.append(fail(AREA, f"the bot token lacks {', '.join(missing)}: {_MANIFEST}"))
    else:
        findings.append(ok(AREA, "the bot token has every scope threadscribe uses"))
    extra = sorted(granted - set(BOT_SCOPES))
    if extra:
        findings.append(
            warn(
                AREA,
                f"scopes granted but not used: {', '.join(extra)} "
                "(harmless; drop them to grant less)",
            )
        )
    return findings


async def _socket(app_token: str, api: str) -> Finding:
    client = web_client(None, base_url=api)
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = error_code(exc)
        hint = (
            "give the App-Level Token the connections:write scope"
            if error == "missing_scope"
            else "copy the App-Level Token (xapp-...) from Basic Information"
        )
        return fail(
            AREA,
            f"Socket Mode: Slack refused SLACK_APP_TOKEN ({error}): {hint}; and "
            "turn on Settings → Socket Mode",
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return fail(AREA, f"Socket Mode: cannot reach Slack ({type(exc).__name__})")
    return ok(AREA, f"Socket Mode: the app token ({', '.join(APP_SCOPES)}) opens a connection")


async def _http(public_url: str | None) -> Finding:
    if not public_url:
        return fail(
            AREA,
            "HTTP mode needs a public URL: set PUBLIC_URL and point the app's "
            f"request URLs at PUBLIC_URL{EVENTS_PATH}, or use Socket Mode "
            "(SLACK_APP_TOKEN)",
        )
    url = public_url.rstrip("/") + EVENTS_PATH
    headers = {"X-Slack-Request-Timestamp": "0", "X-Slack-Signature": "v0=doctor"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0)) as session,
            session.post(url, data=b"{}", headers=headers) as answer,
        ):
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return fail(
            AREA,
            f"HTTP mode: {url} is not reachable ({type(exc).__name__}): start "
            "`threadscribe run` and forward PUBLIC_URL to its PORT",
        )
    if status != 401:
        return fail(
            AREA,
            f"HTTP mode: {url} answered {status} to a forged request (401 "
            "expected): check that it reaches threadscribe",
        )
    return ok(AREA, f"HTTP mode: {url} answers and checks Slack's signatures")


def installations(count: int | None, public_url: str | None) -> Finding:
    """With multi-workspace installs, events from a workspace without an install are
    dropped: none at all means the bot answers nobody yet."""
    if count is None:
        return warn(AREA, "installs: the database could not be read (see Database above)")
    if count:
        return ok(AREA, f"installed in {count} workspace{'s' if count != 1 else ''}")
    where = f"{public_url.rstrip('/')}/slack/install" if public_url else "/slack/install"
    return fail(
        AREA,
        "no workspace has installed threadscribe yet, so every event would be dropped: "
        f"start `threadscribe run` and open {where} to install it (or remove SLACK_CLIENT_ID "
        "and SLACK_CLIENT_SECRET to use SLACK_BOT_TOKEN in one workspace)",
    )


async def _oauth(settings: Settings, client: AsyncWebClient) -> Finding:
    assert settings.slack_client_id and settings.slack_client_secret
    try:
        await client.oauth_v2_access(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.value,
            code="threadscribe-doctor",
        )
    except SlackApiError as exc:
        error = error_code(exc)
        if error == "invalid_code":  # the credentials passed; only the made-up code did not
            return ok(AREA, "OAuth: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are accepted")
        return fail(
            AREA,
            f"OAuth: Slack refused the client credentials ({error}): copy "
            "Client ID and Client Secret from Basic Information → App Credentials",
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return fail(AREA, f"OAuth: cannot reach Slack ({type(exc).__name__})")
    return warn(AREA, "OAuth: Slack accepted a made-up code, which it should not")
