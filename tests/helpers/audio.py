"""Real audio for tests, made on the spot with espeak-ng, sox and ffmpeg (never downloaded).

`make_dialogue` speaks a short two-speaker script with two different voices, joins the
turns with short pauses, encodes the result in the requested container, and writes the
emulator script (`<sha256>.json`) for exactly those bytes into `scripts_dir`.
`make_tone`, `make_silence` and `make_noise` make audio without speech, and
`make_spoken_sequence` speech and silences in a known order, with where the speech is.
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
    args = [str(c) for c in cmd]
    if args[0] == "sox":
        # Repeatable mode: sox's dither (it reduces the resampled audio to 16 bits) is
        # seeded the same each time, so the same words make the same bytes in every run.
        args.insert(1, "-R")
    subprocess.run(args, check=True, capture_output=True)


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


def _lavfi(path: Path, source: str, fmt: str) -> Path:
    require_tools("ffmpeg")
    _run("ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", source,
         *ENCODERS[fmt], path)  # fmt: skip
    return path


def make_silence(path: Path, seconds: float, fmt: str = "wav") -> Path:
    """Digital silence of the given length."""
    return _lavfi(path, f"anullsrc=r=16000:cl=mono,atrim=duration={seconds}", fmt)


def make_noise(
    path: Path, seconds: float, peak_db: float, color: str = "white", fmt: str = "wav"
) -> Path:
    """Noise (`white`, `pink` or `brown`, ffmpeg's anoisesrc) peaking at `peak_db` dBFS."""
    amplitude = 10 ** (peak_db / 20)
    source = f"anoisesrc=d={seconds}:c={color}:r=16000:a={amplitude:.6f}:seed=7"
    return _lavfi(path, source, fmt)


@dataclass(frozen=True)
class SpokenSequence:
    path: Path
    speech: tuple[tuple[float, float], ...]  # (start, end) of each spoken part, seconds
    duration: float


def make_spoken_sequence(work: Path, parts: tuple[str | float, ...]) -> SpokenSequence:
    """A 16 kHz mono WAV of `parts` in order: a string is spoken (espeak-ng's own leading
    and trailing silence trimmed), a number is that many seconds of digital silence."""
    require_tools("espeak-ng", "sox")
    work.mkdir(parents=True, exist_ok=True)
    pieces: list[Path] = []
    speech: list[tuple[float, float]] = []
    clock = 0.0
    for i, part in enumerate(parts):
        piece = work / f"part{i}.wav"
        if isinstance(part, str):
            raw = work / f"part{i}.raw.wav"
            _run("espeak-ng", "-v", VOICES["A"], "-s", "170", "-w", raw, part)
            _run("sox", raw, "-r", "16000", "-c", "1", piece,
                 "silence", "1", "0.01", "-45d", "reverse", "silence", "1", "0.01", "-45d",
                 "reverse")  # fmt: skip
        else:
            _run("sox", "-n", "-r", "16000", "-c", "1", piece, "trim", "0", str(part))
        length = float(subprocess.run(
            ["soxi", "-D", str(piece)], check=True, capture_output=True, text=True
        ).stdout)  # fmt: skip
        if isinstance(part, str):
            speech.append((clock, clock + length))
        clock += length
        pieces.append(piece)
    out = work / "sequence.wav"
    _run("sox", *pieces, out)
    return SpokenSequence(out, tuple(speech), clock)


#: A dialogue full of personal data, and what of it only the script can tell (a name, a
#: street): the rest has a shape the emulator's redaction recognises.
PII_DIALOGUE: tuple[tuple[str, str], ...] = (
    ("A", "Hi, this is Ada Lovelace. Call me on 555-0100 tomorrow."),
    ("B", "Sure. My email is bob@example.com and I live on Baker Street."),
    ("A", "Thanks. The numbers look good this quarter."),
)
PII_ENTITIES: dict[str, str] = {"Ada Lovelace": "person_name", "Baker Street": "location"}


def make_pii_dialogue(work: Path, fmt: str = "mp3") -> AudioSample:
    """`PII_DIALOGUE` spoken, with a script that names its entities (no script written:
    call `write_script` into the emulator's scripts folder)."""
    sample = make_dialogue(work, fmt, None, turns=PII_DIALOGUE)
    script = dict(sample.script) | {"entities": PII_ENTITIES}
    return AudioSample(sample.path, sample.sha256, script, sample.duration)


def write_script(sample: AudioSample, scripts_dir: Path) -> None:
    scripts_dir.mkdir(parents=True, exist_ok=True)
    (scripts_dir / f"{sample.sha256}.json").write_text(json.dumps(sample.script))
