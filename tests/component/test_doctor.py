"""`threadscribe doctor` (bot.doctor.run_doctor) against the Slack fake, the AssemblyAI
emulator, a real SQLite file and a local web server: one line per finding, exit 1 on any
failure, and every failure says what to fix."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.slack import BOT_SCOPES
from bot.config import Secret, Settings
from bot.doctor import run_doctor
from bot.run import platform_checks
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    FakeSlack,
)
from tests.fakes.slack_harness import slack_bot, slack_settings
from tests.helpers.emulator_server import EmulatorServer


def settings_for(
    fake: FakeSlack, emulator: EmulatorServer, tmp_path: Path, **overrides: Any
) -> Settings:
    options: dict[str, Any] = {"socket": True} | overrides
    return slack_settings(fake, tmp_path / "doctor.db", emulator=emulator, **options)


async def doctor(settings: Settings) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = await run_doctor(settings, out, platforms=platform_checks(settings))
    return status, out.getvalue().splitlines()


def only(lines: list[str], word: str) -> list[str]:
    return [line for line in lines if line.startswith(word)]


async def test_a_healthy_socket_mode_set_up(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)

    status, lines = await doctor(settings_for(fake_slack, emulator, tmp_path))

    assert status == 0, lines
    assert only(lines, "FAIL") == [] and only(lines, "warn") == []
    text = "\n".join(lines)
    assert "AssemblyAI: the API key works" in text
    assert "Database: sqlite+aiosqlite:///" in text
    assert "Slack: bot @threadscribe in Acme (T0TEAM0001)" in text
    assert "Slack: Socket Mode: the app token" in text
    assert "PUBLIC_URL is not set" in text


async def test_missing_scopes_are_named_with_the_fix(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    fake_slack.set_scopes(BOT_TOKEN, set(BOT_SCOPES) - {"files:read", "reactions:write"})

    status, lines = await doctor(settings_for(fake_slack, emulator, tmp_path))

    assert status == 1
    [line] = only(lines, "FAIL")
    assert "files:read, reactions:write" in line and "slack-manifest.yml" in line


async def test_extra_scopes_are_a_warning(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    status, lines = await doctor(settings_for(fake_slack, emulator, tmp_path))  # + reactions:read

    assert status == 0
    [line] = only(lines, "warn")
    assert "reactions:read" in line


async def test_bad_keys_tokens_and_database(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    fake_slack.revoke_token(APP_TOKEN)
    settings = settings_for(
        fake_slack,
        emulator,
        tmp_path,
        assemblyai_api_key=Secret("wrong-key"),
        slack_bot_token=Secret("xoxb-1-T0TEAM0001-forged"),
        database_url=Secret(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db"),
    )

    status, lines = await doctor(settings)

    assert status == 1
    failures = "\n".join(only(lines, "FAIL"))
    assert "rejected ASSEMBLYAI_API_KEY (401)" in failures
    assert "cannot open the job database" in failures
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in failures
    assert "Slack refused SLACK_APP_TOKEN (token_revoked)" in failures
    assert "wrong-key" not in "\n".join(lines) and "forged" not in "\n".join(lines)


async def test_nothing_configured(tmp_path: Path) -> None:
    settings = Settings(database_url=Secret(f"sqlite+aiosqlite:///{tmp_path}/x.db"))

    status, lines = await doctor(settings)

    assert status == 1
    failures = "\n".join(only(lines, "FAIL"))
    assert "ASSEMBLYAI_API_KEY is not set" in failures
    assert "no chat platform is configured" in failures


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def webhook(request: web.Request) -> web.Response:
    return web.json_response({"error": "unauthorised"}, status=401)


@pytest.fixture
async def public_bot(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[tuple[Settings, str]]:
    """A running HTTP-mode bot: Slack's routes, and stand-ins for the core's."""
    core = [web.get("/healthz", healthz), web.post("/webhooks/assemblyai", webhook)]
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, extra_routes=core) as bot:
        yield bot.settings, bot.base_url


async def test_http_mode_and_webhooks_reachable_at_public_url(
    public_bot: tuple[Settings, str], fake_slack: FakeSlack
) -> None:
    settings, url = public_bot
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)

    status, lines = await doctor(replace(settings, public_url=url))

    assert status == 0, lines
    text = "\n".join(lines)
    assert f"Webhooks: {url} is reachable" in text
    assert f"Slack: HTTP mode: {url}/slack/events answers and checks Slack's signatures" in text


async def test_an_unreachable_public_url(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(fake_slack, emulator, tmp_path, socket=False)
    settings = replace(settings, public_url="http://127.0.0.1:9")

    status, lines = await doctor(settings)

    assert status == 1
    failures = only(lines, "FAIL")
    assert len(failures) == 2
    assert all("not reachable" in line and "threadscribe run" in line for line in failures)


async def test_oauth_credentials(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    good = settings_for(fake_slack, emulator, tmp_path, oauth=True)
    bad = replace(good, slack_client_secret=Secret("nope"))

    good_status, good_lines = await doctor(good)
    bad_status, bad_lines = await doctor(bad)

    assert "OAuth: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are accepted" in "\n".join(good_lines)
    # Good credentials, but no workspace has installed the app yet: events would be dropped.
    assert good_status == 1
    [uninstalled] = only(good_lines, "FAIL")
    assert "no workspace has installed threadscribe yet" in uninstalled
    assert bad_status == 1
    credentials, _uninstalled = only(bad_lines, "FAIL")
    assert "bad_client_secret" in credentials
