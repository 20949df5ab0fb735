"""`threadscribe transcribe SOURCE`: one file or link, transcribed in the terminal.

Three steps, each its own function so that a benchmark can time the middle one alone:

1. `prepare`: every check that can be made before anything is spent (options, language,
   output paths, what the file holds and how long it is, the limits). A problem raises
   `Refused`, whose message (from bot.messages) is one line; notes and warnings are
   collected for stderr.
2. `obtain`: upload, submit and wait (or, with `--id`, fetch an existing transcript and
   wait for it), polling on `bot.polling.SdkPace`: never later than AssemblyAI's own SDK.
   Ctrl-C while waiting says how to pick the transcript up later.
3. `transcribe` ties them together, prints the transcript and its speaker summary on
   stdout and saves it, like AssemblyAI's tutorial, as `<audio name>.txt` in the current
   folder without overwriting anything (`name-1.txt`, ...), unless told otherwise.

Progress goes to stderr (an upload bar, then the job's status with elapsed time), so the
output can be piped or redirected cleanly. Any failure becomes one line on stderr.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from bot import conversation, messages, render
from bot import summary as summary_outcome
from bot.assemblyai import (
    AssemblyAIClient,
    AssemblyAIError,
    BadRequestError,
    NotFoundError,
    TranscriptFailed,
    TranscriptOptions,
)
from bot.config import Settings
from bot.errors import NotAudio, Refused
from bot.models import (
    DEFAULT_LLM_MODEL,
    LANGUAGE_CODES,
    MAX_AUDIO_SECONDS,
    MAX_UPLOAD_BYTES,
    MIN_AUDIO_SECONDS,
    speech_model_warning,
)
from bot.polling import SdkPace, sleep_until
from bot.sources import FileSource, Source, UrlSource, file_stem, probe
from bot.transcript import Transcript, TranscriptStatus
from bot.urls import PrivateAddress, UrlPolicy, UrlRefused

ASSEMBLYAI = "AssemblyAI"
#: Files larger than this get the API key checked before their upload begins.
KEY_CHECK_BYTES = 8_000_000
#: after Ctrl-C, how long a submit on its way may take to answer with the job's id
SUBMIT_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Pickup:
    """A transcript submitted earlier, picked up by its id (`--id`)."""

    transcript_id: str


Target = Source | Pickup


@dataclass(frozen=True, slots=True)
class Outputs:
    txt: Path | None = None
    srt: Path | None = None
    vtt: Path | None = None
    json: Path | None = None
    #: without `txt`, save `<audio name>.txt` in `folder` (never overwriting); --no-save
    save: bool = True
    folder: Path = Path()

    def named(self) -> list[tuple[str, Path]]:
        """(flag, path) of every file asked for by name."""
        named = (("--txt", self.txt), ("--srt", self.srt), ("--vtt", self.vtt))
        return [(f, p) for f, p in (*named, ("--json", self.json)) if p is not None]


@dataclass(frozen=True, slots=True)
class Limits:
    """What may be sent; `*_by` names who sets each limit, for the message."""

    max_bytes: int = MAX_UPLOAD_BYTES
    bytes_by: str = ASSEMBLYAI
    max_seconds: float = MAX_AUDIO_SECONDS
    seconds_by: str = ASSEMBLYAI

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """AssemblyAI's own limits, tightened by MAX_FILE_MB and MAX_DURATION_MINUTES
        when they are set (their defaults are the bot's, not the terminal's)."""
        limits = cls()
        if "MAX_FILE_MB" in settings.given:
            size = min(MAX_UPLOAD_BYTES, settings.max_file_mb * 1_000_000)
            limits = replace(limits, max_bytes=size, bytes_by="MAX_FILE_MB")
        if "MAX_DURATION_MINUTES" in settings.given:
            seconds = min(MAX_AUDIO_SECONDS, settings.max_duration_minutes * 60.0)
            limits = replace(limits, max_seconds=seconds, seconds_by="MAX_DURATION_MINUTES")
        return limits


@dataclass(frozen=True, slots=True)
class TranscribeRequest:
    target: Target
    options: TranscriptOptions = field(default_factory=TranscriptOptions)
    outputs: Outputs = Outputs()
    ai_summary: bool = False
    llm_model: str = DEFAULT_LLM_MODEL
    limits: Limits = Limits()
    ffprobe: str | None = None  # its path; None: measure files with mutagen
    poll_interval: float = 3.0  # the SDK's `polling_interval`
    #: the bot's URL policy (ALLOW_PRIVATE_URLS): AssemblyAI cannot fetch a private host
    urls: UrlPolicy = field(default_factory=UrlPolicy)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request that passed every check, with what the checks found and said."""

    request: TranscribeRequest
    duration: float | None = None  # seconds of audio in a local file, when measured
    notes: tuple[str, ...] = field(default=())


