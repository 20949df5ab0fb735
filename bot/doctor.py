"""`threadscribe doctor`: check the configuration against whatever it can reach.

Each check prints one line per finding: `ok`, `warn` (works, but worth a look) or `FAIL`
(will not work), followed by what to fix. The exit status is 1 if anything failed.

The platforms' own checks (`adapters.<platform>.doctor.check`) are handed in by the
composition root (`bot.run.platform_checks`); this module imports no platform.

Doctor changes nothing: the database is inspected read-only (a SQLite file that does not
exist is not created), and the only calls it makes are reads, plus one one-token chat
completion when AI summaries are on (the only way to know the gateway serves the model).
"""

from __future__ import annotations

import asyncio
import enum
import errno
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

import aiohttp

from bot import assemblyai as aai
from bot.config import (
    MISSING_API_KEY,
    Environment,
    Settings,
    env_file_warnings,
    redact_url,
    speech_model_warnings,
)
from bot.errors import StoreError
from bot.jobs.database import inspect_schema
from bot.models import LLM_MODELS
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
    settings: Settings,
    out: TextIO,
    *,
    first: Sequence[Finding] = (),
    checks: Sequence[Check] | None = None,
    platforms: Sequence[Check] = (),
) -> int:
    """Print `first` (what reading the settings found), then run every check and print its
    findings as they come; 1 if anything failed, else 0. A check that breaks or takes too
    long is a finding too: one run reports every problem and never ends in a traceback."""
    failed = False

    def show(found: Sequence[Finding]) -> None:
        nonlocal failed
        for finding in found:
            failed = failed or finding.level is Level.FAIL
            print(finding.line(), file=out, flush=True)

    show(first)
    for check in default_checks(settings, platforms) if checks is None else checks:
        area = getattr(check, "area", check.__name__.removeprefix("check_").capitalize())
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                findings = await check(settings)
        except TimeoutError:
            findings = [fail(area, f"no answer within {CHECK_TIMEOUT:g} s")]
        except Exception as exc:
            findings = [fail(area, f"the check itself failed ({type(exc).__name__}): {exc}")]
        show(findings)
    return 1 if failed else 0


def settings_findings(
    env: Environment, settings: Settings, problems: Sequence[str]
) -> list[Finding]:
    """What reading the settings found: each bad value (FAIL), and warnings."""
    area = "Settings"
    found = [fail(area, problem) for problem in (*env.problems, *problems)]
    found += [warn(area, text) for text in env_file_warnings(env)]
    found += [
        warn(area, f"ASSEMBLYAI_SPEECH_MODELS: {text}")
        for text in speech_model_warnings(settings.speech_models)
    ]
    if settings.llm_model not in LLM_MODELS:
        found.append(
            warn(
                area,
                f"LLM_MODEL {settings.llm_model} is not among the LLM Gateway models "
                "threadscribe knows; the gateway check below tells whether it is served",
            )
        )
    if not found:
        source = (
            f"the environment and {env.dotenv}" if env.dotenv else "the environment (no .env here)"
        )
        found.append(ok(area, f"every setting read from {source} is valid"))
    return found


def default_checks(settings: Settings, platforms: Sequence[Check] = ()) -> list[Check]:
    """The core's checks, then the platforms' (given by the composition root)."""
    checks: list[Check] = [
        check_assemblyai,
        check_llm_gateway,
        check_database,
        check_port,
        check_public_url,
        *platforms,
    ]
    if not (settings.slack_enabled or settings.discord_enabled):
        checks.append(check_platforms)
    return checks


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


async def check_llm_gateway(settings: Settings) -> list[Finding]:
    """With AI summaries on, the gateway must serve LLM_MODEL to this key: one chat
    completion of one token (a fraction of a cent) is the only way to know."""
    area = "LLM Gateway"
    if not settings.ai_summary:
        return [ok(area, "AI summaries are off (AI_SUMMARY): the gateway is not used")]
    if settings.assemblyai_api_key is None:
        return [fail(area, MISSING_API_KEY)]
    where = redact_url(settings.llm_gateway_url)
    client = aai.AssemblyAIClient(
        settings.assemblyai_api_key,
        llm_base_url=settings.llm_gateway_url,
        retry=aai.RetryPolicy(attempts=1),
        timeouts=aai.Timeouts(request=10.0, connect=5.0),
    )
    try:
        await client.chat(
            [{"role": "user", "content": "ping"}], model=settings.llm_model, max_tokens=1
        )
    except aai.AuthenticationError:
        return [
            fail(
                area,
                f"{where} rejected ASSEMBLYAI_API_KEY (401): an EU key needs the EU gateway "
                "(leave ASSEMBLYAI_LLM_GATEWAY_URL unset to follow ASSEMBLYAI_BASE_URL)",
            )
        ]
    except aai.BadRequestError as exc:
        return [fail(area, f"{where} refused LLM_MODEL {settings.llm_model}: {exc.message}")]
    except (aai.TransportError, aai.RequestTimeout) as exc:
        return [
            fail(area, f"cannot reach {where} ({exc.message}): check ASSEMBLYAI_LLM_GATEWAY_URL")
        ]
    except aai.AssemblyAIError as exc:
        return [fail(area, f"{where} answered {exc.status}: {exc.message}")]
    finally:
        await client.close()
    return [ok(area, f"{where} serves {settings.llm_model} to this key")]


async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, and what `run` would do to its schema; nothing is created or changed."""
    area = "Database"
    try:
        return [ok(area, await inspect_schema(settings.database_url.value))]
    except StoreError as exc:
        return [fail(area, str(exc))]


async def check_port(settings: Settings) -> list[Finding]:
    """`run` must be able to listen on HOST:PORT; a threadscribe already there is fine."""
    area = "Port"
    if unusable := sorted({"HOST", "PORT"} & settings.invalid):
        # The default would be checked instead, and pass: say nothing that is not so.
        return [warn(area, f"not checked: {' and '.join(unusable)} above must be fixed first")]
    host, port = settings.bind_host, settings.port
    try:
        server = await asyncio.start_server(lambda _r, _w: None, host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return [fail(area, f"cannot listen on HOST {host} PORT {port}: {exc.strerror or exc}")]
        if await _threadscribe_answers(port):
            return [ok(area, f"threadscribe is already running on port {port}")]
        return [
            fail(
                area,
                f"PORT {port} is in use on {host} by another program: stop it or set PORT "
                "to a free port",
            )
        ]
    server.close()
    await server.wait_closed()
    exposure = "loopback only" if host.startswith("127.") else "every interface"
    return [ok(area, f"port {port} is free on {host} ({exposure}; HOST changes it)")]


async def _threadscribe_answers(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3.0)) as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as answer,
        ):
            body = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return answer.status == 200 and isinstance(body, dict) and body.get("status") == "ok"


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
