"""`threadscribe run`: compose the bot from settings, serve until SIGTERM, shut down cleanly.

Start-up: store (schema upgraded) -> AssemblyAI client -> adapters (constructed, no I/O)
-> engine -> web server (webhook, health, metrics, adapter routes) -> engine loop (every
unfinished job resumes) -> adapters connect and start taking events.

Shutdown, in two phases: adapters stop taking events, then the engine lets running steps
reach a safe point within its grace period (the rest resume at the next start), then the
web server, the client and the store close.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import importlib
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from bot.assemblyai import (
    AssemblyAIClient,
    AssemblyAIError,
    AuthenticationError,
    RetryPolicy,
    Timeouts,
)
from bot.chat import Adapter, Core, Platform
from bot.config import Secret, Settings, speech_model_warnings
from bot.controls import ControlSettings
from bot.doctor import Check, Finding
from bot.engine import Engine, EngineConfig
from bot.errors import ConfigError
from bot.health import Health
from bot.intake import Intake
from bot.jobs import JobStore
from bot.jobs.database import make_engine, parse_database_url, read_only_engine
from bot.metrics import Metrics
from bot.polling import PollSchedule
from bot.urls import UrlPolicy
from bot.web import WEBHOOK_PATH, create_app

log = logging.getLogger(__name__)

AdapterFactory = Callable[[Settings, Core], Adapter]
WEBHOOK_SECRET_NAME: Final = "assemblyai-webhook"


def load_factory(spec: str) -> AdapterFactory:
    """`package.module:function` -> the function (for THREADSCRIBE_ADAPTERS)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{spec!r} is not of the form package.module:function")
    factory: AdapterFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def builtin_factories(settings: Settings) -> list[AdapterFactory]:
    """The configured platforms' adapters. The composition root is the one place in bot/
    that names them, and it builds what they need beyond the core: Slack's installation
    tables (on the jobs' database, with their own engine, as slack_sdk wants)."""
    factories: list[AdapterFactory] = []
    shared = parse_database_url(settings.database_url.value).get_backend_name() != "sqlite"
    if settings.slack_enabled:
        from adapters import slack
        from adapters.slack.workspaces import OAuthTables

        def make_slack(settings: Settings, core: Core) -> Adapter:
            tables = None
            if settings.slack_oauth:
                assert settings.slack_client_id is not None
                url = parse_database_url(settings.database_url.value)
                engine = make_engine(url, connect_timeout=10.0, busy_timeout=30.0)
                tables = OAuthTables(settings.slack_client_id, engine)
            return slack.create(settings, core, oauth_tables=tables, shared_store=shared)

        factories.append(make_slack)
    if settings.discord_enabled:
        from adapters import discord

        def make_discord(settings: Settings, core: Core) -> Adapter:
            return discord.create(settings, core, shared_store=shared)

        factories.append(make_discord)
    return factories


def platform_checks(settings: Settings) -> list[Check]:
    """`threadscribe doctor`'s checks of the platforms that are (partly) configured."""
    checks: list[Check] = []
    if settings.slack_bot_token or settings.slack_client_id or settings.slack_app_token:
        from adapters.slack import doctor as slack_doctor

        async def check_slack(settings: Settings) -> list[Finding]:
            findings = await slack_doctor.check(settings)
            if settings.slack_oauth:
                count = await installed_workspaces(settings)
                findings.append(slack_doctor.installations(count, settings.public_url))
            return findings

        checks.append(check_slack)
    if settings.discord_token:
        from adapters.discord import doctor as discord_doctor

        checks.append(discord_doctor.check)
    return checks


async def installed_workspaces(settings: Settings) -> int | None:
    """How many workspaces installed the app, read without changing the database (None
    when it cannot be read)."""
    from adapters.slack.workspaces import OAuthTables

    assert settings.slack_client_id is not None
    engine = read_only_engine(settings.database_url.value)
    if engine is None:
        return 0  # no database yet, so no installs
    tables = OAuthTables(settings.slack_client_id, engine)
    try:
        return await tables.workspaces()
    except Exception as exc:  # unreachable, or unreadable: the Database check says why
        log.debug("cannot count Slack installs: %s", exc)
        return None
    finally:
        await tables.close()


def engine_config(settings: Settings, webhook_secret: Secret | None) -> EngineConfig:
    webhook_url = None
    if settings.public_url:
        webhook_url = settings.public_url.rstrip("/") + WEBHOOK_PATH
    return EngineConfig(
        concurrency=settings.max_concurrent_jobs,
        per_user=settings.max_jobs_per_user,
        per_channel=settings.max_jobs_per_channel,
        max_file_bytes=settings.max_file_mb * 1_000_000,
        max_duration=settings.max_duration_minutes * 60.0,
        speech_models=settings.speech_models,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret if webhook_url else None,
        delete_after_delivery=settings.delete_after_delivery,
        ai_summary=settings.ai_summary,
        llm_model=settings.llm_model,
        lease=float(settings.job_lease_seconds),
        urls=UrlPolicy(allow_private=settings.allow_private_urls),
        retention=timedelta(days=settings.job_retention_days),
        budget_hours=settings.monthly_budget_hours,
        usage_retention=timedelta(days=settings.usage_retention_days),
    )


