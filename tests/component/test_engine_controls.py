"""The controls in the engine, with the real store, client and emulator and the recording
platform: what a job is billed and the ledger, the monthly budget (a link of unknown
length transcribed only up to what is left, admins told at 80 % and 100 %), PII
redaction asked of AssemblyAI and said in the result, the redacted audio posted,
DELETE_AFTER_DELIVERY for every kind of transcript with its receipt, and forget."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot import assemblyai as aai
from bot import messages
from bot.config import Secret
from bot.engine import Engine, EngineConfig
from bot.errors import PlatformRefused
from bot.jobs import JobOptions, JobState, JobStore, Platform, Redaction, month_start
from bot.urls import UrlPolicy
from tests.fakes.recording import RecordingPlatform, file_intake, url_intake
from tests.helpers.audio import AudioSample, make_dialogue, make_pii_dialogue, write_script
from tests.helpers.emulator_server import EmulatorServer, start_emulator
from tests.helpers.engine import fast_polls

pytestmark = pytest.mark.timeout(90)

RETRY = aai.RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
FAST: dict[str, Any] = {"processing_time": 0.2, "webhook_retry_interval": 0.05}


class Harness:
    def __init__(self, engine: Engine, platform: RecordingPlatform, emulator: EmulatorServer):
        self.engine = engine
        self.platform = platform
        self.emulator = emulator
        self.store = engine.store
        self.client = engine.client

    async def drain(self, timeout: float = 40.0) -> None:
        async with asyncio.timeout(timeout):
            await self.engine.run_until_idle()

    def transcript(self, transcript_id: str) -> Any:
        return self.emulator.running.emulator.store.records[transcript_id]


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, emulator: EmulatorServer, **overrides: Any
) -> AsyncIterator[Harness]:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    client = aai.AssemblyAIClient(Secret(emulator.api_key), base_url=emulator.base_url, retry=RETRY)
    platform = RecordingPlatform()
    base: dict[str, Any] = {
        "retry_base": 0.01,
        "retry_cap": 0.05,
        "status_interval": 0.0,
        "idle": 0.1,
        "urls": UrlPolicy(allow_private=True),
    }
    config = EngineConfig(**(base | overrides))
    engine = Engine(store, client, {Platform.SLACK: platform}, config, schedule=fast_polls())
    try:
        yield Harness(engine, platform, emulator)
    finally:
        await engine.stop()
        await client.close()
        await store.close()


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    """`check()`'s first truthy value, asked every 50 ms (the store has no events)."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if value := await check():
                return value
            await asyncio.sleep(0.05)


@pytest.fixture
def dialogue(tmp_path: Path, emulator: EmulatorServer) -> AudioSample:
    return make_dialogue(tmp_path / "audio", "mp3", emulator.scripts_dir)


async def test_a_job_records_what_it_was_billed_and_the_model(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    async with harness(tmp_path, emulator) as h:
        windowed = JobOptions(audio_start_from=2000)
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path), options=windowed))
        await h.drain()
        job = await h.store.get(outcome.job.id)
        record = h.transcript(job.transcript_id)
        # audio_duration with the window applied: from 2 s to the end
        assert job.billed_seconds == record.audio_duration - 2.0
        assert job.speech_model == record.speech_model_used == "assemblyai-stt-3-7"
        report = await h.store.usage.report(Platform.SLACK, "T1", month_start(h.store.now()))
        assert report.billed == job.billed_seconds and report.in_progress == 0
        labels = {"model": "assemblyai-stt-3-7", "platform": "slack", "workspace": "T1"}
        seconds = h.engine.metrics.registry.get_sample_value(
            "threadscribe_audio_seconds_total", labels
        )
        assert seconds == job.billed_seconds


