"""`threadscribe emulator`: serve the AssemblyAI emulator until SIGINT or SIGTERM.

`threadscribe emulator ARGS` hands ARGS to `main`; it also runs alone as
`python -m emulator`. This is the emulator's composition root: the only
place that reads the environment (`ASSEMBLYAI_API_KEY`, when `--api-key` is not given).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot import logs

from .app import start
from .config import EmulatorConfig, FaultConfig

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILURE = 1

PROCESSING_TIME = "seconds a job stays processing (default: 1)"
PROCESSING_RATIO = "extra processing seconds per second of audio (default: 0)"
PROCESSING_JITTER = (
    "spread of each job's processing time: multiplied by exp(SIGMA x a standard normal),"
    " a lognormal around the nominal time (default: 0, none)"
)
PROCESSING_SEED = "seed of the processing-time spread (default: a fresh one each run)"
CONCURRENCY = "jobs processed at once; the rest wait, throttled (default: 5)"
RETRY_INTERVAL = "seconds between webhook attempts (default: 10)"
PUBLIC_BASE_URL = "base of the URLs the API hands out (default: the request's own)"
RETRY_AFTER = "Retry-After of injected 429s (default: 1)"
SLOW = "delay of a slow request (default: 2)"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = "Serve a local AssemblyAI-compatible API (v2 and LLM Gateway)."
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    add("--scripts", type=Path, metavar="DIR", help="directory of <sha256>.json scripts")
    add("--api-key", help="API key clients must send (default: $ASSEMBLYAI_API_KEY)")
    add("--processing-time", type=float, default=1.0, metavar="S", help=PROCESSING_TIME)
    add("--processing-ratio", type=float, default=0.0, metavar="R", help=PROCESSING_RATIO)
    add("--processing-jitter", type=float, default=0.0, metavar="SIGMA", help=PROCESSING_JITTER)
    add("--processing-seed", type=int, metavar="N", help=PROCESSING_SEED)
    add("--concurrency", type=int, default=5, metavar="N", help=CONCURRENCY)
    add("--webhook-retry-interval", type=float, default=10.0, metavar="S", help=RETRY_INTERVAL)
    add("--public-base-url", metavar="URL", help=PUBLIC_BASE_URL)
    faults = parser.add_argument_group("fault injection (rates per API request, 0..1)")
    for name in ("429", "500", "503", "drop", "slow", "lost"):
        faults.add_argument(f"--fault-{name}", type=_rate, default=0.0, metavar="RATE")
    faults.add_argument("--retry-after", type=int, default=1, metavar="S", help=RETRY_AFTER)
    faults.add_argument("--slow-seconds", type=float, default=2.0, metavar="S", help=SLOW)
    faults.add_argument("--seed", type=int, help="seed of the fault generator")


def build_config(args: argparse.Namespace, api_key: str) -> EmulatorConfig:
    faults = FaultConfig(
        rate_429=args.fault_429,
        rate_500=args.fault_500,
        rate_503=args.fault_503,
        rate_drop=args.fault_drop,
        rate_slow=args.fault_slow,
        rate_lost=args.fault_lost,
        retry_after=args.retry_after,
        slow_seconds=args.slow_seconds,
        seed=args.seed,
    )
    return EmulatorConfig(
        api_key=api_key,
        scripts_dir=args.scripts,
        processing_time=args.processing_time,
        processing_ratio=args.processing_ratio,
        processing_jitter=args.processing_jitter,
        processing_seed=args.processing_seed,
        concurrency=args.concurrency,
        webhook_retry_interval=args.webhook_retry_interval,
        public_base_url=args.public_base_url,
        faults=faults,
    )


def _fail(message: str) -> None:
    print(f"threadscribe emulator: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get("ASSEMBLYAI_API_KEY", "")
    if not api_key:
        _fail("no API key: pass --api-key or set ASSEMBLYAI_API_KEY")
        return EXIT_USAGE
    if args.scripts is not None:
        if args.scripts.exists() and not args.scripts.is_dir():
            _fail(f"--scripts {args.scripts} is not a directory")
            return EXIT_USAGE
        if not args.scripts.exists():
            args.scripts.mkdir(parents=True)
            print(
                f"created {args.scripts}/: put <sha256 of the audio>.json scripts in it",
                file=sys.stderr,
                flush=True,
            )
    try:
        config = build_config(args, api_key)
    except ValueError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    return asyncio.run(_serve(config, args.host, args.port))


async def _serve(config: EmulatorConfig, host: str, port: int) -> int:
    try:
        running = await start(config, host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return EXIT_FAILURE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"AssemblyAI emulator listening on {running.base_url}", file=sys.stderr, flush=True)
        await stop.wait()
        logger.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await running.stop()
    return 0


def main(argv: list[str] | None = None, *, prog: str = "python -m emulator") -> int:
    parser = argparse.ArgumentParser(prog=prog)
    configure_parser(parser)
    logs.configure(logging.WARNING)
    return run(parser.parse_args(argv))
