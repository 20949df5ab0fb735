"""`threadscribe run`'s own stderr, read back: a real process on the fakes (Slack in
Socket Mode, the AssemblyAI emulator) takes a file shared in a channel through to its
transcript, at LOG_LEVEL=DEBUG so that the libraries' lines are there too. Every line of
stderr must be one whole record (a JSON object, or a text line that starts like one), the
lines about the job must carry its id and platform, and no secret may be anywhere."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.slack import BOT_SCOPES
from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    GENERAL,
    FakeSlack,
)
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import BotProcess, environment, free_port, threadscribe, until

TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+( |$)"
)
# What a person might write in Slack to forge a line of the bot's log.
FORGED = "2026-01-01T00:00:00.000Z ERROR bot.engine.worker job=forged"
WEBHOOK_SECRET = "webhook-secret-never-logged"

pytestmark = pytest.mark.timeout(90)


def bot_environment(
    emulator: EmulatorServer, fake_slack: FakeSlack, **extra: str
) -> dict[str, str]:
    return environment(
        ASSEMBLYAI_API_KEY=emulator.api_key,
        ASSEMBLYAI_BASE_URL=emulator.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake_slack.api_url,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        **extra,
    )


@contextlib.asynccontextmanager
async def running(env: dict[str, str], folder: Path) -> AsyncIterator[Callable[[], str]]:
    """`threadscribe run` until /healthz answers; yields a reader of its stderr, which is
    complete once the block has ended (the process stopped on SIGTERM, exit 0)."""
    bot = BotProcess({**env, "PORT": str(free_port())}, folder, "stderr")
    await bot.start()
    try:
        yield lambda: bot.log(tail=None)
    finally:
        if bot.running:
            await bot.terminate()
    assert bot.process is not None and bot.process.returncode == 0, bot.log()


async def transcribe_one_file(
    env: dict[str, str], folder: Path, fake_slack: FakeSlack, audio: bytes
) -> str:
    """Share a file (its title and the message's text holding a forged line) and wait
    for the transcript; returns the whole of stderr."""
    fake_slack.set_scopes(BOT_TOKEN, BOT_SCOPES)
    file = fake_slack.add_file("standup.wav", audio, title=f"standup\n{FORGED}\r\n")
    async with running(env, folder) as stderr:
        await fake_slack.socket.wait_for_connections(1)
        envelope = fake_slack.events.file_share(GENERAL, ALICE, [file], f"notes\r\n{FORGED}")
        delivery = await fake_slack.socket.deliver_event(envelope)
        await delivery.acknowledged()
        ts = envelope["event"]["ts"]
        await until(lambda: fake_slack.reactions(GENERAL, ts).get("white_check_mark"), 45)
    thread = [m.text for m in fake_slack.bot_messages(GENERAL, thread_ts=ts)]
    assert any("Good morning." in text for text in thread), thread
    return stderr()


def assert_no_secret(stderr: str, emulator: EmulatorServer) -> None:
    for secret in (BOT_TOKEN, APP_TOKEN, emulator.api_key, WEBHOOK_SECRET):
        assert secret not in stderr, secret


async def test_json_lines_carry_the_job_and_every_field(
    fake_slack: FakeSlack, emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    env = bot_environment(emulator, fake_slack, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    stderr = await transcribe_one_file(env, tmp_path, fake_slack, sample.path.read_bytes())

    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is a record
    assert all(line.isascii() for line in stderr.splitlines())
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys(), line
    moves = [line for line in lines if re.fullmatch(r"job \S+ -> \S+", line["message"])]
    [job] = {line["job"] for line in moves}
    assert [m["message"] for m in moves][-1] == f"job {job} -> delivered"
    assert all(m["platform"] == "slack" and m["logger"] == "bot.jobs.queue" for m in moves)
    [done] = [line for line in lines if "transcribed by" in line["message"]]
    assert done["logger"] == "bot.engine.steps"
    assert done["job"] == job and done["platform"] == "slack"
    assert done["speech_model"]  # an `extra` field
    # The libraries' lines from inside the job's task carry it too (Slack's Web API calls).
    assert any(line["logger"].startswith("slack_sdk") and line.get("job") == job for line in lines)
    [started] = [line for line in lines if line["message"] == "threadscribe is running"]
    assert started["platforms"] == ["slack"] and "job" not in started
    # Whatever a library wrote about the message, the forged line stayed inside one record.
    assert not [line for line in stderr.splitlines() if line.startswith(FORGED)]
    assert_no_secret(stderr, emulator)


async def test_text_lines_carry_the_job_and_every_field(
    fake_slack: FakeSlack, emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    env = bot_environment(emulator, fake_slack, LOG_LEVEL="DEBUG")  # text is the default
    stderr = await transcribe_one_file(env, tmp_path, fake_slack, sample.path.read_bytes())

    lines = stderr.splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), [
        line for line in lines if not TEXT_LINE.match(line)
    ]
    moves = [
        m for line in lines if (m := re.search(r" job=(\S+) platform=(\S+) job (\S+) -> ", line))
    ]
    assert moves and all(m[1] == m[3] and m[2] == "slack" for m in moves)
    assert " INFO bot.run threadscribe is running platforms=\"['slack']\"" in stderr
    assert re.search(r" INFO bot\.engine\.steps job=\S+ platform=slack .* speech_model=\S+", stderr)
    assert_no_secret(stderr, emulator)


async def test_a_bad_log_format_is_one_line_naming_it(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env = bot_environment(emulator, fake_slack, LOG_FORMAT="xml", PORT=str(free_port()))
    status, out, err = await threadscribe("run", cwd=tmp_path, env=env, timeout=30)
    assert status == 2
    assert out == ""
    assert err.splitlines() == ["threadscribe: error: LOG_FORMAT must be text or json (got 'xml')"]
