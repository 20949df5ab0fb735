"""Media: real durations per container, audio fetched from URLs, and the documented
processing errors (download error, not audio, too short)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from emulator.media import NotAudioError, probe, sniff, webm_duration
from tests.helpers import openapi_schema
from tests.helpers.audio import make_tone, probe_duration, require_tools
from tests.helpers.emulator_server import EmulatorServer, local_server, wait_done

FORMATS = ["wav", "mp3", "ogg", "m4a", "webm"]
MODELS = ["universal-2"]


def download_error(url: str) -> str:
    return (
        f"Download error, unable to download {url}. "
        "Please make sure the file exists and is accessible from the internet."
    )


def not_audio(file_type: str) -> str:
    return f"Transcoding failed. File does not appear to contain audio. File type is {file_type}."


def pseudo_random(size: int) -> bytes:
    """Deterministic noise: a SHA-256 chain (no container signature, not text)."""
    out, block = bytearray(), b"seed"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


async def transcribe_url(api: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await api.post(
        "/v2/transcript", json={"audio_url": url, "speech_models": MODELS} | params
    )
    assert response.status_code == 200, response.text
    done = await wait_done(api, response.json()["id"])
    openapi_schema.validate("Transcript", done)
    return done


async def transcribe_bytes(api: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    uploaded = await api.post("/v2/upload", content=data)
    return await transcribe_url(api, uploaded.json()["upload_url"])


# --- measuring -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tool", ["ffprobe", None], ids=["ffprobe", "mutagen"])
async def test_probe_measures_each_container(
    audio_library: Any,
    fmt: str,
    tool: str | None,
) -> None:
    sample = audio_library.dialogue(fmt)
    info = await probe(sample.path, tool)
    assert info.duration == pytest.approx(sample.duration, abs=0.1)


def test_webm_duration_reads_the_segment_info(audio_library: Any) -> None:
    sample = audio_library.dialogue("webm")
    duration = webm_duration(sample.path.read_bytes())
    assert duration == pytest.approx(sample.duration, abs=0.05)
    assert webm_duration(b"\x1a\x45\xdf\xa3\x80") is None  # a header and nothing more
    assert webm_duration(b"RIFF....WAVE") is None


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_container_is_transcribed_with_its_real_duration(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
    fmt: str,
) -> None:
    sample = audio_library.dialogue(fmt, emulator.scripts_dir)
    done = await transcribe_bytes(api, sample.path.read_bytes())
    assert done["status"] == "completed"
    assert done["audio_duration"] == int(probe_duration(sample.path) + 0.5)
    assert done["text"] == " ".join(u["text"] for u in sample.script["utterances"])
    assert done["words"][-1]["end"] <= sample.duration * 1000


@pytest.mark.parametrize(
    ("data", "file_type"),
    [
        (
            b"<!DOCTYPE html><html><body>Sign in</body></html>",
            "text/html (HTML document, ASCII text)",
        ),
        (b"just some notes\n", "text/plain (ASCII text)"),
        ("caf\u00e9 notes\n".encode(), "text/plain (Unicode text, UTF-8 text)"),
        (b'{"audio": false}', "application/json (JSON data)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf (PDF document, version 1.7)"),
        (b"\x89PNG\r\n\x1a\n" + pseudo_random(64), "image/png (PNG image data)"),
        (b"", "application/x-empty (empty)"),
    ],
)
def test_sniff_names_plain_files_like_the_api(data: bytes, file_type: str) -> None:
    named = sniff(data)
    assert named is not None and f"{named[0]} ({named[1]})" == file_type


def test_sniff_leaves_media_and_noise_to_the_probers() -> None:
    assert sniff(b"RIFF\x24\x00\x00\x00WAVEfmt ") is None
    assert sniff(b"ID3\x04\x00\x00" + pseudo_random(100)) is None
    assert sniff(pseudo_random(20000)) is None


@pytest.mark.parametrize("tool", ["ffprobe", None], ids=["ffprobe", "mutagen"])
async def test_probe_refuses_noise(tmp_path: Path, tool: str | None) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(pseudo_random(20000))
    with pytest.raises(NotAudioError) as caught:
        await probe(path, tool)
    assert caught.value.message == not_audio("application/octet-stream (data)")


@pytest.fixture
def silent_video(tmp_path: Path) -> Path:
    require_tools("ffmpeg", "ffprobe")
    video = tmp_path / "silent.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         "color=c=black:s=64x64:d=1", "-c:v", "mpeg4", str(video)],
        check=True,
    )  # fmt: skip
    return video


async def test_video_without_audio_is_not_audio(silent_video: Path) -> None:
    with pytest.raises(NotAudioError) as caught:
        await probe(silent_video, "ffprobe")
    assert caught.value.mime == "video/mp4"
    assert caught.value.description.startswith("QuickTime / MOV")


# --- fetching audio_url --------------------------------------------------------------


@pytest.fixture
async def files(audio_library: Any) -> AsyncIterator[str]:
    """A local web server: an audio file, an HTML page, text, PDF-ish and noise."""
    sample = audio_library.dialogue("wav")
    bodies = {
        "/talk.wav": (sample.path.read_bytes(), "audio/wav"),
        "/page": (b"<html><head><title>Login</title></head><body></body></html>", "text/html"),
        "/notes.txt": (b"meeting notes, no audio here\n", "text/plain"),
        "/report.pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        "/noise": (pseudo_random(40000), "audio/mpeg"),
    }

    async def serve(request: web.Request) -> web.Response:
        if request.path not in bodies:
            raise web.HTTPNotFound()
        body, content_type = bodies[request.path]
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    async with local_server(app) as base:
        yield base


async def test_audio_url_is_fetched_over_http(
    api: httpx.AsyncClient,
    emulator: EmulatorServer,
    audio_library: Any,
    files: str,
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    done = await transcribe_url(api, f"{files}/talk.wav", speaker_labels=True)
    assert done["status"] == "completed"
    assert done["audio_url"] == f"{files}/talk.wav"
    assert [u["text"] for u in done["utterances"]] == [
        u["text"] for u in sample.script["utterances"]
    ]


@pytest.mark.parametrize(
    ("path", "file_type"),
    [
        ("/page", "text/html (HTML document, ASCII text)"),
        ("/notes.txt", "text/plain (ASCII text)"),
        ("/report.pdf", "application/pdf (PDF document, version 1.4)"),
        ("/noise", "application/octet-stream (data)"),
    ],
)
async def test_urls_without_audio_end_in_the_documented_error(
    api: httpx.AsyncClient, files: str, path: str, file_type: str
) -> None:
    done = await transcribe_url(api, files + path)
    assert (done["status"], done["error"]) == ("error", not_audio(file_type))
    assert done["text"] is None and done["words"] is None


async def test_unreachable_urls_end_in_a_download_error(
    api: httpx.AsyncClient, files: str, unused_tcp_port: int
) -> None:
    for url in (
        f"{files}/missing.mp3",  # 404
        f"http://127.0.0.1:{unused_tcp_port}/a.mp3",  # connection refused
        "ftp://example.com/a.mp3",  # not http(s)
        "https://cdn.assemblyai.com/upload/00000000-0000-0000-0000-000000000000",
    ):
        done = await transcribe_url(api, url)
        assert (done["status"], done["error"]) == ("error", download_error(url))


@pytest.mark.parametrize("seconds", [0.1, 0.15])
async def test_audio_under_160_ms_is_too_short(
    api: httpx.AsyncClient, tmp_path: Path, seconds: float
) -> None:
    tone = make_tone(tmp_path / "tone.wav", seconds)
    done = await transcribe_bytes(api, tone.read_bytes())
    assert (done["status"], done["error"]) == ("error", "Audio duration is too short.")


async def test_a_short_window_is_too_short(
    api: httpx.AsyncClient,
    audio_library: Any,
) -> None:
    data = audio_library.dialogue("wav").path.read_bytes()
    uploaded = (await api.post("/v2/upload", content=data)).json()["upload_url"]
    done = await transcribe_url(api, uploaded, audio_start_from=1000, audio_end_at=1100)
    assert done["error"] == "Audio duration is too short."


async def test_a_tone_just_long_enough_is_transcribed(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.wav", 0.5)
    done = await transcribe_bytes(api, tone.read_bytes())
    assert done["status"] == "completed" and done["audio_duration"] == 1
    assert (done["text"], done["words"]) == ("", [])  # a tone is not speech
