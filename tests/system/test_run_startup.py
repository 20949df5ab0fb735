"""`threadscribe run` fails fast and names the thing: every start-up problem is one line on
stderr naming the variable (or the platform and its URL), and a non-zero exit, within
seconds; AssemblyAI out of reach is a warning naming its host, and the bot goes on.

Real processes, started from a folder with a `.env` made from the template."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    FakeSlack,
)
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.processes import (
    assemblyai_lines,
    env_file,
    free_port,
    running,
    threadscribe,
)

pytestmark = pytest.mark.timeout(60)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    return free_port()


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("threadscribe: error:")]


async def test_a_rejected_assemblyai_key_stops_the_start(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env_file(
        tmp_path,
        ASSEMBLYAI_API_KEY="not-the-key",
        ASSEMBLYAI_BASE_URL=emulator.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(free_port()),
    )
    started = time.monotonic()
    status, _out, err = await threadscribe("run", cwd=tmp_path)

    assert status == 2
    [line] = errors(err)
    assert "ASSEMBLYAI_API_KEY was rejected by 127.0.0.1 (401)" in line
    assert "not-the-key" not in err and "Traceback" not in err
    assert time.monotonic() - started < 15
    assert fake_slack.calls("apps.connections.open") == []  # nothing else was started


async def test_assemblyai_out_of_reach_is_a_warning_and_the_bot_goes_on(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    dead = closed_port()
    env_file(
        tmp_path,
        ASSEMBLYAI_API_KEY="some-key",
        ASSEMBLYAI_BASE_URL=f"http://127.0.0.1:{dead}",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
    )
    async with running(tmp_path, port) as log:
        await fake_slack.socket.wait_for_connections(1)
        assert "AssemblyAI (127.0.0.1) did not answer the key check" in log()
        assert "listening on 127.0.0.1 port" in log()  # Socket Mode, no PUBLIC_URL: loopback


async def test_slack_out_of_reach_is_one_line_naming_slack_and_its_url(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/"
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=api,
        PORT=str(free_port()),
    )
    status, _out, err = await threadscribe("run", cwd=tmp_path)

    assert status == 1
    [line] = errors(err)
    assert f"cannot reach Slack at {api}" in line and "SLACK_API_URL" in line
    assert "Traceback" not in err


async def test_discord_out_of_reach_is_one_line_naming_discord_and_its_url(
    emulator: EmulatorServer, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_URL=api,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        PORT=str(free_port()),
    )
    status, _out, err = await threadscribe("run", cwd=tmp_path)

    assert status == 1
    [line] = errors(err)
    assert f"cannot reach Discord ({api})" in line
    assert fake_discord.token not in err and "Traceback" not in err


async def test_a_port_in_use_is_named(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env_file(
            tmp_path,
            **assemblyai_lines(emulator),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=fake_slack.api_url,
            PORT=str(port),
        )
        status, _out, err = await threadscribe("run", cwd=tmp_path)

    assert status == 2
    [line] = errors(err)
    assert f"PORT {port} is already in use on 127.0.0.1" in line
    assert "Traceback" not in err


async def test_a_deprecated_model_is_a_warning_and_an_unknown_one_an_error(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    port = free_port()
    lines = {
        **assemblyai_lines(emulator),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "PORT": str(port),
    }
    env_file(tmp_path, **lines, ASSEMBLYAI_SPEECH_MODELS="best,universal-2")
    status, _out, err = await threadscribe("run", cwd=tmp_path)
    assert status == 2
    [line] = errors(err)
    assert "ASSEMBLYAI_SPEECH_MODELS names a model AssemblyAI does not accept" in line
    assert "best is no longer offered" in line

    env_file(tmp_path, **lines, ASSEMBLYAI_SPEECH_MODELS="universal-3-pro,universal-2")
    async with running(tmp_path, port) as log:
        await fake_slack.socket.wait_for_connections(1)
    # Said once, in the log with the other start-up lines.
    assert log().count("universal-3-pro is deprecated by AssemblyAI: use assemblyai-stt-3-7") == 1
    # A new database gets its schema in one line of ours, not Alembic's seven.
    assert log().count("database schema upgraded from an empty database to ") == 1
    assert not any(line in log() for line in ("setup plugin", "Context impl", "Running upgrade"))


async def test_no_platform_lists_what_to_set(emulator: EmulatorServer, tmp_path: Path) -> None:
    env_file(tmp_path, **assemblyai_lines(emulator))
    status, _out, text = await threadscribe("run", cwd=tmp_path)
    assert status == 2
    assert "no chat platform is configured" in text
    assert "SLACK_BOT_TOKEN" in text and "DISCORD_TOKEN" in text
