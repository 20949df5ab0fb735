"""The engine in-process: real store (SQLite), real client, the emulator on a socket, and
the recording platform. Every job must end delivered exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from bot import assemblyai as aai
from bot.chat import Reaction
from bot.config import Secret
from bot.engine import EngineConfig
from bot.errors import PlatformUnavailable
from bot.jobs import JobOptions, JobState
from bot.urls import UrlPolicy
from tests.fakes.recording import file_intake, url_intake
from tests.helpers.audio import make_dialogue, make_tone
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.engine import EngineHarness, running_engine

FAST = aai.RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05)
#: This module's engine: quicker retries than FAST_ENGINE's, a longer lease.
CONFIG = EngineConfig(
    retry_base=0.01,
    retry_cap=0.05,
    status_interval=0.0,
    idle=0.2,
    lease=10.0,
    urls=UrlPolicy(allow_private=True),  # the media servers are on loopback
)


@pytest.fixture
def engine_options() -> dict[str, Any]:
    return {"config": CONFIG, "retry": FAST}


def make_harness(
    tmp_path: Path, emulator: EmulatorServer, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[EngineHarness]:
    return running_engine(tmp_path, emulator, CONFIG, retry=FAST, **overrides)


@pytest.fixture
def dialogue(audio_library, emulator):
    return audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)


async def test_link_is_transcribed_and_delivered_once(harness, dialogue, media_server):
    outcome = await harness.engine.intake(url_intake(media_server(dialogue.path)))
    assert outcome.created and outcome.refused is None
    await harness.drain()

    job = await harness.store.get(outcome.job.id)
    assert job.state is JobState.DELIVERED
    [result] = harness.platform.results(job.id)
    for utterance in dialogue.script["utterances"]:
        assert f"Speaker {utterance['speaker']}" in result.text
        assert utterance["text"] in result.text
    [status] = harness.platform.statuses(job.id)
    assert status.current.startswith("✅")
    assert [r for _m, r in harness.platform.reactions] == [Reaction.WORKING, Reaction.DONE]
    # No upload for a public link: AssemblyAI fetched it.
    assert not [r for r in harness.emulator.requests() if r["path"] == "/v2/upload"]


async def test_private_file_is_streamed_into_the_upload(harness, dialogue):
    data = dialogue.path.read_bytes()
    harness.platform.add_file("F1", data)
    outcome = await harness.engine.intake(file_intake("F1", len(data)))
    await harness.drain()
    [result] = harness.platform.results(outcome.job.id)
    assert dialogue.script["utterances"][0]["text"] in result.text
    uploads = [r for r in harness.emulator.requests() if r["path"] == "/v2/upload"]
    assert len(uploads) == 1


async def test_same_intake_twice_concurrently_makes_one_job(harness, dialogue, media_server):
    record = url_intake(media_server(dialogue.path))
    outcomes = await asyncio.gather(*(harness.engine.intake(record) for _ in range(10)))
    assert len({o.job.id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1
    await harness.drain()
    assert len(harness.platform.results()) == 1
    assert len(harness.platform.posts) == 2  # one status message, one result


async def test_replayed_intake_after_delivery_changes_nothing(harness, dialogue, media_server):
    record = url_intake(media_server(dialogue.path))
    await harness.engine.intake(record)
    await harness.drain()
    again = await harness.engine.intake(record)
    assert not again.created
    await harness.drain()
    assert len(harness.platform.results()) == 1


@pytest.mark.parametrize(
    "fault",
    [{"status": 429, "retry_after": 0}, {"status": 500}, {"status": 503}, {"drop": True}],
    ids=["429", "500", "503", "drop"],
)
async def test_transient_assemblyai_faults_still_deliver(harness, dialogue, media_server, fault):
    # As many faults as the client's own retries: the engine's backoff takes over.
    harness.emulator.inject(*[{**fault, "path": "/v2/transcript"}] * 4)
    outcome = await harness.engine.intake(url_intake(media_server(dialogue.path)))
    await harness.drain()
    job = await harness.store.get(outcome.job.id)
    assert job.state is JobState.DELIVERED
    [result] = harness.platform.results(job.id)
    assert dialogue.script["utterances"][1]["text"] in result.text


async def test_audio_error_is_explained_in_the_thread(harness, tmp_path):
    blip = make_tone(tmp_path / "blip.wav", 0.1)
    data = blip.read_bytes()
    harness.platform.add_file("F2", data)
    outcome = await harness.engine.intake(file_intake("F2", len(data)))
    await harness.drain()
    [result] = harness.platform.results(outcome.job.id)
    assert "too short" in result.text
    assert harness.platform.reactions[-1][1] is Reaction.FAILED
    job = await harness.store.get(outcome.job.id)
    assert job.state is JobState.DELIVERED and "too short" in job.last_error


async def test_unreachable_link_is_explained(harness):
    outcome = await harness.engine.intake(url_intake("http://127.0.0.1:9/gone.mp3"))
    await harness.drain()
    [result] = harness.platform.results(outcome.job.id)
    assert "Download error" in result.text


async def test_limits_refuse_with_a_reason(tmp_path, emulator, dialogue, media_server):
    async with make_harness(tmp_path, emulator, per_user=1, max_file_bytes=1000) as h:
        url = media_server(dialogue.path)
        first = await h.engine.intake(url_intake(url, message="1.1"))
        second = await h.engine.intake(url_intake(url, message="1.2"))
        big = await h.engine.intake(file_intake("F9", 5000, requester="U2"))
        assert first.created and first.refused is None
        assert second.job is None and "1 transcription" in second.refused
        assert big.job is None and "limit" in big.refused and "MB" in big.refused
        await h.drain()
        assert len(h.platform.results()) == 1


async def test_platform_failures_are_retried_without_double_posting(
    harness, dialogue, media_server
):
    harness.platform.fail(
        "post", PlatformUnavailable("slack is down"), PlatformUnavailable("still down")
    )
    harness.platform.fail("react", PlatformUnavailable("rate limited"))
    outcome = await harness.engine.intake(url_intake(media_server(dialogue.path)))
    await harness.drain()
    assert len(harness.platform.results(outcome.job.id)) == 1
    assert len(harness.platform.statuses(outcome.job.id)) == 1


async def test_crash_between_posting_and_finishing_resumes_without_repeating(
    tmp_path, emulator, dialogue, media_server
):
    """The result is posted, then the final reaction fails permanently for this run;
    a second engine on the same database finishes the job without posting again."""
    async with make_harness(tmp_path, emulator, max_attempts=100) as h:
        # The first reaction (⏳) works; every later one fails, so this run cannot finish.
        h.platform.fail("react", None, *[PlatformUnavailable("down")] * 1000)
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        # Run until the result is posted, then stop this "process".
        await h.engine.start()
        await h.platform.until(lambda: h.platform.results())
        await h.engine.stop()
        first_platform = h.platform
    async with make_harness(tmp_path, emulator) as h:
        h.platform.posts = first_platform.posts  # the same thread, seen by the new process
        await h.drain()
        job = await h.store.get(outcome.job.id)
        assert job.state is JobState.DELIVERED
        assert len(h.platform.results(job.id)) == 1


async def test_long_transcript_goes_out_as_a_file(tmp_path, emulator, media_server):
    turns = tuple(
        ("A" if i % 2 == 0 else "B", f"This is sentence number {i} of a long meeting.")
        for i in range(12)
    )
    sample = make_dialogue(tmp_path / "long", "mp3", emulator.scripts_dir, turns=turns)
    async with make_harness(tmp_path, emulator) as h:
        h.platform.message_limit = 400
        outcome = await h.engine.intake(url_intake(media_server(sample.path)))
        await h.drain()
        [result] = h.platform.results(outcome.job.id)
        assert len(result.text) <= 400
        attached = result.files["transcript.txt"].decode()
        for _speaker, text in turns:
            assert text in attached


async def test_formats_and_deletion_after_delivery(tmp_path, emulator, dialogue, media_server):
    async with make_harness(tmp_path, emulator, delete_after_delivery=True) as h:
        record = url_intake(media_server(dialogue.path), options=JobOptions(formats=("srt", "vtt")))
        outcome = await h.engine.intake(record)
        await h.drain()
        [result] = h.platform.results(outcome.job.id)
        assert result.files["transcript.srt"].startswith(b"1\n")
        assert result.files["transcript.vtt"].startswith(b"WEBVTT")
        job = await h.store.get(outcome.job.id)
        async with aai.AssemblyAIClient(Secret(emulator.api_key), base_url=emulator.base_url) as c:
            gone = await c.get(job.transcript_id)
        assert gone.text == "Deleted by user."


async def test_ai_summary_and_its_fallback(tmp_path, emulator, dialogue, media_server):
    async with make_harness(tmp_path, emulator, ai_summary=True) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path), message="2.1"))
        await h.drain()
        [ok] = h.platform.results(outcome.job.id)
        assert "Summary" in ok.text and "unavailable" not in ok.text

        h.emulator.inject(*[{"status": 500, "path": "/v1/chat"}] * 4)
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path), message="2.2"))
        await h.drain()
        [fallback] = h.platform.results(outcome.job.id)
        assert "unavailable" in fallback.text
        assert dialogue.script["utterances"][0]["text"] in fallback.text


async def test_webhook_and_poller_racing_deliver_once(tmp_path, emulator, dialogue, media_server):
    secret = Secret("hook-secret")
    async with make_harness(
        tmp_path,
        emulator,
        webhook_url="http://127.0.0.1:9/webhooks/assemblyai",
        webhook_secret=secret,
    ) as h:
        outcome = await h.engine.intake(url_intake(media_server(dialogue.path)))
        await h.engine.start()
        await h.platform.until(
            lambda: any("Transcribing" in p.current for p in h.platform.statuses(outcome.job.id))
        )
        job = await h.store.get(outcome.job.id)
        # Hammer the webhook path while the poller runs.
        for _ in range(20):
            await asyncio.gather(*(h.engine.webhook(job.transcript_id) for _ in range(5)))
            await asyncio.sleep(0.05)
        await h.platform.until(lambda: h.platform.results(job.id))
        await asyncio.sleep(0.3)
        assert len(h.platform.results(job.id)) == 1
        assert not h.engine.webhook_authorised("wrong")
        assert not h.engine.webhook_authorised(None)
        assert h.engine.webhook_authorised("hook-secret")


async def test_many_jobs_respect_the_concurrency_limit(tmp_path, emulator, dialogue, media_server):
    async with make_harness(tmp_path, emulator, concurrency=3, per_user=100, per_channel=100) as h:
        url = media_server(dialogue.path)
        outcomes = [await h.engine.intake(url_intake(url, message=f"3.{i}")) for i in range(12)]
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, await h.store.queue.count(JobState.FETCHING, JobState.SUBMITTED))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        await h.drain(timeout=60)
        watcher.cancel()
        # Awaited before the store closes: a count cancelled mid-query on a closed
        # aiosqlite connection never ends, and the loop's teardown waits for it.
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert 1 <= peak <= 3
        assert len(h.platform.results()) == 12
        assert {len(h.platform.results(o.job.id)) for o in outcomes} == {1}


async def test_platform_link_is_handed_over_and_streamed_only_if_it_fails(
    harness, dialogue, media_server
):
    data = dialogue.path.read_bytes()
    harness.platform.add_file("F5", data)
    harness.platform.links["F5"] = media_server(dialogue.path)
    harness.platform.add_file("F6", data)
    harness.platform.links["F6"] = "http://127.0.0.1:9/expired-link.mp3"
    by_link = await harness.engine.intake(file_intake("F5", len(data), message="5.1"))
    fallback = await harness.engine.intake(file_intake("F6", len(data), message="5.2"))
    await harness.drain()
    for outcome in (by_link, fallback):
        [result] = harness.platform.results(outcome.job.id)
        assert dialogue.script["utterances"][0]["text"] in result.text
        job = await harness.store.get(outcome.job.id)
        assert job.state is JobState.DELIVERED
    assert not (await harness.store.get(by_link.job.id)).direct_failed
    assert (await harness.store.get(fallback.job.id)).direct_failed
    # Only the job whose link AssemblyAI could not fetch was uploaded.
    uploads = [r for r in harness.emulator.requests() if r["path"] == "/v2/upload"]
    assert len(uploads) == 1
