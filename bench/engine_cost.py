"""What a job costs the bot, and how the bot scales out.

    .venv/bin/python -m bench.engine_cost [--part cpu|replicas|all] [--jobs 500]

(a) cpu: `--jobs` jobs end to end (intake, submit, the webhook, one GET, render, the
    result post, the final status and reaction) with the emulator's processing time 0,
    on SQLite and on PostgreSQL (a private server, started as the tests start theirs:
    tests/pg.py). The bot's CPU (this process: the recording platform is in it, the
    emulator and the audio server are not) divided by the jobs. Target <= 5 ms a job.

(b) replicas: PostgreSQL only. `--replica-jobs` jobs are put in the store, then one
    replica, then (on a fresh database, the same jobs) two replicas, each its own process
    with its own web server for the webhooks, work them to delivered. Jobs a second from
    the first claim to the last delivery. Target: two replicas >= 1.7 x one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy import event

from bench import _harness as h
from bot.config import Secret
from bot.jobs import JobStore
from bot.web import WEBHOOK_PATH, create_app
from tests.fakes.recording import url_intake
from tests.helpers.pg import PostgresServer, find_bindir


def _webhook_config(concurrency: int) -> tuple[socket.socket, dict[str, object]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, {
        "concurrency": concurrency,
        "webhook_url": f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}",
        "webhook_secret": Secret(secrets.token_urlsafe(32)),
        "max_tasks": 512,
    }


async def _serve(bot: h.Bot, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(create_app(bot.engine), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


# -- (a) CPU per job ---------------------------------------------------------------------


async def cpu_part(args: argparse.Namespace, workdir: Path, url: str, pg: PostgresServer) -> bool:
    ok = True
    for backend in args.backends.split(","):
        database = (
            f"sqlite+aiosqlite:///{workdir / 'cost.db'}"
            if backend == "sqlite"
            else pg.url(pg.create_database())
        )
        async with h.emulator(
            processing_time=0.0, scripts=h.scripts_dir(workdir / "audio")
        ) as child:
            sock, overrides = _webhook_config(concurrency=100)
            config = h.engine_config(**overrides)
            async with h.bot_engine(workdir, child, config, database=database) as bot:
                runner = await _serve(bot, sock)
                statements = Counter[str]()

                def count(
                    _c: object,
                    _cur: object,
                    sql: str,
                    *_rest: object,
                    tally: Counter[str] = statements,
                ) -> None:
                    tally[" ".join(sql.split()[:3])] += 1

                event.listen(bot.store.db.engine.sync_engine, "before_cursor_execute", count)
                await bot.engine.start()
                wall, cpu = time.monotonic(), time.process_time()
                for i in range(args.jobs):
                    record = url_intake(
                        url,
                        message=f"1700000000.{i:06d}",
                        channel=f"C{i % 20}",
                        requester=f"U{i % 100}",
                        audio_duration=args.audio_seconds,
                    )
                    outcome = await bot.engine.intake(record)
                    assert outcome.created, outcome.refused
                    if i % 50 == 49:
                        await asyncio.sleep(0.05)  # arrivals, not one lump
                delivered = await h.wait_delivered(bot, args.jobs, args.timeout)
                cpu, wall = time.process_time() - cpu, time.monotonic() - wall
                await runner.cleanup()
                gets = await h.get_counts(child)
                finished = list((await h.transcripts(child)).values())
                registry = bot.engine.metrics.registry
                woke = registry.get_sample_value("threadscribe_webhooks_total") or 0.0
                polls = registry.get_sample_value("threadscribe_polls_total") or 0.0
                posted = sorted(bot.platform.result_at.values())
                done = sorted(bot.platform.done_at.values())
        created = sorted(t.created for t in finished)
        took = [t.completed - t.created for t in finished if t.completed is not None]
        print(
            f"    where the wall time went: submissions spread over "
            f"{created[-1] - created[0]:.1f} s; AssemblyAI took p50 "
            f"{h.percentile(took, 50):.2f} s, p95 {h.percentile(took, 95):.2f} s a transcript; "
            f"results posted over {posted[-1] - created[0]:.1f} s from the first submission, "
            f"final reactions over {done[-1] - created[0]:.1f} s; webhooks that woke a job "
            f"{woke:.0f}, polls {polls:.0f}"
        )
        per_job = 1000 * cpu / args.jobs
        top = ", ".join(f"{k!r} {v / args.jobs:.1f}" for k, v in statements.most_common(8))
        print(f"    SQL statements a job: {statements.total() / args.jobs:.1f} ({top})")
        met = delivered == args.jobs and per_job <= 5.0
        ok = ok and met
        print(
            f"\n(a) {backend}: {delivered}/{args.jobs} jobs delivered in {wall:.1f} s; bot CPU "
            f"{cpu:.2f} s = {per_job:.2f} ms a job; GET /v2/transcript/{{id}} "
            f"{sum(gets.values()) / args.jobs:.2f} a job; target <= 5 ms -> {h.verdict(met)}"
        )
    return ok


# -- (b) replicas --------------------------------------------------------------------------


async def replica(args: argparse.Namespace) -> None:
    """One replica's process: work the store's jobs until all are delivered."""
    workdir = Path(args.workdir)
    child = h.Child(args.emulator, None)  # type: ignore[arg-type]
    sock, overrides = _webhook_config(concurrency=args.concurrency)
    config = h.engine_config(**overrides)
    async with h.bot_engine(workdir, child, config, database=args.replica) as bot:
        runner = await _serve(bot, sock)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        await bot.engine.start()
        while await bot.delivered() < args.replica_jobs:  # noqa: ASYNC110 (the store is the truth)
            await asyncio.sleep(0.1)
        cpu = time.process_time() - cpu
        await runner.cleanup()
        mine = len(bot.platform.results())
    print(json.dumps({"cpu": cpu, "delivered_here": mine}), flush=True)


async def _fill(database: str, url: str, n: int, seconds: float) -> None:
    store = await JobStore.open(database)
    try:
        records = [
            url_intake(
                url,
                message=f"1700000000.{i:06d}",
                channel=f"C{i % 20}",
                requester=f"U{i % 100}",
                audio_duration=seconds,
            )
            for i in range(n)
        ]
        for start in range(0, n, 200):
            await asyncio.gather(*(store.admission.intake(r) for r in records[start : start + 200]))
    finally:
        await store.close()


async def _run_replicas(
    count: int, database: str, child: h.Child, args: argparse.Namespace, workdir: Path
) -> tuple[float, list[dict[str, float]]]:
    procs = []
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.engine_cost", "--replica", database,
            "--emulator", child.base_url, "--workdir", str(workdir),
            "--replica-jobs", str(args.replica_jobs), "--concurrency", str(args.concurrency),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=h.REPO,
        )  # fmt: skip
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        assert line.strip() == b"ready", line
        procs.append(proc)
    started = time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    outputs = [await proc.communicate() for proc in procs]
    elapsed = time.monotonic() - started
    return elapsed, [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


async def replicas_part(
    args: argparse.Namespace, workdir: Path, url: str, pg: PostgresServer
) -> bool:
    rates = {}
    async with h.emulator(processing_time=0.0, scripts=h.scripts_dir(workdir / "audio")) as child:
        for count in (1, 2):
            database = pg.url(pg.create_database())
            await _fill(database, url, args.replica_jobs, args.audio_seconds)
            elapsed, stats = await _run_replicas(count, database, child, args, workdir)
            rates[count] = args.replica_jobs / elapsed
            split = ", ".join(f"{s['delivered_here']:.0f} ({s['cpu']:.1f} s CPU)" for s in stats)
            print(
                f"\n(b) {count} replica(s) on one PostgreSQL: {args.replica_jobs} jobs in "
                f"{elapsed:.1f} s = {rates[count]:.0f} jobs/s; delivered by each: {split}"
            )
    ratio = rates[2] / rates[1]
    met = ratio >= 1.7
    print(f"    two replicas / one: {ratio:.2f} x; target >= 1.7 -> {h.verdict(met)}")
    return met


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.engine_cost", description=__doc__)
    p.add_argument("--part", choices=("cpu", "replicas", "all"), default="all")
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--backends", default="sqlite,postgresql", help="cpu: which stores")
    p.add_argument("--replica-jobs", type=int, default=600)
    p.add_argument("--concurrency", type=int, default=100, help="replicas: slots towards AAI")
    p.add_argument("--audio-seconds", type=float, default=30.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--replica", help=argparse.SUPPRESS)
    p.add_argument("--emulator", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.replica:
        await replica(args)
        return 0
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("this bench needs PostgreSQL's binaries (Debian: postgresql)")
    pg = PostgresServer.start(bindir)
    try:
        with tempfile.TemporaryDirectory(prefix="threadscribe-bench-") as tmp:
            workdir = Path(tmp)
            audio = h.make_audio(workdir / "audio", args.audio_seconds)
            async with h.media_server(workdir / "audio") as media:
                url = f"{media.base_url}/{audio.name}"
                results = []
                if args.part in ("cpu", "all"):
                    results.append(await cpu_part(args, workdir, url, pg))
                if args.part in ("replicas", "all"):
                    results.append(await replicas_part(args, workdir, url, pg))
    finally:
        pg.stop()
    print(f"\nall targets met: {all(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
