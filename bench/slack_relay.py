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
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

API_KEY = "bench-relay-key"
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


# -- the servers' process ------------------------------------------------------------------


async def serve(size: int, rounds: int) -> None:
    from emulator import EmulatorConfig, start
    from tests.fakes.slack import ALICE, BOT_TOKEN, GENERAL, TEAM_ID, FakeSlack
    from tests.fakes.slack_state import GeneratedBytes

    with tempfile.TemporaryDirectory(prefix="threadscribe-bench-") as storage:
        # The real emulator: its upload route checks the key, spools the body to disk and
        # hashes it, as AssemblyAI stores what it is sent.
        config = EmulatorConfig(api_key=API_KEY, storage_dir=Path(storage))
        aai = await start(config, "127.0.0.1", 0)

        async def stats(request: web.Request) -> web.Response:
            """The upload just stored (its size and digest), then forget it (1 GiB a go)."""
            uploads = aai.emulator.store.uploads
            stored = [uploads.pop(key) for key in list(uploads)]
            for upload in stored:
                upload.path.unlink(missing_ok=True)
            return web.json_response([{"bytes": u.size, "sha256": u.sha256} for u in stored])

        control = web.Application()
        control.router.add_get("/stats", stats)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        data = GeneratedBytes(size, seed=11, chunk_size=256 * 1024)
        try:
            async with FakeSlack() as fake:
                file = fake.add_file("all-hands.wav", data)
                # one message sharing the file for each round's job (its thread is real)
                shares = [fake.events.file_share(GENERAL, ALICE, [file]) for _ in range(rounds)]
                print(
                    json.dumps(
                        {
                            "api_url": fake.api_url,
                            "file": fake.file_dict(file),
                            "team": TEAM_ID,
                            "channel": GENERAL,
                            "user": ALICE,
                            "messages": [share["event"]["ts"] for share in shares],
                            "token": BOT_TOKEN,
                            "sink": aai.base_url,
                            "stats": f"http://127.0.0.1:{runner.addresses[0][1]}/stats",
                            "sha256": data.sha256(),
                        }
                    ),
                    flush=True,
                )
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # EOF
        finally:
            await runner.cleanup()
            await aai.stop()


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
            headers={"Content-Length": str(got.content_length), "Authorization": API_KEY},
        ) as put:
            put.raise_for_status()
            await put.read()


@dataclass(slots=True)
class Relayed:
    seconds: float  # the engine's own timer around its upload step
    cpu: float  # this process's CPU from the intake to the upload's end


@contextlib.asynccontextmanager
async def relay_setup(
    info: dict[str, Any], work: Path
) -> AsyncIterator[Callable[[int], Awaitable[Relayed]]]:
    """The bot as `threadscribe run` composes it (Slack adapter, engine, store, client);
    each relay is a new job for the file, worked by the engine: its submit step streams
    the Slack file into the emulator's upload (`bot.engine.steps._upload`), then submits
    it (the emulator refuses 1 GiB of noise as not audio, and the job fails in its
    thread: that part is not timed)."""
    from adapters.slack.incoming import attachment
    from bot.assemblyai import AssemblyAIClient
    from bot.chat import FileSource
    from bot.config import Secret, Settings
    from bot.engine import EngineConfig
    from bot.jobs import IntakeRecord, JobState, JobStore, Platform
    from bot.run import builtin_factories, compose

    settings = Settings(
        slack_bot_token=Secret(info["token"]),
        slack_signing_secret=Secret("bench"),
        slack_api_url=info["api_url"],
        database_url=Secret(f"sqlite+aiosqlite:///{work / 'relay.db'}"),
    )
    store = await JobStore.open(settings.database_url.value)
    client = AssemblyAIClient(Secret(API_KEY), base_url=info["sink"])
    engine, core, [adapter] = compose(
        settings, store, client, builtin_factories(settings), config=EngineConfig()
    )
    await adapter.start()
    await engine.start()
    registry = engine.metrics.registry
    upload = {"call": "upload"}

    def uploads() -> tuple[float, float]:
        count = registry.get_sample_value("threadscribe_assemblyai_seconds_count", upload)
        total = registry.get_sample_value("threadscribe_assemblyai_seconds_sum", upload)
        return count or 0.0, total or 0.0

    async def relay(n: int) -> Relayed:
        record = IntakeRecord(
            platform=Platform.SLACK,
            workspace=info["team"],
            channel=info["channel"],
            requester=info["user"],
            source=FileSource(attachment(info["file"]).ref),
            message=info["messages"][n],
        )
        count, total = uploads()
        cpu = time.process_time()
        outcome = await engine.intake(record)
        assert outcome.job is not None, outcome.refused
        while uploads()[0] == count:  # noqa: ASYNC110 (the engine's own timer is the signal)
            await asyncio.sleep(0.005)
        cpu = time.process_time() - cpu
        seconds = uploads()[1] - total
        while True:  # the job's end (its failure posted), before the next round
            job = await store.get(outcome.job.id)
            if job is not None and job.state in (JobState.FAILED, JobState.DELIVERED):
                break
            await asyncio.sleep(0.05)
        return Relayed(seconds, cpu)

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
        "--rounds", str(args.rounds),
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
                        if name == "relay":
                            with PeakRss() as peak:
                                relayed = await relay(round_)
                            growth.append(peak.growth)
                            seconds, spent = relayed.seconds, relayed.cpu
                        else:
                            started, cpu_started = time.perf_counter(), time.process_time()
                            await plain_copy(info, session)
                            seconds = time.perf_counter() - started
                            spent = time.process_time() - cpu_started
                        cpu[name].append(spent * MIB * 1024 / size)
                        async with session.get(info["stats"]) as answer:
                            got = await answer.json()
                        assert got == [{"bytes": size, "sha256": info["sha256"]}], got
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
    asyncio.run(serve(args.size_mib * MIB, args.rounds) if args.serve else measure(args))


if __name__ == "__main__":
    main()
