"""A real `threadscribe run` killed at every stage of a job, then restarted: each job is
delivered exactly once. Also a graceful SIGTERM mid-job, and the webhook route of the
running server (forged, missing and replayed secrets).

The bot is a child process on the recorder platform (tests/fakes/recorder.py), the AssemblyAI
emulator and a SQLite file, configured from its environment as in production. PUBLIC_URL
points at the bot, so the emulator calls its webhook for real; the secret is the one the
bot made for this deployment, read back from its database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bot import messages
from bot.engine import WEBHOOK_HEADER, EngineConfig
from bot.jobs import IntakeRecord, JobState
from bot.run import WEBHOOK_SECRET_NAME
from bot.web import WEBHOOK_PATH
from tests.fakes.recorder import Recorder
from tests.fakes.recording import file_intake, url_intake
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.processes import BotProcess, bot_env, free_port, until

T = TypeVar("T")

#: For the tests that act while AssemblyAI still works on the job (kill the bot, send it
#: webhooks): long enough for that, short enough for a quick suite. The others get the
#: emulator's quick 0.05 s.
SLOW = pytest.mark.emulator(processing_time=1.5)
#: Seconds a job stays with a bot between heartbeats: how long a killed bot's jobs wait.
#: The shortest JOB_LEASE_SECONDS accepts.
LEASE = 2

# AssemblyAI's webhook retried for 2 s: until the killed bot is back.
pytestmark = pytest.mark.emulator(webhook_retry_interval=0.2, webhook_timeout=2.0)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as running:
        yield running


class Jobs:
    """The bot's SQLite database, read directly (the bot may be dead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite+aiosqlite:///{path}"

    def _query(self, sql: str, *args: object) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        with sqlite3.connect(self.path, timeout=10) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def all(self) -> list[sqlite3.Row]:
        return self._query("SELECT * FROM jobs")

    def get(self, job_id: str) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", job_id)
        return rows[0] if rows else None

    def find(self, record: IntakeRecord) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM jobs WHERE dedupe_key = ?", record.dedupe_key)
        return rows[0] if rows else None

    def state(self, record: IntakeRecord) -> str | None:
        row = self.find(record)
        return None if row is None else str(row["state"])

    def webhook_secret(self) -> str:
        rows = self._query(
            "SELECT value FROM deployment_secrets WHERE name = ?", WEBHOOK_SECRET_NAME
        )
        return str(rows[0]["value"])


@pytest.fixture
def jobs(tmp_path: Path) -> Jobs:
    return Jobs(tmp_path / "threadscribe.db")


@pytest.fixture
async def bot(
    tmp_path: Path, emulator: EmulatorServer, recorder: Recorder, jobs: Jobs
) -> AsyncIterator[BotProcess]:
    port = free_port()
    env = bot_env(
        assemblyai_url=emulator.base_url,
        api_key=emulator.api_key,
        recorder_url=recorder.url,
        database_url=jobs.url,
        port=port,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        # A killed bot's jobs are taken up again when their lease runs out.
        JOB_LEASE_SECONDS=str(LEASE),
    )
    process = BotProcess(env, tmp_path)
    try:
        yield process
    finally:
        await process.close()


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    # WAV: large enough that a file stream can be held after its first chunk.
    return audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)


def transcript_posts(emulator: EmulatorServer) -> list[dict[str, Any]]:
    return [
        r for r in emulator.requests() if r["method"] == "POST" and r["path"] == "/v2/transcript"
    ]


async def until_delivered(jobs: Jobs, bot: BotProcess, *records: IntakeRecord) -> None:
    try:
        await until(lambda: all(jobs.state(r) == JobState.DELIVERED for r in records), 30)
    except TimeoutError:
        rows = [dict(r) for r in jobs.all()]
        raise AssertionError(f"not delivered: {rows}\n{bot.logs()}") from None


