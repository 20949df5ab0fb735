"""The terminal's poll schedule, for real: the command and AssemblyAI's SDK against one
emulator, counting their GETs (the schedule as a unit, with an injected clock:
tests/unit/test_cli_polling.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import assemblyai as aai

from bot.models import DEFAULT_SPEECH_MODELS
from tests.helpers.cli import COMMAND, cli_env
from tests.helpers.emulator_server import FAST, AudioLibrary, start_emulator


def test_the_command_makes_fewer_gets_than_the_sdk(tmp_path: Path, audio_library: AudioLibrary):
    interval, processing = 0.2, 0.5  # polls at about 0.2, 0.4, 0.6 s: done at the third
    with start_emulator(tmp_path / "scripts", **(FAST | {"processing_time": processing})) as s:
        sample = audio_library.dialogue("wav", s.scripts_dir)
        args = ["transcribe", str(sample.path), "--no-save", "--json", "t.json"]
        result = subprocess.run(
            [*COMMAND, *args, "--poll-interval", str(interval)],
            cwd=tmp_path,
            env=cli_env(s),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        ours = json.loads((tmp_path / "t.json").read_text())["id"]

        settings = aai.Settings(api_key=s.api_key, base_url=s.base_url, polling_interval=interval)
        client = aai.Client(settings=settings)
        config = aai.TranscriptionConfig(speech_models=list(DEFAULT_SPEECH_MODELS))
        try:
            transcript = aai.Transcriber(client=client, config=config).transcribe(str(sample.path))
        finally:
            client.http_client.close()
        assert transcript.status == aai.TranscriptStatus.completed

        def gets(transcript_id: str) -> int:
            path = f"/v2/transcript/{transcript_id}"
            return sum(1 for r in s.requests() if r["method"] == "GET" and r["path"] == path)

        assert gets(ours) == 3
        assert gets(str(transcript.id)) == 4
