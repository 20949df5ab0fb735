"""The steps of a job, as functions of the job and what they need (`StepContext`):

    submit   a link, or the platform file streamed into an upload, handed to AssemblyAI
    poll     ask AssemblyAI how the transcript is doing; learn its turnaround when done,
             and settle what it cost in the usage ledger
    deliver  post the result (or the failure) in the thread, then ✅ or ❌, exactly once
    purge    a forgotten job: its posts, its transcript at AssemblyAI, then its record

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
from pathlib import PurePosixPath
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bot import assemblyai as aai
from bot import conversation, messages, render, revisions, speakers, summary, vocabulary
from bot.chat import ChatPlatform, Controls, FileStream, Post, Reaction
from bot.config import Secret
from bot.engine.feedback import Feedback, Memory, platform_call
from bot.errors import (
    AssemblyAIError,
    AuthenticationError,
    BadRequestError,
    Fail,
    Lost,
    NotFoundError,
    PlatformError,
    RateLimitError,
    RequestTimeout,
    Retry,
    ServerError,
    TransportError,
)
from bot.health import Health
from bot.jobs import (
    ChannelPreferences,
    DeliveryStep,
    FileSource,
    IntakeRecord,
    Job,
    JobFields,
    JobState,
    JobStore,
    Platform,
    UrlSource,
    month_start,
    next_month,
)
from bot.metrics import Metrics
from bot.models import DEFAULT_LLM_MODEL, DEFAULT_SPEECH_MODELS
from bot.polling import PollSchedule
from bot.render import RenderedFile
from bot.transcript import Transcript, TranscriptListItem, TranscriptStatus, Translation
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
    ai_summary: bool = True
    llm_model: str = DEFAULT_LLM_MODEL
    #: transcript characters per summary request (long recordings: several, combined)
    summary_part_chars: int = conversation.PART_CHARS
    urls: UrlPolicy = field(default_factory=UrlPolicy)
    #: seconds of audio transcribed at most (MAX_DURATION_MINUTES); None: no limit
    max_duration: float | None = None
    #: a transfer may take `floor` seconds, or as long as `min_rate` bytes a second need
    transfer_floor: float = 120.0
    transfer_min_rate: float = 100_000.0
    #: hours each workspace may transcribe per month (for the admins' alerts)
    budget_hours: float | None = None
    #: the largest redacted audio the bot downloads to post it (a link beyond)
    redacted_audio_bytes: int = 50_000_000

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
    reuse = job.options.reuse_transcript and job.redo_of is not None
    if reuse and job.transcript_id is None and await _adopt(ctx, job):
        return
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
    prefs = await _preferences(ctx, job)
    people = await _people(ctx, job, prefs)
    job = await ctx.moved(
        job,
        job.state,
        job.state,
        audio_url=audio_url,
        submit_started_at=ctx.store.now(),
        people=[[p.id, p.name] for p in people],
    )
    options = transcript_options(job, ctx.settings, prefs)
    with _timed(ctx, "submit"):
        try:
            transcript = await ctx.client.submit(audio_url, options)
        except AssemblyAIError as exc:
            raise _judged(ctx, exc) from exc
    ctx.health.key_accepted()
    await _submitted(ctx, job, transcript.id, transcript.status)


async def _adopt(ctx: StepContext, job: Job) -> bool:
    """A redo that changes only how the transcript is shown takes over the transcript of
    the job it redoes, instead of paying for a new one. False when there is none to take
    (another redo took it): the job is then transcribed afresh."""
    assert job.redo_of is not None
    adopted = await ctx.store.queue.adopt_transcript(job.id, ctx.owner, job.redo_of)
    if adopted is None:
        current = await ctx.store.get(job.id)
        if current is None or current.lease_owner != ctx.owner:
            raise Lost(job.id)
        log.info("job %s: nothing to take over from job %s; transcribing", job.id, job.redo_of)
        return False
    await ctx.feedback.status(adopted, messages.status_updating(), force=True)
    await ctx.store.queue.transition(
        adopted.id, ctx.owner, JobState.SUBMITTED, JobState.SUBMITTED, release=True
    )
    ctx.wake()
    return True


async def _preferences(ctx: StepContext, job: Job) -> ChannelPreferences:
    channel = job.options.settings_channel or job.channel
    return await ctx.store.preferences.get(job.platform, job.workspace, channel)


async def _people(
    ctx: StepContext, job: Job, prefs: ChannelPreferences
) -> tuple[speakers.Person, ...]:
    """The names to offer speaker identification: the platform's people for the thread,
    as the API takes them. Names are a nicety: when the platform cannot say, the job goes
    on without them."""
    if prefs.names is False or not job.options.speaker_labels:
        return ()
    try:
        found = await ctx.platform.people(ctx.feedback.where(job))
    except PlatformError as exc:
        log.info("job %s: no speaker names (%s)", job.id, exc.message)
        return ()
    return speakers.candidates(found)


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
        if ctx.settings.delete_after_delivery:
            # An orphan once the job moves on: nothing will ever deliver or delete it.
            await _delete_transcript(ctx, transcript.id)
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
        billed, model = transcript.billed_seconds, transcript.speech_model_used
        if job.options.reuse_transcript and job.submit_started_at is None:
            billed = 0.0  # taken over from the job it redoes, which was billed for it
        # Settled before the move, so that a crash in between settles it again, the same.
        await settle(ctx, job, billed, model)
        return await ctx.moved(
            job,
            JobState.SUBMITTED,
            JobState.COMPLETED,
            audio_duration=transcript.audio_duration,
            polls=polls,
            attempts=0,
            billed_seconds=billed,
            speech_model=model,
        )
    await settle(ctx, job, 0.0, None)  # AssemblyAI bills completed transcripts only
    return await ctx.moved(
        job,
        JobState.SUBMITTED,
        JobState.FAILED,
        last_error=messages.assemblyai_failed(transcript.error),
        polls=polls,
        attempts=0,
        billed_seconds=0.0,
    )


# -- usage -----------------------------------------------------------------------------------


async def settle(ctx: StepContext, job: Job, billed: float, model: str | None) -> None:
    """Record what the job cost (the ledger, the metrics), and tell the workspace's admins
    when that takes the month past 80 % or 100 % of its budget."""
    changed = await ctx.store.usage.settle(job.id, billed, model)
    if not changed or billed <= 0:
        return
    labels = (model or "unknown", job.platform.value, job.workspace)
    ctx.metrics.audio_seconds.labels(*labels).inc(billed)
    await _budget_alerts(ctx, job.platform, job.workspace)


#: Shares of the monthly budget at which admins are told, largest first.
ALERTS: Final = (100, 80)


async def _budget_alerts(ctx: StepContext, platform: Platform, workspace: str) -> None:
    hours = ctx.settings.budget_hours
    if hours is None:
        return
    now = ctx.store.now()
    billed = await ctx.store.usage.billed_since(platform, workspace, month_start(now))
    share = billed / (hours * 3600.0)
    for percent in ALERTS:
        if share * 100 >= percent:
            await _alert_once(ctx, platform, workspace, percent, billed)
            return


async def _alert_once(
    ctx: StepContext, platform: Platform, workspace: str, percent: int, billed: float
) -> None:
    """Tell the admins, once per workspace, month and threshold (whichever replica gets
    there first); a 100 % alert makes the 80 % one pointless."""
    hours = ctx.settings.budget_hours
    assert hours is not None
    now = ctx.store.now()
    month = f"{now:%Y-%m}"
    key = f"budget:{platform}:{workspace}:{month}:{percent}"
    first = await ctx.store.notices.first(key)
    if percent >= 100:
        await ctx.store.notices.first(f"budget:{platform}:{workspace}:{month}:80")
    if not first:
        return
    text = messages.budget_alert(percent, hours, billed, next_month(now))
    log.info("telling %s's admins the budget is %d %% used", workspace, percent)
    try:
        await ctx.platform.notify_admins(workspace, text)
    except PlatformError as exc:
        log.warning("could not tell %s's admins about the budget: %s", workspace, exc.message)


async def budget_used_up(ctx: StepContext, record: IntakeRecord) -> None:
    """A recording was refused for the budget: the admins hear of it (once a month)."""
    now = ctx.store.now()
    billed = await ctx.store.usage.billed_since(record.platform, record.workspace, month_start(now))
    try:
        await _alert_once(ctx, record.platform, record.workspace, 100, billed)
    except Exception:
        log.warning("budget alert for %s failed", record.workspace, exc_info=True)


# -- deliver ---------------------------------------------------------------------------------


async def deliver(ctx: StepContext, job: Job) -> None:
    """Post the result, or what went wrong, then the final status and reaction, and mark
    the job delivered. Every post is recorded before the next, so a resumed delivery
    skips what was posted already.

    A redo's result replaces the result it redoes (an edit in place, under the redo's own
    key); a redo that fails says so in a new reply and leaves that result as it was."""
    job = await ctx.feedback.announce(job)
    if job.step_posted(DeliveryStep.RESULT) is None:
        if job.state is JobState.COMPLETED:
            try:
                post, shown = await _result_post(ctx, job)
                # Recorded before the post: a rename needs them after any restart.
                job = await ctx.moved(job, JobState.COMPLETED, JobState.COMPLETED, speakers=shown)
            except Fail as failure:
                job = await ctx.moved(
                    job, JobState.COMPLETED, JobState.FAILED, last_error=failure.message
                )
                post = _failure_post(ctx, job, failure.message)
        else:
            post = _failure_post(ctx, job, job.last_error or "unknown error")
        replaces = job.options.replaces if job.state is JobState.COMPLETED else None
        if replaces is not None:
            message_id = await ctx.feedback.replace(job, replaces, post)
        else:
            message_id = await ctx.feedback.post(job, DeliveryStep.RESULT, post)
        job = await ctx.store.queue.record_posted(job.id, DeliveryStep.RESULT, message_id) or job
        ctx.memory(job.id).result_post = post
    if ctx.settings.delete_after_delivery:
        job = await _delete_after_delivery(ctx, job)
    ok = job.state is JobState.COMPLETED
    redo = job.redo_of is not None
    if ok:
        final = messages.status_redone() if redo else messages.status_done()
    else:
        final = messages.status_redo_failed() if redo else messages.status_failed()
    await ctx.feedback.status(job, final, force=True)
    if ok or not redo:  # a failed redo leaves the result it would have replaced, and its ✅
        await ctx.feedback.react(job, Reaction.DONE if ok else Reaction.FAILED)
    delivered = await ctx.store.queue.transition(
        job.id, ctx.owner, job.state, JobState.DELIVERED, release=True
    )
    if delivered is None:
        return
    ctx.memory.forget(job.id)
    ctx.metrics.deliveries.labels(job.platform.value, "ok" if ok else "failed").inc()


async def _delete_after_delivery(ctx: StepContext, job: Job) -> Job:
    """DELETE_AFTER_DELIVERY, once the result (or the failure) is posted: the transcript is
    deleted at AssemblyAI (with its upload), any transcript a lost submission left behind
    too, and the post gets its receipt. Done before the job is marked delivered, so that a
    crash in between does it again; AssemblyAI deleting twice is harmless. Best effort: a
    failed deletion is logged, and the job is delivered all the same."""
    if job.transcript_deleted_at is not None:
        return job
    post = ctx.memory(job.id).result_post
    if post is None and job.state is JobState.COMPLETED:
        post = await _post_again(ctx, job)  # after a restart: rendered while it exists
    elif post is None:
        post = Post(messages.failed(job.last_error or "unknown error"))
    deleted = await clean_up(ctx, job, posted=True)
    if not deleted:
        return job
    job = await ctx.moved(job, job.state, job.state, transcript_deleted_at=ctx.store.now())
    result_id = job.step_posted(DeliveryStep.RESULT)
    if post is not None and result_id is not None:
        try:
            await ctx.platform.edit(
                ctx.feedback.where(job),
                result_id,
                with_receipt(post, ctx.platform.message_limit),
                key=f"{job.id}:{DeliveryStep.RESULT}",
            )
        except PlatformError as exc:
            log.info("job %s: the deletion receipt was not added: %s", job.id, exc.message)
    return job


async def _post_again(ctx: StepContext, job: Job) -> Post | None:
    """The result post rebuilt from AssemblyAI, None when that cannot be done (it was
    deleted meanwhile by an attempt that did not get to record it)."""
    try:
        post, _shown = await _result_post(ctx, job)
        return post
    except (Fail, Retry) as exc:
        log.info("job %s: the result cannot be rebuilt for its receipt: %s", job.id, exc)
        return None


def with_receipt(post: Post, limit: int) -> Post:
    """`post` with the deletion receipt in its small print."""
    if post.document is None:
        return Post(f"{post.text}\n{messages.DELETED_RECEIPT}", post.files, None, post.controls)
    document = render.with_footer(post.document, messages.DELETED_RECEIPT)
    rendered = render.fit(document, limit)
    return Post(rendered.inline, post.files, document, post.controls)


async def clean_up(ctx: StepContext, job: Job, *, posted: bool) -> bool:
    """Delete at AssemblyAI what this job left there when DELETE_AFTER_DELIVERY is on (or
    it is forgotten): its transcript, and any a submission without a recorded answer
    made (found by the job's audio URL). Whether its own transcript is gone. `posted`:
    whether the thread got the result (an undeliverable job's is only logged)."""
    if not (ctx.settings.delete_after_delivery or job.state is JobState.FORGOTTEN):
        return False
    if job.transcript_id is None and job.submit_started_at is not None and job.audio_url:
        try:
            found = await _recover(ctx, job)  # deletes any further copies itself
        except (Retry, Fail) as exc:
            log.warning("job %s: could not look for a lost transcript: %s", job.id, exc)
            found = None
        if found is not None:
            log.info("job %s: deleting transcript %s a lost answer left", job.id, found.id)
            await _delete_transcript(ctx, found.id)
    if job.transcript_id is None:
        return False
    deleted = await _delete_transcript(ctx, job.transcript_id)
    if deleted and not posted:
        log.info("job %s: transcript %s deleted at AssemblyAI", job.id, job.transcript_id)
    return deleted


def _failure(job: Job, reason: str) -> str:
    return messages.redo_failed(reason) if job.redo_of is not None else messages.failed(reason)


def _failure_post(ctx: StepContext, job: Job, reason: str) -> Post:
    """A failure notice, with Redo: the same recording again, or with another language,
    speaker count or model (what a wrong guess of those makes fail). Nothing to rename."""
    menu = revisions.redo_menu(job, job.options.language_code, ctx.settings.speech_models)
    return Post(_failure(job, reason), controls=Controls(job.id, rename=False, redo=menu))


async def _result_post(ctx: StepContext, job: Job) -> tuple[Post, list[list[str]]]:
    """The result, and the speakers it shows ([speaker, label], in order)."""
    assert job.transcript_id is not None
    working = ctx.memory(job.id)
    formats = set(job.options.formats)
    try:
        fetched, working.fetched = working.fetched, None
        transcript = fetched or await ctx.client.get(job.transcript_id)
        if transcript.deleted:
            # Deleted at AssemblyAI meanwhile: what is left is a scrub, nothing to show.
            raise Fail(messages.TRANSCRIPT_DELETED)
        transcript = render.without_speech(transcript) or transcript
        if not transcript.words:
            formats = set()  # nothing to subtitle (AssemblyAI answers 400 for it)
        srt = await ctx.client.srt(job.transcript_id) if "srt" in formats else None
        vtt = await ctx.client.vtt(job.transcript_id) if "vtt" in formats else None
    except AssemblyAIError as exc:
        raise classify(exc) from exc
    prefs = await _preferences(ctx, job)
    people = tuple(speakers.Person(i, n) for i, n in job.people)
    shown = speakers.Speakers.of(transcript, people, job.options.renames)
    notes = (
        [messages.redone(job.options.redo_note)] if job.redo_of and job.options.redo_note else []
    )
    if prefs.keyterms:
        models = job.options.speech_models or ctx.settings.speech_models
        _sent, left_out = vocabulary.for_request(prefs.keyterms, models)
        if left_out:
            notes.append(left_out)
    translation = await _translation(ctx, job, transcript, notes)
    wanted = ctx.settings.ai_summary if prefs.summary is None else prefs.summary
    outcome = None
    if wanted and transcript.words:  # else about nothing
        language = render.language_name(translation.language) if translation else None
        with _timed(ctx, "chat"):
            outcome = await summary.summarise(
                ctx.client,
                conversation.lines(transcript, shown),
                model=ctx.settings.llm_model,
                language=language,
                part_chars=ctx.settings.summary_part_chars,
            )
    up_to = None
    sent_end = transcript.raw.get("audio_end_at")
    if job.options.audio_end_at is None and isinstance(sent_end, int | float):
        # A recording longer than the limit got here only cut at it (see transcript_options).
        up_to = sent_end / 1000
    footer = []
    budget_cut = (job.budget_seconds or float("inf")) < (ctx.settings.max_duration or float("inf"))
    if up_to is not None and budget_cut and (transcript.audio_duration or 0) > up_to:
        footer.append(messages.cut_by_budget(up_to))
    redaction = job.options.redaction
    if redaction is not None:
        footer.append(render.redaction_note(transcript, redaction.policies, redaction.substitution))
    audio = await _redacted_audio(ctx, job) if redaction is not None and redaction.audio else None
    if isinstance(audio, str):
        footer.append(audio)
    try:
        document = render.render(
            transcript,
            summary=outcome,
            transcribed_up_to=up_to,
            speakers=shown,
            translation=translation,
            notes=notes,
            footer=footer,
        )
        rendered = render.fit(document, ctx.platform.message_limit, srt=srt, vtt=vtt)
    except Exception as exc:
        log.exception("job %s: rendering failed", job.id)
        raise Fail(messages.RENDER_FAILED) from exc
    order = speakers.order(transcript)
    controls = Controls(
        job.id,
        rename=bool(order) and not ctx.settings.delete_after_delivery,
        redo=revisions.redo_menu(job, transcript.language_code, ctx.settings.speech_models),
    )
    files = (*rendered.files, audio) if isinstance(audio, RenderedFile) else rendered.files
    post = Post(rendered.inline, files, document, controls)
    return post, [[speaker, shown.label(speaker)] for speaker in order]


async def _redacted_audio(ctx: StepContext, job: Job) -> RenderedFile | str:
    """The PII-redacted copy of the audio, to post with the result: the file when it is
    small enough for the platform, else a line with its link (AssemblyAI keeps it 24
    hours), or a line saying why there is none. Fetched through the URL policy, like any
    link, and never with the API key."""
    assert job.transcript_id is not None
    try:
        url = await ctx.client.redacted_audio(job.transcript_id)
    except BadRequestError as exc:
        return messages.redacted_audio_unavailable(exc.message)
    except AssemblyAIError as exc:
        raise classify(exc) from exc
    if url is None:
        raise Retry("AssemblyAI is still making the redacted audio", defer=5.0)
    limit = min(ctx.platform.file_limit, ctx.settings.redacted_audio_bytes)
    name = "redacted-audio" + (PurePosixPath(urlsplit(url).path).suffix or ".mp3")
    policy = ctx.settings.urls
    try:
        async with policy.session() as session, policy.request(session, "GET", url) as resp:
            if resp.status != 200:
                return messages.redacted_audio_unavailable(f"HTTP {resp.status} from its link")
            if (resp.content_length or 0) > limit:
                return messages.redacted_audio_link(url)
            data = bytearray()
            async for chunk in resp.content.iter_chunked(256 * 1024):
                data += chunk
                if len(data) > limit:
                    return messages.redacted_audio_link(url)
    except UrlRefused as exc:
        return messages.redacted_audio_unavailable(str(exc))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Retry(f"could not fetch the redacted audio ({type(exc).__name__})") from exc
    mime = "audio/wav" if name.endswith(".wav") else "audio/mpeg"
    return RenderedFile(name, bytes(data), mime)


async def _translation(
    ctx: StepContext, job: Job, transcript: Transcript, notes: list[str]
) -> Translation | None:
    """The translation asked for (Speech Understanding on the LLM Gateway), or None with
    a note saying why there is none: the transcript goes out either way."""
    language = job.options.translate_to
    if language is None or not transcript.words:
        return None
    if (transcript.language_code or "").split("_")[0] == language.split("_")[0]:
        return None  # already in that language
    assert job.transcript_id is not None
    try:
        with _timed(ctx, "understanding"):
            translation = await ctx.client.translate(job.transcript_id, language, attempts=2)
    except RequestTimeout:
        notes.append(messages.translation_failed("the LLM Gateway did not answer in time"))
        return None
    except AssemblyAIError as exc:
        log.warning("job %s: translation unavailable: %s", job.id, exc.message)
        notes.append(messages.translation_failed(exc.message))
        return None
    if not translation.utterances and not translation.text:
        notes.append(messages.translation_failed("AssemblyAI returned no translation"))
        return None
    return translation


async def _delete_transcript(ctx: StepContext, transcript_id: str) -> bool:
    """Delete a transcript at AssemblyAI (its upload goes with it); whether it is gone."""
    try:
        await ctx.client.delete(transcript_id)
    except NotFoundError:
        return True  # no such transcript any more
    except AssemblyAIError as exc:
        log.warning("could not delete transcript %s at AssemblyAI: %s", transcript_id, exc.message)
        return False
    return True


# -- purge (forget) --------------------------------------------------------------------------


async def purge(ctx: StepContext, job: Job) -> None:
    """A forgotten job: the bot's posts go (and its reaction), then its transcript at
    AssemblyAI once AssemblyAI has finished it (one still being made cannot be deleted:
    it is polled until it is done), then the job's row with every id it held. The usage
    ledger keeps what it cost."""
    posted = [message for message in job.posted.values() if message]
    try:
        await ctx.platform.erase(ctx.feedback.where(job), posted)
    except PlatformError as exc:
        if exc.retryable:
            raise Retry(exc.message) from exc
        # The channel is gone, or the bot was removed: nothing of it can be shown there.
        log.info("job %s: its posts could not be removed: %s", job.id, exc.message)
    transcript_id = job.transcript_id
    if transcript_id is None and job.submit_started_at is not None and job.audio_url:
        # A submission was under way: AssemblyAI may have made a transcript for it.
        found = await _recover(ctx, job)
        if found is not None:
            transcript_id = found.id
            job = await ctx.moved(job, job.state, job.state, transcript_id=found.id)
    if transcript_id is not None and job.transcript_deleted_at is None:
        try:
            transcript = await ctx.client.get(transcript_id)
        except NotFoundError:
            transcript = None
        except AssemblyAIError as exc:
            raise classify(exc) from exc
        if transcript is not None and not transcript.status.done:
            delay = ctx.schedule.next_delay(
                elapsed=0.0, polls=job.polls, duration=job.audio_duration, status=transcript.status
            )
            await ctx.store.queue.poll_later(
                job.id, ctx.owner, ctx.store.now() + timedelta(seconds=max(delay, 1.0))
            )
            return
        if transcript is not None and not transcript.deleted:
            await settle(ctx, job, transcript.billed_seconds, transcript.speech_model_used)
            if not await _delete_transcript(ctx, transcript_id):
                raise Retry("the transcript could not be deleted at AssemblyAI yet")
    await ctx.store.usage.settle(job.id, 0.0, None, only_unsettled=True)
    ctx.memory.forget(job.id)
    await ctx.store.delete(job.id)
    ctx.metrics.deliveries.labels(job.platform.value, "forgotten").inc()
    log.info("job %s purged: its posts, its transcript and its record are gone", job.id)


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


def transcript_options(
    job: Job, settings: StepSettings, prefs: ChannelPreferences | None = None
) -> aai.TranscriptOptions:
    """The request for `job`: its options over the deployment's, with the channel's
    vocabulary (when it fits the models' limits) and the people to name speakers by."""
    opts = job.options
    prefs = prefs or ChannelPreferences()
    models = opts.speech_models or settings.speech_models
    keyterms, _note = vocabulary.for_request(prefs.keyterms, models)
    webhook = settings.webhook_url if settings.webhook_secret is not None else None
    end = opts.audio_end_at
    cap = _cap(job, settings)
    if end is None and job.audio_duration is None and cap is not None:
        # The length is not known before AssemblyAI fetches it (a link, a file the
        # platform did not measure): transcribe up to the limit (the duration limit, or
        # what the month's budget had left), and bill no more.
        end = (opts.audio_start_from or 0) + round(cap * 1000)
    redaction = opts.redaction
    return aai.TranscriptOptions(
        speech_models=models,
        language_code=opts.language_code,
        speaker_labels=opts.speaker_labels,
        speakers_expected=opts.speakers_expected,
        audio_start_from=opts.audio_start_from,
        audio_end_at=end,
        keyterms=keyterms,
        spellings=prefs.spellings,
        speaker_names=tuple(name for _id, name in job.people),
        webhook_url=webhook,
        webhook_auth_header_name=WEBHOOK_HEADER if webhook else None,
        webhook_auth_header_value=settings.webhook_secret if webhook else None,
        redact_pii_policies=redaction.policies if redaction else (),
        redact_pii_sub=redaction.substitution if redaction else None,
        redact_pii_audio=bool(redaction and redaction.audio),
    )


def schedule_model(job: Job, settings: StepSettings) -> str:
    """The speech models a job asks for, as the poll schedule tells turnarounds apart."""
    return ",".join(job.options.speech_models or settings.speech_models)


def _cap(job: Job, settings: StepSettings) -> float | None:
    """The most seconds a job of unknown length may transcribe: MAX_DURATION_MINUTES, or
    less when the monthly budget had less left when it was taken in."""
    limits = [c for c in (settings.max_duration, job.budget_seconds) if c is not None]
    return min(limits) if limits else None


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
