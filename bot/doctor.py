"""`threadscribe doctor`: check the configuration against whatever it can reach.

Each check prints one line per finding: `ok`, `warn` (works, but worth a look) or `FAIL`
(will not work), followed by what to fix. The exit status is 1 if anything failed.

Like `cli.py`, this is a command at the top of the program, so it may gather the chat
platforms' own checks (`adapters.<platform>_doctor.check`); the core modules it tests
(store, AssemblyAI client) never import a platform.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

import aiohttp

from bot import assemblyai as aai
from bot.config import MISSING_API_KEY, Settings, redact_url
from bot.jobs import JobStore, StoreError
from bot.web import WEBHOOK_PATH

#: Seconds one check may take before it is reported as not answering.
CHECK_TIMEOUT: Final = 15.0


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    area: str
    text: str

    def line(self) -> str:
        return f"{self.level.value:<5} {self.area}: {self.text}"


def ok(area: str, text: str) -> Finding:
    return Finding(Level.OK, area, text)


def warn(area: str, text: str) -> Finding:
    return Finding(Level.WARN, area, text)


def fail(area: str, text: str) -> Finding:
    return Finding(Level.FAIL, area, text)


Check = Callable[[Settings], Awaitable[list[Finding]]]


async def run_doctor(
    settings: Settings, out: TextIO, *, checks: Sequence[Check] | None = None
) -> int:
    """Run every check, print its findings as they come; 1 if any failed, else 0."""
    failed = False
    for check in default_checks(settings) if checks is None else checks:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                findings = await check(settings)
        except TimeoutError:
            area = getattr(check, "area", check.__name__.removeprefix("check_"))
            findings = [fail(area, f"no answer within {CHECK_TIMEOUT:g} s")]
        for finding in findings:
            failed = failed or finding.level is Level.FAIL
            print(finding.line(), file=out, flush=True)
    return 1 if failed else 0


def default_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = [check_assemblyai, check_database, check_public_url]
    if settings.slack_bot_token or settings.slack_client_id or settings.slack_app_token:
        checks.append(_platform_check("slack"))
    if settings.discord_token:
        checks.append(_platform_check("discord"))
    if not (settings.slack_enabled or settings.discord_enabled):
        checks.append(check_platforms)
    return checks


def _platform_check(platform: str) -> Check:
    async def check(settings: Settings) -> list[Finding]:
        try:
            module = importlib.import_module(f"adapters.{platform}_doctor")
        except ModuleNotFoundError:
            return [warn(platform.capitalize(), "this build has no checks for it yet")]
        found: list[Finding] = await module.check(settings)
        return found

    check.__name__ = f"check_{platform}"
    return check


async def check_platforms(settings: Settings) -> list[Finding]:
    return [
        fail(
            "Chat",
            "no chat platform is configured: set SLACK_BOT_TOKEN with SLACK_APP_TOKEN "
            "(Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode), and/or DISCORD_TOKEN",
        )
    ]


async def check_assemblyai(settings: Settings) -> list[Finding]:
    area = "AssemblyAI"
    if settings.assemblyai_api_key is None:
        return [fail(area, MISSING_API_KEY)]
    client = aai.AssemblyAIClient(
        settings.assemblyai_api_key,
        base_url=settings.assemblyai_base_url,
        retry=aai.RetryPolicy(attempts=1),
        timeouts=aai.Timeouts(request=10.0, connect=5.0),
    )
    where = redact_url(settings.assemblyai_base_url)
    try:
        await client.list(limit=1)  # the cheapest call that needs a valid key
    except aai.AuthenticationError:
        return [
            fail(
                area,
                f"{where} rejected ASSEMBLYAI_API_KEY (401): copy the key again from the "
                "AssemblyAI dashboard (API keys); an EU key needs ASSEMBLYAI_BASE_URL="
                "https://api.eu.assemblyai.com",
            )
        ]
    except (aai.TransportError, aai.RequestTimeout) as exc:
        return [fail(area, f"cannot reach {where} ({exc.message}): check ASSEMBLYAI_BASE_URL")]
    except aai.AssemblyAIError as exc:
        return [fail(area, f"{where} answered {exc.status}: {exc.message}")]
    finally:
        await client.close()
    return [ok(area, f"the API key works at {where}")]


async def check_database(settings: Settings) -> list[Finding]:
    area = "Database"
    try:
        store = await JobStore.open(settings.database_url.value, connect_timeout=5.0)
    except StoreError as exc:
        return [fail(area, str(exc))]
    try:
        await store.ping()
        return [ok(area, f"{store.url} is reachable and its schema is up to date")]
    except StoreError as exc:
        return [fail(area, str(exc))]
    finally:
        await store.close()


async def check_public_url(settings: Settings) -> list[Finding]:
    """With PUBLIC_URL, AssemblyAI (and Slack in HTTP mode) must reach the bot there."""
    area = "Webhooks"
    if not settings.public_url:
        return [
            ok(
                area,
                "PUBLIC_URL is not set: results are fetched by polling (set it to get "
                "AssemblyAI's webhooks: faster, and fewer calls)",
            )
        ]
    base = settings.public_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=10.0)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{base}/healthz") as health:
                healthy = health.status
            async with session.post(f"{base}{WEBHOOK_PATH}", json={}) as hook:
                guarded = hook.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            fail(
                area,
                f"{base} is not reachable from here ({type(exc).__name__}): start "
                "`threadscribe run` and check that PUBLIC_URL forwards to its PORT, or unset "
                "PUBLIC_URL to poll instead",
            )
        ]
    if healthy != 200:
        return [fail(area, f"{base}/healthz answered {healthy}: is PUBLIC_URL threadscribe?")]
    if guarded != 401:
        return [
            fail(
                area,
                f"{base}{WEBHOOK_PATH} answered {guarded} to a request without the secret "
                "(401 expected): check that PUBLIC_URL reaches threadscribe unchanged",
            )
        ]
    return [ok(area, f"{base} is reachable and {WEBHOOK_PATH} refuses unsigned calls")]
