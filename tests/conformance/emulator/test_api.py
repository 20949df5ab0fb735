"""The emulator's v2 API over real sockets: auth, uploads, validation, lifecycle, reads,
deletion and listing. Every JSON body is checked against openapi.yml's schemas."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.models import (
    DEPRECATED_SPEECH_MODELS,
    LISTED_SPEECH_MODELS,
    REJECTED_SPEECH_MODELS,
)
from tests.helpers import openapi_schema
from tests.helpers.emulator_server import FAST, EmulatorServer, start_emulator, wait_done

MODELS = ["assemblyai-stt-3-7", "universal-2"]
UNAUTHORIZED = {"error": "Authentication error, API token missing/invalid"}
NOT_FOUND_ID = {"error": "Transcript lookup error, transcript id not found"}
SPEECH_MODELS_ERROR = (
    '"speech_models" must be a non-empty list containing one or more of: '
    '"assemblyai-stt-3-7", "universal-3-5-pro", "universal-2"'
)


def client_for(server: EmulatorServer, key: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"authorization": key or server.api_key},
        timeout=10,
    )


def error_body(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    openapi_schema.validate("Error", body)
    return str(body["error"])


async def upload(api: httpx.AsyncClient, data: bytes) -> str:
    response = await api.post("/v2/upload", content=data)
    assert response.status_code == 200, response.text
    openapi_schema.validate("UploadedFile", response.json())
    return str(response.json()["upload_url"])


async def submit(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await api.post("/v2/transcript", json={"speech_models": MODELS} | params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    openapi_schema.validate("Transcript", body)
    return body


async def transcribe(api: httpx.AsyncClient, data: bytes, **params: Any) -> dict[str, Any]:
    created = await submit(api, audio_url=await upload(api, data), **params)
    done = await wait_done(api, created["id"])
    openapi_schema.validate("Transcript", done)
    return done


# --- auth and routing ---------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key", "Bearer emulator-test-key"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/upload"),
        ("POST", "/v2/transcript"),
        ("GET", "/v2/transcript"),
        ("GET", "/v2/transcript/00000000-0000-0000-0000-000000000000"),
        ("GET", "/_emulator/requests"),
    ],
)
async def test_requests_without_the_key_get_401(
    emulator: EmulatorServer,
    key: str | None,
    method: str,
    path: str,
) -> None:
    headers = {} if key is None else {"authorization": key}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as client:
        response = await client.request(method, path, content=b"x")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_unknown_routes_and_methods_answer_json(api: httpx.AsyncClient) -> None:
    assert error_body(await api.get("/v3/nothing"), 404) == "Not found"
    assert error_body(await api.put("/v2/transcript"), 405) == "Method Not Allowed"
    assert error_body(await api.get("/v2/transcript/x/chapters"), 404) == "Not found"
    # A route of the spec the emulator serves: an unknown id is 400, as for the others.
    assert error_body(await api.get("/v2/transcript/x/redacted-audio"), 400) == (
        "Transcript lookup error, transcript id not found"
    )


# --- uploads -------------------------------------------------------------------------


async def test_upload_streams_a_large_body_and_hashes_it(emulator: EmulatorServer) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256(chunk * 12).hexdigest()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield chunk

    async with client_for(emulator) as api:
        response = await api.post("/v2/upload", content=body())  # chunked: no length
    assert response.status_code == 200
    openapi_schema.validate("UploadedFile", response.json())
    url = response.json()["upload_url"]
    match = re.fullmatch(r"https://cdn\.assemblyai\.com/upload/([0-9a-f-]{36})", url)
    assert match is not None
    stored = emulator.running.emulator.store.uploads[match.group(1)]
    assert (stored.size, stored.sha256) == (12 * len(chunk), digest)
    assert stored.path.stat().st_size == stored.size


async def test_an_interrupted_upload_leaves_nothing_behind(emulator: EmulatorServer) -> None:
    host, port = emulator.base_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v2/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        + f"Authorization: {emulator.api_key}\r\n\r\n".encode()
        + b"x" * 1000
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if emulator.requests():
            break
        await asyncio.sleep(0.02)
    assert emulator.requests() == [{"method": "POST", "path": "/v2/upload", "status": 400}]
    storage = emulator.running.emulator.storage
    assert list(storage.iterdir()) == []
    assert emulator.running.emulator.store.uploads == {}


async def test_empty_upload_is_refused(api: httpx.AsyncClient) -> None:
    message = error_body(await api.post("/v2/upload", content=b""), 400)
    assert "empty" in message


async def test_upload_over_the_limit_is_refused(tmp_path: Any) -> None:
    with start_emulator(tmp_path, max_upload_bytes=1000, **FAST) as server:
        async with client_for(server) as api:
            sized = await api.post("/v2/upload", content=b"x" * 1001)

            async def chunked() -> AsyncIterator[bytes]:
                for _ in range(3):
                    yield b"y" * 400

            streamed = await api.post("/v2/upload", content=chunked())
            exact = await api.post("/v2/upload", content=b"z" * 1000)
    assert "limited" in error_body(sized, 413)
    assert "limited" in error_body(streamed, 413)
    assert exact.status_code == 200


# --- validation ----------------------------------------------------------------------

URL = "https://example.com/a.mp3"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"audio_url": URL}, SPEECH_MODELS_ERROR),
        ({"audio_url": URL, "speech_models": []}, SPEECH_MODELS_ERROR),
        ({"audio_url": URL, "speech_models": ["nano"]}, SPEECH_MODELS_ERROR),
        ({"audio_url": URL, "speech_models": "universal-2"}, SPEECH_MODELS_ERROR),
        (
            {"audio_url": URL, "speech_models": MODELS, "speech_model": "best"},
            'speech_model is deprecated. Use "speech_models" instead. See documentation: '
            "https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model",
        ),
        ({"speech_models": MODELS}, "audio_url is required"),
        ({"audio_url": 5, "speech_models": MODELS}, "audio_url must be a String"),
        (
            {"audio_url": URL, "speech_models": MODELS, "format_text": "yes"},
            "format_text must be a Boolean",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "speakers_expected": True},
            "speakers_expected must be an Integer",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "speaker_labels": True, "oops": 1},
            '"oops" is not allowed',
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "language_code": "xx"},
            "language_code 'xx' is not supported",
        ),
        (
            {
                "audio_url": URL,
                "speech_models": MODELS,
                "language_code": "en_us",
                "language_detection": True,
            },
            "language_code cannot be specified when language_detection is enabled",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "audio_start_from": -1},
            "audio_start_from must be greater than or equal to 0",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "audio_start_from": 5, "audio_end_at": 5},
            "audio_end_at must be greater than audio_start_from",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "webhook_auth_header_name": "X-A"},
            "webhook_auth_header_name and webhook_auth_header_value must be provided together",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "webhook_url": "ftp://x/y"},
            "webhook_url must be a valid http(s) URL",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "content_safety_confidence": 10},
            "content_safety_confidence must be between 25 and 100",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "summary_type": "haiku"},
            "summary_type must be one of: bullets, bullets_verbose, gist, headline, paragraph",
        ),
        (
            {"audio_url": URL, "speech_models": MODELS, "redact_pii": True},
            "redact_pii_policies must be provided when redact_pii is enabled",
        ),
        (
            {
                "audio_url": URL,
                "speech_models": MODELS,
                "speaker_options": {"min_speakers_expected": 3, "max_speakers_expected": 2},
            },
            "max_speakers_expected must be greater than or equal to min_speakers_expected",
        ),
        ([URL], "Request body must be a JSON object"),
    ],
)
async def test_invalid_requests_get_400(api: httpx.AsyncClient, body: Any, message: str) -> None:
    assert error_body(await api.post("/v2/transcript", json=body), 400) == message


async def test_body_that_is_not_json_gets_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/v2/transcript", content=b"{nope")
    assert error_body(response, 400) == "Request body must be valid JSON"


def test_every_documented_parameter_is_known() -> None:
    from emulator.params import FIELDS

    schemas = openapi_schema.load()["components"]["schemas"]
    documented = set(schemas["TranscriptOptionalParams"]["properties"]) | {"audio_url"}
    assert set(FIELDS) == documented


# --- speech_models -------------------------------------------------------------------


@pytest.mark.parametrize(
    "models",
    [
        ["best"],
        ["nano"],
        ["slam-1"],
        ["universal-9-ultra"],  # no such model
        [],
        ["assemblyai-stt-3-7", "nano"],  # one refused name spoils the list
        ["Universal-2"],  # names are exact
        [None],
    ],
)
async def test_speech_models_outside_the_line_up_are_refused(
    api: httpx.AsyncClient, models: list[Any]
) -> None:
    response = await api.post("/v2/transcript", json={"audio_url": URL, "speech_models": models})
    message = error_body(response, 400)
    assert message == SPEECH_MODELS_ERROR
    # The message names exactly the models bot/models.py says AssemblyAI lists.
    assert re.findall(r'"([^"]+)"', message) == ["speech_models", *LISTED_SPEECH_MODELS]
    assert not any(name in message for name in REJECTED_SPEECH_MODELS)


@pytest.mark.parametrize("model", sorted(DEPRECATED_SPEECH_MODELS))
async def test_deprecated_models_are_still_accepted(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
    model: str,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    done = await transcribe(api, sample.path.read_bytes(), speech_models=[model])
    assert done["status"] == "completed"
    assert (done["speech_models"], done["speech_model_used"]) == ([model], model)
    assert done["text"] == " ".join(u["text"] for u in sample.script["utterances"])


@pytest.mark.parametrize(
    ("models", "language", "used"),
    [
        (["assemblyai-stt-3-7", "universal-2"], "en_us", "assemblyai-stt-3-7"),
        (["assemblyai-stt-3-7", "universal-2"], "ja", "assemblyai-stt-3-7"),
        (["assemblyai-stt-3-7", "universal-2"], "sw", "universal-2"),  # stt-3-7 lacks it
        (["universal-2", "assemblyai-stt-3-7"], "en_us", "universal-2"),  # priority order
        (["universal-3-pro", "universal-2"], "ja", "universal-2"),
        (["universal-3-5-pro", "universal-2"], "ja", "universal-3-5-pro"),
        # No fallback to a model the request does not name (the stt-3-7 migration guide).
        (["assemblyai-stt-3-7"], "sw", "assemblyai-stt-3-7"),
    ],
)
async def test_speech_model_used_is_the_first_listed_model_for_the_language(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
    models: list[str],
    language: str,
    used: str,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    data = sample.path.read_bytes()
    given = await transcribe(api, data, speech_models=models, language_code=language)
    assert (given["language_code"], given["speech_model_used"]) == (language, used)
    # The same when the language is detected (here: read from the script).
    script = sample.script | {"language_code": language}
    (emulator.scripts_dir / f"{sample.sha256}.json").write_text(json.dumps(script))
    detected = await transcribe(api, data, speech_models=models, language_detection=True)
    assert (detected["language_code"], detected["speech_model_used"]) == (language, used)


# --- lifecycle -----------------------------------------------------------------------


async def test_scripted_audio_is_transcribed_to_its_script(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    created = await submit(
        api, audio_url=await upload(api, sample.path.read_bytes()), speaker_labels=True
    )
    assert created["status"] == "queued"
    assert created["text"] is None and created["words"] is None
    done = await wait_done(api, created["id"])
    openapi_schema.validate("Transcript", done)

    script = [(u["speaker"], u["text"]) for u in sample.script["utterances"]]
    assert [(u["speaker"], u["text"]) for u in done["utterances"]] == script
    assert done["text"] == " ".join(text for _, text in script)
    assert done["text"] == " ".join(w["text"] for w in done["words"])
    assert done["audio_duration"] == int(sample.duration + 0.5)
    assert done["language_code"] == "en_us" and done["language_confidence"] is None
    assert done["speech_model_used"] == "assemblyai-stt-3-7"
    assert 0 <= done["confidence"] <= 1
    words = done["words"]
    assert all(w["speaker"] in ("A", "B") for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    assert words[-1]["end"] <= sample.duration * 1000
    for utterance in done["utterances"]:
        assert utterance["text"] == " ".join(w["text"] for w in utterance["words"])
        assert (utterance["start"], utterance["end"]) == (
            utterance["words"][0]["start"],
            utterance["words"][-1]["end"],
        )


# Properties the schema types as non-nullable, so they appear only with a value.
ONLY_WITH_A_VALUE = {
    "audio_channels",  # multichannel only
    "error",  # status error only
    "keyterms_prompt",
    "language_detection_options",
    "prompt",
    "redact_pii_audio_options",
    "redact_pii_sub",  # with redact_pii
    "speech_model_used",  # once completed
    "speech_understanding",
    "translated_texts",
}


async def test_every_other_transcript_property_is_always_present(
    api: httpx.AsyncClient,
    audio_library: Any,
) -> None:
    properties = set(openapi_schema.load()["components"]["schemas"]["Transcript"]["properties"])
    data = audio_library.dialogue("wav").path.read_bytes()
    created = await submit(api, audio_url=await upload(api, data))
    assert set(created) == properties - ONLY_WITH_A_VALUE
    done = await wait_done(api, created["id"])
    assert set(done) == properties - ONLY_WITH_A_VALUE | {"speech_model_used"}
    failed = await wait_done(
        api, (await submit(api, audio_url="https://cdn.assemblyai.com/upload/nope"))["id"]
    )
    assert set(failed) == properties - ONLY_WITH_A_VALUE | {"error"}


async def test_status_moves_through_queued_processing_completed(
    tmp_path: Any,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", tmp_path)
    with start_emulator(tmp_path, processing_time=0.6) as server:
        async with client_for(server) as api:
            created = await submit(api, audio_url=await upload(api, sample.path.read_bytes()))
            seen = [created["status"]]
            while seen[-1] not in ("completed", "error"):
                body = (await api.get(f"/v2/transcript/{created['id']}")).json()
                openapi_schema.validate("Transcript", body)
                if body["status"] != seen[-1]:
                    seen.append(body["status"])
                await asyncio.sleep(0.02)
    assert seen == ["queued", "processing", "completed"]


async def test_without_speaker_labels_there_are_no_speakers(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    done = await transcribe(api, sample.path.read_bytes())
    assert done["utterances"] is None
    assert {w["speaker"] for w in done["words"]} == {None}


async def test_language_detection_reports_the_script_language(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    queued = await submit(
        api, audio_url=await upload(api, sample.path.read_bytes()), language_detection=True
    )
    assert "language_code" not in queued  # not known yet; the schema allows no null
    done = await wait_done(api, queued["id"])
    openapi_schema.validate("Transcript", done)
    assert done["language_code"] == "en_us"
    assert 0.9 <= done["language_confidence"] <= 1


async def test_window_keeps_only_the_words_inside_it(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    data = sample.path.read_bytes()
    full = await transcribe(api, data)
    part = await transcribe(api, data, audio_start_from=3000, audio_end_at=9000)
    assert (part["audio_start_from"], part["audio_end_at"]) == (3000, 9000)
    assert part["words"]
    assert all(w["start"] >= 3000 and w["end"] <= 9000 for w in part["words"])
    inside = [w for w in full["words"] if w["start"] >= 3000 and w["end"] <= 9000]
    assert part["words"] == inside
    assert part["text"] == " ".join(w["text"] for w in inside)


async def test_audio_without_script_gets_a_deterministic_placeholder(
    api: httpx.AsyncClient,
    audio_library: Any,
) -> None:
    data = audio_library.dialogue("mp3").path.read_bytes()  # no script in this emulator
    first = await transcribe(api, data, speaker_labels=True, speakers_expected=3)
    second = await transcribe(api, data, speaker_labels=True, speakers_expected=3)
    assert first["text"] == second["text"] and first["words"] == second["words"]
    speakers = [u["speaker"] for u in first["utterances"]]
    assert len(speakers) >= 2 and speakers == ["ABC"[i % 3] for i in range(len(speakers))]
    # About 2.5 words a second of speech, and only where the turns are spoken.
    turns = [(u["start"], u["end"]) for u in first["utterances"]]
    spoken = (turns[-1][1] - turns[0][0]) / 1000
    assert 2.0 <= len(first["words"]) / spoken <= 3.0
    assert 0 <= first["words"][0]["start"] < 200
    assert first["text"] == " ".join(u["text"] for u in first["utterances"])


async def test_jobs_over_the_concurrency_limit_wait_throttled(
    tmp_path: Any,
    audio_library: Any,
) -> None:
    data = audio_library.dialogue("wav").path.read_bytes()
    with start_emulator(tmp_path, concurrency=2, processing_time=0.8) as server:
        async with client_for(server) as api:
            url = await upload(api, data)
            ids = [(await submit(api, audio_url=url))["id"] for _ in range(4)]
            await asyncio.sleep(0.25)
            states = [(await api.get(f"/v2/transcript/{i}")).json() for i in ids]
            throttled = (await api.get("/v2/transcript", params={"throttled_only": "true"})).json()
            finals = [await wait_done(api, i) for i in ids]
    for body in states:
        openapi_schema.validate("Transcript", body)
    assert [(b["status"], b["throttled"]) for b in states] == [
        ("processing", None),
        ("processing", None),
        ("queued", True),
        ("queued", True),
    ]
    openapi_schema.validate("TranscriptList", throttled)
    assert {t["id"] for t in throttled["transcripts"]} == set(ids[2:])
    assert [(b["status"], b["throttled"]) for b in finals] == [("completed", None)] * 4


async def test_an_unusable_script_fails_the_job_with_a_clear_error(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav")
    (emulator.scripts_dir / f"{sample.sha256}.json").write_text('{"utterances": "oops"}')
    url = (await api.post("/v2/upload", content=sample.path.read_bytes())).json()["upload_url"]
    created = await api.post(
        "/v2/transcript", json={"audio_url": url, "speech_models": ["universal-2"]}
    )
    done = await wait_done(api, created.json()["id"])
    assert done["status"] == "error"
    assert done["error"] == (
        f'Emulator script error: {sample.sha256}.json: expected an object with an "utterances" list'
    )


# --- reads of one transcript ---------------------------------------------------------


@pytest.mark.parametrize("transcript_id", ["5c8f7ab8-23a2-4d6e-a2c0-0c1f5e9b1f3d", "nope"])
@pytest.mark.parametrize(
    "suffix", ["", "/sentences", "/paragraphs", "/srt", "/vtt", "/word-search?words=a"]
)
async def test_unknown_ids_get_the_lookup_error(
    api: httpx.AsyncClient, transcript_id: str, suffix: str
) -> None:
    response = await api.get(f"/v2/transcript/{transcript_id}{suffix}")
    assert response.status_code == 400 and response.json() == NOT_FOUND_ID
    deleted = await api.delete(f"/v2/transcript/{transcript_id}")
    assert deleted.status_code == 400 and deleted.json() == NOT_FOUND_ID


async def test_exports_of_an_unfinished_transcript_are_refused(
    tmp_path: Any,
    audio_library: Any,
) -> None:
    data = audio_library.dialogue("wav").path.read_bytes()
    with start_emulator(tmp_path, processing_time=30) as server:
        async with client_for(server) as api:
            created = await submit(api, audio_url=await upload(api, data))
            answers = {
                what: await api.get(f"/v2/transcript/{created['id']}/{path}")
                for what, path in [
                    ("captions", "srt"),
                    ("captions", "vtt"),
                    ("sentences", "sentences"),
                    ("paragraphs", "paragraphs"),
                    ("word search", "word-search?words=a"),
                ]
            }
            deleting = await api.delete(f"/v2/transcript/{created['id']}")
    for what, response in answers.items():
        message = error_body(response, 400)
        assert re.fullmatch(
            r"This transcript has a status of '(queued|processing)'\. Transcripts must have "
            rf"a status of 'completed' before requesting {what}\.",
            message,
        )
    assert "must have a status of 'completed' or 'error'" in error_body(deleting, 400)


async def test_sentences_paragraphs_and_word_search(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    done = await transcribe(api, sample.path.read_bytes(), speaker_labels=True)
    base = f"/v2/transcript/{done['id']}"

    sentences = (await api.get(base + "/sentences")).json()
    openapi_schema.validate("SentencesResponse", sentences)
    assert [s["text"] for s in sentences["sentences"]] == [
        "Good morning.",
        "Shall we start with the quarterly numbers?",
        "Yes.",
        "Revenue is up twelve percent, and costs are flat.",
        "Great news.",
        "What about the new office?",
        "It opens in March, on time and under budget.",
    ]
    assert [s["speaker"] for s in sentences["sentences"]] == list("AABBAAB")
    assert sentences["audio_duration"] == done["audio_duration"]

    paragraphs = (await api.get(base + "/paragraphs")).json()
    openapi_schema.validate("ParagraphsResponse", paragraphs)
    assert [p["text"] for p in paragraphs["paragraphs"]] == [u["text"] for u in done["utterances"]]

    found = await api.get(base + "/word-search", params={"words": "numbers,new office,zebra"})
    openapi_schema.validate("WordSearchResponse", found.json())
    result = found.json()
    assert result["id"] == done["id"] and result["total_count"] == 2
    assert [m["text"] for m in result["matches"]] == ["numbers", "new office"]
    for match in result["matches"]:
        for index, (start, end) in zip(match["indexes"], match["timestamps"], strict=True):
            size = len(match["text"].split())
            words = done["words"][index : index + size]
            assert " ".join(w["text"] for w in words).lower().rstrip("?.,") == match["text"]
            assert (start, end) == (words[0]["start"], words[-1]["end"])
    missing = await api.get(base + "/word-search")
    assert error_body(missing, 400).startswith("words must be")


def parse_captions(text: str, separator: str) -> list[tuple[str, str, str]]:
    pattern = r"(\S+) --> (\S+)\n(.+)\n"
    found = re.findall(pattern, text)
    assert all(separator in start for start, _, _ in found)
    return found


@pytest.mark.parametrize("chars", [None, 20])
async def test_srt_and_vtt_captions(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
    chars: int | None,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    done = await transcribe(api, sample.path.read_bytes(), speaker_labels=True)
    params = {"chars_per_caption": chars} if chars else {}
    srt = await api.get(f"/v2/transcript/{done['id']}/srt", params=params)
    vtt = await api.get(f"/v2/transcript/{done['id']}/vtt", params=params)
    assert srt.headers["content-type"].startswith("text/plain")
    assert vtt.text.startswith("WEBVTT\n\n")
    srt_cues = parse_captions(srt.text, ",")
    vtt_cues = parse_captions(vtt.text, ".")
    assert [c[2] for c in srt_cues] == [c[2] for c in vtt_cues]
    assert re.match(r"1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n", srt.text)
    assert " ".join(c[2] for c in srt_cues) == done["text"]
    limit = chars or 70
    assert all(len(c[2]) <= limit or " " not in c[2] for c in srt_cues)
    starts = [c[0] for c in vtt_cues]
    assert starts == sorted(starts)
    bad = await api.get(f"/v2/transcript/{done['id']}/srt", params={"chars_per_caption": "x"})
    assert error_body(bad, 400) == "chars_per_caption must be an Integer"


# --- deletion ------------------------------------------------------------------------


async def test_delete_scrubs_as_the_spec_example_shows(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    url = await upload(api, sample.path.read_bytes())
    done = await transcribe(api, sample.path.read_bytes(), speaker_labels=True)
    on_upload = await wait_done(api, (await submit(api, audio_url=url))["id"])

    response = await api.delete(f"/v2/transcript/{on_upload['id']}")
    assert response.status_code == 200
    deleted = response.json()
    example = openapi_schema.load()["components"]["examples"]["DeleteTranscriptResponse"]
    expected = example["value"] | {
        "id": on_upload["id"],
        "audio_duration": done["audio_duration"],
        "webhook_url": None,  # this transcript had none
        "disfluencies": False,  # kept from the request
    }
    assert deleted == expected
    # The published example breaks the Transcript schema in a few places; so does the
    # scrub, in exactly the same ones and no other.
    assert openapi_schema.errors("Transcript", deleted) == openapi_schema.errors(
        "Transcript", example["value"] | {"id": on_upload["id"]}
    )

    again = (await api.get(f"/v2/transcript/{on_upload['id']}")).json()
    assert again == deleted
    assert (await api.delete(f"/v2/transcript/{on_upload['id']}")).json() == deleted
    listed = (await api.get("/v2/transcript")).json()["transcripts"]
    assert {t["id"]: t["audio_url"] for t in listed}[on_upload["id"]] == "http://deleted_by_user"
    # The uploaded file went with the transcript.
    reuse = await wait_done(api, (await submit(api, audio_url=url))["id"])
    assert reuse["status"] == "error" and reuse["error"].startswith("Download error")
    gone = await api.get(f"/v2/transcript/{on_upload['id']}/sentences")
    assert error_body(gone, 400) == "This transcript has been deleted."


# --- listing -------------------------------------------------------------------------


async def test_list_pages_back_and_forth(api: httpx.AsyncClient) -> None:
    ids = [
        (await submit(api, audio_url=f"https://cdn.assemblyai.com/upload/missing-{i}"))["id"]
        for i in range(5)
    ]
    for transcript_id in ids:
        await wait_done(api, transcript_id)
    newest_first = ids[::-1]

    first = (await api.get("/v2/transcript", params={"limit": 2})).json()
    openapi_schema.validate("TranscriptList", first)
    details = first["page_details"]
    assert [t["id"] for t in first["transcripts"]] == newest_first[:2]
    assert details["limit"] == 2 and details["result_count"] == 2
    assert details["current_url"].endswith("/v2/transcript?limit=2")
    assert details["next_url"] is None

    pages = [first]
    while pages[-1]["page_details"]["prev_url"]:
        path = pages[-1]["page_details"]["prev_url"].split("/v2/", 1)[1]
        page = (await api.get("/v2/" + path)).json()
        openapi_schema.validate("TranscriptList", page)
        pages.append(page)
    assert [[t["id"] for t in p["transcripts"]] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    back = pages[-1]["page_details"]["next_url"].split("/v2/", 1)[1]
    assert [t["id"] for t in (await api.get("/v2/" + back)).json()["transcripts"]] == (
        newest_first[2:4]
    )
    item = first["transcripts"][0]
    assert item["resource_url"].endswith(f"/v2/transcript/{item['id']}")
    assert item["status"] == "error" and item["error"].startswith("Download error")


async def test_list_filters(api: httpx.AsyncClient) -> None:
    ids = [
        (await submit(api, audio_url=f"https://cdn.assemblyai.com/upload/missing-{i}"))["id"]
        for i in range(3)
    ]
    for transcript_id in ids:
        await wait_done(api, transcript_id)
    today = datetime.now(UTC).date()

    async def listed(**params: Any) -> list[str]:
        body = (await api.get("/v2/transcript", params=params)).json()
        openapi_schema.validate("TranscriptList", body)
        return [t["id"] for t in body["transcripts"]]

    assert await listed(status="error") == ids[::-1]
    assert await listed(status="completed") == []
    assert await listed(created_on=today.isoformat()) == ids[::-1]
    assert await listed(created_on=(today - timedelta(days=1)).isoformat()) == []
    assert await listed(before_id=ids[2], after_id=ids[0]) == [ids[1]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 200"),
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"limit": "ten"}, "limit must be an Integer"),
        ({"status": "done"}, "status must be one of: queued, processing, completed, error"),
        ({"created_on": "yesterday"}, "created_on must be a date (YYYY-MM-DD)"),
        ({"throttled_only": "maybe"}, "throttled_only must be a Boolean"),
        ({"before_id": "5c8f7ab8-23a2-4d6e-a2c0-0c1f5e9b1f3d"}, NOT_FOUND_ID["error"]),
    ],
)
async def test_list_refuses_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, Any], message: str
) -> None:
    assert error_body(await api.get("/v2/transcript", params=params), 400) == message
