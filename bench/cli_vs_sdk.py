"""`threadscribe transcribe` against AssemblyAI's own Python SDK: wall time and GETs.

    .venv/bin/python -m bench.cli_vs_sdk [--processing-times 2,10,30] [--rounds 3]

For each processing time P, an emulator in a subprocess (`python -m emulator
--processing-time P`, the program `threadscribe emulator` runs) and a 120 s audio file
(a sine MP3 made with ffmpeg, `bench/_harness.py`). Each round runs both clients once,
one after the other, the order alternating between rounds:

- SDK: `aai.Transcriber(config=...).transcribe(path)`, `aai.settings.base_url` pointed at
  the emulator, with a fresh `aai.Client` per round (so both open their connection inside
  the span), in a worker thread (the SDK is synchronous). It uploads, submits, GETs at
  once and then every `polling_interval` (3 s) after each answer.
- CLI: in this process, what `threadscribe transcribe FILE` runs: `prepare()` (the checks
  made before anything is spent: ffprobe, paths; outside the span, since the SDK makes
  none) and then `obtain()`: upload, submit and wait on `bot.polling.SdkPace`, with a
  fresh `AssemblyAIClient`, its progress display writing to a buffer.

Before the first processing time, one round of each that is not counted (first use of
modules and caches in this process); before every run, `gc.collect()`.

Span, the same for both: from just before the upload to the finished transcript parsed in
hand. Both send the same options (speech models, language detection, speaker labels).
GETs: `GET /v2/transcript/{id}` for that transcript, from the emulator's request log.
Printed per P: medians of wall time and GETs, and the ratio CLI / SDK of the median wall
times (the SDK being the baseline measured in the same run). Targets: ratio <= 1.00 at
every P, and no more GETs than the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import assemblyai as aai
from rich.console import Console

from bench import _harness as h
from bot.assemblyai import AssemblyAIClient, TranscriptOptions
from bot.config import Secret
from bot.models import DEFAULT_SPEECH_MODELS
from bot.sources import parse_source
from bot.transcribe import Outputs, TranscribeRequest, obtain, prepare

PROCESSING_TIMES = (2.0, 10.0, 30.0)
AUDIO_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Run:
    client: str
    wall: float  # seconds
    gets: int


def sdk_once(base_url: str, path: Path) -> tuple[float, str]:
    aai.settings.api_key = h.API_KEY
    aai.settings.base_url = base_url
    config = aai.TranscriptionConfig(
        speech_models=list(DEFAULT_SPEECH_MODELS), speaker_labels=True, language_detection=True
    )
    client = aai.Client(settings=aai.settings)
    transcriber = aai.Transcriber(client=client, config=config)
    try:
        start = time.monotonic()
        transcript = transcriber.transcribe(str(path))
        wall = time.monotonic() - start
    finally:
        client.http_client.close()
    if transcript.status != aai.TranscriptStatus.completed:
        raise RuntimeError(f"SDK: {transcript.status} {transcript.error}")
    return wall, str(transcript.id)


async def cli_once(base_url: str, path: Path, workdir: Path) -> tuple[float, str]:
    request = TranscribeRequest(
        target=parse_source(str(path)),
        options=TranscriptOptions(),  # the CLI's defaults, as `transcribe FILE` sends
        outputs=Outputs(save=False, folder=workdir),
        ffprobe=shutil.which("ffprobe"),
    )
    prepared = await prepare(request)
    stderr = Console(file=io.StringIO(), width=100)
    async with AssemblyAIClient(Secret(h.API_KEY), base_url=base_url) as client:
        start = time.monotonic()
        transcript = await obtain(client, prepared, stderr)
        wall = time.monotonic() - start
    if transcript.status.value != "completed":
        raise RuntimeError(f"CLI: {transcript.status} {transcript.error}")
    return wall, transcript.id


async def measure(
    processing: float, rounds: int, audio: Path, workdir: Path, *, warmup: bool
) -> list[Run]:
    runs: list[Run] = []
    async with h.emulator(processing_time=processing) as child:
        for n in range(-1 if warmup else 0, rounds):
            order = ("sdk", "cli") if n % 2 == 0 else ("cli", "sdk")
            for name in order:
                gc.collect()  # neither run pays for the other's garbage
                if name == "sdk":
                    wall, tid = await asyncio.to_thread(sdk_once, child.base_url, audio)
                else:
                    wall, tid = await cli_once(child.base_url, audio, workdir)
                gets = (await h.get_counts(child))[tid]
                label = "warm-up" if n < 0 else f"round {n + 1}"
                print(f"  P={processing:g}s {label} {name}: {wall:.3f} s, {gets} GETs")
                if n >= 0:
                    runs.append(Run(name, wall, gets))
    return runs


def report(results: dict[float, list[Run]]) -> bool:
    print()
    head = f"{'processing':>10} {'SDK wall':>9} {'CLI wall':>9} {'CLI-SDK':>8} {'CLI/SDK':>8}"
    print(f"{head} {'SDK GETs':>9} {'CLI GETs':>9}  target")
    ok_all = True
    for processing, runs in results.items():
        sdk = [r for r in runs if r.client == "sdk"]
        cli = [r for r in runs if r.client == "cli"]
        sdk_wall = statistics.median(r.wall for r in sdk)
        cli_wall = statistics.median(r.wall for r in cli)
        sdk_gets = statistics.median(r.gets for r in sdk)
        cli_gets = statistics.median(r.gets for r in cli)
        ratio = cli_wall / sdk_wall
        ok = ratio <= 1.0 and cli_gets <= sdk_gets
        ok_all &= ok
        print(
            f"{processing:>9g}s {sdk_wall:>8.3f}s {cli_wall:>8.3f}s "
            f"{(cli_wall - sdk_wall) * 1000:>+6.1f}ms {ratio:>7.4f}x "
            f"{sdk_gets:>9g} {cli_gets:>9g}  {h.verdict(ok)}"
        )
    print(f"\nall targets met: {ok_all}")
    return ok_all


async def main(args: argparse.Namespace) -> int:
    times = [float(t) for t in args.processing_times.split(",")]
    with tempfile.TemporaryDirectory(prefix="threadscribe-bench-") as tmp:
        workdir = Path(tmp)
        audio = h.make_tone(workdir / "audio", args.audio_seconds)
        print(f"audio: {audio.name}, {audio.stat().st_size:,} bytes; rounds: {args.rounds}")
        results = {}
        for i, processing in enumerate(times):
            # The first runs in this process pay for first use (imports, caches): a round
            # of each, not counted, before the first processing time.
            runs = await measure(processing, args.rounds, audio, workdir, warmup=i == 0)
            results[processing] = runs
    return 0 if report(results) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_vs_sdk", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--processing-times",
        default=",".join(f"{t:g}" for t in PROCESSING_TIMES),
        metavar="S,S",
        help="emulator processing times to measure (default: 2,10,30)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client (default: 3)")
    parser.add_argument(
        "--audio-seconds", type=float, default=AUDIO_SECONDS, help="audio length (default: 120)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(parse_args())))
