"""Shared pieces of the engine benchmarks (run them with `python -m bench.<name>`).

Everything the bot talks to runs in its own process, so that the figures printed are the
bot's own (CPU, GIL, event loop, memory):

- `emulator()`: the AssemblyAI emulator, `python -m emulator --port 0 ...`, with the
  processing model given (turnaround = processing_time + processing_ratio * audio s);
- `media_server()`: a small aiohttp static file server (this module, run as a script)
  from which the emulator fetches the `audio_url`s;
- `make_audio()`: real audio of a given length (a quiet sine, 8 kHz mono MP3 at 8 kb/s:
  ten minutes is 600 kB), made with ffmpeg once and cached in the work directory, with an
  emulator script for it (`<sha256>.json`: two people talking, 2.5 words a second), so
  its transcript is speech of a realistic size (a 2-hour file: 18,000 words), not the
  "no speech" the emulator rightly answers for a tone.

In the bot's process: `bot_engine()` assembles a real `Engine` (SQLite store in a temp
directory, the real AssemblyAI client) against a `TimedPlatform`, the tests' in-memory
`RecordingPlatform` that also stamps the wall-clock time each result reaches it.

The emulator's completion time of each transcript is read from the API itself after the
run: `GET /v2/transcript` (the list) carries `created` and `completed` for every
transcript, in the emulator's wall clock (naive UTC, microseconds), the same host clock
as `time.time()` here. Reading it afterwards adds no request to the per-transcript counts
(`GET /v2/transcript/{id}`) that the request log gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot import assemblyai as aai
from bot.chat import Post, Reaction, ThreadRef
from bot.config import Secret
from bot.engine import Engine, EngineConfig
from bot.jobs import JobState, JobStore, Platform
from bot.polling import PollSchedule
from bot.transcript import TranscriptStatus
from bot.urls import UrlPolicy
from tests.fakes.recording import RecordingPlatform

API_KEY = "bench-key"
REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
TRANSCRIPT_PATH = "/v2/transcript/"


# -- numbers ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def rss_mb() -> float:
    """Current resident set size of this process (VmRSS), in MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- audio -------------------------------------------------------------------------------


SCRIPT_WORDS = (
    "so the plan for next week is to finish the budget review and then we look at the "
    "customer feedback from the launch I think the numbers look good but we should check "
    "the timeline with design before the release because the quarter ends soon and the "
    "office move is still open who follows up with the market report today"
).split()


def scripts_dir(directory: Path) -> Path:
    """Where `make_audio` writes the emulator's scripts (pass it as `--scripts`)."""
    path = directory / "scripts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_script(directory: Path, audio: Path, seconds: float) -> Path:
    """An emulator script for `audio`: two speakers taking turns of 8 to 40 words, about
    2.5 words a second of audio, deterministic for the length."""
    import hashlib
    import json
    import random

    digest = hashlib.sha256(audio.read_bytes()).hexdigest()
    path = scripts_dir(directory) / f"{digest}.json"
    if path.exists():
        return path
    rng = random.Random(int(seconds * 1000))
    words_left = max(3, round(seconds * 2.5))
    turns, speaker = [], "A"
    while words_left > 0:
        n = min(words_left, rng.randint(8, 40))
        text = " ".join(rng.choice(SCRIPT_WORDS) for _ in range(n))
        turns.append({"speaker": speaker, "text": text[0].upper() + text[1:] + "."})
        words_left -= n
        speaker = "B" if speaker == "A" else "A"
    path.write_text(json.dumps({"language_code": "en_us", "utterances": turns}))
    return path


def make_audio(directory: Path, seconds: float) -> Path:
    """`make_tone`, with an emulator script that makes its transcript speech."""
    path = make_tone(directory, seconds)
    write_script(directory, path, seconds)
    return path