def assert_delivered_once(
    recorder: Recorder, jobs: Jobs, record: IntakeRecord, sample: AudioSample
) -> None:
    job = jobs.find(record)
    assert job is not None and job["state"] == JobState.DELIVERED
    [result] = recorder.results(job["id"])
    [status] = recorder.statuses(job["id"])
    for turn in sample.script["utterances"]:  # type: ignore[attr-defined]
        assert turn["text"] in result.text
    assert status.current == messages.status_done()
    assert json.loads(job["posted"]) == {"status": status.id, "result": result.id}
    assert recorder.reactions_on(record.message)[-1] == "done"
    assert job["lease_owner"] is None


# -- kill -9 at every stage ---------------------------------------------------------------

STAGES = [
    # (stage, source): where the job was when the bot was killed
    ("unacknowledged", "link"),  # engine.intake() returned; the ack is held
    ("after intake", "link"),  # acknowledged; the status post is held, nothing submitted
    ("before submit", "file"),  # fetching: the private file's stream held mid-upload
    ("answer in flight", "link"),  # AssemblyAI made the transcript; its answer is held
    ("answer in flight", "file"),  # the same after an upload
    ("after submit", "link"),  # submitted: AssemblyAI is processing it (SLOW)
    ("before delivery", "file"),  # completed: the result post held before it is recorded
    ("during delivery", "link"),  # the platform recorded the result; its answer is held
]


@pytest.mark.parametrize(
    ("stage", "source"),
    [
        pytest.param(
            stage,
            source,
            id=f"{stage} ({source})",
            marks=[SLOW] if stage == "after submit" else [],
        )
        for stage, source in STAGES
    ],
)
async def test_kill_9_then_restart_delivers_exactly_once(
    stage: str,
    source: str,
    bot: BotProcess,
    recorder: Recorder,
    emulator: EmulatorServer,
    jobs: Jobs,
    dialogue: AudioSample,
    media_server: Callable[[Path], str],
) -> None:
    data = dialogue.path.read_bytes()
    if source == "file":
        recorder.add_file("F1", data)
        record = file_intake("F1", len(data))
    else:
        record = url_intake(media_server(dialogue.path))
    persisted_at_ack: list[str | None] = []

    async def check_persisted(ack: dict[str, Any]) -> None:
        row = jobs.get(ack["job_id"]) if ack["job_id"] else None
        persisted_at_ack.append(None if row is None else row["state"])

    recorder.on_ack = check_persisted
    hold = {
        "unacknowledged": recorder.hold_ack,
        "after intake": lambda: recorder.hold_post(":status"),
        "before submit": lambda: recorder.hold_file("F1"),
        "after submit": lambda: None,
        "answer in flight": lambda: emulator.inject(
            {"late": 60, "path": "/v2/transcript", "method": "POST"}
        ),
        "before delivery": lambda: recorder.hold_post(":result"),
        "during delivery": lambda: recorder.hold_post(":result", answer=True),
    }[stage]()
    await bot.start()
    seq = recorder.send(record)

    if stage == "after intake":
        await recorder.until(lambda: recorder.acked(seq))
        assert persisted_at_ack == [JobState.RECEIVED]
        assert hold is not None
        await hold.wait()
        assert jobs.state(record) == JobState.RECEIVED
    elif stage == "after submit":
        await until(lambda: jobs.state(record) == JobState.SUBMITTED)
        assert len(transcript_posts(emulator)) == 1
    elif stage == "answer in flight":
        # The transcript exists at AssemblyAI (and is billed); the bot has not heard.
        await until(lambda: len(transcript_posts(emulator)) == 1)
        assert jobs.state(record) in (JobState.RECEIVED, JobState.FETCHING)
    else:
        assert hold is not None
        await hold.wait()
        expected = {
            "unacknowledged": JobState.RECEIVED,
            "before submit": JobState.FETCHING,
            "before delivery": JobState.COMPLETED,
            "during delivery": JobState.COMPLETED,
        }[stage]
        if stage != "unacknowledged":  # a side task may be announcing it
            assert jobs.state(record) == expected
    if stage == "during delivery":
        assert len(recorder.results()) == 1  # the platform shows it; the bot has no id
    await bot.kill()
    if stage == "answer in flight":
        emulator.clear_faults()
    elif hold is not None:
        await recorder.until(lambda: hold.abandoned)  # the platform saw the bot go
        hold.release()
    assert len(jobs.all()) == 1

    await bot.start()
    await until_delivered(jobs, bot, record)

    assert_delivered_once(recorder, jobs, record, dialogue)
    assert len(jobs.all()) == 1
    assert len(transcript_posts(emulator)) == 1, "AssemblyAI was asked twice"
    duplicates = recorder.duplicates()
    if stage == "during delivery":
        # The restart posts the result again under the same key: the platform's dedupe
        # (Slack metadata, Discord enforce_nonce) is what keeps it one message.
        assert [d.key for d in duplicates] == [recorder.results()[0].key]
    else:
        assert duplicates == [], bot.logs()
    if stage == "unacknowledged":
        # Offered again after the restart: the same job, found by its dedupe key.
        [intake] = recorder.inbox
        assert intake.offered == 2
        assert [a["created"] for a in intake.acks] == [False]
    else:
        assert [a["created"] for a in recorder.inbox[0].acks] == [True]
    if stage == "before submit":
        assert [pid for _f, pid in recorder.file_reads] == bot.pids  # read again, in full
    # Every acknowledgement found its job already in the database.
    assert persisted_at_ack and None not in persisted_at_ack


