"""bot.logs: what a log line holds and that nothing can break one in two.

The formatter is driven through real `logging` calls (ours and a library's logger names
alike, through the root handler `configure()` installs), and a real job runs through the
engine (SQLite store, the emulator, the recording platform) to show that every line
logged while it runs carries its id and platform."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import assemblyai as aai
from bot import logs
from bot.config import Secret, Settings, known_variables
from bot.engine import Engine, EngineConfig
from bot.errors import PlatformUnavailable
from bot.jobs import JobState, JobStore, Platform
from bot.logs import LogFormat
from tests.fakes.recording import RecordingPlatform, file_intake
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import fast_polls

# A line break or a terminal control in each of the ways one can be written.
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
HOSTILE = [*BREAKS, "\x00", "\x1b[2J", "\x7f", "\u202e", "\t"]
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TOKEN = "xoxb-1-T0TEAM0001-not-for-any-log"
FORGED = "2026-01-01T00:00:00.000Z ERROR bot.engine.worker job=forged"


class Captured:
    """The root handler of `configure()`, writing to memory."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(self, fmt: LogFormat = LogFormat.TEXT, **kw: object) -> None:
        logs.configure(logging.DEBUG, fmt, stream=self.stream, **kw)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[str]:
        text = self.text
        assert text.endswith("\n") or not text
        return text[:-1].split("\n") if text else []

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    level, sqlite_level = root.level, logging.getLogger("aiosqlite").level
    yield Captured()
    for handler in [h for h in root.handlers if h.get_name() == "threadscribe"]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiosqlite").setLevel(sqlite_level)


def only_line(captured: Captured) -> str:
    """The one line written, checked to be one line by every reading of "line"."""
    text = captured.text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    line = text[:-1]
    assert line.splitlines() == [line], repr(line)
    assert line.isprintable(), repr(line)
    return line


def field(line: str, key: str) -> str:
    """A quoted text field, decoded (the escapes are those of a Python string literal)."""
    match = re.search(rf' {key}=("(?:[^"\\]|\\.)*")', line)
    assert match, line
    value = ast.literal_eval(match[1])
    assert isinstance(value, str)
    return value


# -- what a line holds -------------------------------------------------------------------


def test_a_text_line_has_the_context_the_message_then_every_extra_field(captured):
    captured.configure()
    with logs.bound(job="j-1", platform="slack"):
        logging.getLogger("bot.engine.steps").info(
            "job %s: transcribed by %s",
            "j-1",
            "universal-2",
            extra={"speech_model": "universal-2", "attempt": 2, "wait_s": 0.5, "gone": None},
        )
    line = only_line(captured)
    assert re.fullmatch(
        rf"{TIMESTAMP} INFO bot\.engine\.steps job=j-1 platform=slack "
        r"job j-1: transcribed by universal-2 "
        r"speech_model=universal-2 attempt=2 wait_s=0\.5 gone=None",
        line,
    ), line


def test_a_json_line_has_timestamp_level_logger_message_context_and_every_field(captured):
    captured.configure(LogFormat.JSON)
    with logs.bound(job="j-1", platform="discord"):
        logging.getLogger("bot.run").warning(
            "threadscribe is running", extra={"platforms": ["slack", "discord"], "n": 3}
        )
    [record] = captured.records()
    assert re.fullmatch(TIMESTAMP, str(record.pop("timestamp")))
    assert record == {
        "level": "WARNING",
        "logger": "bot.run",
        "message": "threadscribe is running",
        "job": "j-1",
        "platform": "discord",
        "platforms": ["slack", "discord"],
        "n": 3,
    }


def test_bound_fields_end_with_the_block_and_an_explicit_field_wins(captured):
    captured.configure(LogFormat.JSON)
    log = logging.getLogger("bot.jobs.queue")
    with logs.bound(job="j-1", platform="slack"):
        log.info("inside", extra={"job": "j-2"})
    log.info("outside")
    inside, outside = captured.records()
    assert (inside["job"], inside["platform"]) == ("j-2", "slack")
    assert "job" not in outside and "platform" not in outside


def test_a_plain_value_is_bare_and_any_other_is_quoted(captured):
    captured.configure()
    logging.getLogger("bot.intake").info(
        "probe",
        extra={"url_host": "files.example.com", "title": 'my "talk" = 2', "empty": ""},
    )
    line = only_line(captured)
    assert " url_host=files.example.com " in line
    assert field(line, "title") == 'my "talk" = 2'
    assert field(line, "empty") == ""