def make_tone(directory: Path, seconds: float) -> Path:
    """A `seconds` long MP3 (440 Hz sine, 8 kHz mono, 8 kb/s), made once per length."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tone-{seconds:g}s.mp3"
    if path.exists():
        return path
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the benchmarks need ffmpeg (Debian package ffmpeg)")
    partial = path.with_suffix(".part.mp3")
    subprocess.run(
        [
            *"ffmpeg -nostdin -loglevel error -y -f lavfi -i".split(),
            f"sine=frequency=440:sample_rate=8000:duration={seconds:g}",
            *"-ac 1 -c:a libmp3lame -b:a 8k".split(),
            str(partial),
        ],
        check=True,
    )
    partial.rename(path)
    return path


# -- subprocesses ------------------------------------------------------------------------


@dataclass
class Child:
    """A server running as a subprocess: its base URL and the last lines it printed."""

    base_url: str
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.asynccontextmanager
async def _spawn(
    args: Sequence[str], marker: str, *, env: dict[str, str] | None = None
) -> AsyncIterator[Child]:
    """Start `args`, wait for a line containing `marker` followed by the URL, and keep
    reading its output (so that it never blocks on a full pipe) until it is stopped."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
        env=env,
    )
    assert process.stdout is not None
    stream = process.stdout
    lines: list[str] = []
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while True:
                raw = await stream.readline()
                if not raw:
                    raise RuntimeError(f"{args[:3]} exited: {''.join(lines)[-2000:]}")
                line = raw.decode(errors="replace")
                lines.append(line)
                if marker in line:
                    url = line.split(marker, 1)[1].strip().split()[0]
                    break

        async def drain() -> None:
            while raw := await stream.readline():
                lines.append(raw.decode(errors="replace"))
                del lines[:-50]

        reader = asyncio.create_task(drain())
        try:
            yield Child(url, process, lines)
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def emulator(
    *,
    processing_time: float,
    processing_ratio: float = 0.0,
    processing_jitter: float = 0.0,
    seed: int = 1,
    concurrency: int = 1000,
    webhook_retry_interval: float = 1.0,
    scripts: Path | None = None,
) -> AsyncIterator[Child]:
    """The AssemblyAI emulator in a subprocess.

    Its PATH leaves ffprobe out, so it measures media with mutagen, in-process: a
    thousand ffprobe processes would otherwise compete with the bot for the two cores
    and show up in the bot's loop lag without being the bot's doing.
    """
    args = [
        sys.executable, "-m", "emulator", "--port", "0", "--api-key", API_KEY,
        "--processing-time", str(processing_time),
        "--processing-ratio", str(processing_ratio),
        "--concurrency", str(concurrency),
        "--webhook-retry-interval", str(webhook_retry_interval),
        "--processing-jitter", str(processing_jitter), "--processing-seed", str(seed),
    ]  # fmt: skip
    if scripts is not None:
        args += ["--scripts", str(scripts)]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    async with _spawn(args, "listening on", env=env) as child:
        yield child


@contextlib.asynccontextmanager
async def media_server(directory: Path) -> AsyncIterator[Child]:
    """Serve `directory` over HTTP from a subprocess; files are at `{base_url}/{name}`."""
    args = [sys.executable, "-m", "bench._harness", "media", str(directory)]
    async with _spawn(args, "serving on") as child:
        yield child


