"""The steps of a job, as functions of the job and what they need (`StepContext`):

    submit   a link, or the platform file streamed into an upload, handed to AssemblyAI
    poll     ask AssemblyAI how the transcript is doing; learn its turnaround when done
    deliver  post the result (or the failure) in the thread, then ✅ or ❌, exactly once

Each step ends in a compare-and-set state change, or raises a `JobOutcome`: `Retry`
(try again later), `Fail` (tell the thread), `Lost` (someone else has the job now).
AssemblyAI's errors are classified here into those outcomes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from bot import assemblyai as aai
from bot import messages, render
from bot.chat import ChatPlatform, FileStream, Post, Reaction
from bot.config import Secret
from bot.engine.feedback import Feedback, Memory, platform_call
from bot.errors import (
    AssemblyAIError,
    AuthenticationError,
    Fail,
    Lost,
    PlatformError,
    RateLimitError,
    RequestTimeout,
    Retry,
    ServerError,
    TransportError,
)
from bot.health import Health
from bot.jobs import DeliveryStep, FileSource, Job, JobFields, JobState, JobStore, UrlSource
from bot.metrics import Metrics
from bot.models import DEFAULT_LLM_MODEL, DEFAULT_SPEECH_MODELS
from bot.polling import PollSchedule
from bot.transcript import Transcript, TranscriptListItem, TranscriptStatus
from bot.urls import UrlPolicy, UrlRefused

log = logging.getLogger(__name__)

WEBHOOK_HEADER: Final = "X-Threadscribe-Webhook-Secret"
TO_SUBMIT: Final = (JobState.RECEIVED, JobState.FETCHING)


@dataclass(frozen=True, slots=True)
class StepSettings:
    """The deployment's choices the steps apply to every job."""

    max_file_bytes: int = 1024 * 1024 * 1024
    speech_models: tuple[str, ...] = DEFAULT_SPEECH_MODELS
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    delete_after_delivery: bool = False
    ai_summary: bool = False
    llm_model: str = DEFAULT_LLM_MODEL
    urls: UrlPolicy = field(default_factory=UrlPolicy)
    #: seconds of audio transcribed at most (MAX_DURATION_MINUTES); None: no limit
    max_duration: float | None = None
    #: a transfer may take `floor` seconds, or as long as `min_rate` bytes a second need
    transfer_floor: float = 120.0
    transfer_min_rate: float = 100_000.0

    @property
    def webhooks(self) -> bool:
        """AssemblyAI is asked to call back: polls are only the fallback."""
        return self.webhook_url is not None and self.webhook_secret is not None

    def transfer_time(self, size: int) -> float:
        """How long moving `size` bytes may take in all, stalls included."""
        return max(self.transfer_floor, size / self.transfer_min_rate)


@dataclass(frozen=True, slots=True)
class StepContext:
    store: JobStore
    client: aai.AssemblyAIClient
    platform: ChatPlatform
    settings: StepSettings
    feedback: Feedback
    memory: Memory
    schedule: PollSchedule
    metrics: Metrics
    owner: str
    health: Health
    #: wake the worker's loop (a job became due)
    wake: Callable[[], None]

    async def moved(
        self,
        job: Job,
        sources: JobState | Iterable[JobState],
        target: JobState,
        *,
        release: bool = False,
        **fields: Any,
    ) -> Job:
        """The job moved to `target`, or `Lost` if someone else changed it meanwhile."""
        checked: JobFields = fields  # type: ignore[assignment]
        moved = await self.store.queue.transition(
            job.id, self.owner, sources, target, release=release, **checked
        )
        if moved is None:
            raise Lost(job.id)
        return moved


# -- submit --------------------------------------------------------------------------------