def test_configuring_again_replaces_the_handler_rather_than_adding_one(captured):
    captured.configure()
    captured.configure(LogFormat.JSON)
    logging.getLogger("bot.web").info("once")
    [record] = captured.records()
    assert record["message"] == "once"


# -- nothing can forge a line ------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(LogFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s)[1:-1])
def test_a_control_character_in_a_message_or_a_field_stays_on_its_line(captured, fmt, hostile):
    captured.configure(fmt)
    forged = f"{hostile}{FORGED}{hostile}"
    name = f"standup{forged}.mp3"
    logging.getLogger("bot.intake").warning(
        "file %s cannot be taken in", name, extra={"title": name}
    )
    line = only_line(captured)
    if fmt is LogFormat.JSON:
        record = json.loads(line)
        assert record["message"] == f"file {name} cannot be taken in"
        assert record["title"] == name
    else:
        assert field(line, "title") == name
        message = line.split(" bot.intake ", 1)[1].rsplit(" title=", 1)[0]
        assert ast.literal_eval(f'"{message}"') == f"file {name} cannot be taken in"


@pytest.mark.parametrize("fmt", list(LogFormat), ids=lambda f: f.value)
@pytest.mark.parametrize(
    "logger", ["slack_bolt.App", "discord.client", "aiohttp.server", "sqlalchemy.engine"]
)
def test_a_library_line_and_its_traceback_stay_on_one_line(captured, fmt, logger):
    captured.configure(fmt)
    try:
        raise ValueError("a text from Slack:\r\n" + FORGED)
    except ValueError:
        logging.getLogger(logger).error("handler failed for\n%s", "a\rb", exc_info=True)
    line = only_line(captured)
    if fmt is LogFormat.JSON:
        record = json.loads(line)
        assert record["logger"] == logger and record["message"] == "handler failed for\na\rb"
        exception = record["exception"]
    else:
        assert f" ERROR {logger} handler failed for\\na\\rb exception=" in line
        exception = field(line, "exception")
    assert exception.startswith("Traceback (most recent call last):\n")
    assert exception.endswith("ValueError: a text from Slack:\r\n" + FORGED)


def test_a_quiet_setup_writes_to_stderr_at_its_level_escaped_all_the_same():
    # What `transcribe`, `doctor` and `emulator` do: configure() at ERROR, CRITICAL or
    # WARNING, in a process of their own with nothing else on the root logger.
    script = (
        "import logging\n"
        "from bot import logs\n"
        "logs.configure(logging.ERROR)\n"
        "logging.getLogger('aiohttp.client').error('bad\\nline %s', 'x\\r\\ny')\n"
        "logging.getLogger('aiohttp.client').warning('not shown')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert re.fullmatch(rf"{TIMESTAMP} ERROR aiohttp\.client bad\\nline x\\r\\ny", line), line


# -- secrets ----------------------------------------------------------------------------


def test_a_secret_in_a_field_stays_masked(captured):
    captured.configure()
    logging.getLogger("bot.run").info("settings", extra={"token": Secret(TOKEN)})
    line = only_line(captured)
    assert TOKEN not in line and "token=\"Secret('********')\"" in line


@pytest.mark.parametrize("fmt", list(LogFormat), ids=lambda f: f.value)
def test_the_configured_secrets_are_masked_wherever_they_appear(captured, fmt):
    settings = Settings.from_env(
        {
            "ASSEMBLYAI_API_KEY": "aai-key-0123456789",
            "SLACK_BOT_TOKEN": TOKEN,
            "DATABASE_URL": "postgresql+asyncpg://bot:pa55-word-long@db.internal/threadscribe",
        }
    )
    secrets = settings.secret_values()
    assert {"aai-key-0123456789", TOKEN, "pa55-word-long"} <= set(secrets)
    assert not [s for s in secrets if "db.internal" in s]  # the URL itself stays readable
    captured.configure(fmt, secrets=secrets)
    # A library that prints what it sends, say, and a database URL as the store logs it.
    logging.getLogger("slack_sdk.web").debug(
        "Sending a request - data: %s", {"token": TOKEN, "key": "aai-key-0123456789"}
    )
    logging.getLogger("bot.jobs.store").info(
        "job store open", extra={"database": "postgresql+asyncpg://bot:pa55-word-long@db.internal"}
    )
    text = captured.text
    for secret in ("aai-key-0123456789", TOKEN, "pa55-word-long"):
        assert secret not in text
    assert text.count(logs.MASK) == 3
    assert "db.internal" in text


def test_sqlite_statements_and_their_parameters_are_never_logged(captured):
    captured.configure()
    assert logging.getLogger("aiosqlite").getEffectiveLevel() == logging.INFO
    logging.getLogger("aiosqlite").debug("executing %s", ("INSERT ...", TOKEN))
    assert captured.text == ""


# -- LOG_FORMAT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fmt"), [(None, LogFormat.TEXT), ("text", LogFormat.TEXT), ("JSON", LogFormat.JSON)]
)
def test_log_format_is_read_with_text_by_default(raw, fmt):
    env = {} if raw is None else {"LOG_FORMAT": raw}
    settings, problems = Settings.read(env)
    assert problems == [] and settings.log_format is fmt
    assert "LOG_FORMAT" in known_variables()  # so `.env` does not call it a typo