def _serve_media(directory: Path) -> None:
    app = web.Application()
    app.router.add_static("/", directory)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(f"media serving on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# -- what the emulator saw ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    """A transcript as the emulator's list shows it (wall-clock epoch seconds)."""

    id: str
    status: str
    created: float
    completed: float | None


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def _control(child: Child, method: str, path: str, **kw: Any) -> Any:
    async with (
        aiohttp.ClientSession(headers={"Authorization": API_KEY}) as http,
        http.request(method, child.base_url + path, **kw) as response,
    ):
        response.raise_for_status()
        return await response.json()


async def transcripts(child: Child) -> dict[str, Finished]:
    """Every transcript the emulator holds, read through `GET /v2/transcript` pages."""
    found: dict[str, Finished] = {}
    params: dict[str, str] = {"limit": "200"}
    while True:
        page = await _control(child, "GET", "/v2/transcript", params=params)
        for item in page["transcripts"]:
            created = _epoch(item["created"])
            assert created is not None
            found[item["id"]] = Finished(
                item["id"], item["status"], created, _epoch(item["completed"])
            )
        if not page["page_details"]["prev_url"]:
            return found
        params = {"limit": "200", "before_id": page["transcripts"][-1]["id"]}


async def get_counts(child: Child) -> Counter[str]:
    """`GET /v2/transcript/{id}` requests served, per transcript id (from the request
    log; take it before `transcripts()`, which is logged as well)."""
    log = await _control(child, "GET", "/_emulator/requests")
    counts: Counter[str] = Counter()
    for entry in log:
        path = entry["path"]
        if entry["method"] == "GET" and path.startswith(TRANSCRIPT_PATH):
            rest = path[len(TRANSCRIPT_PATH) :]
            if "/" not in rest:
                counts[rest] += 1
    return counts


# -- the bot's side ----------------------------------------------------------------------


@dataclass
class TimedPlatform(RecordingPlatform):
    """The recording test platform, stamping when each job's result post and its final
    reaction arrive (wall clock, `time.time()`)."""

    result_at: dict[str, float] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)
    #: False: keep each post's key, not its text and files (Slack's side of the wire: a
    #: load bench's 2-hour transcripts would otherwise count against the bot's memory)
    keep_bodies: bool = True

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        if key.endswith(":result"):
            self.result_at.setdefault(key.rsplit(":", 1)[0], time.time())
        message_id = await super().post(where, post, key=key)
        if not self.keep_bodies:
            posted = self.posts[-1]
            posted.text, posted.files = "", {}
        return message_id

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        if reaction is not Reaction.WORKING:
            self.done_at.setdefault(where.job_id, time.time())
        await super().react(where, reaction)


class TutorialSchedule(PollSchedule):
    """The baseline: AssemblyAI's tutorial loop (and its SDK's pace): a GET as soon as the
    submission answers, then one every `INTERVAL` seconds, whatever the audio."""

    INTERVAL = 3.0

    def next_delay(
        self,
        *,
        elapsed: float,
        polls: int,
        duration: float | None,
        status: TranscriptStatus | None,
        model: str | None = None,
        webhook: bool = False,
    ) -> float:
        return 0.0 if polls == 0 else self.INTERVAL

    def learn(
        self, *, duration: float | None, turnaround: float, polls: int, **more: object
    ) -> None:
        return None


def tutorial_gets(turnaround: float, interval: float = 3.0) -> int:
    """The tutorial loop's GETs for a turnaround: at 0, interval, 2 x interval, ..."""
    return 1 + max(0, math.ceil(turnaround / interval))


def tutorial_late(turnaround: float, interval: float = 3.0) -> float:
    return max(0, math.ceil(turnaround / interval)) * interval - turnaround


def schedule_outcome(times: Sequence[float], turnaround: float, gap: float) -> tuple[int, float]:
    """(GETs, seconds late) of polls at `times` (then every `gap`) for a turnaround."""
    for n, at in enumerate(times, 1):
        if at >= turnaround:
            return n, at - turnaround
    last = times[-1] if times else 0.0
    more = max(1, math.ceil((turnaround - last) / gap))
    return len(times) + more, last + more * gap - turnaround


@dataclass
class StampedSlack:
    """The real Slack adapter as the engine's platform, posting to the Slack fake over
    HTTP, stamping when Slack has answered each job's result post and final reaction."""

    adapter: Any  # adapters.slack.SlackAdapter
    result_at: dict[str, float] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> Platform:
        return Platform.SLACK

    @property
    def message_limit(self) -> int:
        return int(self.adapter.message_limit)

    async def open_file(self, where: ThreadRef, source: Any) -> Any:
        return await self.adapter.open_file(where, source)

    async def public_url(self, where: ThreadRef, source: Any) -> str | None:
        return await self.adapter.public_url(where, source)  # type: ignore[no-any-return]

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        message_id: str = await self.adapter.post(where, post, key=key)
        if key.endswith(":result"):
            self.result_at.setdefault(key.rsplit(":", 1)[0], time.time())
        return message_id

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        await self.adapter.edit(where, message_id, post, key=key)

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        await self.adapter.react(where, reaction)
        if reaction is not Reaction.WORKING:
            self.done_at.setdefault(where.job_id, time.time())

    def __getattr__(self, name: str) -> Any:
        # The rest of ChatPlatform (people, erase, notify_admins, ...) is the adapter's own:
        # the bench stamps posts and reactions only, and keeps up as the protocol grows.
        return getattr(self.adapter, name)


