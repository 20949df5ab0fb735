"""`threadscribe` as a child process, the way the system tests start it.

    bot = BotProcess(environment(PORT=str(free_port()), ...), tmp_path)
    await bot.start()                   # `threadscribe run`, until /healthz answers
    await bot.kill()                    # SIGKILL: no shutdown code runs
    code, took = await bot.terminate()  # SIGTERM
    done = await threadscribe("doctor", cwd=folder, env=bare_environment())

Every environment is built from scratch (`environment()`), so no Slack, Discord or
AssemblyAI variable of the shell running the tests reaches the bot. For the first-hour
tests, a folder set up as a person sets it up: `env_file` edits a copy of .env.example,
and `running(folder, port)` is `threadscribe run` started from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import aiohttp

from tests.fakes.recorder import FACTORY, URL_ENV
from tests.helpers import REPO

if TYPE_CHECKING:
    from tests.helpers.emulator_server import EmulatorServer

T = TypeVar("T")

COMMAND = (sys.executable, "-m", "bot.cli")
TEMPLATE = REPO / ".env.example"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now. The OS picks it, so test
    processes running side by side do not pick the same one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**values: str) -> dict[str, str]:
    """What a shell gives a fresh process (PATH, HOME), the repository on PYTHONPATH (for
    the test plugins the bot may load), and `values`."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO),
        **values,
    }


async def until(condition: Callable[[], T], seconds: float = 30.0) -> T:
    """`condition()`'s first truthy value, looked at every 20 ms: it reads what another
    process did (its database, the fakes it talks to), so there is nothing to wait on."""
    async with asyncio.timeout(seconds):
        while not (value := condition()):  # noqa: ASYNC110 - nothing to wait on but time
            await asyncio.sleep(0.02)
        return value


# -- one command, to its end --------------------------------------------------------------


class Finished(NamedTuple):
    code: int
    out: str
    err: str


async def threadscribe(
    *args: str | Path, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Finished:
    """`threadscribe ARGS` run to its end, its output captured; by default in the
    environment of a fresh shell (`bare_environment()`)."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *map(str, args),
        cwd=cwd, env=dict(bare_environment() if env is None else env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


def threadscribe_sync(
    *args: str | Path, cwd: Path, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The same for a synchronous test."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- `threadscribe run` -------------------------------------------------------------------


class BotProcess:
    """`threadscribe run` as a child process; each start logs to `<name>-<run>.log` in
    `workdir`, which is also its working directory (where it finds a .env)."""

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        name: str = "bot",
        *,
        port: int | None = None,
    ) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.name = name
        self.port = port if port is not None else int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0
        self.pids: list[int] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 30.0) -> None:
        """Start and wait until /healthz answers."""
        self.runs += 1
        with (self.workdir / f"{self.name}-{self.runs}.log").open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                *COMMAND, "run", cwd=self.workdir, env=self.env, stdout=out, stderr=out
            )
        self.pids.append(self.process.pid)
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited at start-up:\n{self.log()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the shutdown took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
        return code, time.monotonic() - started

    async def close(self) -> None:
        if self.running:
            await self.kill()

    def log(self, run: int | None = None, tail: int | None = 6000) -> str:
        """The log of run number `run` (the last by default): its last `tail` characters,
        or all of it."""
        path = self.workdir / f"{self.name}-{run or self.runs}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def logs(self, tail: int | None = 6000) -> str:
        """The logs of every run, each cut to its last `tail` characters (or not)."""
        return "\n".join(
            f"--- {self.name} run {run} ---\n{self.log(run, tail)}"
            for run in range(1, self.runs + 1)
        )


def bot_env(
    *,
    assemblyai_url: str,
    api_key: str,
    recorder_url: str,
    database_url: str,
    port: int,
    **extra: str,
) -> dict[str, str]:
    """The environment of a `threadscribe run` on the recorder: built from scratch, so no
    Slack or Discord variable of the caller's leaks in."""
    return environment(
        **{
            "ASSEMBLYAI_API_KEY": api_key,
            "ASSEMBLYAI_BASE_URL": assemblyai_url,
            "ASSEMBLYAI_LLM_GATEWAY_URL": assemblyai_url,
            "ALLOW_PRIVATE_URLS": "true",  # media on loopback
            "DATABASE_URL": database_url,
            "PORT": str(port),
            "THREADSCRIBE_ADAPTERS": FACTORY,
            URL_ENV: recorder_url,
            "LOG_LEVEL": "INFO",
        },
        **extra,
    )


# -- a person's folder --------------------------------------------------------------------


def env_file(folder: Path, **values: str) -> Path:
    """`cp .env.example .env`, then edit each named line as a person would: fill in an
    empty `NAME=` line, or uncomment `# NAME=default` and change its value. A name the
    template does not show fails the test: the template must list what people set."""
    lines = TEMPLATE.read_text().splitlines()
    for name, value in values.items():
        matches = [
            i
            for i, line in enumerate(lines)
            if line.startswith(f"{name}=") or line.startswith(f"# {name}=")
        ]
        assert len(matches) == 1, f"{name} appears {len(matches)} times in .env.example"
        lines[matches[0]] = f"{name}={value}"
    path = folder / ".env"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def bare_environment() -> dict[str, str]:
    """What a shell gives a fresh process, plus the empty OAuth variables of a container
    platform's env file (empty means unset: Slack must stay in single-workspace mode)."""
    return environment(SLACK_CLIENT_ID="", SLACK_CLIENT_SECRET="")


@contextlib.asynccontextmanager
async def running(folder: Path, port: int) -> AsyncIterator[Callable[[], str]]:
    """`threadscribe run` from `folder` (its .env) until /healthz answers; yields a reader
    of its log. On the way out: SIGTERM, a clean exit and no traceback."""
    bot = BotProcess(bare_environment(), folder, "run", port=port)
    await bot.start()
    try:
        yield lambda: bot.log(tail=None)
    finally:
        if bot.running:
            code, _took = await bot.terminate()
        else:
            code = bot.process.returncode if bot.process else None
    assert code == 0, bot.log()
    assert "Traceback" not in bot.log(tail=None), bot.log()


def assemblyai_lines(emulator: EmulatorServer) -> dict[str, str]:
    """The .env lines that point the bot at the emulator: the API and, as the summary is
    on by default, the LLM Gateway (the emulator serves both)."""
    return {
        "ASSEMBLYAI_API_KEY": emulator.api_key,
        "ASSEMBLYAI_BASE_URL": emulator.base_url,
        "ASSEMBLYAI_LLM_GATEWAY_URL": emulator.base_url,
    }
