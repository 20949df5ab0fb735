"""Relay of a 1 GiB private Slack file into AssemblyAI's upload, against a plain copy.

    .venv/bin/python -m bench.slack_relay [--size-mib 1024] [--rounds 5]

Two local servers run in a child process: the Slack fake, serving the file from a
generator (`GeneratedBytes`: 1 GiB costs it 1 MiB), and an upload sink speaking
AssemblyAI's `POST /v2/upload`, which hashes what it receives. In this process:

- relay: what the engine does with a Slack file, `SlackAdapter.open_file(...)` streamed
  into `AssemblyAIClient.upload(...)`, with the real adapter, store and client;
- plain copy: one aiohttp GET of the same URL with the same token, its body streamed
  straight into a POST to the same sink: the floor for moving those bytes here.

Printed: throughput of each (MiB/s) and the CPU time this process spent per GiB
(steadier than wall time on a busy machine); the median over rounds of relay / plain
copy (each round runs the two back to back, taking turns to go first; target >= 0.8);
and the relay's peak RSS growth in this process (target <= 64 MiB), sampled every 5 ms
from /proc/self/statm. The sink's digest proves every byte arrived, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


# -- the servers' process ------------------------------------------------------------------


async def serve(size: int) -> None:
    from tests.fakes.slack import BOT_TOKEN, FakeSlack
    from tests.fakes.slack_state import GeneratedBytes

    received: dict[str, Any] = {}

    async def upload(request: web.Request) -> web.Response:
        digest, count = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            count += len(chunk)
        received.update(bytes=count, sha256=digest.hexdigest())
        return web.json_response({"upload_url": f"https://cdn.example/upload/{uuid.uuid4()}"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(received)

    sink = web.Application(client_max_size=0)
    sink.router.add_post("/v2/upload", upload)
    sink.router.add_get("/stats", stats)
    runner = web.AppRunner(sink, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    data = GeneratedBytes(size, seed=11, chunk_size=256 * 1024)
    async with FakeSlack() as fake:
        file = fake.add_file("all-hands.wav", data)
        print(
            json.dumps(
                {
                    "api_url": fake.api_url,
                    "file": fake.file_dict(file),
                    "token": BOT_TOKEN,
                    "sink": f"http://127.0.0.1:{runner.addresses[0][1]}",
                    "sha256": data.sha256(),
                }
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await runner.cleanup()


# -- the bot's process -----------------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRss:
    """The highest RSS seen while the block runs, sampled on a thread every 5 ms."""

    def __init__(self) -> None:
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth(self) -> int:
        return self.peak - self.before


async def plain_copy(info: dict[str, Any], session: aiohttp.ClientSession) -> None:
    url = info["file"]["url_private_download"]
    headers = {"Authorization": f"Bearer {info['token']}"}
    async with session.get(url, headers=headers) as got:
        got.raise_for_status()
        async with session.post(
            f"{info['sink']}/v2/upload",
            data=got.content.iter_chunked(256 * 1024),
            headers={"Content-Length": str(got.content_length)},
        ) as put:
            put.raise_for_status()
            await put.read()


@contextlib.asynccontextmanager
async def relay_setup(
    info: dict[str, Any], work: Path
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    from adapters.slack.incoming import attachment
    from bot.assemblyai import AssemblyAIClient
    from bot.chat import FileSource, ThreadRef
    from bot.config import Secret, Settings
    from bot.engine import EngineConfig
    from bot.jobs import IntakeRecord, JobStore, Platform
    from bot.run import builtin_factories, compose

    settings = Settings(
        slack_bot_token=Secret(info["token"]),
        slack_signing_secret=Secret("bench"),
        slack_api_url=info["api_url"],
        database_url=Secret(f"sqlite+aiosqlite:///{work / 'relay.db'}"),
    )
    store = await JobStore.open(settings.database_url.value)
    client = AssemblyAIClient(Secret("bench"), base_url=info["sink"])
    engine, core, [adapter] = compose(
        settings, store, client, builtin_factories(settings), config=EngineConfig()
    )
    await adapter.start()
    record = IntakeRecord(
        platform=Platform.SLACK,
        workspace="T0TEAM0001",
        channel="C0GENERAL1",
        requester="U0ALICE001",
        source=FileSource(attachment(info["file"]).ref),
        message="1700000000.000100",
    )
    job, _ = await store.admission.intake(record)

    async def relay() -> None:
        assert isinstance(job.source, FileSource)
        stream = await adapter.open_file(ThreadRef.of(job), job.source)
        await client.upload(stream.chunks, size=stream.size)

    try:
        yield relay
    finally:
        await adapter.stop()
        await engine.stop()
        await adapter.close()
        await core.close()
        await client.close()
        await store.close()


async def measure(args: argparse.Namespace) -> None:
    size = args.size_mib * MIB
    servers = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.slack_relay", "--serve", "--size-mib", str(args.size_mib),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert servers.stdout is not None and servers.stdin is not None
    info = json.loads(await servers.stdout.readline())
    results: dict[str, list[float]] = {"plain copy": [], "relay": []}
    cpu: dict[str, list[float]] = {"plain copy": [], "relay": []}
    growth: list[int] = []
    try:
        with tempfile.TemporaryDirectory() as work:
            async with aiohttp.ClientSession() as session, relay_setup(info, Path(work)) as relay:
                for round_ in range(args.rounds):
                    order = ("plain copy", "relay") if round_ % 2 == 0 else ("relay", "plain copy")
                    for name in order:
                        started, cpu_started = time.perf_counter(), time.process_time()
                        if name == "relay":
                            with PeakRss() as peak:
                                await relay()
                            growth.append(peak.growth)
                        else:
                            await plain_copy(info, session)
                        seconds = time.perf_counter() - started
                        cpu[name].append((time.process_time() - cpu_started) * MIB * 1024 / size)
                        async with session.get(f"{info['sink']}/stats") as answer:
                            got = await answer.json()
                        assert got == {"bytes": size, "sha256": info["sha256"]}, got
                        results[name].append(size / MIB / seconds)
    finally:
        servers.stdin.close()
        await servers.wait()

    best = {name: max(rates) for name, rates in results.items()}
    # Each round runs the two back to back, so its ratio is paired against the machine's
    # load at the time; the median of those is steadier than a ratio of bests.
    paired = [r / c for r, c in zip(results["relay"], results["plain copy"], strict=True)]
    ratio = statistics.median(paired)
    worst_growth = max(growth) / MIB
    print(f"file: {args.size_mib} MiB, {args.rounds} rounds each, every byte verified (sha256)")
    for name, rates in results.items():
        shown = ", ".join(f"{r:,.0f}" for r in rates)
        print(
            f"{name:>10}: best {best[name]:,.0f} MiB/s  (rounds: {shown}); "
            f"CPU here {min(cpu[name]):.2f} s per GiB"
        )
    rounds = ", ".join(f"{r:.2f}" for r in paired)
    verdict = "MET" if ratio >= 0.8 else "MISSED"
    print(f"relay / plain copy: median {ratio:.2f} (rounds: {rounds}; target >= 0.80: {verdict})")
    print(
        f"relay peak RSS growth: {worst_growth:.1f} MiB  "
        f"(target <= 64 MiB: {'MET' if worst_growth <= 64 else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve(args.size_mib * MIB) if args.serve else measure(args))


if __name__ == "__main__":
    main()
