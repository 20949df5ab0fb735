"""bot.assemblyai against the emulator over real sockets, faults included."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot import assemblyai as aai
from bot.config import Secret
from bot.transcript import TranscriptStatus
from tests.helpers.emulator_server import EmulatorServer

FAST = aai.RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05)


def client_for(server: EmulatorServer, **kwargs) -> aai.AssemblyAIClient:
    kwargs.setdefault("retry", FAST)
    return aai.AssemblyAIClient(
        Secret(server.api_key), base_url=server.base_url, llm_base_url=server.base_url, **kwargs
    )


def api_requests(server: EmulatorServer, path_prefix: str) -> list[dict]:
    return [r for r in server.requests() if r["path"].startswith(path_prefix)]


@pytest.fixture
def dialogue(audio_library, emulator):
    return audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)


async def test_upload_submit_wait_and_exports(emulator, dialogue):
    async with client_for(emulator) as client:
        seen: list[int] = []
        upload_url = await client.upload(dialogue.path, progress=seen.append)
        assert seen[-1] == dialogue.path.stat().st_size
        assert seen == sorted(seen)

        submitted = await client.submit(upload_url, aai.TranscriptOptions(speakers_expected=2))
        assert submitted.status is TranscriptStatus.QUEUED
        done = await client.wait(submitted.id, delays=lambda _t: 0.05)

        assert done.status is TranscriptStatus.COMPLETED
        assert [(u.speaker, u.text) for u in done.utterances] == [
            (u["speaker"], u["text"]) for u in dialogue.script["utterances"]
        ]
        assert done.audio_duration == pytest.approx(dialogue.duration, abs=1)
        assert done.words and all(w.speaker in {"A", "B"} for w in done.words)

        sentences = await client.sentences(done.id)
        paragraphs = await client.paragraphs(done.id)
        assert " ".join(s.text for s in sentences).split() == done.text.split()
        assert " ".join(p.text for p in paragraphs).split() == done.text.split()
        srt = await client.srt(done.id, chars_per_caption=32)
        vtt = await client.vtt(done.id)
        assert srt.startswith("1\n") and "-->" in srt
        assert vtt.startswith("WEBVTT")

        page = await client.list(limit=10)
        assert done.id in [t.id for t in page.transcripts]

        deleted = await client.delete(done.id)
        assert deleted.text == "Deleted by user."
        assert (await client.get(done.id)).audio_url == "http://deleted_by_user"


async def test_upload_from_bytes_stream_and_factory_give_the_same_audio(emulator, dialogue):
    data = dialogue.path.read_bytes()

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 10_000):
            yield data[i : i + 10_000]

    async with client_for(emulator) as client:
        urls = [
            await client.upload(data),
            await client.upload(stream()),
            await client.upload(stream, size=len(data)),
        ]
        for url in urls:
            transcript = await client.submit(url)
            done = await client.wait(transcript.id, delays=lambda _t: 0.05)
            # Only bytes identical to the scripted file produce the scripted text.
            assert done.utterances[0].text == dialogue.script["utterances"][0]["text"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 0},
        {"status": 500},
        {"status": 503},
        {"drop": True},
    ],
    ids=["429", "500", "503", "drop"],
)
async def test_transient_faults_are_retried_until_success(emulator, dialogue, fault):
    async with client_for(emulator) as client:
        upload_url = await client.upload(dialogue.path)
        submitted = await client.submit(upload_url)
        emulator.clear_requests()
        path = f"/v2/transcript/{submitted.id}"
        emulator.inject({**fault, "path": path}, {**fault, "path": path})
        transcript = await client.get(submitted.id)
    assert transcript.id == submitted.id
    assert len(api_requests(emulator, path)) == 3


async def test_submit_is_retried_only_when_assemblyai_surely_did_nothing(emulator, dialogue):
    async with client_for(emulator) as client:
        upload_url = await client.upload(dialogue.path)
        emulator.clear_requests()
        emulator.inject({"status": 429, "retry_after": 0, "path": "/v2/transcript"})
        assert (await client.submit(upload_url)).status is TranscriptStatus.QUEUED
        assert len(api_requests(emulator, "/v2/transcript")) == 2
        # A 5xx or a dropped connection may come after the job was made: not retried here
        # (the engine decides), so no second transcript is billed.
        for fault in ({"status": 503}, {"drop": True}):
            emulator.clear_requests()
            emulator.inject({**fault, "path": "/v2/transcript"})
            with pytest.raises((aai.ServerError, aai.TransportError)):
                await client.submit(upload_url)
            assert len(api_requests(emulator, "/v2/transcript")) == 1


async def test_retry_after_is_honoured(emulator):
    emulator.inject({"status": 429, "retry_after": 1, "path": "/v2/transcript"})
    async with client_for(emulator) as client:
        started = time.monotonic()
        await client.list()
        assert time.monotonic() - started >= 0.95


async def test_retries_give_up_with_a_typed_error(emulator):
    emulator.inject(*[{"status": 503, "path": "/v2/transcript"}] * 4)
    async with client_for(emulator) as client:
        with pytest.raises(aai.ServerError) as info:
            await client.list()
    assert info.value.status == 503
    assert len(api_requests(emulator, "/v2/transcript")) == FAST.attempts


async def test_bad_request_is_not_retried(emulator):
    async with client_for(emulator) as client:
        emulator.clear_requests()
        with pytest.raises(aai.BadRequestError) as info:
            await client.submit(
                "https://example.invalid/a.mp3", aai.TranscriptOptions(speech_models=())
            )
    assert info.value.status == 400
    assert "speech_models" in info.value.message
    assert len(api_requests(emulator, "/v2/transcript")) == 1


async def test_wrong_key_is_an_authentication_error_at_once(emulator):
    client = aai.AssemblyAIClient(Secret("wrong-key"), base_url=emulator.base_url, retry=FAST)
    async with client:
        emulator.clear_requests()
        with pytest.raises(aai.AuthenticationError) as info:
            await client.get("5551722-f677-48a7-9cd0-fb6b56f8b4c5")
    assert info.value.status == 401
    assert "Authentication error" in info.value.message
    assert len(emulator.requests()) == 1


async def test_unknown_transcript_is_a_typed_client_error(emulator):
    async with client_for(emulator) as client:
        with pytest.raises(aai.APIError) as info:
            await client.get("00000000-0000-0000-0000-000000000000")
    assert info.value.status in (400, 404)
    assert not isinstance(info.value, aai.ServerError | aai.RateLimitError)


async def test_one_shot_stream_is_not_replayed(emulator, dialogue):
    data = dialogue.path.read_bytes()

    async def stream() -> AsyncIterator[bytes]:
        yield data

    emulator.inject({"status": 500, "path": "/v2/upload"})
    async with client_for(emulator) as client:
        with pytest.raises(aai.ServerError):
            await client.upload(stream())
    assert len(api_requests(emulator, "/v2/upload")) == 1


async def test_slow_responses_time_out_per_request(emulator):
    emulator.inject(*[{"delay": 2.0, "path": "/v2/transcript"}] * 2)
    policy = aai.RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.01)
    async with client_for(emulator, retry=policy, timeouts=aai.Timeouts(request=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(aai.RequestTimeout):
            await client.list()
        assert time.monotonic() - started < 1.5


async def test_unreachable_server_is_a_transport_error():
    client = aai.AssemblyAIClient(Secret("k"), base_url="http://127.0.0.1:9", retry=FAST)
    async with client:
        with pytest.raises(aai.TransportError) as info:
            await client.list()
    assert "k" not in info.value.message.split()


async def test_closed_client_refuses_and_hides_the_key(emulator):
    client = client_for(emulator)
    await client.close()
    assert emulator.api_key not in repr(client)
    with pytest.raises(aai.ClientClosedError):
        await client.list()


async def test_llm_gateway_chat(emulator):
    async with client_for(emulator) as client:
        messages = [
            {"role": "system", "content": "Summarise the meeting."},
            {"role": "user", "content": "Speaker A: Revenue is up.\nSpeaker B: Costs are flat."},
        ]
        first = await client.chat(messages, model="claude-sonnet-4-5-20250929")
        second = await client.chat(messages, model="claude-sonnet-4-5-20250929")
    assert first and first == second


# -- what goes over the wire, seen by a capturing server ------------------------------


@pytest.fixture
async def capture() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        if request.path == "/v2/upload":
            return web.json_response({"upload_url": "https://cdn.assemblyai.com/upload/x"})
        return web.json_response({"id": "t1", "status": "queued"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen, bodies
    await runner.cleanup()


async def test_content_length_is_sent_when_known_and_chunked_otherwise(capture, tmp_path: Path):
    base, seen, bodies = capture
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 700_000)

    async def stream() -> AsyncIterator[bytes]:
        yield b"y" * 1000
        await asyncio.sleep(0)
        yield b"z" * 1000

    async with aai.AssemblyAIClient(Secret("k"), base_url=base) as client:
        await client.upload(path)
        await client.upload(stream())
    assert seen[0].headers["Content-Length"] == "700000"
    assert seen[0].headers["Authorization"] == "k"
    assert seen[1].headers.get("Transfer-Encoding") == "chunked"
    assert bodies[0] == b"x" * 700_000 and bodies[1] == b"y" * 1000 + b"z" * 1000


async def test_submit_body_follows_the_options(capture):
    base, _seen, bodies = capture
    options = aai.TranscriptOptions(
        language_code="fr",
        speakers_expected=3,
        audio_start_from=1000,
        audio_end_at=5000,
        webhook_url="https://bot.example/webhooks/assemblyai",
        webhook_auth_header_name="X-Threadscribe-Secret",
        webhook_auth_header_value=Secret("hook-secret"),
    )
    assert "hook-secret" not in repr(options)
    async with aai.AssemblyAIClient(Secret("k"), base_url=base) as client:
        await client.submit("https://media.example/a.mp3")
        await client.submit("https://media.example/b.mp3", options)
    default, custom = (json.loads(b) for b in bodies)
    assert default == {
        "audio_url": "https://media.example/a.mp3",
        "speech_models": ["assemblyai-stt-3-7", "universal-2"],
        "language_detection": True,
        "speaker_labels": True,
    }
    assert custom["language_code"] == "fr" and "language_detection" not in custom
    assert custom["speakers_expected"] == 3
    assert (custom["audio_start_from"], custom["audio_end_at"]) == (1000, 5000)
    assert custom["webhook_auth_header_value"] == "hook-secret"
