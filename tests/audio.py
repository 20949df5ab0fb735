"""Real audio for tests, made on the spot with espeak-ng, sox and ffmpeg (never downloaded).

`make_dialogue` speaks a short two-speaker script with two different voices, joins the
turns with short pauses, encodes the result in the requested container, and writes the
emulator script (`<sha256>.json`) for exactly those bytes into `scripts_dir`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

DIALOGUE: tuple[tuple[str, str], ...] = (
    ("A", "Good morning. Shall we start with the quarterly numbers?"),
    ("B", "Yes. Revenue is up twelve percent, and costs are flat."),
    ("A", "Great news. What about the new office?"),
    ("B", "It opens in March, on time and under budget."),
)
VOICES = {"A": "en-us+m3", "B": "en-gb+f3"}

# ffmpeg arguments for each container the tests exercise.
ENCODERS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "ogg": ["-c:a", "libopus", "-b:a", "32k"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "webm": ["-c:a", "libopus", "-b:a", "32k"],
}


@dataclass(frozen=True)
class AudioSample:
    path: Path
    sha256: str
    script: dict[str, object]
    duration: float  # seconds, as ffprobe reports it


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages; .ci/run installs them)")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def speak_wav(work: Path, turns: tuple[tuple[str, str], ...] = DIALOGUE) -> Path:
    """Speak each turn with its speaker's voice; return one 16 kHz mono WAV of them all."""
    require_tools("espeak-ng", "sox")
    parts: list[Path] = []
    for i, (speaker, text) in enumerate(turns):
        raw = work / f"turn{i}.raw.wav"
        _run("espeak-ng", "-v", VOICES[speaker], "-s", "170", "-w", raw, text)
        part = work / f"turn{i}.wav"
        # Normalise rate/channels so sox can join them, and add a short pause after each turn.
        _run("sox", raw, "-r", "16000", "-c", "1", part, "pad", "0", "0.3")
        parts.append(part)
    joined = work / "dialogue.wav"
    _run("sox", *parts, joined)
    return joined


def make_dialogue(
    work: Path,
    fmt: str = "wav",
    scripts_dir: Path | None = None,
    turns: tuple[tuple[str, str], ...] = DIALOGUE,
    language_code: str = "en_us",
) -> AudioSample:
    """A two-voice recording of `turns` in container `fmt`, with its emulator script."""
    require_tools("espeak-ng", "sox", "ffmpeg", "ffprobe")
    work.mkdir(parents=True, exist_ok=True)
    wav = speak_wav(work, turns)
    out = work / f"dialogue.{fmt}"
    if fmt != "wav":
        _run("ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", wav, *ENCODERS[fmt], out)
    else:
        out = wav
    script: dict[str, object] = {
        "language_code": language_code,
        "utterances": [{"speaker": s, "text": t} for s, t in turns],
    }
    digest = sha256_file(out)
    if scripts_dir is not None:
        scripts_dir.mkdir(parents=True, exist_ok=True)
        (scripts_dir / f"{digest}.json").write_text(json.dumps(script))
    return AudioSample(path=out, sha256=digest, script=script, duration=probe_duration(out))


def make_tone(path: Path, seconds: float, fmt: str = "wav") -> Path:
    """A plain sine tone (no speech) of the given length."""
    require_tools("ffmpeg")
    _run(
        "ffmpeg",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}:sample_rate=16000",
        *ENCODERS[fmt],
        path,
    )
    return path
