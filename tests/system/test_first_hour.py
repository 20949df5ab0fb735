"""A team's first hour, as a person walks it: `.env.example` copied to `.env` in a new
folder, only the lines they must fill in edited as text, then `threadscribe run`,
`transcribe` and `doctor` started from that folder with a bare environment.

The bot is a real process; Slack (HTTP mode and Socket Mode), Discord and AssemblyAI are
the fakes and the emulator of this test, reached over loopback through the URLs the
`.env` names. The environment also carries `SLACK_CLIENT_ID=` and `SLACK_CLIENT_SECRET=`
with empty values, as an env file of a container platform would: empty means unset, so
Slack must stay in single-workspace mode (Bolt switches to OAuth mode when it sees them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import BOT_SCOPES
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_harness import shown
from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    GENERAL,
    SIGNING_SECRET,
    FakeSlack,
)
from tests.helpers.cli import FAST_POLL
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import (
    assemblyai_lines,
    env_file,
    free_port,
    running,
    threadscribe,
    until,
)

pytestmark = pytest.mark.timeout(90)


async def test_slack_http_mode_from_the_template(
    fake_slack: FakeSlack, emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
    )
    sample = audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)
    file = fake_slack.add_file("standup.mp3", sample.path.read_bytes())
    msg = fake_slack.events.post(GENERAL, ALICE, "from standup", files=[file])

    async with running(tmp_path, port) as log, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/slack/events"
        answer = await fake_slack.send_to_app(
            url, fake_slack.events.http_event(fake_slack.events.message(msg))
        )
        assert answer.status == 200
        await until(lambda: fake_slack.reactions(GENERAL, msg.ts).get("white_check_mark"))
        # Single-workspace mode: Bolt did not switch to OAuth and serves no install page.
        async with http.get(f"http://127.0.0.1:{port}/slack/install") as install:
            assert install.status == 404
        assert "AuthorizeResult" not in log()

    thread = [m.text for m in fake_slack.bot_messages(GENERAL, thread_ts=msg.ts)]
    assert any("Good morning." in text for text in thread), thread


async def test_slack_socket_mode_from_the_template_and_the_same_env_for_the_cli(
    fake_slack: FakeSlack, emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
    )
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)

    # `doctor` first, as the README says: all ok, and it leaves nothing behind.
    status, out, err = await threadscribe("doctor", cwd=tmp_path)
    assert status == 0, out + err
    assert "FAIL" not in out and "Traceback" not in out + err
    assert "Slack: Socket Mode: the app token" in out
    assert not (tmp_path / "threadscribe.db").exists()

    file = fake_slack.add_file("standup.wav", sample.path.read_bytes())
    async with running(tmp_path, port):
        await fake_slack.socket.wait_for_connections(1)
        envelope = fake_slack.events.file_share(GENERAL, ALICE, [file])
        delivery = await fake_slack.socket.deliver_event(envelope)
        await delivery.acknowledged()
        ts = envelope["event"]["ts"]
        await until(lambda: fake_slack.reactions(GENERAL, ts).get("white_check_mark"))
    thread = [m.text for m in fake_slack.bot_messages(GENERAL, thread_ts=ts)]
    assert any("Good morning." in text for text in thread), thread

    # The same .env drives the terminal command.
    # (Polling the emulator every 50 ms, not at the SDK's 3 s: the output is the same.)
    status, out, err = await threadscribe("transcribe", str(sample.path), *FAST_POLL, cwd=tmp_path)
    assert status == 0, err
    assert "Speaker A [00:00]: Good morning." in out


async def test_readiness_of_the_running_process_follows_the_socket_mode_connection(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """What an orchestrator probing /readyz sees when Slack's Socket Mode goes away."""
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
        READINESS_GRACE_SECONDS="1",
    )
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)

    async def ready(http: aiohttp.ClientSession) -> tuple[int, Any]:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as answer:
            return answer.status, await answer.json()

    async with running(tmp_path, port) as log, aiohttp.ClientSession() as http:
        await fake_slack.socket.wait_for_connections(1)
        assert await ready(http) == (200, {"status": "ready"})
        await fake_slack.socket.outage()
        for _ in range(200):
            status, body = await ready(http)
            if status == 503:
                break
            await asyncio.sleep(0.05)
        assert status == 503, body
        assert set(body["checks"]) == {"slack"}
        assert body["checks"]["slack"].startswith("disconnected for")
        fake_slack.socket.recover()  # slack_sdk tries again every ping interval (5 s)
        for _ in range(300):
            if (await ready(http))[0] == 200:
                break
            await asyncio.sleep(0.05)
        assert await ready(http) == (200, {"status": "ready"})
        assert fake_slack.socket.connection_count == 2
    # each failed reconnect is one warning line, without the socket's ticket
    failed = [line for line in log().splitlines() if "Failed to connect" in line]
    assert failed and all("WARNING" in line and "ticket=…" in line for line in failed), failed


async def test_discord_from_the_template(
    fake_discord: FakeDiscord,
    emulator: EmulatorServer,
    audio_library: AudioLibrary,
    tmp_path: Path,
) -> None:
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        PORT=str(port),
    )
    sample = audio_library.dialogue("ogg", scripts_dir=emulator.scripts_dir)
    status, out, err = await threadscribe("doctor", cwd=tmp_path)
    assert status == 0, out + err
    assert "Discord: the Message Content intent is on" in out

    async with running(tmp_path, port):
        await fake_discord.wait_for(
            lambda: any(s.connection for s in fake_discord.gateway.sessions)
        )
        voice = await fake_discord.dispatch_voice_message(
            audio=sample.path.read_bytes(), duration_secs=sample.duration
        )
        thread = int(voice["id"])

        def results() -> list[dict[str, Any]]:
            if thread not in fake_discord.world.channels:
                return []
            return [
                m
                for m in fake_discord.messages(thread, from_bot=True)
                if "Good morning." in shown(m)
            ]

        await until(results)


async def test_an_unknown_or_unreadable_line_in_env_is_named(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    path = env_file(tmp_path, **assemblyai_lines(emulator), DISCORD_TOKEN="x")
    with path.open("a") as env:
        env.write("SLACK_BOT_TOKN=xoxb-typo\nthis line is not a setting\n")
    path.chmod(0o644)

    status, _out, err = await threadscribe("run", cwd=tmp_path)

    assert status == 2
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert f"{path} line " in errors[0] and "is not NAME=value" in errors[0]
    assert "SLACK_BOT_TOKN is not a setting (did you mean SLACK_BOT_TOKEN?)" in err
    assert "chmod 600" in err
    assert "xoxb-typo" not in err