@contextlib.asynccontextmanager
async def slack_engine(
    workdir: Path, child: Child, config: EngineConfig, fake: Any, *, name: str = "slack"
) -> AsyncIterator[Bot]:
    """`bot_engine`, delivering through the real Slack adapter to `fake` (a FakeSlack)."""
    from adapters.slack import create
    from bot.config import Settings
    from bot.intake import Intake
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET

    store = await JobStore.open(f"sqlite+aiosqlite:///{workdir / (name + '.db')}")
    client = aai.AssemblyAIClient(
        Secret(API_KEY), base_url=child.base_url, llm_base_url=child.base_url
    )
    settings = Settings(
        slack_api_url=fake.api_url,
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
    )
    engine = Engine(store, client, {}, config)
    adapter = create(settings, Intake(engine, store, urls=config.urls))
    platform = StampedSlack(adapter)
    engine.add_platform(platform)  # type: ignore[arg-type]
    await adapter.start()
    try:
        yield Bot(engine, platform, store, client)  # type: ignore[arg-type]
    finally:
        await engine.stop()
        await adapter.stop()
        await adapter.close()
        await client.close()
        await store.close()


def engine_config(**overrides: Any) -> EngineConfig:
    """Production defaults, with the per-user and per-channel limits out of the way, and
    links to this machine allowed (the audio is served on loopback: ALLOW_PRIVATE_URLS)."""
    base: dict[str, Any] = {
        "per_user": 100_000,
        "per_channel": 100_000,
        "urls": UrlPolicy(allow_private=True),
    }
    return EngineConfig(**(base | overrides))


@dataclass
class Bot:
    engine: Engine
    platform: TimedPlatform
    store: JobStore
    client: aai.AssemblyAIClient

    async def delivered(self) -> int:
        return await self.store.queue.count(JobState.DELIVERED)


@contextlib.asynccontextmanager
async def bot_engine(
    workdir: Path,
    child: Child,
    config: EngineConfig,
    *,
    schedule: PollSchedule | None = None,
    name: str = "jobs",
    database: str | None = None,
    keep_bodies: bool = True,
) -> AsyncIterator[Bot]:
    """A real engine (SQLite store under `workdir`, or `database`; real client) on the
    emulator."""
    store = await JobStore.open(database or f"sqlite+aiosqlite:///{workdir / (name + '.db')}")
    client = aai.AssemblyAIClient(
        Secret(API_KEY), base_url=child.base_url, llm_base_url=child.base_url
    )
    platform = TimedPlatform(name=Platform.SLACK, keep_bodies=keep_bodies)
    engine = Engine(store, client, {Platform.SLACK: platform}, config, schedule=schedule)
    try:
        yield Bot(engine, platform, store, client)
    finally:
        await engine.stop()
        await client.close()
        await store.close()


async def wait_delivered(bot: Bot, count: int, seconds: float) -> int:
    """Wait up to `seconds` for `count` jobs to be delivered (asking the store twice a
    second); returns how many were."""
    delivered = 0
    for _ in range(max(1, int(seconds / 0.5))):
        delivered = await bot.delivered()
        if delivered >= count:
            break
        await asyncio.sleep(0.5)
    return delivered


class LoopLag:
    """Samples event-loop lag: how late a 10 ms sleep wakes up, continuously."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            start = clock()
            await asyncio.sleep(self.period)
            self.samples.append(clock() - start - self.period)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


if __name__ == "__main__" and sys.argv[1:2] == ["media"]:
    _serve_media(Path(sys.argv[2]))
