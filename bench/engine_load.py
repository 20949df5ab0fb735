"""Jobs in flight in one bot process, and intake against a backlog.

    .venv/bin/python -m bench.engine_load [--part backlog|load|all] [--jobs 10000]
                                          [--wait webhook|poll]

(a) backlog: how long one intake takes (persisted, ready to acknowledge the platform)
    with 10 jobs waiting, and with `--backlog` (1,000) waiting, in the same run: an engine
    that is not started, so that nothing leaves the queue; each figure is the p99 of
    `--probes` intakes made one after another (each a new job, from people and channels
    that already have jobs waiting, so the per-person and per-channel counts are real;
    the backlog grows by one with each).
    Target: p99 with 1,000 waiting <= 0.05 s and <= 1.5 x the p99 with 10 (flat).

(b) load: one engine (SQLite store, real AssemblyAI client, the in-memory recording
    platform) takes `--jobs` intakes as fast as a burst of chat events would bring them
    (`--intake-burst` at once), submits them all to the emulator (engine concurrency
    raised to the job count, emulator concurrency above it, so all of them are at
    "AssemblyAI" together), waits (`--wait webhook`: the bot's own web server takes the
    emulator's webhooks, the poller as fallback; `--wait poll`: the adaptive poller only)
    and delivers every result. The audio is a mix of realistic lengths (`--mix`, default
    5 s to 2 h), each with an emulator script, so the transcripts fetched, parsed and
    rendered have the sizes of real ones (2 h: 18,000 words).

The emulator and the audio server run as subprocesses, so the figures are the bot's:
- loop lag: a task sleeps 10 ms over and over and records how late it wakes, from the
  first intake to the last delivery; p50 / p99 / max;
- peak RSS: the bot process's high-water mark (VmHWM), and its RSS before the run.
Targets: every job delivered exactly once; loop lag p99 <= 50 ms; peak RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bench import _harness as h
from bot.chat import Reaction
from bot.config import Secret
from bot.jobs import JobState
from bot.web import WEBHOOK_PATH, create_app
from tests.fakes.recording import url_intake


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.engine_load", description=__doc__)
    p.add_argument("--part", choices=("backlog", "load", "all"), default="all")
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--backlog", type=int, default=1000, help="backlog: jobs waiting")
    p.add_argument("--probes", type=int, default=100, help="backlog: intakes timed at each")
    p.add_argument(
        "--mix",
        default="5:30,30:25,120:20,600:15,1800:7,7200:3",
        help="load: audio seconds:weight, ... (default 5 s to 2 h, mostly short)",
    )
    p.add_argument("--wait", choices=("webhook", "poll"), default="webhook")
    p.add_argument(
        "--processing-time",
        type=float,
        default=120.0,
        help="emulator turnaround, s: longer than the intake of every job takes, so that all"
        " of them are in flight together (default 120)",
    )
    p.add_argument("--intake-burst", type=int, default=50, help="intakes in flight at once")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after, s")
    return p.parse_args(argv)


def _mix(text: str) -> list[tuple[float, int]]:
    pairs = [item.split(":") for item in text.split(",")]
    return [(float(seconds), int(weight)) for seconds, weight in pairs]


async def backlog_part(args: argparse.Namespace, workdir: Path) -> bool:
    audio = workdir / "audio"
    tone = h.make_audio(audio, 30.0)
    async with (
        h.media_server(audio) as media,
        h.emulator(processing_time=1.0, scripts=h.scripts_dir(audio)) as child,
    ):
        url = f"{media.base_url}/{tone.name}"
        config = h.engine_config()
        async with h.bot_engine(workdir, child, config, name="backlog") as bot:
            made = 0

            async def intake() -> float:
                nonlocal made
                record = url_intake(
                    url,
                    message=f"1700000000.{made:06d}",
                    channel=f"C{made % 5}",
                    requester=f"U{made % 10}",
                    audio_duration=30.0,
                )
                made += 1
                begun = time.perf_counter()
                outcome = await bot.engine.intake(record)
                assert outcome.created, outcome.refused
                return time.perf_counter() - begun

            for _ in range(10):
                await intake()
            small = [await intake() for _ in range(args.probes)]
            waiting_small = f"{made - args.probes}-{made}"
            while made < args.backlog:
                batch = min(50, args.backlog - made)
                await asyncio.gather(*(intake() for _ in range(batch)))
            waiting_large = f"{made}-{made + args.probes}"
            large = [await intake() for _ in range(args.probes)]
    p_small, p_large = h.percentile(small, 99), h.percentile(large, 99)
    ratio = p_large / p_small
    met = p_large <= 0.05 and ratio <= 1.5
    print(f"\n(a) one intake against the backlog ({args.probes} intakes one after another)")
    print(
        f"    {waiting_small} waiting: p50 {1000 * h.percentile(small, 50):.1f} ms, "
        f"p99 {1000 * p_small:.1f} ms  (the baseline)"
    )
    print(
        f"    {waiting_large} waiting: p50 {1000 * h.percentile(large, 50):.1f} ms, "
        f"p99 {1000 * p_large:.1f} ms  -> {ratio:.2f} x the baseline; "
        f"target p99 <= 50 ms and <= 1.5 x -> {h.verdict(met)}"
    )
    return met


async def run(args: argparse.Namespace, workdir: Path) -> bool:
    audio = workdir / "audio"
    mix = _mix(args.mix)
    files = {seconds: h.make_audio(audio, seconds) for seconds, _ in mix}
    rng = random.Random(7)
    lengths = rng.choices([s for s, _ in mix], weights=[w for _, w in mix], k=args.jobs)
    n = args.jobs
    rss_before = h.rss_mb()
    async with (
        h.media_server(audio) as media,
        h.emulator(
            processing_time=args.processing_time,
            concurrency=max(2 * n, 10),
            scripts=h.scripts_dir(audio),
        ) as child,
    ):
        sock, overrides = None, {}
        if args.wait == "webhook":
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            overrides = {
                "webhook_url": f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}",
                "webhook_secret": Secret(secrets.token_urlsafe(32)),
            }
        config = h.engine_config(concurrency=n, **overrides)
        async with h.bot_engine(workdir, child, config, name="load", keep_bodies=False) as bot:
            runner = None
            if sock is not None:
                runner = web.AppRunner(create_app(bot.engine), access_log=None)
                await runner.setup()
                await web.SockSite(runner, sock).start()
            peak = Counter[str]()

            async def watch() -> None:
                while True:
                    counts = await bot.store.counts_by_state()
                    for state, count in counts.items():
                        peak[state.value] = max(peak[state.value], count)
                    unfinished = sum(counts.values()) - counts[JobState.DELIVERED]
                    peak["unfinished"] = max(peak["unfinished"], unfinished)
                    await asyncio.sleep(1.0)

            lag = h.LoopLag()
            lag.start()
            watcher = asyncio.create_task(watch())
            await bot.engine.start()
            started, cpu = time.monotonic(), time.process_time()
            gate = asyncio.Semaphore(args.intake_burst)
            intake_s: list[float] = []

            async def intake(i: int) -> None:
                async with gate:
                    begun = time.monotonic()
                    record = url_intake(
                        f"{media.base_url}/{files[lengths[i]].name}",
                        message=f"1700000000.{i:06d}",
                        channel=f"C{i % 50}",
                        requester=f"U{i % 400}",
                        audio_duration=lengths[i],
                    )
                    outcome = await bot.engine.intake(record)
                    intake_s.append(time.monotonic() - begun)
                    assert outcome.created, outcome.refused

            await asyncio.gather(*(intake(i) for i in range(n)))
            intaken = time.monotonic() - started
            delivered = await h.wait_delivered(bot, n, args.timeout)
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu
            await lag.stop()
            watcher.cancel()
            if runner is not None:
                await runner.cleanup()
            webhooks = bot.engine.metrics.registry.get_sample_value("threadscribe_webhooks_total")
            polls = bot.engine.metrics.registry.get_sample_value("threadscribe_polls_total")
            counts = await bot.store.counts_by_state()
            results = Counter(p.key for p in bot.platform.results())
            failed = [m for m, r in bot.platform.reactions if r is Reaction.FAILED]
        gets = await h.get_counts(child)
    peak_rss = h.peak_rss_mb()

    print(f"\n(b) {n} jobs, one bot process, wait by {args.wait}")
    shares = Counter(lengths)
    print(
        f"    emulator: turnaround {args.processing_time:g} s, concurrency {max(2 * n, 10)};"
        f" intake {args.intake_burst} at a time; audio (s: jobs) "
        + ", ".join(f"{s:g}: {shares[s]}" for s, _ in mix)
    )
    print(
        f"    intake of all {n}: {intaken:.1f} s; all delivered after {elapsed:.1f} s; "
        f"bot CPU {cpu:.1f} s ({100 * cpu / elapsed:.0f}% of a core)"
    )
    print(
        f"    one intake (persisted, ready to acknowledge the platform): p50 "
        f"{h.percentile(intake_s, 50):.2f} s, p99 {h.percentile(intake_s, 99):.2f} s, "
        f"max {max(intake_s):.2f} s"
    )
    print(
        f"    peak jobs at once (sampled every second): unfinished {peak['unfinished']}, "
        f"submitted (at AssemblyAI) {peak['submitted']}, received (waiting) {peak['received']}"
        f" -> all {n} in flight together: {'yes' if peak['unfinished'] >= n else 'NO'}"
    )
    print(
        f"    webhooks that woke a job {webhooks:.0f}, status polls {polls:.0f}, "
        f"GET /v2/transcript/{{id}} {sum(gets.values())} ({sum(gets.values()) / n:.2f} per job)"
    )
    once = sum(1 for c in results.values() if c == 1)
    ok_delivered = (
        delivered == n
        and counts[JobState.DELIVERED] == n
        and len(results) == n
        and once == n
        and not failed
    )
    print(
        f"    delivered {counts[JobState.DELIVERED]}/{n} in the store; result posts: "
        f"{len(results)} jobs, {once} exactly once; failed: {len(failed)} -> "
        f"{h.verdict(ok_delivered)}"
    )
    p99 = h.percentile(lag.samples, 99)
    print(
        f"    event-loop lag ({len(lag.samples)} samples every 10 ms): "
        f"p50 {1000 * h.percentile(lag.samples, 50):.1f} ms, p99 {1000 * p99:.1f} ms, "
        f"max {1000 * max(lag.samples):.1f} ms; target p99 <= 50 ms -> {h.verdict(p99 <= 0.050)}"
    )
    print(
        f"    RSS: {rss_before:.0f} MB before the run, peak {peak_rss:.0f} MB; "
        f"target <= 400 MB -> {h.verdict(peak_rss <= 400)}"
    )
    return ok_delivered and p99 <= 0.050 and peak_rss <= 400


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="threadscribe-bench-") as tmp:
        if args.part in ("backlog", "all"):
            results.append(await backlog_part(args, Path(tmp) / "backlog"))
        if args.part in ("load", "all"):
            results.append(await run(args, Path(tmp) / "load"))
    ok = all(results)
    print(f"\nall targets met: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
