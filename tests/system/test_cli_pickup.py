"""Ctrl-C after submitting says how to pick the transcript up, and `--id` picks it up:
waits if it is unfinished, then renders and saves it like any other."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import COMMAND, cli_args, cli_env, run_cli
from tests.helpers.emulator_server import FAST, AudioLibrary, EmulatorServer, start_emulator

# Long enough that the job is still processing when the pickup starts (a fresh Python
# process: well under a second), short enough that the pickup's wait is brief.
PROCESSING = 3.0


@pytest.fixture
def slow_emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    with start_emulator(tmp_path / "scripts", **(FAST | {"processing_time": PROCESSING})) as s:
        yield s


def _until(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _submitted(server: EmulatorServer) -> bool:
    return any(
        r["method"] == "POST" and r["path"] == "/v2/transcript" and r["status"] == 200
        for r in server.requests()
    )


def _polls(server: EmulatorServer) -> int:
    return sum(1 for r in server.requests() if r["method"] == "GET")


def _gets(server: EmulatorServer, transcript_id: str) -> int:
    path = f"/v2/transcript/{transcript_id}"
    return sum(1 for r in server.requests() if r["method"] == "GET" and r["path"] == path)


@pytest.mark.parametrize("when", ["submitted", "waiting"])
def test_ctrl_c_after_submitting_then_pick_up_with_id(
    when: str, slow_emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    sample = audio_library.dialogue("wav", slow_emulator.scripts_dir)
    # A terminal delivers Ctrl-C to a process whose SIGINT is at its default. A test run
    # in the background (a non-interactive shell's `&`) may pass SIGINT on ignored, so the
    # child restores the default before running the command exactly as `python -m bot.cli`.
    child = [
        COMMAND[0],
        "-c",
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from bot.cli import main; sys.exit(main())",
    ]
    process = subprocess.Popen(
        [*child, *cli_args("transcribe", sample.path, "--no-save")],
        cwd=tmp_path,
        env=cli_env(slow_emulator),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Right after AssemblyAI took the job (its answer perhaps still on the way), or
        # once the command is waiting (it has polled).
        _until(lambda: _submitted(slow_emulator) and (when == "submitted" or _polls(slow_emulator)))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert out == "" and "Traceback" not in err
    found = re.search(r"pick it up with: threadscribe transcribe --id (\S+)", err)
    assert found, err
    transcript_id = found.group(1)
    listed = slow_emulator._call("GET", "/v2/transcript")["transcripts"]
    assert [t["id"] for t in listed] == [transcript_id]
    assert listed[0]["status"] in ("queued", "processing")  # it was left running

    slow_emulator.clear_requests()
    result = run_cli("transcribe", "--id", transcript_id, server=slow_emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for utterance in sample.script["utterances"]:
        assert utterance["text"] in result.stdout
    saved = tmp_path / f"{transcript_id}.txt"
    assert saved.read_text(encoding="utf-8") == result.stdout
    assert f"Saved {saved.name}" in result.stderr
    assert _gets(slow_emulator, transcript_id) > 1  # found unfinished, and waited
    assert not [r for r in slow_emulator.requests() if r["method"] == "POST"]  # nothing new


def test_id_of_a_finished_transcript_renders_and_saves_like_any_other(
    emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path
) -> None:
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    first = run_cli(
        "transcribe", sample.path, "--json", tmp_path / "t.json", server=emulator, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    transcript_id = json.loads((tmp_path / "t.json").read_text())["id"]

    emulator.clear_requests()
    result = run_cli(
        "transcribe",
        "--id",
        transcript_id,
        "--txt",
        tmp_path / "again.txt",
        "--srt",
        tmp_path / "again.srt",
        server=emulator,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == first.stdout
    assert (tmp_path / "again.txt").read_text(encoding="utf-8") == result.stdout
    assert (tmp_path / "again.srt").read_text().startswith("1\n")
    assert _gets(emulator, transcript_id) == 1  # finished: one look was enough
    assert not [r for r in emulator.requests() if r["method"] == "POST"]


def test_unknown_id(emulator: EmulatorServer, tmp_path: Path) -> None:
    result = run_cli("transcribe", "--id", "no-such-transcript", server=emulator, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("threadscribe: error: AssemblyAI has no transcript no-such-transcript")
    assert "ASSEMBLYAI_BASE_URL" in line
    assert not list(tmp_path.glob("*.txt"))