_STATUS_TEXT = {
    TranscriptStatus.QUEUED: "Queued at AssemblyAI",
    TranscriptStatus.PROCESSING: "Transcribing",
    TranscriptStatus.COMPLETED: "Transcribed",
    TranscriptStatus.ERROR: "Failed",
}


async def transcribe(
    settings: Settings, request: TranscribeRequest, *, stdout: TextIO, stderr: Console
) -> None:
    """Run the whole job; raise `Refused` when a check fails before anything is spent,
    and any other error (bot.messages explains it) after."""
    prepared = await prepare(request)
    for note in prepared.notes:
        _say(stderr, note)
    api_key = settings.require_assemblyai_key()
    async with AssemblyAIClient(
        api_key, base_url=settings.assemblyai_base_url, llm_base_url=settings.llm_gateway_url
    ) as client:
        target = request.target
        if isinstance(target, FileSource) and target.size > KEY_CHECK_BYTES:
            # A rejected key would only show after the whole upload: ask first (one cheap
            # read; a small file's upload is the check itself).
            await client.list(limit=1)
        transcript = await obtain(client, prepared, stderr)
        # "No spoken audio" is a recording without speech, not a failure: say so.
        transcript = render.without_speech(transcript) or transcript
        if transcript.status is TranscriptStatus.ERROR:
            raise TranscriptFailed(transcript.id, transcript.error or "no reason given")
        summary = None
        if request.ai_summary:
            summary = await _ai_summary(client, transcript, request.llm_model)
        text = render.plain_text(transcript, summary=summary)
        stdout.write(text)
        stdout.flush()
        for path in await _save(client, transcript, text, request):
            _say(stderr, messages.saved(str(path)))


def _say(stderr: Console, line: str) -> None:
    stderr.print(line, markup=False, highlight=False, soft_wrap=True)


# -- 1. checks before anything is spent ------------------------------------------------


async def prepare(request: TranscribeRequest) -> Prepared:
    """Check everything that can be checked locally; raise `Refused` on the first problem."""
    options, notes = request.options, []
    target = request.target
    if not isinstance(target, Pickup):
        _check_options(options)
        notes += [messages.deprecated_model(w) for w in _model_warnings(options)]
    source_path = target.path if isinstance(target, FileSource) else None
    _check_outputs(request.outputs, source_path)
    duration = None
    if isinstance(target, UrlSource):
        _check_link(target.url)
        await _check_host(target.url, request.urls)
    elif isinstance(target, FileSource):
        duration = await _check_file(target, request)
        if duration is None:
            notes.append(
                messages.not_measured(target.path.name, have_ffprobe=bool(request.ffprobe))
            )
    if not isinstance(target, Pickup) and duration is None:
        options, note = _cap_unknown_length(options, request.limits)
        notes += [note] if note else []
    return Prepared(replace(request, options=options), duration, tuple(notes))


def _check_options(options: TranscriptOptions) -> None:
    if options.speakers_expected is not None and not options.speaker_labels:
        raise Refused(messages.speakers_without_labels())
    start, end = options.audio_start_from, options.audio_end_at
    if end is not None and end <= (start or 0):
        raise Refused(messages.end_not_after_start())
    if end is not None and end - (start or 0) < MIN_AUDIO_SECONDS * 1000:
        raise Refused(messages.window_too_short())
    code = options.language_code
    if code is not None and code not in LANGUAGE_CODES:
        normal = code.strip().lower().replace("-", "_")
        close = [normal] if normal in LANGUAGE_CODES else []
        close = close or difflib.get_close_matches(normal, sorted(LANGUAGE_CODES), n=2)
        raise Refused(messages.unknown_language(code, close))


def _model_warnings(options: TranscriptOptions) -> list[str]:
    return [w for w in map(speech_model_warning, options.speech_models) if w is not None]


def _check_outputs(outputs: Outputs, source: Path | None) -> None:
    seen: dict[Path, str] = {}
    for flag, path in outputs.named():
        shown = str(path)
        if path.is_dir():
            raise Refused(messages.is_a_folder(flag, shown))
        folder = path.parent
        if not folder.exists():
            raise Refused(messages.folder_missing(shown))
        if not folder.is_dir():
            raise Refused(messages.not_a_folder(shown, str(folder)))
        if source is not None and path.exists() and path.samefile(source):
            raise Refused(messages.overwrites_source(flag, shown))
        resolved = path.resolve()
        if resolved in seen:
            raise Refused(messages.same_output(seen[resolved], flag, shown))
        seen[resolved] = flag
        # An existing file named explicitly may be overwritten; it must be writable.
        problem = _cannot_append(path) if path.exists() else _cannot_create_in(folder)
        if problem:
            raise Refused(messages.cannot_write(shown, problem))
    if outputs.save and outputs.txt is None:
        problem = _cannot_create_in(outputs.folder)
        if problem:
            raise Refused(messages.cannot_save_here(str(outputs.folder.resolve()), problem))


