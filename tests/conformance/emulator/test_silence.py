"""Audio without speech, as the emulator hears it: ffmpeg finds where speech is, and audio
with none (silence, a tone, noise) gives no words, as AssemblyAI's does. All audio is made
by the tests (tests/helpers/audio.py); ffmpeg is the real one."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.processing import NO_SPOKEN_AUDIO
from emulator.speech import (
    GATE_DB,
    MIN_ACTIVE_FRAMES,
    MIN_CROSSING_SPREAD,
    MIN_FLATNESS_SPREAD,
    MIN_HARMONIC_SHARE,
    MIN_LEVEL_DEVIATION,
    BlockStats,
    Parser,
    find_speech,
)
from tests.helpers import openapi_schema
from tests.helpers.audio import (
    SpokenSequence,
    make_noise,
    make_silence,
    make_spoken_sequence,
    make_tone,
    probe_duration,
    require_tools,
    speak_wav,
)
from tests.helpers.emulator_server import FAST, EmulatorServer, start_emulator, wait_done

MODELS = ["assemblyai-stt-3-7", "universal-2"]
TOLERANCE = 0.1  # seconds: three 32 ms frames


def _sox(*args: str | Path) -> None:
    require_tools("sox")
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


def _sox_sine(directory: Path) -> Path:
    path = directory / "sine.wav"
    _sox("-n", "-r", "16000", "-c", "1", path, "synth", "4", "sine", "1000", "vol", "0.5")
    return path


def _sox_beeps(directory: Path) -> Path:
    path = directory / "beeps.wav"
    _sox("-n", "-r", "16000", "-c", "1", path, "synth", "0.3", "sine", "1000", "vol", "0.5",
         "pad", "0", "0.3", "repeat", "9")  # fmt: skip
    return path


def _sox_synth(name: str, *effects: str) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / f"{name}.wav"
        _sox("-n", "-r", "16000", "-c", "1", path, "synth", "4", *effects)
        return path

    return make


# Audio without speech, each made by its own tool and recipe. Beeps and the pulsed buzz
# and rumble each fail one test of the detector only (see emulator/speech.py).
NO_SPEECH: dict[str, Callable[[Path], Path]] = {
    "silence": lambda d: make_silence(d / "silence.wav", 4.0),
    "silence-mp3": lambda d: make_silence(d / "silence.mp3", 4.0, fmt="mp3"),
    "sine-440-ffmpeg": lambda d: make_tone(d / "tone.wav", 4.0),
    "sine-1k-sox": _sox_sine,
    "beeps-sox": _sox_beeps,
    "white-noise": lambda d: make_noise(d / "white.wav", 4.0, -10),
    "pink-noise": lambda d: make_noise(d / "pink.wav", 4.0, -15, color="pink"),
    "hiss-below-speech": lambda d: make_noise(d / "hiss.wav", 4.0, GATE_DB - 8),
    "square-buzz": _sox_synth("square", "square", "200", "vol", "0.3"),
    "brown-rumble": _sox_synth("brown", "brownnoise", "vol", "0.3"),
    "square-pulsed": _sox_synth("squarep", "square", "200", "vol", "0.3", "tremolo", "4", "100"),
    "brown-pulsed": _sox_synth("brownp", "brownnoise", "vol", "0.3", "tremolo", "4", "100"),
}


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> SpokenSequence:
    """Silence, a sentence, a long pause, another sentence, silence."""
    return make_spoken_sequence(
        tmp_path_factory.mktemp("sequence"),
        (1.5, "Shall we start with the numbers", 2.5, "Revenue is up twelve percent", 1.5),
    )


# --- the detector --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NO_SPEECH))
async def test_audio_without_speech_has_no_speech(tmp_path: Path, kind: str) -> None:
    path = NO_SPEECH[kind](tmp_path)
    assert await find_speech(path, "ffmpeg") == ()


async def test_speech_is_found_where_it_is(sequence: SpokenSequence) -> None:
    spans = await find_speech(sequence.path, "ffmpeg")
    assert spans is not None and len(spans) == len(sequence.speech)
    for span, (start, end) in zip(spans, sequence.speech, strict=True):
        assert span.start / 1000 == pytest.approx(start, abs=TOLERANCE)
        assert span.end / 1000 == pytest.approx(end, abs=TOLERANCE)


@pytest.mark.parametrize("kind", ["clean", "quiet", "noisy"])
async def test_speech_is_found_in_plain_recordings(tmp_path: Path, kind: str) -> None:
    clean = speak_wav(tmp_path, (("B", "It opens in March, on time and under budget"),))
    path = tmp_path / f"{kind}.wav"
    if kind == "quiet":
        _sox(clean, path, "vol", "-20dB")
    elif kind == "noisy":  # pink noise about 10 dB under the voice
        noise = tmp_path / "noise.wav"
        _sox(clean, noise, "synth", "pinknoise", "vol", "0.1")
        _sox("-m", clean, noise, path)
    else:
        path = clean
    spans = await find_speech(path, "ffmpeg")
    assert spans, "no speech found"
    heard = sum(span.length for span in spans) / 1000
    assert heard >= 0.8 * (probe_duration(clean) - 0.3)  # speak_wav adds a 0.3 s pause


async def test_speech_is_found_among_tone_and_noise(tmp_path: Path) -> None:
    speech = speak_wav(tmp_path, (("A", "Good morning, the report is ready"),))
    tone = make_tone(tmp_path / "tone.wav", 3.0)
    noise = make_noise(tmp_path / "noise.wav", 3.0, -20)
    pause = make_silence(tmp_path / "pause.wav", 1.0)
    mixed = tmp_path / "mixed.wav"
    _sox(tone, pause, speech, pause, noise, mixed)
    spans = await find_speech(mixed, "ffmpeg")
    assert spans is not None and len(spans) == 1
    # The tone fills 0-3 s and a pause follows; the noise starts a second after the speech.
    assert 4.0 - TOLERANCE <= spans[0].start / 1000 <= 4.5
    assert spans[0].end / 1000 <= 4.0 + 3.0 - 1.0  # well before the noise


async def test_without_ffmpeg_nobody_can_tell(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "tone.wav", 1.0)
    assert await find_speech(tone, None) is None
    text = tmp_path / "notes.txt"
    text.write_text("no audio in here\n")
    assert await find_speech(text, "ffmpeg") is None  # ffmpeg cannot read it


SPEECH_LIKE = BlockStats(
    active_frames=100,
    harmonic_share=MIN_HARMONIC_SHARE,
    level_deviation=MIN_LEVEL_DEVIATION,
    flatness_spread=MIN_FLATNESS_SPREAD,
    crossing_spread=MIN_CROSSING_SPREAD,
)


@pytest.mark.parametrize(
    ("measure", "minimum"),
    [
        ("active_frames", MIN_ACTIVE_FRAMES),
        ("harmonic_share", MIN_HARMONIC_SHARE),
        ("level_deviation", MIN_LEVEL_DEVIATION),
        ("flatness_spread", MIN_FLATNESS_SPREAD),
        ("crossing_spread", MIN_CROSSING_SPREAD),
    ],
)
def test_a_block_is_speech_only_when_it_passes_every_test(measure: str, minimum: float) -> None:
    assert SPEECH_LIKE.is_speech
    assert replace(SPEECH_LIKE, **{measure: minimum}).is_speech
    below = minimum - 1 if measure == "active_frames" else minimum * 0.99
    assert not replace(SPEECH_LIKE, **{measure: below}).is_speech


def test_parser_reads_ffmpeg_print_output() -> None:
    parser = Parser()
    for frame in range(32):  # one second of 32 ms frames
        parser.feed(f"frame:{frame}    pts:{frame * 512}    pts_time:{frame * 0.032:g}\n")
        if frame == 0:
            parser.feed("lavfi.astats.1.RMS_level=-inf\n")
            parser.feed("lavfi.aspectralstats.1.flatness=nan\n")
        else:
            parser.feed(f"lavfi.astats.1.RMS_level=-{20 + frame}.5\n")
        if frame == 18:  # silencedetect tells of a silence once it has lasted long enough
            parser.feed("lavfi.silence_start=0.2\n")
        if frame == 23:
            parser.feed("lavfi.silence_end=0.7\n")
    found = parser.analysis
    assert len(found.times) == 32 and found.times[1] == 0.032
    assert found.levels[0] == float("-inf") and found.levels[2] == -22.5
    assert found.flatness[0] != found.flatness[0]  # nan: not measured
    assert found.regions() == [(0.0, 0.2), (0.7, pytest.approx(1.024))]
    parser.feed("lavfi.silence_start=0.9\n")  # a silence to the end has no end mark
    assert found.regions() == [(0.0, 0.2), (0.7, 0.9)]


# --- the emulator ---------------------------------------------------------------------


async def transcribe(api: httpx.AsyncClient, path: Path, **params: Any) -> dict[str, Any]:
    data = await asyncio.to_thread(path.read_bytes)
    uploaded = (await api.post("/v2/upload", content=data)).json()["upload_url"]
    response = await api.post(
        "/v2/transcript", json={"audio_url": uploaded, "speech_models": MODELS} | params
    )
    assert response.status_code == 200, response.text
    return await wait_done(api, response.json()["id"])  # checked against the schema


@pytest.mark.parametrize("kind", ["silence", "sine-440-ffmpeg", "white-noise"])
async def test_no_speech_completes_with_empty_text(
    api: httpx.AsyncClient, tmp_path: Path, kind: str
) -> None:
    path = NO_SPEECH[kind](tmp_path)
    done = await transcribe(api, path, speaker_labels=True, language_code="en_us")
    assert done["status"] == "completed"
    assert (done["text"], done["words"], done["utterances"]) == ("", [], [])
    assert done["confidence"] is None and done["audio_duration"] == 4
    assert done["speech_model_used"] == "assemblyai-stt-3-7"
    base = f"/v2/transcript/{done['id']}"
    sentences = (await api.get(base + "/sentences")).json()
    openapi_schema.validate("SentencesResponse", sentences)
    assert sentences["sentences"] == []
    paragraphs = (await api.get(base + "/paragraphs")).json()
    openapi_schema.validate("ParagraphsResponse", paragraphs)
    assert paragraphs["paragraphs"] == []
    assert (await api.get(base + "/srt")).text == ""
    assert (await api.get(base + "/vtt")).text == "WEBVTT\n"
    without_labels = await transcribe(api, path)
    assert (without_labels["text"], without_labels["words"]) == ("", [])
    assert without_labels["utterances"] is None


@pytest.mark.parametrize("kind", ["silence", "sine-440-ffmpeg"])
async def test_language_detection_on_no_speech_is_an_error(
    api: httpx.AsyncClient, tmp_path: Path, kind: str
) -> None:
    done = await transcribe(api, NO_SPEECH[kind](tmp_path), language_detection=True)
    assert (done["status"], done["error"]) == ("error", NO_SPOKEN_AUDIO)
    assert done["text"] is None and done["words"] is None


async def test_placeholder_words_follow_the_speech(
    api: httpx.AsyncClient, sequence: SpokenSequence
) -> None:
    done = await transcribe(api, sequence.path, speaker_labels=True)
    words = done["words"]
    assert words and done["text"] == " ".join(w["text"] for w in words)

    def inside(word: dict[str, Any]) -> bool:
        return any(
            (start - TOLERANCE) * 1000 <= word["start"] < word["end"] <= (end + TOLERANCE) * 1000
            for start, end in sequence.speech
        )

    assert [w for w in words if not inside(w)] == []
    # Every spoken part gets words, about 2.5 a second. (They are drawn for all the speech
    # together, seeded by the audio's bytes, then laid over its parts: with sox's dither
    # unseeded the bytes, and so each part's share, changed from run to run.)
    for start, end in sequence.speech:
        count = sum(1 for w in words if start * 1000 - 100 <= w["start"] <= end * 1000)
        assert 1.5 <= count / (end - start) <= 3.5
    again = await transcribe(api, sequence.path, speaker_labels=True)
    assert again["words"] == words  # deterministic
    with_language = await transcribe(api, sequence.path, language_detection=True)
    assert with_language["status"] == "completed" and with_language["words"]


async def test_a_script_for_silent_audio_is_still_followed(
    api: httpx.AsyncClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    from tests.helpers.audio import sha256_file

    silence = make_silence(tmp_path / "silence.wav", 4.0)
    script = {"utterances": [{"speaker": "A", "text": "Nothing was said, but the script says so."}]}
    (emulator.scripts_dir / f"{sha256_file(silence)}.json").write_text(json.dumps(script))
    done = await transcribe(api, silence, language_detection=True)
    assert done["status"] == "completed"
    assert done["text"] == script["utterances"][0]["text"]


async def test_without_ffmpeg_the_placeholder_covers_everything(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "tone.wav", 4.0)
    with start_emulator(tmp_path / "scripts", ffmpeg=None, **FAST) as server:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"authorization": server.api_key}, timeout=10
        ) as client:
            done = await transcribe(client, tone)
    assert done["status"] == "completed"
    assert 8 <= len(done["words"]) <= 12  # 2.5 words a second over all 4 s