# -- graceful shutdown --------------------------------------------------------------------


async def test_sigterm_mid_upload_exits_0_in_the_grace_period_and_loses_nothing(
    bot: BotProcess,
    recorder: Recorder,
    emulator: EmulatorServer,
    jobs: Jobs,
    dialogue: AudioSample,
    media_server: Callable[[Path], str],
) -> None:
    data = dialogue.path.read_bytes()
    recorder.add_file("F1", data)
    first = file_intake("F1", len(data))
    hold = recorder.hold_file("F1")
    await bot.start()
    recorder.send(first)
    await hold.wait()

    stopping = asyncio.create_task(bot.terminate())
    await recorder.until(lambda: recorder.polls_dropped)
    # Intake has stopped: a trigger arriving now waits on the platform for the next run.
    second = url_intake(media_server(dialogue.path), message="1700000000.000300")
    late = recorder.send(second)
    hold.release()  # the running step may now reach its safe point
    code, took = await stopping

    assert code == 0, bot.log()
    assert took < EngineConfig().shutdown_grace
    assert not recorder.acked(late)
    [row] = jobs.all()
    # The upload finished and the job was submitted before the process left, and
    # nothing is left leased: the next run resumes it at once.
    assert row["state"] == JobState.SUBMITTED and row["transcript_id"]
    assert row["lease_owner"] is None
    assert "Traceback" not in bot.log()

    await bot.start()
    await until_delivered(jobs, bot, first, second)
    assert_delivered_once(recorder, jobs, first, dialogue)
    assert_delivered_once(recorder, jobs, second, dialogue)
    assert recorder.duplicates() == []
    assert len(transcript_posts(emulator)) == 2


# -- the webhook route on the running server -----------------------------------------------


