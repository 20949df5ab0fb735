"""The README's shell blocks, run as a person pastes them: the quick start's terminal
commands and the offline section, in a fresh folder, against the emulator. A block that
needs Slack, Discord or the internet is skipped by name, below, with the reason; a block
that is neither run nor skipped fails the test, so a new block cannot rot unseen."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.audio import make_dialogue
from tests.helpers.processes import free_port

README = REPO / "README.md"

#: Lines of the README's blocks not run here, and why.
SKIPPED = {
    "bash scripts/start": "installs and starts the bot: needs Slack or Discord tokens",
    "bash scripts/test": "this is the test suite",
    "https://example.com/podcast.mp3": "a link on the internet, which the tests cannot reach",
    "--id 5551722-...": "an example id, not a transcript the emulator has",
}


def section(title: str) -> str:
    """The README's text from the heading `title` to the next heading of its level."""
    text = README.read_text()
    start = re.search(rf"^(#+) {re.escape(title)}\n", text, re.M)
    assert start, f"the README has no section {title!r}"
    level = start.group(1)
    rest = text[start.end() :]
    end = re.search(rf"^{level} ", rest, re.M)
    return rest[: end.start()] if end else rest


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def commands(block: str) -> list[str]:
    """A block's commands (continued lines joined), skipping those named in SKIPPED."""
    joined = block.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line.strip()]
    return [line for line in lines if not any(name in line for name in SKIPPED)]


def run_script(script: str, folder: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run `script` with bash in `folder` (its `.venv` is the project's), in a process
    group of its own that is killed afterwards, whatever the script left running."""
    script = script.replace("8900", str(port))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A person's folder after `scripts/start`: the project's .venv and a recording."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    sample = make_dialogue(tmp_path / "audio", "wav")
    (tmp_path / "meeting.wav").write_bytes(sample.path.read_bytes())
    return tmp_path


def test_every_block_of_the_two_sections_is_run_or_skipped_by_name() -> None:
    blocks = shell_blocks(section("Quick start"))  # the offline section is inside it
    assert len(blocks) == 4, "a block was added or removed: run it here, or skip it by name"
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    for name in SKIPPED:
        assert any(name in line for line in lines), f"{name!r} is no longer in the README"


def test_the_offline_section_works_when_pasted(folder: Path) -> None:
    """First the script for meeting.wav (the second block), then the emulator and the
    transcript (the first): the transcript is the script's."""
    first, second = shell_blocks(section("Working offline: the AssemblyAI emulator"))
    made = run_script(second, folder, free_port())
    assert made.returncode == 0, made.stderr
    [script] = (folder / "scripts-dir").glob("*.json")

    result = run_script(first, folder, free_port())
    assert result.returncode == 0, result.stderr
    assert "Speaker A [00:00]: Shall we start?" in result.stdout
    assert "Speaker B" in result.stdout and "Yes, the numbers are in." in result.stdout
    assert "Traceback" not in result.stderr
    assert (folder / "meeting.txt").exists()  # saved, as the quick start says
    assert (
        script.stem
        == subprocess.run(
            ["sha256sum", "meeting.wav"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )


def test_a_missing_scripts_folder_is_created_and_said(folder: Path) -> None:
    first, _second = shell_blocks(section("Working offline: the AssemblyAI emulator"))
    result = run_script(first, folder, free_port())
    assert result.returncode == 0, result.stderr
    assert "created scripts-dir/" in result.stderr
    assert (folder / "scripts-dir").is_dir()
    assert "Speaker A [00:00]:" in result.stdout  # placeholder words where there is speech


def test_the_quick_start_terminal_commands_run_against_the_emulator(folder: Path) -> None:
    """The terminal block, with the offline section's emulator standing in for AssemblyAI
    (the lines on the internet are skipped by name)."""
    blocks = shell_blocks(section("Quick start"))
    terminal = next(b for b in blocks if "threadscribe transcribe" in b)
    lines = commands(terminal)
    assert lines and all("meeting.m4a" in line for line in lines), lines
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "meeting.wav", "meeting.m4a"],
        cwd=folder,
        check=True,
    )
    port = free_port()
    script = "\n".join(
        [
            ".venv/bin/threadscribe emulator --port 8900 --api-key dev-key &",
            "until curl -s -o /dev/null http://127.0.0.1:8900/; do sleep 0.2; done",
            "export ASSEMBLYAI_API_KEY=dev-key ASSEMBLYAI_BASE_URL=http://127.0.0.1:8900",
            "export ASSEMBLYAI_LLM_GATEWAY_URL=http://127.0.0.1:8900",
            *lines,
            "kill %1",
        ]
    )
    result = run_script(script, folder, port)
    assert result.returncode == 0, result.stderr
    assert "Speaker A [00:00]:" in result.stdout
    assert (folder / "meeting.txt").exists()
