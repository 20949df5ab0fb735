"""AssemblyAI's own Python SDK, and the plain-HTTP flow of AssemblyAI's docs, run against
the emulator unchanged apart from the base URL."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import assemblyai as aai
import pytest

from emulator.processing import NO_SPOKEN_AUDIO
from tests.helpers import openapi_schema
from tests.helpers.audio import make_silence, make_tone
from tests.helpers.emulator_server import FAST, AudioLibrary, EmulatorServer, start_emulator

SETTINGS = ("api_key", "base_url", "llm_gateway_base_url", "polling_interval")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    with start_emulator(tmp_path / "scripts", **FAST) as running:
        yield running


@pytest.fixture
def sdk(server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The SDK's global settings pointed at the emulator, restored afterwards."""
    saved = {name: getattr(aai.settings, name) for name in SETTINGS}
    aai.settings.api_key = server.api_key
    aai.settings.base_url = server.base_url
    aai.settings.llm_gateway_base_url = server.base_url
    aai.settings.polling_interval = 0.05
    try:
        yield server
    finally:
        # The SDK keeps one default client per settings; close ours before moving on.
        aai.Client.get_default().http_client.close()
        for name, value in saved.items():
            setattr(aai.settings, name, value)


CONFIG = {"speech_models": ["assemblyai-stt-3-7", "universal-2"]}


def test_sdk_transcribes_a_two_speaker_dialogue(
    sdk: EmulatorServer,
    audio_library: AudioLibrary,
) -> None:
    sample = audio_library.dialogue("wav", sdk.scripts_dir)
    config = aai.TranscriptionConfig(speaker_labels=True, **CONFIG)
    transcript = aai.Transcriber(config=config).transcribe(str(sample.path))

    assert transcript.status == aai.TranscriptStatus.completed, transcript.error
    expected = [(u["speaker"], u["text"]) for u in sample.script["utterances"]]
    assert [(u.speaker, u.text) for u in transcript.utterances] == expected
    assert transcript.text == " ".join(text for _, text in expected)
    assert transcript.audio_duration == int(sample.duration + 0.5)
    assert transcript.json_response["speech_model_used"] == "assemblyai-stt-3-7"

    srt = transcript.export_subtitles_srt()
    vtt = transcript.export_subtitles_vtt(chars_per_caption=32)
    assert srt.startswith("1\n00:00:00,") and "Good morning." in srt
    assert vtt.startswith("WEBVTT\n\n")
    sentences = transcript.get_sentences()
    assert sentences[0].text == "Good morning." and sentences[0].speaker == "A"
    paragraphs = transcript.get_paragraphs()
    assert [p.text for p in paragraphs] == [text for _, text in expected]
    matches = transcript.word_search(["budget", "quarterly numbers"])
    assert [(m.text, m.count) for m in matches] == [("budget", 1), ("quarterly numbers", 1)]

    listed = aai.Transcriber().list_transcripts()
    assert [t.id for t in listed.transcripts] == [transcript.id]

    deleted = aai.Transcript.delete_by_id(transcript.id)
    assert deleted.text == "Deleted by user." and deleted.audio_url == "http://deleted_by_user"
    assert aai.Transcript.get_by_id(transcript.id).text == "Deleted by user."


def test_sdk_reports_the_documented_processing_errors(sdk: EmulatorServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio at all\n")
    short = make_tone(tmp_path / "short.wav", 0.1)
    transcriber = aai.Transcriber(config=aai.TranscriptionConfig(**CONFIG))

    not_audio = transcriber.transcribe(str(notes))
    too_short = transcriber.transcribe(str(short))
    assert not_audio.status == aai.TranscriptStatus.error
    assert not_audio.error == (
        "Transcoding failed. File does not appear to contain audio. "
        "File type is text/plain (ASCII text)."
    )
    assert too_short.status == aai.TranscriptStatus.error
    assert too_short.error == "Audio duration is too short."


def test_sdk_sees_silence_as_an_empty_transcript(sdk: EmulatorServer, tmp_path: Path) -> None:
    silence = make_silence(tmp_path / "silence.wav", 3.0)
    given = aai.TranscriptionConfig(language_code="en", **CONFIG)
    transcript = aai.Transcriber(config=given).transcribe(str(silence))
    assert transcript.status == aai.TranscriptStatus.completed, transcript.error
    assert (transcript.text, transcript.words) == ("", [])
    assert transcript.export_subtitles_srt() == ""
    # Language detection cannot be done without speech: the live API's error.
    detected = aai.TranscriptionConfig(language_detection=True, **CONFIG)
    failed = aai.Transcriber(config=detected).transcribe(str(silence))
    assert failed.status == aai.TranscriptStatus.error
    assert failed.error == NO_SPOKEN_AUDIO


def test_sdk_surfaces_request_errors(sdk: EmulatorServer, tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "tone.wav", 1.0)
    with pytest.raises(aai.types.TranscriptError, match='"speech_models" must be a non-empty'):
        aai.Transcriber().transcribe(str(tone))


def test_sdk_llm_gateway(sdk: EmulatorServer) -> None:
    gateway = aai.LLMGateway()
    completion = gateway.chat.completions.create(
        model="claude-sonnet-4-5-20250929",
        messages=[{"role": "user", "content": "Speaker A: We ship on Friday.\nSpeaker B: Agreed."}],
        max_tokens=200,
    )
    assert completion.choices[0].message.content == (
        "- Speaker A: We ship on Friday.\n- Speaker B: Agreed."
    )
    assert completion.usage.total_tokens > 0
    with pytest.raises(aai.types.LLMGatewayError, match="not supported"):
        gateway.chat.completions.create(model="gpt-0", messages=[{"role": "user", "content": "x"}])


def test_the_plain_http_flow_of_the_docs(
    server: EmulatorServer,
    audio_library: AudioLibrary,
) -> None:
    """Upload, submit, poll: AssemblyAI's plain-HTTP example, written with urllib."""
    sample = audio_library.dialogue("mp3", server.scripts_dir)
    headers = {"authorization": server.api_key}

    def call(method: str, path: str, data: bytes | None = None, **extra: str) -> Any:
        request = urllib.request.Request(
            server.base_url + path, data=data, method=method, headers=headers | extra
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    upload_url = call("POST", "/v2/upload", sample.path.read_bytes())["upload_url"]
    data = {"audio_url": upload_url, "speech_models": ["assemblyai-stt-3-7", "universal-2"]}
    transcript_id = call(
        "POST", "/v2/transcript", json.dumps(data).encode(), **{"content-type": "application/json"}
    )["id"]
    while True:
        result = call("GET", f"/v2/transcript/{transcript_id}")
        if result["status"] == "completed":
            break
        assert result["status"] != "error", result["error"]
        time.sleep(0.05)
    assert result["text"] == " ".join(u["text"] for u in sample.script["utterances"])
    openapi_schema.validate("Transcript", result)