def _cannot_append(path: Path) -> str | None:
    try:
        with path.open("ab"):  # opens for writing without changing a byte
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _cannot_create_in(folder: Path) -> str | None:
    # Try it: permission bits say nothing for root, nor about read-only file systems.
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".threadscribe-", suffix=".tmp")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(name)
    return None


def _check_link(url: str) -> None:
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        hidden = "***@" + parts.netloc.rsplit("@", 1)[1]  # never print what was there
        raise Refused(messages.link_with_credentials(urlunsplit(parts._replace(netloc=hidden))))


async def _check_host(url: str, urls: UrlPolicy) -> None:
    try:
        await urls.check(url)
    except PrivateAddress as exc:
        raise Refused(f"{exc} (ALLOW_PRIVATE_URLS=true allows private hosts)") from exc
    except UrlRefused as exc:
        raise Refused(str(exc)) from exc


async def _check_file(source: FileSource, request: TranscribeRequest) -> float | None:
    limits, name = request.limits, source.path.name
    if source.size > limits.max_bytes:
        raise Refused(messages.file_too_large(name, source.size, limits.max_bytes, limits.bytes_by))
    try:
        duration = await probe(source.path, request.ffprobe)
    except NotAudio as exc:
        raise Refused(messages.not_audio(name, exc.kind)) from None
    if duration is None:
        return None
    if duration < MIN_AUDIO_SECONDS:
        raise Refused(messages.audio_too_short(name, duration))
    if duration > MAX_AUDIO_SECONDS:
        raise Refused(messages.audio_too_long(name, duration, MAX_AUDIO_SECONDS, ASSEMBLYAI))
    options = request.options
    # A file's length is measured to the millisecond and rounded, so allow the rounding.
    length_ms = duration * 1000 + 1
    start, end = options.audio_start_from, options.audio_end_at
    if start is not None and start >= length_ms:
        raise Refused(messages.past_the_end("--start", start / 1000, name, duration))
    if end is not None and end > length_ms:
        raise Refused(messages.past_the_end("--end", end / 1000, name, duration))
    span = (min(end, duration * 1000) if end is not None else duration * 1000) - (start or 0)
    if span / 1000 > limits.max_seconds:
        if start is None and end is None:
            raise Refused(
                messages.audio_too_long(name, duration, limits.max_seconds, limits.seconds_by)
            )
        raise Refused(messages.window_too_long(span / 1000, limits.max_seconds, limits.seconds_by))
    if span < MIN_AUDIO_SECONDS * 1000:
        raise Refused(messages.window_too_short())
    return duration


def _cap_unknown_length(
    options: TranscriptOptions, limits: Limits
) -> tuple[TranscriptOptions, str | None]:
    """When the length cannot be known before AssemblyAI fetches the audio, a duration
    limit from the settings is applied by asking AssemblyAI to stop at it."""
    if limits.seconds_by == ASSEMBLYAI:
        return options, None  # AssemblyAI enforces its own
    start = options.audio_start_from or 0
    cap = start + round(limits.max_seconds * 1000)
    if options.audio_end_at is not None and options.audio_end_at <= cap:
        return options, None
    note = messages.capped_duration(limits.max_seconds / 60, start / 1000)
    return replace(options, audio_end_at=cap), note


# -- 2. upload, submit, wait -----------------------------------------------------------


async def obtain(client: AssemblyAIClient, prepared: Prepared, stderr: Console) -> Transcript:
    """The finished transcript (completed or error) of a prepared request."""
    target = prepared.request.target
    if isinstance(target, Pickup):
        sent = time.monotonic()
        try:
            transcript = await client.get(target.transcript_id)
        except (NotFoundError, BadRequestError) as exc:
            raise Refused(messages.no_such_transcript(target.transcript_id, exc.message)) from exc
        answered = time.monotonic()
    else:
        transcript, sent, answered = await _submit(client, target, prepared.request.options, stderr)
    interval = prepared.request.poll_interval
    pace = SdkPace.after_submit(sent=sent, answered=answered, interval=interval)
    try:
        with _status(stderr) as show:
            show(transcript)
            return await _wait(client, transcript, pace, show)
    except asyncio.CancelledError:  # Ctrl-C: the job goes on at AssemblyAI
        _say(stderr, messages.interrupted(transcript.id))
        raise