async def test_a_link_of_unknown_length_runs_only_as_far_as_the_budget_left(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    """A budget of 8 seconds a month: the link is transcribed up to 8 s (AssemblyAI is
    asked for no more), the result says why, and the admins are told it is used up."""
    async with harness(tmp_path, emulator, budget_hours=8 / 3600, budget_min_slice=1.0) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        assert outcome.job is not None and outcome.job.budget_seconds == 8.0
        await h.drain()
        job = await h.store.get(outcome.job.id)
        record = h.transcript(job.transcript_id)
        assert record.request.get("audio_end_at") == 8000
        assert job.billed_seconds == 8.0
        [result] = h.platform.results(job.id)
        assert messages.cut_by_budget(8.0) in result.text
        assert result.text.startswith("Transcript · first 0:08 of 0:")
        [(workspace, alert)] = h.platform.notices
        assert workspace == "T1" and "budget of 8 s is used up" in alert
        # Next: refused, naming the budget; the admins are not told twice.
        refused = await h.engine.intake(url_intake(media_server(dialogue.path), message="2.0"))
        assert refused.job is None and refused.refused is not None
        assert "monthly transcription budget of 8 s is used up" in refused.refused
        await h.drain()
        assert len(h.platform.notices) == 1


async def test_admins_hear_at_80_percent_once_then_at_100(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample
) -> None:
    seconds = round(dialogue.duration)
    budget = seconds / 0.85 / 3600  # one recording: 85 % of the budget
    data = dialogue.path.read_bytes()
    async with harness(tmp_path, emulator, budget_hours=budget) as h:
        h.platform.add_file("F1", data)
        h.platform.add_file("F2", data)
        first = await h.engine.intake(file_intake("F1", len(data), audio_duration=seconds))
        await h.drain()
        assert first.job is not None
        [(_, alert)] = h.platform.notices
        assert "is 80 % used" in alert
        second = await h.engine.intake(
            file_intake("F2", len(data), message="2.0", audio_duration=seconds)
        )
        assert second.job is None and "needs" in (second.refused or "")
        await h.drain()
        assert [text for _, text in h.platform.notices][1:] == [
            messages.budget_alert(100, budget, seconds, _next_month(h))
        ]


def _next_month(h: Harness) -> Any:
    from bot.jobs import next_month

    return next_month(h.store.now())


async def test_redaction_is_asked_for_and_said_and_the_redacted_audio_posted(
    tmp_path: Path, emulator: EmulatorServer, media_server: Any
) -> None:
    sample = make_pii_dialogue(tmp_path / "pii")
    write_script(sample, emulator.scripts_dir)
    redaction = Redaction(("phone_number", "email_address", "person_name"), audio=True)
    async with harness(tmp_path, emulator) as h:
        options = JobOptions(redaction=redaction)
        outcome = await h.engine.intake(url_intake(media_server(sample.path), options=options))
        await h.drain()
        job = await h.store.get(outcome.job.id)
        request = h.transcript(job.transcript_id).request
        assert request.get("redact_pii") is True
        assert request.get("redact_pii_policies") == list(redaction.policies)
        assert request.get("redact_pii_sub") == "entity_name"
        assert request.get("redact_pii_audio") is True
        [result] = h.platform.results(job.id)
        assert "[PHONE_NUMBER]" in result.text and "555-0100" not in result.text
        assert "bob@example.com" not in result.text and "Ada" not in result.text
        assert "Baker Street" in result.text  # location was not asked for
        assert "🔒 PII redacted: email addresses (1), names (1), phone numbers (1)" in result.text
        audio = result.files["redacted-audio.mp3"]
        assert audio[:3] == b"ID3" or audio[:2] == b"\xff\xfb"  # an MP3


async def test_a_redacted_audio_too_large_to_post_is_a_link(
    tmp_path: Path, emulator: EmulatorServer, media_server: Any
) -> None:
    sample = make_pii_dialogue(tmp_path / "pii")
    write_script(sample, emulator.scripts_dir)
    options = JobOptions(redaction=Redaction(("phone_number",), audio=True))
    async with harness(tmp_path, emulator) as h:
        h.platform.file_limit = 1000
        outcome = await h.engine.intake(url_intake(media_server(sample.path), options=options))
        await h.drain()
        [result] = h.platform.results(outcome.job.id)
        assert "redacted-audio.mp3" not in result.files
        assert "Redacted audio (too large to attach; the link works for 24 hours): http" in (
            result.text
        )


async def test_delete_after_delivery_deletes_and_says_so_in_the_result(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    async with harness(tmp_path, emulator, delete_after_delivery=True) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        await h.drain()
        job = await h.store.get(outcome.job.id)
        assert job.state is JobState.DELIVERED and job.transcript_deleted_at is not None
        assert h.transcript(job.transcript_id).deleted
        [result] = h.platform.results(job.id)
        assert messages.DELETED_RECEIPT not in result.text  # posted, then deleted...
        assert result.current.endswith(messages.DELETED_RECEIPT)  # ...and the receipt added
        assert dialogue.script["utterances"][0]["text"] in result.current


async def test_delete_after_delivery_also_for_failed_and_undeliverable_transcripts(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    async with harness(
        tmp_path, emulator, delete_after_delivery=True, max_delivery_attempts=2
    ) as h:
        missing = media_server(dialogue.path).replace(dialogue.path.name, "gone.mp3")
        failed = await h.engine.intake(url_intake(missing))
        await h.drain()
        job = await h.store.get(failed.job.id)
        assert h.transcript(job.transcript_id).deleted  # the errored transcript too
        [notice] = h.platform.results(job.id)
        assert notice.current.startswith("Sorry, I could not transcribe this: AssemblyAI")
        assert notice.current.endswith(messages.DELETED_RECEIPT)
        # A thread that cannot be reached for good: its transcript is deleted all the same.
        # The status goes up; then the thread is gone, for the result and the failure.
        h.platform.fail("post", None, *[PlatformRefused("channel_not_found")] * 3)
        lost = await h.engine.intake(url_intake(media_server(dialogue.path), message="2.0"))
        await h.drain()
        job = await h.store.get(lost.job.id)
        assert job.state is JobState.DELIVERED and job.last_error.startswith("undeliverable")
        assert h.transcript(job.transcript_id).deleted


async def test_delete_after_delivery_deletes_the_transcript_of_a_link_it_replaced(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    """A platform's public link AssemblyAI could not fetch: the file is streamed instead,
    and the failed transcript left behind is deleted too."""
    data = dialogue.path.read_bytes()
    async with harness(tmp_path, emulator, delete_after_delivery=True) as h:
        h.platform.add_file("F1", data)
        h.platform.links["F1"] = media_server(dialogue.path).replace(dialogue.path.name, "x")
        outcome = await h.engine.intake(file_intake("F1", len(data)))
        await h.drain()
        records = h.emulator.running.emulator.store.records.values()
        assert len(records) == 2 and all(r.deleted for r in records)
        job = await h.store.get(outcome.job.id)
        assert job.direct_failed and job.billed_seconds and job.billed_seconds > 0


async def test_forget_a_delivered_job_deletes_everything_but_what_it_cost(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    async with harness(tmp_path, emulator) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        await h.drain()
        job = await h.store.get(outcome.job.id)
        posted = set(job.posted.values())
        assert await h.engine.forget(job, by="U1") is not None
        await h.drain()
        assert await h.store.get(job.id) is None  # the record and its ids
        assert set(h.platform.erased) == posted and h.platform.posts == []
        assert h.transcript(job.transcript_id).deleted
        report = await h.store.usage.report(Platform.SLACK, "T1", month_start(h.store.now()))
        assert report.billed == job.billed_seconds  # the ledger keeps what it cost


async def test_forget_a_running_job_waits_for_assemblyai_then_deletes_it(
    tmp_path: Path, dialogue: AudioSample, media_server: Any
) -> None:
    with start_emulator(tmp_path / "scripts", **(FAST | {"processing_time": 1.5})) as slow:
        write_script(dialogue, slow.scripts_dir)
        async with harness(tmp_path, slow) as h:
            outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
            await h.engine.start()

            async def submitted() -> Any:
                job = await h.store.get(outcome.job.id)
                return job if job.state is JobState.SUBMITTED else None

            job = await eventually(submitted)
            assert not h.transcript(job.transcript_id).done  # AssemblyAI is working on it
            assert await h.engine.forget(job, by="U1") is not None

            async def gone() -> bool:
                return await h.store.get(job.id) is None

            await eventually(gone, 20)
            record = h.transcript(job.transcript_id)
            assert record.deleted  # deleted once it was done, never delivered
            assert h.platform.results(job.id) == [] and h.platform.posts == []
            deletes = [r for r in slow.requests() if r["method"] == "DELETE"]
            assert [d["status"] for d in deletes] == [200]  # not tried while still working


async def test_forgetting_twice_is_once(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    async with harness(tmp_path, emulator) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        job = outcome.job
        assert await h.engine.forget(job, by="U1") is not None
        assert await h.engine.forget(replace(job), by="U1") is None
        await h.drain()
        assert await h.store.get(job.id) is None
        assert h.emulator.running.emulator.store.records == {}  # never submitted


async def test_a_transcript_deleted_at_assemblyai_before_its_post_is_said_not_shown(
    tmp_path: Path, emulator: EmulatorServer, dialogue: AudioSample, media_server: Any
) -> None:
    """The thread is unreachable for a moment, and meanwhile the transcript is deleted at
    AssemblyAI (by hand, or a receipt's deletion that did not get recorded): what comes
    back is a scrub ("Deleted by user."), which must not be posted as the transcript."""
    from bot.errors import PlatformUnavailable

    async with harness(tmp_path, emulator, retry_base=30.0, retry_cap=30.0) as h:
        h.platform.fail("post", None, PlatformUnavailable("Slack is down"))
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await h.engine.run_until_idle()  # the result's post waits 15-30 s
        job = await h.store.get(outcome.job.id)
        assert job.state is JobState.COMPLETED and h.platform.results(job.id) == []
        await h.client.delete(job.transcript_id)
        await h.store.queue.make_due(job.id)
        await h.drain()
        [notice] = h.platform.results(job.id)
        assert notice.text == messages.failed(messages.TRANSCRIPT_DELETED)
        assert "Deleted by user" not in notice.text
