"""`threadscribe transcribe --ai-summary`: the same structured summary the bot posts, as
plain lines, made with LLM_MODEL (the terminal used to ignore it)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.audio import make_dialogue
from tests.helpers.cli import run_cli
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.meeting import write_meeting


def test_the_summary_lists_points_decisions_and_action_items(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    sample = make_dialogue(tmp_path / "audio", "wav")
    write_meeting(emulator.scripts_dir, sample)
    result = run_cli("transcribe", sample.path, "--ai-summary", server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.split("Summary\n", 1)[1].split("\n\nSpeakers\n", 1)[0].split("\n")
    assert summary[0] == "• Speaker A [00:00]: Good morning."
    assert summary[summary.index("Decisions") + 1].startswith("• We decided to open")
    assert summary[summary.index("Action items") + 1].startswith("• Speaker B: I will send")


def test_llm_model_is_the_model_asked(emulator: EmulatorServer, tmp_path: Path) -> None:
    sample = make_dialogue(tmp_path / "audio", "wav")
    write_meeting(emulator.scripts_dir, sample)
    result = run_cli(
        "transcribe",
        sample.path,
        "--ai-summary",
        server=emulator,
        cwd=tmp_path,
        env={"LLM_MODEL": "gpt-4o-mini"},  # well formed, but not a model the gateway serves
    )
    assert result.returncode == 0, result.stderr
    assert "(Summary unavailable: Model 'gpt-4o-mini' is not supported)" in result.stdout
    assert "Good morning. Shall we start" in result.stdout  # the transcript all the same
