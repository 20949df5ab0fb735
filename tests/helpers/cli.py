"""`threadscribe transcribe` and the other one-shot commands, as the tests of the terminal
command run them: a fresh environment pointed at the emulator, a quick poll interval.

    result = run_cli("transcribe", sample.path, server=emulator, cwd=tmp_path)
    assert_one_line_error(result, "too short")
    assert spent(emulator) == []        # nothing uploaded or submitted
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers.processes import COMMAND, environment, threadscribe_sync

if TYPE_CHECKING:
    from tests.helpers.emulator_server import EmulatorServer

__all__ = [
    "COMMAND",
    "FAST_POLL",
    "assert_one_line_error",
    "cli_args",
    "cli_env",
    "run_cli",
    "spent",
]

# AssemblyAI's SDK asks every 3 s; the tests ask a fast emulator every 50 ms instead.
FAST_POLL = ("--poll-interval", "0.05")


def cli_env(server: EmulatorServer | None = None, **more: str) -> dict[str, str]:
    """A clean environment: what the command needs (PATH for ffprobe), the emulator's
    address and key when given, and `more`; nothing else leaks in from the test run."""
    variables = {"PYTHONIOENCODING": "utf-8"}
    if server is not None:
        variables |= {
            "ASSEMBLYAI_API_KEY": server.api_key,
            "ASSEMBLYAI_BASE_URL": server.base_url,
            "ASSEMBLYAI_LLM_GATEWAY_URL": server.base_url,
            # The media servers are on loopback (a test of the URL policy unsets this).
            "ALLOW_PRIVATE_URLS": "true",
        }
    return environment(**(variables | more))


def cli_args(*args: str | Path) -> list[str]:
    argv = [str(a) for a in args]
    return [*argv, *FAST_POLL] if argv[:1] == ["transcribe"] else argv


def run_cli(
    *args: str | Path,
    server: EmulatorServer | None = None,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`threadscribe ARGS` to its end; with `server`, pointed at the emulator."""
    return threadscribe_sync(
        *cli_args(*args), cwd=cwd, env=cli_env(server, **(env or {})), timeout=timeout
    )


def spent(server: EmulatorServer) -> list[dict[str, object]]:
    """Requests that cost something: an upload or a transcript submitted."""
    return [
        r
        for r in server.requests()
        if r["method"] == "POST" and r["path"] in ("/v2/upload", "/v2/transcript")
    ]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("threadscribe: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
