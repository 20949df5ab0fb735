"""The AssemblyAI emulator on a background thread, for sync and async tests alike.

    with start_emulator(tmp_path / "scripts", processing_time=0.1) as server:
        server.base_url, server.api_key, server.scripts_dir, server.config
        server.inject({"status": 429, "retry_after": 1}, {"drop": True})
        server.requests()      # [{"method", "path", "status"}, ...]

The server runs its own event loop on its own thread, listening on 127.0.0.1 with a free
port, so AssemblyAI's (synchronous) SDK and async tests in pytest's loop can both call
it. The `emulator` fixture gives one with timings tuned for fast tests, which a test or a
module changes with `@pytest.mark.emulator(**settings)`.

Also here: `audio_library` (session-wide generated recordings, made once per format),
`wait_done` (poll a transcript until it finishes) and `local_server` (serve an aiohttp
app in the test's own loop, e.g. audio files or a webhook receiver).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from emulator import EmulatorConfig, RunningEmulator, start
from tests.helpers import openapi_schema
from tests.helpers.audio import AudioSample, make_dialogue

API_KEY = "emulator-test-key"
FAST = {"processing_time": 0.05, "webhook_retry_interval": 0.05, "webhook_timeout": 2.0}
STARTUP_TIMEOUT = 10.0


@dataclass
class EmulatorServer:
    base_url: str
    api_key: str
    scripts_dir: Path
    config: EmulatorConfig
    running: RunningEmulator = field(repr=False)  # the served app, for white-box checks

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def inject(self, *faults: dict[str, Any]) -> None:
        """Queue faults; each applies to the next request whose path starts with its path."""
        self._call("POST", "/_emulator/faults", {"queue": list(faults)})

    def set_faults(self, **body: Any) -> dict[str, Any]:
        """POST the control body as given (rates, seed, retry_after, slow_seconds, queue)."""
        return self._call("POST", "/_emulator/faults", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "/_emulator/requests")


class _LoopThread:
    """An event loop running forever on a daemon thread, closed cleanly."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="emulator", daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = STARTUP_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        # As asyncio.run does: what is still running (a request the server gave up on at
        # shutdown) is cancelled and awaited, so no task dies pending with the loop.
        self.run(_cancel_the_rest())
        self.run(self.loop.shutdown_asyncgens())
        self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(STARTUP_TIMEOUT)
        self.loop.close()


async def _cancel_the_rest() -> None:
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


@contextmanager
def start_emulator(scripts_dir: Path, **overrides: Any) -> Iterator[EmulatorServer]:
    """Serve an emulator whose scripts live in `scripts_dir` (created if missing)."""
    scripts_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {"api_key": API_KEY, "scripts_dir": scripts_dir} | overrides
    config = EmulatorConfig(**settings)
    thread = _LoopThread()
    try:
        running: RunningEmulator = thread.run(start(config, "127.0.0.1", 0))
        try:
            yield EmulatorServer(
                base_url=running.base_url,
                api_key=config.api_key,
                scripts_dir=scripts_dir,
                config=config,
                running=running,
            )
        finally:
            thread.run(running.stop())
    finally:
        thread.close()


@pytest.fixture
def emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatorServer]:
    """An emulator with FAST's timings, or with other EmulatorConfig settings for a test or
    a module marked `@pytest.mark.emulator(processing_time=1.5, ...)` (the nearest marker
    wins, setting by setting)."""
    settings: dict[str, Any] = dict(FAST)
    for marker in reversed(list(request.node.iter_markers("emulator"))):
        settings |= marker.kwargs
    with start_emulator(tmp_path / "scripts", **settings) as server:
        yield server


class AudioLibrary:
    """Recordings made once per session; `dialogue` copies the script where it is needed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scripts_dir = root / "scripts"
        self._made: dict[str, AudioSample] = {}

    def dialogue(self, fmt: str = "wav", scripts_dir: Path | None = None) -> AudioSample:
        if fmt not in self._made:
            self._made[fmt] = make_dialogue(self.root / fmt, fmt, self.scripts_dir)
        sample = self._made[fmt]
        if scripts_dir is not None:
            scripts_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.scripts_dir / f"{sample.sha256}.json", scripts_dir)
        return sample


@pytest.fixture(scope="session")
def audio_library(tmp_path_factory: pytest.TempPathFactory) -> AudioLibrary:
    return AudioLibrary(tmp_path_factory.mktemp("audio"))


async def wait_done(
    client: httpx.AsyncClient, transcript_id: str, seconds: float = 15.0
) -> dict[str, Any]:
    """Poll GET /v2/transcript/{id} until completed or error; the final body, checked
    against the Transcript schema."""
    async with asyncio.timeout(seconds):
        while True:
            response = await client.get(f"/v2/transcript/{transcript_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("completed", "error"):
                openapi_schema.validate("Transcript", body)
                return body
            await asyncio.sleep(0.03)


@asynccontextmanager
async def local_server(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in the running loop; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