async def _wait(
    client: AssemblyAIClient,
    transcript: Transcript,
    pace: SdkPace,
    show: Callable[[Transcript], None],
) -> Transcript:
    while not transcript.status.done:
        await sleep_until(pace.due())
        sent = time.monotonic()
        transcript = await client.get(transcript.id)
        pace.answered(sent=sent, received=time.monotonic())
        show(transcript)
    return transcript


async def _submit(
    client: AssemblyAIClient, source: Source, options: TranscriptOptions, stderr: Console
) -> tuple[Transcript, float, float]:
    """The submitted transcript, when the submit left and when its answer came."""
    if not isinstance(source, FileSource):
        # Public links are passed through for AssemblyAI to fetch.
        return await _create(client, source.url, options, stderr)
    columns = (
        TextColumn("Uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=stderr) as progress:
        task = progress.add_task(source.path.name, total=source.size)
        audio_url = await client.upload(
            source.path, progress=lambda sent: progress.update(task, completed=sent)
        )
        # Submitted before the bar is taken down: that takes a millisecond or two, better
        # spent in the wait that follows than on the way to AssemblyAI.
        return await _create(client, audio_url, options, stderr)


async def _create(
    client: AssemblyAIClient, audio_url: str, options: TranscriptOptions, stderr: Console
) -> tuple[Transcript, float, float]:
    sent = time.monotonic()
    submit = asyncio.ensure_future(client.submit(audio_url, options))
    try:
        transcript = await asyncio.shield(submit)
    except asyncio.CancelledError:
        # Ctrl-C with the submit on its way: AssemblyAI may have the job already (and
        # bill it). Its answer is a moment away; wait for it, so the job can be picked up.
        created = await _settle(submit)
        if created is not None:
            _say(stderr, messages.interrupted(created.id))
        raise
    return transcript, sent, time.monotonic()


async def _settle(submit: asyncio.Future[Transcript]) -> Transcript | None:
    try:
        return await asyncio.wait_for(submit, SUBMIT_GRACE)
    except (AssemblyAIError, TimeoutError, asyncio.CancelledError):
        return None  # no job, no answer in time, or a second Ctrl-C


@contextmanager
def _status(stderr: Console) -> Iterator[Callable[[Transcript], None]]:
    columns = (
        SpinnerColumn(finished_text="•"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr) as progress:
        task = progress.add_task("Submitted", total=1)

        def show(transcript: Transcript) -> None:
            # "No spoken audio" is a finished transcript of nothing, not a failure.
            transcript = render.without_speech(transcript) or transcript
            text = _STATUS_TEXT[transcript.status]
            if transcript.status is TranscriptStatus.QUEUED and transcript.throttled:
                text += " (waiting for a free slot on the account)"
            progress.update(task, description=text, completed=1 if transcript.status.done else 0)

        yield show


# -- 3. the result ---------------------------------------------------------------------


async def _ai_summary(
    client: AssemblyAIClient, transcript: Transcript, model: str
) -> summary_outcome.Outcome:
    """The structured summary the bot posts, rendered as plain lines (bot/summary.py)."""
    return await summary_outcome.summarise(client, conversation.lines(transcript), model=model)


async def _save(
    client: AssemblyAIClient, transcript: Transcript, text: str, request: TranscribeRequest
) -> list[Path]:
    """Write the files asked for (the .txt holds what stdout showed); their paths."""
    out, saved = request.outputs, []
    if out.txt is not None:
        out.txt.write_text(text, encoding="utf-8")
        saved.append(out.txt)
    elif out.save:
        target = request.target
        stem = transcript.id if isinstance(target, Pickup) else file_stem(target)
        saved.append(save_new(out.folder, stem, text))
    if out.json is not None:
        out.json.write_text(json.dumps(dict(transcript.raw), indent=2), encoding="utf-8")
        saved.append(out.json)
    if out.srt is not None:
        out.srt.write_text(await client.srt(transcript.id), encoding="utf-8")
        saved.append(out.srt)
    if out.vtt is not None:
        out.vtt.write_text(await client.vtt(transcript.id), encoding="utf-8")
        saved.append(out.vtt)
    return saved


def save_new(folder: Path, stem: str, text: str) -> Path:
    """Write `text` to `folder/stem.txt`, or `stem-1.txt`, `stem-2.txt`... whichever is
    free first: an existing file is never overwritten (created exclusively, so not even
    one that appears meanwhile)."""
    n = 0
    while True:
        path = folder / (f"{stem}.txt" if n == 0 else f"{stem}-{n}.txt")
        try:
            with path.open("x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            n += 1
            continue
        return path