async def submit(ctx: StepContext, job: Job) -> None:
    """Hand the audio to AssemblyAI and release the job until its first poll.

    Creating a transcript is not idempotent, and an answer can be lost after AssemblyAI
    made (and billed) the transcript, or the bot can be killed in between. So the audio URL
    handed over carries the job's id (an upload URL is unique already; a link gets it in
    its fragment, which no server sees), and it is stored, with the time, before the
    request. A job whose last submission has no recorded answer first looks for its
    transcript at AssemblyAI (`GET /v2/transcript`, newest first) and adopts it.
    """
    await ctx.feedback.announce(job)
    if job.submit_started_at is not None and job.audio_url is not None:
        found = await _recover(ctx, job)
        if found is not None:
            log.info("job %s: adopting transcript %s from a lost answer", job.id, found.id)
            # Its webhook may have come while no job waited for it: poll on the schedule.
            await _submitted(ctx, job, found.id, found.status, webhook=False)
            return
    audio_url = await _link_for(ctx, job)
    if audio_url is None:
        job = await ctx.moved(job, TO_SUBMIT, JobState.FETCHING)
        await ctx.feedback.status(job, messages.status_uploading(), force=True)
        audio_url = await _upload(ctx, job)
    else:
        audio_url = marked(audio_url, job.id)
    job = await ctx.moved(
        job, job.state, job.state, audio_url=audio_url, submit_started_at=ctx.store.now()
    )
    options = transcript_options(job, ctx.settings)
    with _timed(ctx, "submit"):
        try:
            transcript = await ctx.client.submit(audio_url, options)
        except AssemblyAIError as exc:
            raise _judged(ctx, exc) from exc
    ctx.health.key_accepted()
    await _submitted(ctx, job, transcript.id, transcript.status)


