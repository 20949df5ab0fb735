"""`threadscribe transcribe SOURCE`: one file or link, transcribed in the terminal.

Progress goes to stderr (an upload bar, then the job's status with elapsed time); the
speaker-labelled transcript and the speaker summary go to stdout, so the output can be
piped or redirected cleanly. Any failure becomes one line on stderr and a non-zero exit.

The bot's rules hold here too: a link must pass the URL policy (AssemblyAI cannot fetch
from your private network either; ALLOW_PRIVATE_URLS opens it, as for the bot), a file
larger than MAX_FILE_MB is refused before it is uploaded, and no more than
MAX_DURATION_MINUTES is transcribed (and billed): a longer recording, or a link whose
length cannot be known first, is cut there, and stderr says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import mutagen
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

from bot import render
from bot.assemblyai import AssemblyAIClient, AssemblyAIError, TranscriptFailed, TranscriptOptions
from bot.config import Settings
from bot.errors import SourceError
from bot.models import DEFAULT_LLM_MODEL
from bot.polling import PollSchedule
from bot.sources import FileSource, Source
from bot.transcript import Transcript, TranscriptStatus
from bot.urls import PrivateAddress, UrlPolicy


@dataclass(frozen=True, slots=True)
class Outputs:
    txt: Path | None = None
    srt: Path | None = None
    vtt: Path | None = None
    json: Path | None = None


@dataclass(frozen=True, slots=True)
class TranscribeRequest:
    source: Source
    options: TranscriptOptions
    outputs: Outputs = Outputs()
    ai_summary: bool = False
    llm_model: str = DEFAULT_LLM_MODEL


_STATUS_TEXT = {
    TranscriptStatus.QUEUED: "Queued at AssemblyAI",
    TranscriptStatus.PROCESSING: "Transcribing",
    TranscriptStatus.COMPLETED: "Transcribed",
    TranscriptStatus.ERROR: "Failed",
}


async def transcribe(
    settings: Settings, request: TranscribeRequest, *, stdout: TextIO, stderr: Console
) -> None:
    """Run the whole job; raise (bot.messages explains it) on any failure."""
    api_key = settings.require_assemblyai_key()
    async with AssemblyAIClient(
        api_key, base_url=settings.assemblyai_base_url, llm_base_url=settings.llm_gateway_url
    ) as client:
        options, up_to = await _within_limits(settings, request)
        audio_url = await _audio_url(client, request.source, stderr)
        transcript = await client.submit(audio_url, options)
        with _status(stderr) as show:
            show(transcript)
            transcript = await client.wait(
                transcript.id, delays=_poll_delays(request.source), on_status=show
            )
        transcript = render.without_speech(transcript) or transcript
        if transcript.status is TranscriptStatus.ERROR:
            raise TranscriptFailed(transcript.id, transcript.error or "no reason given")

        length = transcript.audio_duration
        if up_to is not None and length is not None and length > up_to:
            stderr.print(
                f"Transcribed the first {render.format_duration(up_to)} of "
                f"{render.format_duration(length)}: MAX_DURATION_MINUTES is "
                f"{settings.max_duration_minutes}",
                highlight=False,
            )
        summary = None
        if request.ai_summary:
            summary = await _ai_summary(client, transcript, request.llm_model)
        stdout.write(render.plain_text(transcript, summary=summary))
        stdout.flush()
        await _write_outputs(client, transcript, request.outputs)


async def _within_limits(
    settings: Settings, request: TranscribeRequest
) -> tuple[TranscriptOptions, float | None]:
    """The options cut at MAX_DURATION_MINUTES where needed, and where the cut falls (in
    seconds of the recording, None if uncut). Raises SourceError for a link the URL
    policy refuses or a file over MAX_FILE_MB."""
    source, options = request.source, request.options
    if isinstance(source, FileSource):
        limit = settings.max_file_mb * 1_000_000
        if source.size > limit:
            raise SourceError(
                f"{source.path.name} is {source.size / 1e6:,.1f} MB, over MAX_FILE_MB "
                f"({settings.max_file_mb} MB)"
            )
        length = _duration(source.path)
    else:
        try:
            await UrlPolicy(allow_private=settings.allow_private_urls).check(source.url)
        except PrivateAddress as exc:
            raise SourceError(f"{exc} (ALLOW_PRIVATE_URLS=true allows private hosts)") from exc
        length = None  # not known before AssemblyAI fetches it
    most = settings.max_duration_minutes * 60
    start = (options.audio_start_from or 0) / 1000
    if options.audio_end_at is not None and options.audio_end_at / 1000 - start <= most:
        return options, None
    if length is not None and length - start <= most:
        return options, None
    up_to = start + most
    return replace(options, audio_end_at=round(up_to * 1000)), up_to


def _poll_delays(source: Source) -> Callable[[Transcript], float]:
    """The engine's poll schedule, aimed at when a file of this length should be done."""
    schedule = PollSchedule()
    duration = _duration(source.path) if isinstance(source, FileSource) else None
    started = time.monotonic()
    polls = 0

    def delay(transcript: Transcript) -> float:
        nonlocal polls
        polls += 1
        return schedule.next_delay(
            elapsed=time.monotonic() - started,
            polls=polls - 1,
            duration=duration,
            status=transcript.status,
        )

    return delay


def _duration(path: Path) -> float | None:
    try:
        media = mutagen.File(path)
    except (mutagen.MutagenError, OSError):
        return None
    length = getattr(getattr(media, "info", None), "length", None)
    return float(length) if length else None


async def _audio_url(client: AssemblyAIClient, source: Source, stderr: Console) -> str:
    if not isinstance(source, FileSource):
        return source.url  # public links are passed through for AssemblyAI to fetch
    columns = (
        TextColumn("Uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=stderr) as progress:
        task = progress.add_task(source.path.name, total=source.size)
        return await client.upload(
            source.path, progress=lambda sent: progress.update(task, completed=sent)
        )


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
            text = _STATUS_TEXT[transcript.status]
            if transcript.status is TranscriptStatus.QUEUED and transcript.throttled:
                text += " (waiting for a free slot on the account)"
            progress.update(task, description=text, completed=1 if transcript.status.done else 0)

        yield show


async def _ai_summary(
    client: AssemblyAIClient, transcript: Transcript, model: str
) -> render.Summary:
    try:
        answer = await client.chat(render.summary_prompt(transcript), model=model)
    except AssemblyAIError as exc:
        return render.Summary.unavailable(exc.message)
    return render.Summary.from_llm(answer)


async def _write_outputs(client: AssemblyAIClient, transcript: Transcript, out: Outputs) -> None:
    if out.txt:
        out.txt.write_text(render.plain_text(transcript), encoding="utf-8")
    if out.json:
        out.json.write_text(json.dumps(dict(transcript.raw), indent=2), encoding="utf-8")
    if out.srt:
        out.srt.write_text(await client.srt(transcript.id), encoding="utf-8")
    if out.vtt:
        out.vtt.write_text(await client.vtt(transcript.id), encoding="utf-8")