def control_settings(settings: Settings) -> ControlSettings:
    """Who gets transcribed, what is redacted, what it costs: the settings `Controls`
    applies (bot/controls.py)."""
    return ControlSettings(
        channel_defaults={
            Platform.SLACK: settings.slack_auto_transcribe,
            Platform.DISCORD: settings.discord_auto_transcribe,
        },
        dm_defaults={
            Platform.SLACK: settings.slack_dm_transcribe,
            Platform.DISCORD: settings.discord_dm_transcribe,
        },
        allowed_workspaces={
            Platform.SLACK: frozenset(settings.allowed_workspaces),
            Platform.DISCORD: frozenset(settings.allowed_guilds),
        },
        allowed_channels=frozenset(settings.allowed_channels),
        redact_pii=settings.redact_pii,
        redact_pii_policies=settings.redact_pii_policies,
        redact_pii_sub=settings.redact_pii_sub,
        redact_pii_audio=settings.redact_pii_audio,
        budget_hours=settings.monthly_budget_hours,
        prices=dict(settings.price_per_hour),
    )


def compose(
    settings: Settings,
    store: JobStore,
    client: AssemblyAIClient,
    factories: Sequence[AdapterFactory],
    *,
    config: EngineConfig,
    metrics: Metrics | None = None,
    schedule: PollSchedule | None = None,
    health: Health | None = None,
) -> tuple[Engine, Intake, list[Adapter]]:
    """The engine, the core adapters talk to, and the adapters, wired together (no I/O):
    the engine first, the core on it, each adapter with the core, then each adapter
    registered with the engine as the platform it delivers to."""
    engine = Engine(
        store,
        client,
        config=config,
        metrics=metrics or Metrics(),
        schedule=schedule,
        health=health or Health(grace=float(settings.readiness_grace_seconds)),
    )
    core = Intake(engine, store, controls=control_settings(settings), urls=config.urls)
    adapters = [factory(settings, core) for factory in factories]
    for adapter in adapters:
        engine.add_platform(adapter)
    return engine, core, adapters


async def serve(
    settings: Settings,
    factories: Sequence[AdapterFactory],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (by default on SIGTERM or SIGINT).

    Start-up fails fast, with ConfigError naming what to fix, when AssemblyAI rejects the
    key, PORT is taken, or a platform refuses its token or cannot be reached."""
    stop = stop or _stop_on_signals()
    for warning in speech_model_warnings(settings.speech_models):
        log.warning("ASSEMBLYAI_SPEECH_MODELS: %s", warning)
    await check_api_key(settings)
    store = await JobStore.open(settings.database_url.value)
    client = AssemblyAIClient(
        settings.require_assemblyai_key(),
        base_url=settings.assemblyai_base_url,
        llm_base_url=settings.llm_gateway_url,
    )
    runner: web.AppRunner | None = None
    adapters: list[Adapter] = []
    engine: Engine | None = None
    core: Intake | None = None
    try:
        secret = settings.webhook_secret or Secret(await store.secrets.get(WEBHOOK_SECRET_NAME))
        engine, core, adapters = compose(
            settings, store, client, factories, config=engine_config(settings, secret)
        )
        routes = [route for adapter in adapters for route in adapter.routes()]
        runner = web.AppRunner(create_app(engine, routes), access_log=None)
        await runner.setup()
        host = settings.bind_host
        try:
            await web.TCPSite(runner, host, settings.port).start()
        except OSError as exc:
            raise ConfigError([port_taken(host, settings.port, exc)]) from exc
        log.info("listening on %s port %d", host, settings.port)
        await engine.start()
        for adapter in adapters:
            await adapter.start()
        # Everything made at start-up lives as long as the process: keep it out of the
        # collector's full passes, which otherwise stall the event loop for long runs.
        gc.freeze()
        log.info("threadscribe is running", extra={"platforms": [a.name.value for a in adapters]})
        await stop.wait()
        log.info("shutting down")
    finally:
        for adapter in adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s did not stop cleanly", adapter.name.value)
        if engine is not None:
            await engine.stop()
        for adapter in adapters:
            try:
                await adapter.close()
            except Exception:
                log.exception("adapter %s did not close cleanly", adapter.name.value)
        if runner is not None:
            await runner.cleanup()
        if core is not None:
            await core.close()
        await client.close()
        await store.close()


async def check_api_key(settings: Settings) -> None:
    """A key AssemblyAI rejects stops the start (jobs would hang at "Uploading" otherwise);
    AssemblyAI being unreachable is only a warning: jobs wait and retry."""
    host = urlsplit(settings.assemblyai_base_url).hostname
    client = AssemblyAIClient(
        settings.require_assemblyai_key(),
        base_url=settings.assemblyai_base_url,
        retry=RetryPolicy(attempts=2, initial_delay=0.2, max_delay=1.0),
        timeouts=Timeouts(request=5.0, connect=3.0),
    )
    try:
        await client.list(limit=1)  # the cheapest call that needs a valid key
    except AuthenticationError as exc:
        raise ConfigError(
            [
                f"ASSEMBLYAI_API_KEY was rejected by {host} (401): copy the key again from the "
                "AssemblyAI dashboard (API keys); an EU key needs "
                "ASSEMBLYAI_BASE_URL=https://api.eu.assemblyai.com"
            ]
        ) from exc
    except AssemblyAIError as exc:
        log.warning(
            "AssemblyAI (%s) did not answer the key check (%s); going on", host, exc.message
        )
    finally:
        await client.close()


def port_taken(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"PORT {port} is already in use on {host}: stop what listens there (another "
            "threadscribe?) or set PORT to a free port"
        )
    return f"cannot listen on HOST {host} PORT {port}: {exc.strerror or exc}"


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