async def _submitted(
    ctx: StepContext,
    job: Job,
    transcript_id: str,
    status: TranscriptStatus,
    *,
    webhook: bool | None = None,
) -> None:
    delay = 0.0
    if not status.done:  # an adopted transcript may be finished already
        delay = ctx.schedule.next_delay(
            elapsed=0.0,
            polls=0,
            duration=job.audio_duration,
            status=status,
            model=schedule_model(job, ctx.settings),
            webhook=ctx.settings.webhooks if webhook is None else webhook,
        )
    now = ctx.store.now()
    job = await ctx.moved(
        job,
        TO_SUBMIT,
        JobState.SUBMITTED,
        transcript_id=transcript_id,
        attempts=0,
        polls=0,
        submitted_at=now,
        submit_started_at=None,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    # A webhook that came before the transcript's id was stored (a quick transcript's
    # can) found no job: it is remembered, and taken now that any later one finds the job.
    early = ctx.memory.take_early_webhook(transcript_id)
    await ctx.feedback.status(job, messages.status_transcribing(0.0), force=True)
    # Hand the job back only after that edit: a task that delivered it meanwhile (its
    # webhook came first) would otherwise have its final status overwritten by it. A
    # same-state transition keeps a webhook's make_due.
    if early is None:
        await ctx.store.queue.transition(
            job.id, ctx.owner, JobState.SUBMITTED, JobState.SUBMITTED, release=True
        )
        return
    ctx.metrics.webhooks.inc()
    ctx.memory(job.id).webhook_at = 0.0
    await ctx.store.queue.transition(  # done: poll it now, as a webhook does
        job.id,
        ctx.owner,
        JobState.SUBMITTED,
        JobState.SUBMITTED,
        release=True,
        next_attempt_at=ctx.store.now(),
    )
    ctx.wake()


#: How far back the search for a lost submission looks, besides the clocks' skew.
RECOVERY_PAGES: Final = 5
RECOVERY_SKEW: Final = timedelta(minutes=10)


async def _recover(ctx: StepContext, job: Job) -> TranscriptListItem | None:
    """The transcript an unanswered submission of `job` made, if AssemblyAI has one; any
    further ones (several lost answers) are orphans, deleted so that nothing is billed
    twice for nothing."""
    assert job.submit_started_at is not None
    since = job.submit_started_at - RECOVERY_SKEW
    found: list[TranscriptListItem] = []
    before: str | None = None
    try:
        for _page in range(RECOVERY_PAGES):
            page = await ctx.client.list(limit=100, before_id=before)
            items = page.transcripts
            found += [t for t in items if t.audio_url == job.audio_url]
            if not items or len(items) < page.limit or _created(items[-1]) < since:
                break
            before = items[-1].id
    except AssemblyAIError as exc:
        raise classify(exc) from exc
    if not found:
        return None
    keep, *orphans = sorted(found, key=_created)
    for orphan in orphans:
        log.warning("job %s: deleting transcript %s, a second one for it", job.id, orphan.id)
        await _delete_transcript(ctx, orphan.id)
    return keep


def _created(item: TranscriptListItem) -> datetime:
    moment = datetime.fromisoformat(item.created)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def marked(url: str, job_id: str) -> str:
    """`url` carrying the job's id in its fragment (servers never see a fragment, and
    AssemblyAI keeps the URL as given), so the job's transcript can be found by it."""
    parts = urlsplit(url)
    marker = f"threadscribe-job={job_id}"
    fragment = f"{parts.fragment}&{marker}" if parts.fragment else marker
    return urlunsplit(parts._replace(fragment=fragment))


async def _link_for(ctx: StepContext, job: Job) -> str | None:
    """The URL to hand AssemblyAI as it is, or None to stream the file into an upload:
    a public link as given, or a platform's public link to its file unless AssemblyAI
    already failed to fetch that."""
    if isinstance(job.source, UrlSource):
        # Checked again now: what a host resolves to may have changed since the intake.
        try:
            return await ctx.settings.urls.check(job.source.url)
        except UrlRefused as exc:
            raise Fail(messages.link_refused(job.source.url, str(exc))) from exc
    if job.direct_failed:
        return None
    try:
        return await ctx.platform.public_url(ctx.feedback.where(job), job.source)
    except PlatformError as exc:
        log.info("job %s: no public link (%s); streaming the file", job.id, exc.message)
        return None


class _Refused(Exception):
    """Raised inside the upload stream, so that the upload stops where the file is refused
    (too large, empty) or the platform broke off; `outcome` is what the job is told."""

    def __init__(self, outcome: Fail | Retry) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@dataclass(slots=True)
class _Transfer:
    """Where an upload stands, to blame the right party when it stalls or breaks."""

    sent: int = 0
    waiting_on_platform: bool = False
    refused: Fail | Retry | None = None


async def _upload(ctx: StepContext, job: Job) -> str:
    """Stream the platform's file into AssemblyAI's upload: capped at MAX_FILE_MB on the
    bytes actually sent, bounded in total time (a stall after the headers must not hold a
    slot for ever), and a failure blamed on whoever failed: the platform or AssemblyAI."""
    assert isinstance(job.source, FileSource)
    where = ctx.feedback.where(job)
    platform = ctx.platform.name.value.capitalize()
    stream = await platform_call(ctx.platform.open_file(where, job.source))
    limit = ctx.settings.max_file_bytes
    if stream.size is not None and stream.size > limit:
        raise Fail(messages.too_large(stream.size, limit))
    transfer = _Transfer()

    async def capped() -> AsyncIterator[bytes]:
        chunks = aiter(stream.chunks)
        while True:
            transfer.waiting_on_platform = True
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except PlatformError as exc:
                transfer.refused = (Retry if exc.retryable else Fail)(exc.message)
                raise _Refused(transfer.refused) from exc
            finally:
                transfer.waiting_on_platform = False
            transfer.sent += len(chunk)
            if transfer.sent > limit:
                transfer.refused = Fail(messages.too_large(transfer.sent, limit))
                raise _Refused(transfer.refused)
            yield chunk
        if transfer.sent == 0:
            transfer.refused = Fail(messages.EMPTY_FILE)
            raise _Refused(transfer.refused)

    try:
        return await _send(ctx, stream, capped(), transfer, platform)
    except Retry:
        # Give the slot towards AssemblyAI back while waiting to try again.
        await ctx.moved(job, JobState.FETCHING, JobState.RECEIVED)
        raise


async def _send(
    ctx: StepContext,
    stream: FileStream,
    chunks: AsyncIterator[bytes],
    transfer: _Transfer,
    platform: str,
) -> str:
    budget = ctx.settings.transfer_time(stream.size or ctx.settings.max_file_bytes)
    with _timed(ctx, "upload"):
        try:
            async with asyncio.timeout(budget):
                return await ctx.client.upload(chunks, size=stream.size)
        except _Refused as exc:
            raise exc.outcome from exc
        except TimeoutError as exc:
            if transfer.waiting_on_platform:
                raise Retry(messages.download_stalled(platform, budget)) from exc
            raise Retry(messages.upload_stalled(budget)) from exc
        except AssemblyAIError as exc:
            # The stream refused the file or broke off (the client reports the broken
            # upload): what the thread is told is why, recorded when it happened.
            if transfer.refused is not None:
                raise transfer.refused from exc
            raise classify(exc) from exc


# -- poll ------------------------------------------------------------------------------------


async def poll(ctx: StepContext, job: Job) -> Job:
    """Ask AssemblyAI once; a finished transcript moves the job to completed or failed,
    an unfinished one releases it until the next poll."""
    assert job.transcript_id is not None
    with _timed(ctx, "get"):
        try:
            transcript = await ctx.client.get(job.transcript_id)
        except AssemblyAIError as exc:
            raise _judged(ctx, exc) from exc
        finally:
            ctx.metrics.polls.inc()
    ctx.health.key_accepted()
    # "No spoken audio" is a recording without speech, not a failure: say so.
    transcript = render.without_speech(transcript) or transcript
    polls = job.polls + 1
    now = ctx.store.now()
    elapsed = (now - job.submitted_at).total_seconds() if job.submitted_at else None
    working = ctx.memory(job.id)
    if not transcript.status.done:
        if elapsed is not None:
            working.last_poll = elapsed
        await ctx.feedback.status(job, messages.status_transcribing(elapsed))
        delay = ctx.schedule.next_delay(
            elapsed=elapsed or 0.0,
            polls=polls,
            duration=job.audio_duration,
            status=transcript.status,
            model=schedule_model(job, ctx.settings),
            webhook=ctx.settings.webhooks,
        )
        await ctx.store.queue.poll_later(job.id, ctx.owner, now + timedelta(seconds=delay))
        return replace(job, lease_owner=None, polls=polls)
    previous, working.last_poll = working.last_poll, None
    woken, working.webhook_at = working.webhook_at, None
    if elapsed is not None:
        # Learnt from the length the job was scheduled with (the platform's), so that the
        # next job of that length is aimed from what this one took.
        ctx.schedule.learn(
            duration=job.audio_duration,
            turnaround=woken if woken is not None else elapsed,
            polls=polls,
            previous=previous,
            model=schedule_model(job, ctx.settings),
            exact=woken is not None,
        )
    if _link_refused(job, transcript):
        # AssemblyAI could not fetch the platform's link (expired, say): stream the file.
        log.info("job %s: AssemblyAI could not fetch the link; streaming instead", job.id)
        moved = await ctx.moved(
            job,
            JobState.SUBMITTED,
            JobState.FETCHING,
            direct_failed=True,
            transcript_id=None,
            attempts=0,
            next_attempt_at=now,
            release=True,
        )
        ctx.wake()
        return moved
    if transcript.status is TranscriptStatus.COMPLETED:
        log.info(
            "job %s: transcribed by %s (%s s of audio)",
            job.id,
            transcript.speech_model_used or "an unnamed model",
            transcript.audio_duration,
            extra={"job": job.id, "speech_model": transcript.speech_model_used},
        )
        working.fetched = transcript
        return await ctx.moved(
            job,
            JobState.SUBMITTED,
            JobState.COMPLETED,
            audio_duration=transcript.audio_duration,
            polls=polls,
            attempts=0,
        )
    return await ctx.moved(
        job,
        JobState.SUBMITTED,
        JobState.FAILED,
        last_error=messages.assemblyai_failed(transcript.error),
        polls=polls,
        attempts=0,
    )


# -- deliver ---------------------------------------------------------------------------------


async def deliver(ctx: StepContext, job: Job) -> None:
    """Post the result, or what went wrong, then the final status and reaction, and mark
    the job delivered. Every post is recorded before the next, so a resumed delivery
    skips what was posted already."""
    job = await ctx.feedback.announce(job)
    if job.step_posted(DeliveryStep.RESULT) is None:
        if job.state is JobState.COMPLETED:
            try:
                post = await _result_post(ctx, job)
            except Fail as failure:
                job = await ctx.moved(
                    job, JobState.COMPLETED, JobState.FAILED, last_error=failure.message
                )
                post = Post(messages.failed(failure.message))
        else:
            post = Post(messages.failed(job.last_error or "unknown error"))
        message_id = await ctx.feedback.post(job, DeliveryStep.RESULT, post)
        job = await ctx.store.queue.record_posted(job.id, DeliveryStep.RESULT, message_id) or job
    ok = job.state is JobState.COMPLETED
    final = messages.status_done() if ok else messages.status_failed()
    await ctx.feedback.status(job, final, force=True)
    await ctx.feedback.react(job, Reaction.DONE if ok else Reaction.FAILED)
    delivered = await ctx.store.queue.transition(
        job.id, ctx.owner, job.state, JobState.DELIVERED, release=True
    )
    if delivered is None:
        return
    ctx.memory.forget(job.id)
    ctx.metrics.deliveries.labels(job.platform.value, "ok" if ok else "failed").inc()
    if ctx.settings.delete_after_delivery and job.transcript_id:
        # Awaited, not spawned: a shutdown must not drop it. Best effort all the same.
        await _delete_transcript(ctx, job.transcript_id)


async def _result_post(ctx: StepContext, job: Job) -> Post:
    assert job.transcript_id is not None
    working = ctx.memory(job.id)
    formats = set(job.options.formats)
    try:
        fetched, working.fetched = working.fetched, None
        transcript = fetched or await ctx.client.get(job.transcript_id)
        transcript = render.without_speech(transcript) or transcript
        if not transcript.words:
            formats = set()  # nothing to subtitle (AssemblyAI answers 400 for it)
        srt = await ctx.client.srt(job.transcript_id) if "srt" in formats else None
        vtt = await ctx.client.vtt(job.transcript_id) if "vtt" in formats else None
    except AssemblyAIError as exc:
        raise classify(exc) from exc
    wanted = ctx.settings.ai_summary and bool(transcript.words)  # else about nothing
    summary = await _summary(ctx, transcript) if wanted else None
    up_to = None
    limit = ctx.settings.max_duration
    if job.options.audio_end_at is None and limit is not None:
        # A recording longer than the limit got here only cut at it (see transcript_options).
        up_to = (job.options.audio_start_from or 0) / 1000 + limit
    try:
        document = render.render(transcript, summary=summary, transcribed_up_to=up_to)
        rendered = render.fit(document, ctx.platform.message_limit, srt=srt, vtt=vtt)
    except Exception as exc:
        log.exception("job %s: rendering failed", job.id)
        raise Fail(messages.RENDER_FAILED) from exc
    return Post(rendered.inline, rendered.files, document)


async def _summary(ctx: StepContext, transcript: Transcript) -> render.Summary:
    with _timed(ctx, "chat"):
        try:
            answer = await ctx.client.chat(
                render.summary_prompt(transcript), model=ctx.settings.llm_model
            )
        except AssemblyAIError as exc:
            log.warning("AI summary unavailable: %s", exc.message)
            return render.Summary.unavailable(exc.message)
    return render.Summary.from_llm(answer)


async def _delete_transcript(ctx: StepContext, transcript_id: str) -> None:
    try:
        await ctx.client.delete(transcript_id)
    except AssemblyAIError as exc:
        log.warning("could not delete transcript %s at AssemblyAI: %s", transcript_id, exc.message)


# -- helpers -------------------------------------------------------------------------------


class _timed:
    """Observe an AssemblyAI call's latency, retries included."""

    def __init__(self, ctx: StepContext, call: str) -> None:
        self._histogram = ctx.metrics.assemblyai_latency.labels(call)
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._histogram.observe(time.perf_counter() - self._started)


def transcript_options(job: Job, settings: StepSettings) -> aai.TranscriptOptions:
    opts = job.options
    webhook = settings.webhook_url if settings.webhook_secret is not None else None
    end = opts.audio_end_at
    if end is None and job.audio_duration is None and settings.max_duration is not None:
        # The length is not known before AssemblyAI fetches it (a link, a file the
        # platform did not measure): transcribe up to the limit, and bill no more.
        end = (opts.audio_start_from or 0) + round(settings.max_duration * 1000)
    return aai.TranscriptOptions(
        speech_models=opts.speech_models or settings.speech_models,
        language_code=opts.language_code,
        speaker_labels=opts.speaker_labels,
        speakers_expected=opts.speakers_expected,
        audio_start_from=opts.audio_start_from,
        audio_end_at=end,
        webhook_url=webhook,
        webhook_auth_header_name=WEBHOOK_HEADER if webhook else None,
        webhook_auth_header_value=settings.webhook_secret if webhook else None,
    )


def schedule_model(job: Job, settings: StepSettings) -> str:
    """The speech models a job asks for, as the poll schedule tells turnarounds apart."""
    return ",".join(job.options.speech_models or settings.speech_models)


def _link_refused(job: Job, transcript: Transcript) -> bool:
    """A platform file handed over by link that AssemblyAI could not download."""
    return (
        transcript.status is TranscriptStatus.ERROR
        and isinstance(job.source, FileSource)
        and not job.direct_failed
        and (transcript.error or "").startswith("Download error")
    )


def _judged(ctx: StepContext, exc: AssemblyAIError) -> Retry | Fail:
    """`classify`, noting a rejected key for readiness."""
    if isinstance(exc, AuthenticationError):
        ctx.health.reject_key()
    return classify(exc)


def classify(exc: AssemblyAIError) -> Retry | Fail:
    """What an AssemblyAI error means for the job: try again later, or give up."""
    message = messages.explain(exc)
    if isinstance(exc, AuthenticationError):
        # The deployment's key is wrong (or was rotated), not the job: keep it for later.
        log.error("AssemblyAI rejected the API key: check ASSEMBLYAI_API_KEY")
        return Retry(message)
    if isinstance(exc, RateLimitError):
        return Retry(message, defer=exc.retry_after)
    if isinstance(exc, ServerError | TransportError | RequestTimeout):
        return Retry(message)
    return Fail(message)