async def webhook(
    bot: BotProcess, transcript_id: str, secret: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {} if secret is None else {WEBHOOK_HEADER: secret}
    body = {"transcript_id": transcript_id, "status": "completed"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(bot.url + WEBHOOK_PATH, json=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


@SLOW
async def test_forged_or_missing_webhook_secret_is_refused_and_changes_nothing(
    bot: BotProcess,
    recorder: Recorder,
    jobs: Jobs,
    dialogue: AudioSample,
    media_server: Callable[[Path], str],
) -> None:
    record = url_intake(media_server(dialogue.path))
    # The first status edit follows the move to `submitted`: holding it keeps the job
    # there, untouched by the bot itself, while webhooks arrive.
    hold = recorder.hold_edit(":status")
    await bot.start()
    recorder.send(record)
    await hold.wait()
    submitted = jobs.find(record)
    assert submitted is not None and submitted["state"] == JobState.SUBMITTED
    secret = jobs.webhook_secret()
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    for presented in (None, "", forged, secret.upper(), secret[:-1]):
        status, body = await webhook(bot, submitted["transcript_id"], presented)
        assert (status, body) == (401, {"error": "unauthorized"}), presented
    assert dict(jobs.find(record) or {}) == dict(submitted)  # not made due, not touched
    # The same call with the deployment's secret does change it: the check can see.
    status, body = await webhook(bot, submitted["transcript_id"], secret)
    assert (status, body) == (200, {"ok": True, "job_waiting": True})
    assert dict(jobs.find(record) or {}) != dict(submitted)

    hold.release()
    await until_delivered(jobs, bot, record)
    assert_delivered_once(recorder, jobs, record, dialogue)


@SLOW
async def test_replayed_and_racing_webhooks_deliver_once(
    bot: BotProcess,
    recorder: Recorder,
    emulator: EmulatorServer,
    jobs: Jobs,
    dialogue: AudioSample,
    media_server: Callable[[Path], str],
) -> None:
    record = url_intake(media_server(dialogue.path))
    await bot.start()
    recorder.send(record)
    submitted = await until(lambda: jobs.state(record) == JobState.SUBMITTED and jobs.find(record))
    transcript_id = submitted["transcript_id"]
    secret = jobs.webhook_secret()

    # Early webhooks racing each other and the poller: each makes the job due now.
    early = await asyncio.gather(*(webhook(bot, transcript_id, secret) for _ in range(5)))
    assert {status for status, _body in early} == {200}
    await until_delivered(jobs, bot, record)
    # AssemblyAI's own webhook reached the bot too (the emulator records its answer).
    await until(
        lambda: emulator.running.emulator.store.get(transcript_id).webhook_status_code == 200
    )

    posts = len(recorder.attempts)
    for status, body in await asyncio.gather(
        *(webhook(bot, transcript_id, secret) for _ in range(3))
    ):
        assert (status, body) == (200, {"ok": True, "job_waiting": False})
    status, body = await webhook(bot, "unknown-transcript-id", secret)
    assert (status, body) == (200, {"ok": True, "job_waiting": False})
    await asyncio.sleep(1.0)  # room for a wrong second delivery to show
    assert len(recorder.attempts) == posts
    assert_delivered_once(recorder, jobs, record, dialogue)
    assert recorder.duplicates() == []


async def test_a_late_status_edit_never_overwrites_the_final_status(
    bot: BotProcess,
    recorder: Recorder,
    emulator: EmulatorServer,
    jobs: Jobs,
    dialogue: AudioSample,
    media_server: Callable[[Path], str],
) -> None:
    record = url_intake(media_server(dialogue.path))
    hold = recorder.hold_edit(":status", limit=1)  # "🎧 Transcribing", right after submit
    await bot.start()
    recorder.send(record)
    await hold.wait()
    transcript_id = (await until(lambda: jobs.find(record)))["transcript_id"]
    # The transcript completes and AssemblyAI's webhook arrives while that edit hangs.
    store = emulator.running.emulator.store
    await until(lambda: store.get(transcript_id).webhook_status_code == 200)
    await asyncio.sleep(1.0)  # room for a delivery to overtake the edit
    hold.release()
    await until_delivered(jobs, bot, record)
    [status] = recorder.statuses()
    await recorder.until(lambda: messages.status_transcribing(0.0) in status.edits)

    assert status.current == messages.status_done(), status.edits
    assert_delivered_once(recorder, jobs, record, dialogue)
