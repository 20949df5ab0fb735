"""The real Slack adapter, store and engine, wired to the Slack fake for tests.

    async with slack_bot(fake_slack, tmp_path) as bot:          # HTTP mode, not started
        ...
    async with slack_bot(fake_slack, tmp_path, socket=True, start=True) as bot:
        await bot.engine.run_until_idle()

`bot.adapter` is what `adapters.slack.create` returns; `bot.events_url` is where HTTP mode
listens (the adapter's routes served on 127.0.0.1); `bot.engine` is a real Engine on a
real SQLite store in `tmp_path`, talking to the AssemblyAI emulator when one is given
(else to a closed port: fine for tests that never submit).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.slack import SlackAdapter
from bot.assemblyai import AssemblyAIClient
from bot.config import Secret, Settings
from bot.engine import Engine, EngineConfig
from bot.jobs import Job, JobStore
from bot.run import builtin_factories, compose
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.helpers.emulator_server import EmulatorServer, local_server
from tests.helpers.engine import FAST_ENGINE, fast_polls


def slack_settings(
    fake: FakeSlack,
    database: Path,
    *,
    socket: bool = False,
    oauth: bool = False,
    emulator: EmulatorServer | None = None,
    **overrides: Any,
) -> Settings:
    fields: dict[str, Any] = {
        "database_url": Secret(f"sqlite+aiosqlite:///{database}"),
        "slack_api_url": fake.api_url,
        "slack_signing_secret": Secret(SIGNING_SECRET),
        "slack_bot_token": None if oauth else Secret(BOT_TOKEN),
        "slack_app_token": Secret(APP_TOKEN) if socket else None,
    }
    if oauth:
        fields |= {
            "slack_client_id": fake.client_id,
            "slack_client_secret": Secret(fake.client_secret),
        }
    if emulator is not None:
        fields |= {
            "assemblyai_api_key": Secret(emulator.api_key),
            "assemblyai_base_url": emulator.base_url,
            "llm_gateway_url": emulator.base_url,
        }
    return Settings(**(fields | overrides))


def assemblyai(settings: Settings) -> AssemblyAIClient:
    key = settings.assemblyai_api_key or Secret("unused")
    base = settings.assemblyai_base_url
    if settings.assemblyai_api_key is None:
        base = "http://127.0.0.1:9"  # discard: nothing listens
    return AssemblyAIClient(key, base_url=base, llm_base_url=settings.llm_gateway_url)


@dataclass
class SlackBot:
    fake: FakeSlack
    settings: Settings
    store: JobStore
    adapter: SlackAdapter
    engine: Engine
    base_url: str
    database: Path

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    async def jobs(self) -> list[Job]:
        """Every job in the store, delivered or not, oldest first."""
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs ORDER BY created_at, id")]
        return [job for job_id in ids if (job := await self.store.get(job_id)) is not None]


@contextlib.asynccontextmanager
async def slack_bot(
    fake: FakeSlack,
    tmp_path: Path,
    *,
    socket: bool = False,
    oauth: bool = False,
    start: bool = True,
    emulator: EmulatorServer | None = None,
    config: EngineConfig = FAST_ENGINE,
    extra_routes: Sequence[web.RouteDef] = (),
    **overrides: Any,
) -> AsyncIterator[SlackBot]:
    database = tmp_path / "threadscribe.db"
    settings = slack_settings(
        fake, database, socket=socket, oauth=oauth, emulator=emulator, **overrides
    )
    store = await JobStore.open(settings.database_url.value)
    client = assemblyai(settings)
    # The composition root's own wiring (OAuth tables included), for the settings given.
    factories = builtin_factories(settings)
    engine, core, [adapter] = compose(
        settings, store, client, factories, config=config, schedule=fast_polls()
    )
    assert isinstance(adapter, SlackAdapter)
    web_app = web.Application()
    web_app.add_routes(adapter.routes())
    web_app.add_routes(extra_routes)
    try:
        async with local_server(web_app) as base_url:
            bot = SlackBot(fake, settings, store, adapter, engine, base_url, database)
            if start:
                await adapter.start()
            try:
                yield bot
            finally:
                await adapter.stop()
                await engine.stop()
                await adapter.close()
    finally:
        await core.close()
        await client.close()
        await store.close()
