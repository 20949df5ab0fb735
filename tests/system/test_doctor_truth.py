"""`threadscribe doctor` tells the truth: whatever makes `run` fail or drop work makes it
fail, with the fix; one run reports every problem (a bad value does not stop the other
checks, and nothing ends in a traceback); and it changes nothing.

Run as a person runs it: `threadscribe doctor` from a folder holding a `.env` made from
the template, against the Slack and Discord fakes and the AssemblyAI emulator."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from adapters.slack import BOT_SCOPES
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_model import Intent
from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    GENERAL,
    FakeSlack,
)
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.processes import (
    assemblyai_lines,
    env_file,
    free_port,
    running,
    threadscribe,
    until,
)

pytestmark = pytest.mark.timeout(60)


def lines_of(out: str, level: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(level)]


def slack_socket(fake: FakeSlack) -> dict[str, str]:
    fake.set_scopes(BOT_TOKEN, BOT_SCOPES)
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": fake.api_url,
    }


async def doctor(folder: Path) -> tuple[int, str]:
    status, out, err = await threadscribe("doctor", cwd=folder)
    assert "Traceback" not in out + err, out + err
    return status, out


async def test_doctor_changes_nothing(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(tmp_path, **assemblyai_lines(emulator), **slack_socket(fake_slack))
    before = sorted(os.listdir(tmp_path))

    status, out = await doctor(tmp_path)

    assert status == 0, out
    assert "does not exist yet: `threadscribe run` creates it" in out
    assert sorted(os.listdir(tmp_path)) == before
    # The key check (a read) and, as the summary is on by default, one chat completion
    # asking whether the gateway serves LLM_MODEL; nothing is created.
    assert [(r["method"], r["path"]) for r in emulator.requests()] == [
        ("GET", emulator.requests()[0]["path"]),
        ("POST", "/v1/chat/completions"),
    ]
    assert emulator.requests()[0]["path"].startswith("/v2/transcript")


async def test_every_bad_value_is_reported_and_the_other_checks_still_run(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        **slack_socket(fake_slack),
        PORT="eighty",
        SLACK_CLIENT_ID="123.456",  # without its secret: the OAuth trap, half set
        ASSEMBLYAI_SPEECH_MODELS="nano",
        PUBLIC_URL="http://bot.example.com",
    )

    status, out = await doctor(tmp_path)

    assert status == 1
    failures = "\n".join(lines_of(out, "FAIL"))
    assert "Settings: PORT must be a port number" in failures
    assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together" in failures
    assert "ASSEMBLYAI_SPEECH_MODELS names a model AssemblyAI does not accept" in failures
    assert "PUBLIC_URL must be an https:// URL" in failures
    assert "only one of SLACK_CLIENT_ID and SLACK_CLIENT_SECRET is set" in failures
    # ...and the checks after the settings ran all the same.
    assert "ok    AssemblyAI: the API key works" in out
    assert "ok    Slack: bot @threadscribe" in out
    # PORT was not usable: the default is not checked in its place.
    assert "warn  Port: not checked: PORT above must be fixed first" in out
    assert "port 8080" not in out


async def test_oauth_credentials_beside_a_bot_token_are_pointed_out(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        **slack_socket(fake_slack),
        SLACK_CLIENT_ID=fake_slack.client_id,
        SLACK_CLIENT_SECRET=fake_slack.client_secret,
    )

    status, out = await doctor(tmp_path)

    warnings = "\n".join(lines_of(out, "warn"))
    assert "so SLACK_BOT_TOKEN is ignored" in warnings
    assert "PUBLIC_URL is not set" in warnings
    # Nothing is installed yet: `run` would drop every event, so doctor fails, and says how.
    assert status == 1
    [failure] = lines_of(out, "FAIL")
    assert "no workspace has installed threadscribe yet, so every event would be dropped" in (
        failure
    )
    assert "open /slack/install" in failure
    assert not (tmp_path / "threadscribe.db").exists()  # read, never created


async def test_run_with_oauth_and_no_install_says_so_and_why_events_are_dropped(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        **slack_socket(fake_slack),
        SLACK_CLIENT_ID=fake_slack.client_id,
        SLACK_CLIENT_SECRET=fake_slack.client_secret,
        PORT=str(port),
    )
    async with running(tmp_path, port) as log:
        await fake_slack.socket.wait_for_connections(1)
        assert "no workspace has installed threadscribe yet" in log()
        msg = fake_slack.events.post(GENERAL, ALICE, "<https://media.example/a.mp3>")
        delivery = await fake_slack.socket.deliver_event(fake_slack.events.message(msg))
        await delivery.acknowledged()
        await until(lambda: "where threadscribe is not installed" in log())
    assert "AuthorizeResult" not in log()


async def test_the_regions_must_match(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(
        tmp_path,
        ASSEMBLYAI_API_KEY="k",
        ASSEMBLYAI_BASE_URL="https://api.eu.assemblyai.com",
        ASSEMBLYAI_LLM_GATEWAY_URL="https://llm-gateway.assemblyai.com",
        **slack_socket(fake_slack),
    )

    status, out = await doctor(tmp_path)

    assert status == 1
    [line] = [f for f in lines_of(out, "FAIL") if f.startswith("FAIL  Settings")]
    assert "ASSEMBLYAI_LLM_GATEWAY_URL is in the other region" in line
    assert "https://llm-gateway.eu.assemblyai.com" in line


async def test_an_llm_model_the_gateway_does_not_serve(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        **slack_socket(fake_slack),
        AI_SUMMARY="true",
        LLM_MODEL="gpt-99",
    )

    status, out = await doctor(tmp_path)

    assert status == 1
    [line] = lines_of(out, "FAIL")
    assert line.startswith("FAIL  LLM Gateway:") and "refused LLM_MODEL gpt-99" in line
    assert "Model 'gpt-99' is not supported" in line  # the gateway's own words
    assert any("LLM_MODEL gpt-99 is not among" in w for w in lines_of(out, "warn"))


async def test_a_port_in_use_fails_unless_threadscribe_holds_it(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env_file(tmp_path, **assemblyai_lines(emulator), **slack_socket(fake_slack), PORT=str(port))
        status, out = await doctor(tmp_path)
    assert status == 1
    [line] = lines_of(out, "FAIL")
    assert f"PORT {port} is in use on 127.0.0.1 by another program" in line

    port = free_port()
    env_file(tmp_path, **assemblyai_lines(emulator), **slack_socket(fake_slack), PORT=str(port))
    async with running(tmp_path, port):
        status, out = await doctor(tmp_path)
    assert status == 0, out
    assert f"ok    Port: threadscribe is already running on port {port}" in out


async def test_discord_token_intent_and_server(
    fake_discord: FakeDiscord, emulator: EmulatorServer, tmp_path: Path
) -> None:
    def write(token: str) -> None:
        env_file(
            tmp_path,
            **assemblyai_lines(emulator),
            DISCORD_TOKEN=token,
            DISCORD_API_URL=fake_discord.api_url,
            DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        )

    write(fake_discord.token)
    status, out = await doctor(tmp_path)
    assert status == 0, out
    assert "ok    Discord: the bot is in at least one server" in out

    fake_discord.privileged_intents = Intent(0)
    fake_discord.bot_in_guild = False
    status, out = await doctor(tmp_path)
    assert status == 1
    failures = "\n".join(lines_of(out, "FAIL"))
    assert "the Message Content intent is off" in failures
    assert "the bot is in no server yet: open https://discord.com/oauth2/authorize?" in failures

    write("not-the-token")
    status, out = await doctor(tmp_path)
    assert status == 1
    [line] = lines_of(out, "FAIL")
    assert "DISCORD_TOKEN was rejected by Discord" in line
    assert "not-the-token" not in out