@pytest.mark.parametrize("raw", ["xml", "json\nLOG_LEVEL=DEBUG"])
def test_a_bad_log_format_is_one_line_naming_it(raw):
    settings, problems = Settings.read({"LOG_FORMAT": raw})
    assert problems == [f"LOG_FORMAT must be text or json (got {raw!r})"]
    assert settings.log_format is LogFormat.TEXT
    assert "\n" not in problems[0]


# -- a real job ---------------------------------------------------------------------------


async def test_every_line_about_a_job_carries_its_id_and_platform(
    captured, tmp_path: Path, emulator: EmulatorServer, audio_library: AudioLibrary
):
    captured.configure(LogFormat.JSON)
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    client = aai.AssemblyAIClient(
        Secret(emulator.api_key), base_url=emulator.base_url, llm_base_url=emulator.base_url
    )
    platform = RecordingPlatform()
    config = EngineConfig(retry_base=0.01, retry_cap=0.05, status_interval=0.0, idle=0.2)
    engine = Engine(store, client, {Platform.SLACK: platform}, config, schedule=fast_polls())
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    data = sample.path.read_bytes()
    platform.add_file("F1", data)
    # The announcement (a side task of the intake) fails once, and says so in its log.
    platform.fail("react", PlatformUnavailable("Slack is down\r\nERROR forged"))
    try:
        outcome = await engine.intake(file_intake("F1", len(data)))
        assert outcome.job is not None
        job = outcome.job.id
        for _ in range(1000):  # the side task runs alone until the worker is driven
            if "could not announce" in captured.text:
                break
            await asyncio.sleep(0.01)
        async with asyncio.timeout(30):
            await engine.run_until_idle()
        assert (await store.get(job)).state is JobState.DELIVERED
        logging.getLogger("tests.test_logs").info("after the job")
    finally:
        await engine.stop()
        await client.close()
        await store.close()

    records = captured.records()  # one JSON object per line, every line
    ours = [r for r in records if str(r["logger"]).startswith(("bot.", "adapters."))]
    # Before the job: the store opening (its new schema too), and the intake's batch (no
    # job id yet).
    before = {"job store open", "admitted 1 intakes (1 new)"}
    during = [
        r
        for r in ours
        if r["message"] not in before and not str(r["message"]).startswith("database schema")
    ]
    assert during and all((r.get("job"), r.get("platform")) == (job, "slack") for r in during), [
        r for r in during if r.get("job") != job
    ]
    [announce] = [r for r in during if r["logger"] == "bot.engine.worker"]
    assert announce["message"] == f"could not announce job {job}"
    assert "PlatformUnavailable: Slack is down\r\nERROR forged" in str(announce["exception"])
    moves = [r["message"] for r in during if r["logger"] == "bot.jobs.queue"]
    assert moves[-1] == f"job {job} -> delivered", moves
    [done] = [r for r in during if "transcribed by" in str(r["message"])]
    assert done["logger"] == "bot.engine.steps" and done["speech_model"]
    # Lines not about the job have none of it: the ones before it, the emulator's (another
    # thread), and this task's after the job (the context did not leak into it).
    assert not [r for r in ours if r["message"] in before and "job" in r]
    emulator_lines = [r for r in records if str(r["logger"]).startswith("emulator.")]
    assert emulator_lines and not [r for r in emulator_lines if "job" in r]
    [after] = [r for r in records if r["message"] == "after the job"]
    assert "job" not in after and "platform" not in after
