"""The emulator command, run as a real process (`python -m emulator`)."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from emulator import cli

LISTENING = re.compile(r"AssemblyAI emulator listening on (http://127\.0\.0\.1:(\d+))\n")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ASSEMBLYAI_API_KEY"}
    return env | {"PYTHONWARNINGS": "error"}


@contextmanager
def emulator_process(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env or environment(),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_until_a_signal_then_exits_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    with emulator_process("--api-key", "cli-key", "--scripts", str(tmp_path)) as proc:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = LISTENING.fullmatch(line)
        assert match, line
        base_url, port = match.group(1), int(match.group(2))
        assert port > 0
        ok = httpx.get(base_url + "/v2/transcript", headers={"authorization": "cli-key"})
        refused = httpx.get(base_url + "/v2/transcript", headers={"authorization": "other"})
        proc.send_signal(stop)
        assert proc.wait(10) == 0
        rest = proc.stderr.read()
    assert ok.status_code == 200 and refused.status_code == 401
    assert "Traceback" not in rest and "cli-key" not in rest


def test_the_key_can_come_from_the_environment() -> None:
    env = environment() | {"ASSEMBLYAI_API_KEY": "env-key"}
    with emulator_process(env=env) as proc:
        assert proc.stderr is not None
        match = LISTENING.fullmatch(proc.stderr.readline())
        assert match
        response = httpx.get(
            match.group(1) + "/v2/transcript", headers={"authorization": "env-key"}
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert response.status_code == 200


def run_to_end(*args: str) -> tuple[int, list[str]]:
    with emulator_process(*args) as proc:
        code = proc.wait(10)
        assert proc.stderr is not None
        return code, proc.stderr.read().splitlines()


def test_a_missing_key_is_one_line_and_exit_2() -> None:
    code, lines = run_to_end()
    assert code == 2
    assert lines == ["threadscribe emulator: no API key: pass --api-key or set ASSEMBLYAI_API_KEY"]


def test_a_bad_scripts_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "scripts.json"
    file.write_text("{}")
    code, lines = run_to_end("--api-key", "k", "--scripts", str(file))
    assert code == 2
    assert lines == [f"threadscribe emulator: --scripts {file} is not a directory"]


def test_a_missing_scripts_directory_is_created_and_said(tmp_path: Path) -> None:
    missing = tmp_path / "scripts-dir"
    with emulator_process("--api-key", "k", "--scripts", str(missing)) as proc:
        assert proc.stderr is not None
        said = proc.stderr.readline()
        assert LISTENING.fullmatch(proc.stderr.readline())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert said == f"created {missing}/: put <sha256 of the audio>.json scripts in it\n"
    assert missing.is_dir()


def test_a_busy_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "emulator", "--port", str(port), "--api-key", "k"],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=20,
        )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"threadscribe emulator: cannot listen on 127.0.0.1:{port}:")
    assert len(proc.stderr.splitlines()) == 1


def test_parser_options_reach_the_config(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(
        ["--scripts", str(tmp_path), "--processing-time", "0.5", "--processing-ratio", "0.1",
         "--concurrency", "2", "--webhook-retry-interval", "0.3", "--fault-429", "0.25",
         "--fault-drop", "0.1", "--slow-seconds", "4", "--seed", "9", "--retry-after", "7"]
    )  # fmt: skip
    config = cli.build_config(args, "key")
    assert (config.scripts_dir, config.processing_time, config.processing_ratio) == (
        tmp_path,
        0.5,
        0.1,
    )
    assert (config.concurrency, config.webhook_retry_interval) == (2, 0.3)
    faults = config.faults
    assert (faults.rate_429, faults.rate_drop, faults.slow_seconds, faults.seed) == (
        0.25,
        0.1,
        4.0,
        9,
    )
    assert faults.retry_after == 7
    assert "key" not in repr(config)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fault-500", "1.5"])
