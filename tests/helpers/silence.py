"""A recording without speech, as the unit, component and system tests all use it: four
seconds of digital silence made by ffmpeg, and the header the bot puts above "no speech
detected" for it."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from tests.helpers.audio import make_silence

SECONDS: Final = 4.0
HEADER: Final = "Transcript · 0:04 · English · assemblyai-stt-3-7"
UNDETECTED: Final = "Transcript · 0:04"  # language detection found no language to name


def silent_mp3(folder: Path) -> Path:
    return make_silence(folder / "silence.mp3", SECONDS, fmt="mp3")
