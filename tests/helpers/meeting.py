"""A meeting for the emulator to transcribe: the dialogue's audio (tests/audio.py), with a
script that says who speaks, what they decided and who will do what, how it reads in
Spanish, and a word or two the vocabulary should get right.

The emulator lays a script over whatever audio it is given (emulator/scripts.py), so the
same generated recording can stand for this meeting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.helpers.audio import AudioSample

TURNS: tuple[tuple[str, str, str], ...] = (
    (
        "A",
        "Good morning. Shall we start with the kubernetes migration?",
        "Buenos días. ¿Empezamos?",
    ),
    ("B", "Yes. The cluster in thessaloniki is ready and costs are flat.", "Sí. Está listo."),
    ("A", "Great news. We decided to open the new office in March.", "Decidimos abrir en marzo."),
    ("B", "I will send the figures to the board by Friday.", "Enviaré las cifras el viernes."),
)


def write_meeting(
    scripts_dir: Path,
    sample: AudioSample,
    names: Mapping[str, str] | None = None,
    *,
    language_confidence: float | None = None,
    turns: tuple[tuple[str, str, str], ...] = TURNS,
) -> dict[str, Any]:
    """Write the meeting's script for `sample`'s audio into `scripts_dir`; `names`: who
    each speaker is (speaker identification maps them to these, when offered)."""
    utterances = []
    for speaker, text, spanish in turns:
        item: dict[str, Any] = {
            "speaker": speaker,
            "text": text,
            "translated_texts": {"es": spanish},
        }
        if names and speaker in names:
            item["name"] = names[speaker]
        utterances.append(item)
    script: dict[str, Any] = {"language_code": "en", "utterances": utterances}
    if language_confidence is not None:
        script["language_confidence"] = language_confidence
    scripts_dir.mkdir(parents=True, exist_ok=True)
    (scripts_dir / f"{sample.sha256}.json").write_text(json.dumps(script))
    return script
