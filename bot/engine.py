"""The job engine: intake -> submit -> wait (webhook or poll) -> render -> deliver; resume.

Every step of a job runs under a lease taken from the store, so one replica (and one task)
works on a job at a time, and a job whose holder died is picked up when its lease runs
out. Each step ends in a compare-and-set state change or a release with the time the job
is next due (a retry with backoff, the next poll), so a restart at any point continues
from the last recorded state. Delivery records every posted message id before the job
becomes `delivered`, so a crash mid-delivery resumes without posting twice.

The loop is driven by the store, not by memory: `run_until_idle()` drains it for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from bot import assemblyai as aai
from bot import messages, render
from bot.chat import ChatPlatform, Post, Reaction, ThreadRef
from bot.config import Secret
from bot.errors import FileUnavailable, PlatformError
from bot.jobs import (
    FileSource,
    IntakeRecord,
    Job,
    JobState,
    JobStore,
    Limits,
    Platform,
    Refusal,
    UrlSource,
)
from bot.metrics import Metrics
from bot.models import DEFAULT_LLM_MODEL, DEFAULT_SPEECH_MODELS
from bot.polling import PollSchedule
from bot.transcript import Transcript, TranscriptStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

WEBHOOK_HEADER: Final = "X-Threadscribe-Webhook-Secret"
_TO_SUBMIT: Final = (JobState.RECEIVED, JobState.FETCHING)
_UNFINISHED: Final = tuple(state for state in JobState if state is not JobState.DELIVERED)
# New jobs wait for a free slot towards AssemblyAI; every other unfinished job already
# holds one (or needs none), so it is claimed whenever it is due.
_GATED: Final = (JobState.RECEIVED,)
_UNGATED: Final = tuple(state for state in _UNFINISHED if state not in _GATED)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    concurrency: int = 5  # jobs uploading or at AssemblyAI at once (the free tier runs 5)
    per_user: int = 3  # unfinished jobs one person may have
    per_channel: int = 10  # unfinished jobs one channel may have
    max_file_bytes: int = 1024 * 1024 * 1024
    max_duration: float = 4 * 3600.0  # seconds
    speech_models: tuple[str, ...] = DEFAULT_SPEECH_MODELS
    webhook_url: str | None = None
    webhook_secret: Secret | None = field(default=None, repr=False)
    delete_after_delivery: bool = False
    ai_summary: bool = False
    llm_model: str = DEFAULT_LLM_MODEL
    lease: float = 30.0  # a job whose holder died is picked up again after this
    max_attempts: int = 6  # submission attempts before a job fails
    max_delivery_attempts: int = 40  # about three hours of backoff before giving up a thread
    retry_base: float = 2.0
    retry_cap: float = 300.0
    status_interval: float = 5.0  # at most one status edit per job this often
    idle: float = 5.0  # longest sleep between looks at the store
    max_tasks: int = 256  # jobs worked on at once by this process (mostly I/O waits)
    shutdown_grace: float = 20.0


@dataclass(frozen=True, slots=True)
class IntakeOutcome:
    job: Job | None
    created: bool
    #: why the intake was refused (a limit), for the person who asked; None if accepted
    refused: str | None = None


class _Retry(Exception):
    """This step should run again later; `message` explains the last failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Lost(Exception):
    """The job changed under us (lease lost, or another writer won): stop working on it."""


class _Fail(Exception):
    """The job cannot succeed; `message` is what the thread is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        store: JobStore,
        client: aai.AssemblyAIClient,
        platforms: Mapping[Platform, ChatPlatform],
        config: EngineConfig | None = None,
        *,
        owner: str | None = None,
        metrics: Metrics | None = None,
        schedule: PollSchedule | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.platforms = dict(platforms)
        self.config = config or EngineConfig()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.metrics = metrics or Metrics()
        self.schedule = schedule or PollSchedule()
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # job id -> task working on it
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._accepting = True
        self._stopping = False
        self._last_status: dict[str, float] = {}  # job id -> monotonic time of last edit
        self._submitted: dict[str, float] = {}  # job id -> monotonic submission time
        # Jobs this process took from the queue that have not reached FETCHING/SUBMITTED
        # in the store yet: they already hold a slot towards AssemblyAI.
        self._starting: set[str] = set()
        self._announcing = asyncio.Semaphore(4)
        # job id -> the finished transcript its poll just fetched, for the delivery that
        # follows in the same task (so it is not fetched a second time)
        self._fetched: dict[str, Transcript] = {}
        self._last_poll: dict[str, float] = {}  # job id -> seconds after submission

    # -- intake ------------------------------------------------------------------------

    async def intake(self, record: IntakeRecord) -> IntakeOutcome:
        """Persist a trigger as a job (idempotent on its dedupe key), or refuse it with a
        reason when a limit is exceeded. Call before acknowledging the platform."""
        if not self._accepting:
            return IntakeOutcome(None, False, messages.SHUTTING_DOWN)
        refused = self._refusal(record)
        if refused is not None:
            self.metrics.intakes.labels(record.platform.value, "refused").inc()
            return IntakeOutcome(None, False, refused)
        # Limits and the insert in one transaction, grouped with concurrent intakes.
        limits = Limits(self.config.per_user, self.config.per_channel)
        admission = await self.store.admit(record, limits)
        if admission.job is None:
            self.metrics.intakes.labels(record.platform.value, "refused").inc()
            return IntakeOutcome(None, False, self._refusal_text(admission.refusal))
        job, created = admission.job, admission.created
        self.metrics.intakes.labels(record.platform.value, "created" if created else "dupe").inc()
        if created:
            self._spawn_side(self._announce_new(job))
        return IntakeOutcome(job, created)

    def _refusal(self, record: IntakeRecord) -> str | None:
        """Limits known before any I/O: size and duration, where the platform gave them."""
        size = _source_size(record)
        if size is not None and size > self.config.max_file_bytes:
            return messages.too_large(size, self.config.max_file_bytes)
        if size == 0:
            return messages.EMPTY_FILE
        if record.audio_duration is not None and record.audio_duration > self.config.max_duration:
            return messages.too_long(record.audio_duration, self.config.max_duration)
        return None

    def _refusal_text(self, refusal: Refusal | None) -> str:
        if refusal is Refusal.CHANNEL_LIMIT:
            return messages.channel_limit(self.config.per_channel)
        return messages.user_limit(self.config.per_user)

    async def _announce_new(self, job: Job) -> None:
        """React and post the status message for a new job, under a short lease so that a
        worker claiming the job meanwhile does not announce it too."""
        # A handful at a time: under a burst of events the intakes (which Slack and Discord
        # are waiting on) go first, and the ⏳ feedback follows within a moment.
        async with self._announcing:
            await self._announce_leased(job)

    async def _announce_leased(self, job: Job) -> None:
        try:
            leased = await self.store.lease(job.id, self.owner, lease_seconds=self.config.lease)
            if leased is None:
                return  # a worker has it already and announces it itself
            try:
                await self._announce(leased)
            finally:
                await self.store.release(job.id, self.owner, leased.next_attempt_at)
                self._wake.set()
        except Exception:
            # The worker announces it when it takes the job; nothing is lost.
            log.warning("could not announce job %s", job.id, exc_info=True)

    # -- webhooks ----------------------------------------------------------------------

    def webhook_authorised(self, presented: str | None) -> bool:
        secret = self.config.webhook_secret
        if secret is None or presented is None:
            return False
        return hmac.compare_digest(presented.encode(), secret.value.encode())

    async def webhook(self, transcript_id: str) -> bool:
        """AssemblyAI says the transcript is done: make its job due now. Returns whether a
        job was waiting for it (a replay, or an unknown id, changes nothing)."""
        job = await self.store.get_by_transcript_id(transcript_id)
        if job is None or job.state is not JobState.SUBMITTED:
            return False
        self.metrics.webhooks.inc()
        # Start on it here and now when this process has room, rather than on the loop's
        # next turn; if someone holds it (a poll under way), it is made due for them.
        room = len(self._tasks) < self.config.max_tasks and not self._stopping
        if room and job.id not in self._tasks:
            taken = await self.store.claim_now(job.id, self.owner, lease_seconds=self.config.lease)
            if taken is not None:
                self._start_all([taken])
                return True
        await self.store.make_due(job.id)
        self._wake.set()
        return True

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="engine-loop")

    async def stop(self) -> None:
        """Stop taking work, let running steps reach a safe point within the grace period,
        then cancel what is left (its leases run out and another run resumes it)."""
        self._accepting = False
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        pending = [*self._tasks.values(), *self._side_tasks]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=self.config.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def run_until_idle(self) -> None:
        """Process jobs until every one is delivered and nothing runs (for tests); bound it
        with `asyncio.timeout` at the call site."""
        platforms = list(self.platforms)
        while True:
            started = await self._dispatch()
            busy = [*self._tasks.values(), *self._side_tasks]
            if busy:
                await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                continue
            if started:
                continue
            if await self.store.next_due(_UNFINISHED, platforms=platforms) is None:
                return
            wait = await self._next_due_in()
            await asyncio.sleep(self.config.idle if wait is None else min(wait, self.config.idle))

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self._dispatch()
                wait = await self._next_due_in()
            except Exception:
                log.exception("engine loop error; retrying shortly")
                wait = 1.0
            timeout = self.config.idle if wait is None else min(wait, self.config.idle)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()

    async def _free_slots(self) -> int:
        busy = await self.store.count(JobState.FETCHING, JobState.SUBMITTED)
        return self.config.concurrency - busy - len(self._starting)

    async def _next_due_in(self) -> float | None:
        """Seconds until a job this process could claim becomes due (None: none waits)."""
        if len(self._tasks) >= self.config.max_tasks:
            return None  # no room: a finishing task wakes the loop
        states = _UNFINISHED if await self._free_slots() > 0 else _UNGATED
        when = await self.store.next_due(states, platforms=list(self.platforms))
        if when is None:
            return None
        return max(0.0, (when - _now()).total_seconds())

    async def _dispatch(self) -> int:
        """Claim what is due and start a task per job; returns how many were started."""
        if self._stopping:
            return 0
        platforms = list(self.platforms)
        started = 0
        room = self.config.max_tasks - len(self._tasks)
        if room > 0:
            jobs = await self.store.claim(
                self.owner,
                lease_seconds=self.config.lease,
                states=_UNGATED,
                limit=room,
                platforms=platforms,
            )
            started += self._start_all(jobs)
        # FIFO towards AssemblyAI: the oldest waiting jobs get the free slots.
        slots = min(self.config.max_tasks - len(self._tasks), await self._free_slots())
        if slots > 0:
            jobs = await self.store.claim(
                self.owner,
                lease_seconds=self.config.lease,
                states=_GATED,
                limit=slots,
                platforms=platforms,
            )
            self._starting.update(job.id for job in jobs)
            started += self._start_all(jobs)
        return started

    def _start_all(self, jobs: list[Job]) -> int:
        started = 0
        for job in jobs:
            running = self._tasks.get(job.id)
            if running is not None and not running.done():
                continue  # its step outlived the lease; it ends by itself
            task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
            self._tasks[job.id] = task
            started += 1
        return started

    def _spawn_side(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- one job -----------------------------------------------------------------------

    async def _run_job(self, job: Job) -> None:
        try:
            async with self._renewing(job):
                await self._advance(job)
        except asyncio.CancelledError:
            # Shutdown ran out of patience: hand the job back now rather than letting the
            # next process wait for the lease to run out.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(job.id, self.owner, _now()))
            raise
        except Exception:
            log.exception("job %s: unexpected error", job.id)
            await self._release_after_error(job, "unexpected error")
        finally:
            if self._tasks.get(job.id) is asyncio.current_task():
                del self._tasks[job.id]
            self._fetched.pop(job.id, None)
            self._starting.discard(job.id)
            self._wake.set()

    @contextlib.asynccontextmanager
    async def _renewing(self, job: Job) -> AsyncIterator[None]:
        """Keep the lease alive while a long step (an upload) runs."""

        step = asyncio.current_task()

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.config.lease / 3)
                try:
                    held = await self.store.renew(
                        job.id, self.owner, lease_seconds=self.config.lease
                    )
                except Exception:
                    log.warning("job %s: lease renewal failed; trying again", job.id)
                    continue
                if held is None:
                    # Someone else holds the job now: stop working on it here.
                    log.warning("job %s: lease lost; stopping this step", job.id)
                    if step is not None:
                        step.cancel()
                    return

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _advance(self, job: Job) -> None:
        platform = self.platforms[job.platform]
        try:
            if job.state in _TO_SUBMIT:
                await self._submit(job, platform)
                return  # released until its first poll (or its webhook)
            if job.state is JobState.SUBMITTED:
                job = await self._poll(job, platform)
            if job.state in (JobState.COMPLETED, JobState.FAILED):
                await self._deliver(job, platform)
        except _Lost:
            log.info("job %s: changed elsewhere; leaving it", job.id)
        except _Retry as retry:
            await self._release_after_error(job, retry.message)
        except _Fail as failure:
            current = await self._current(job)
            if current.state is JobState.FAILED:
                # Even the failure notice cannot be posted (channel gone, bot removed).
                await self._undeliverable(current, failure.message)
            else:
                await self._fail(current, failure.message)

    async def _release_after_error(self, job: Job, message: str) -> None:
        current = await self.store.get(job.id)
        if current is None or current.lease_owner != self.owner:
            return
        attempts = current.attempts + 1
        # Submission gives up after max_attempts; a submitted job keeps polling through an
        # outage (its attempts count polls); delivery keeps trying for a few hours.
        if attempts >= self.config.max_attempts and current.state in _TO_SUBMIT:
            await self._fail(current, messages.gave_up(message))
            return
        if attempts >= self.config.max_delivery_attempts and current.state.awaiting_delivery:
            await self._undeliverable(current, message)
            return
        delay = min(self.config.retry_cap, self.config.retry_base * 2 ** (attempts - 1))
        delay *= random.uniform(0.5, 1.0)
        log.warning("job %s: %s; retrying in %.1fs", job.id, message, delay)
        await self.store.release(
            job.id, self.owner, _now() + timedelta(seconds=delay), error=message
        )

    async def _fail(self, job: Job, message: str) -> None:
        """Mark an unfinished job failed (its message is then delivered to the thread)."""
        failed = await self.store.transition(
            job.id,
            self.owner,
            [*_TO_SUBMIT, JobState.SUBMITTED, JobState.COMPLETED],
            JobState.FAILED,
            last_error=message,
            next_attempt_at=_now(),
            attempts=0,
        )
        if failed is not None:
            platform = self.platforms[job.platform]
            await self._guarded_deliver(failed, platform)

    async def _guarded_deliver(self, job: Job, platform: ChatPlatform) -> None:
        try:
            await self._deliver(job, platform)
        except _Retry as retry:
            await self._release_after_error(job, retry.message)
        except _Fail as failure:
            await self._undeliverable(job, failure.message)

    async def _undeliverable(self, job: Job, message: str) -> None:
        """The thread cannot be reached for good: end the job so it is not retried forever."""
        ended = await self.store.transition(
            job.id,
            self.owner,
            (JobState.COMPLETED, JobState.FAILED),
            JobState.DELIVERED,
            last_error=f"undeliverable: {message}",
            release=True,
        )
        self._last_status.pop(job.id, None)
        if ended is not None:
            log.warning("job %s could not be delivered: %s", job.id, message)
            self.metrics.deliveries.labels(job.platform.value, "undeliverable").inc()

    # -- submit ------------------------------------------------------------------------

    async def _submit(self, job: Job, platform: ChatPlatform) -> None:
        await self._announce(job)
        audio_url = await self._link_for(job, platform)
        if audio_url is None:
            job = await self._moved(job, _TO_SUBMIT, JobState.FETCHING)
            await self._status(job, messages.status_uploading(), force=True)
            audio_url = await self._upload(job, platform)
        options = _transcript_options(job, self.config)
        started = time.perf_counter()
        try:
            transcript = await self.client.submit(audio_url, options)
        except aai.AssemblyAIError as exc:
            raise _classify(exc) from exc
        finally:
            self.metrics.assemblyai_latency.labels("submit").observe(time.perf_counter() - started)
        self._submitted[job.id] = time.monotonic()
        delay = self.schedule.next_delay(
            elapsed=0.0, polls=0, duration=job.audio_duration, status=transcript.status
        )
        job = await self._moved(
            job,
            _TO_SUBMIT,
            JobState.SUBMITTED,
            transcript_id=transcript.id,
            attempts=0,
            next_attempt_at=_now() + timedelta(seconds=delay),
        )
        await self._status(job, messages.status_transcribing(0.0), force=True)
        # Hand the job back only after that edit: a task that delivered it meanwhile (its
        # webhook came first) would otherwise have its final status overwritten by it. A
        # same-state transition keeps a webhook's make_due.
        await self.store.transition(
            job.id, self.owner, JobState.SUBMITTED, JobState.SUBMITTED, release=True
        )

    async def _link_for(self, job: Job, platform: ChatPlatform) -> str | None:
        """The URL to hand AssemblyAI as it is, or None to stream the file into an upload:
        a public link as given, or a platform's public link to its file unless AssemblyAI
        already failed to fetch that."""
        if isinstance(job.source, UrlSource):
            return job.source.url
        if job.direct_failed:
            return None
        try:
            return await platform.public_url(job)
        except PlatformError as exc:
            log.info("job %s: no public link (%s); streaming the file", job.id, exc.message)
            return None

    async def _upload(self, job: Job, platform: ChatPlatform) -> str:
        assert isinstance(job.source, FileSource)
        try:
            stream = await platform.open_file(job)
        except FileUnavailable as exc:
            raise _Fail(exc.message) from exc
        except PlatformError as exc:
            raise (_Retry if exc.retryable else _Fail)(exc.message) from exc
        if stream.size is not None and stream.size > self.config.max_file_bytes:
            raise _Fail(messages.too_large(stream.size, self.config.max_file_bytes))
        limit = self.config.max_file_bytes

        async def capped() -> AsyncIterator[bytes]:
            sent = 0
            async for chunk in stream.chunks:
                sent += len(chunk)
                if sent > limit:
                    raise _Fail(messages.too_large(sent, limit))
                yield chunk
            if sent == 0:
                raise _Fail(messages.EMPTY_FILE)

        started = time.perf_counter()
        try:
            return await self.client.upload(capped(), size=stream.size)
        except aai.AssemblyAIError as exc:
            # A _Fail raised inside the stream surfaces as the cause of a transport error.
            cause = exc.__cause__
            while cause is not None and not isinstance(cause, _Fail):
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, _Fail):
                raise cause from exc
            raise _classify(exc) from exc
        finally:
            self.metrics.assemblyai_latency.labels("upload").observe(time.perf_counter() - started)

    # -- wait --------------------------------------------------------------------------

    async def _poll(self, job: Job, platform: ChatPlatform) -> Job:
        assert job.transcript_id is not None
        started = time.perf_counter()
        try:
            transcript = await self.client.get(job.transcript_id)
        except aai.AssemblyAIError as exc:
            raise _classify(exc) from exc
        finally:
            self.metrics.assemblyai_latency.labels("get").observe(time.perf_counter() - started)
            self.metrics.polls.inc()
        # "No spoken audio" is a recording without speech, not a failure: say so.
        transcript = render.without_speech(transcript) or transcript
        polls = job.attempts + 1  # while submitted, `attempts` counts the polls made
        submitted = self._submitted.get(job.id)
        elapsed = time.monotonic() - submitted if submitted is not None else None
        if not transcript.status.done:
            if elapsed is not None:
                self._last_poll[job.id] = elapsed
            await self._status(job, messages.status_transcribing(elapsed))
            delay = self.schedule.next_delay(
                elapsed=elapsed or 0.0,
                polls=polls,
                duration=job.audio_duration,
                status=transcript.status,
            )
            await self.store.poll_later(job.id, self.owner, _now() + timedelta(seconds=delay))
            return replace(job, lease_owner=None)
        previous = self._last_poll.pop(job.id, None)
        if elapsed is not None:
            self.schedule.learn(
                duration=job.audio_duration, turnaround=elapsed, polls=polls, previous=previous
            )
        self._submitted.pop(job.id, None)
        if _link_refused(job, transcript):
            # AssemblyAI could not fetch the platform's link (expired, say): stream the file.
            log.info("job %s: AssemblyAI could not fetch the link; streaming instead", job.id)
            moved = await self._moved(
                job,
                JobState.SUBMITTED,
                JobState.FETCHING,
                direct_failed=True,
                transcript_id=None,
                attempts=0,
                next_attempt_at=_now(),
                release=True,
            )
            self._wake.set()
            return moved
        # `attempts` counted polls while submitted; from here on it counts deliveries.
        if transcript.status is TranscriptStatus.COMPLETED:
            log.info(
                "job %s: transcribed by %s (%s s of audio)",
                job.id,
                transcript.speech_model_used or "an unnamed model",
                transcript.audio_duration,
                extra={"job": job.id, "speech_model": transcript.speech_model_used},
            )
            self._fetched[job.id] = transcript
            return await self._moved(
                job,
                JobState.SUBMITTED,
                JobState.COMPLETED,
                audio_duration=transcript.audio_duration,
                attempts=0,
            )
        return await self._moved(
            job,
            JobState.SUBMITTED,
            JobState.FAILED,
            last_error=messages.assemblyai_failed(transcript.error),
            attempts=0,
        )

    # -- deliver -----------------------------------------------------------------------

    async def _deliver(self, job: Job, platform: ChatPlatform) -> None:
        job = await self._announce(job)
        where = self._where(job)
        if "result" not in job.posted:
            if job.state is JobState.COMPLETED:
                try:
                    post = await self._result_post(job, platform)
                except _Fail as failure:
                    job = await self._moved(
                        job, JobState.COMPLETED, JobState.FAILED, last_error=failure.message
                    )
                    post = Post(messages.failed(failure.message))
            else:
                post = Post(messages.failed(job.last_error or "unknown error"))
            message_id = await self._platform_call(
                platform.post(where, post, key=f"{job.id}:result")
            )
            updated = await self.store.record_posted(job.id, "result", message_id)
            job = updated or job
        ok = job.state is JobState.COMPLETED
        final = messages.status_done() if ok else messages.status_failed()
        await self._status(job, final, force=True)
        await self._platform_call(platform.react(where, Reaction.DONE if ok else Reaction.FAILED))
        delivered = await self.store.transition(
            job.id, self.owner, job.state, JobState.DELIVERED, release=True
        )
        if delivered is None:
            return
        self.metrics.deliveries.labels(job.platform.value, "ok" if ok else "failed").inc()
        self._last_status.pop(job.id, None)
        self._submitted.pop(job.id, None)
        if self.config.delete_after_delivery and job.transcript_id:
            # Awaited, not spawned: a shutdown must not drop it. Best effort all the same.
            await self._delete_transcript(job.transcript_id)

    async def _result_post(self, job: Job, platform: ChatPlatform) -> Post:
        assert job.transcript_id is not None
        try:
            fetched = self._fetched.pop(job.id, None)
            transcript = fetched or await self.client.get(job.transcript_id)
            transcript = render.without_speech(transcript) or transcript
            # Without words there is nothing to subtitle (AssemblyAI answers 400) and
            # nothing to summarise.
            formats = set(job.options.get("formats", ())) if transcript.words else set()
            srt = await self.client.srt(job.transcript_id) if "srt" in formats else None
            vtt = await self.client.vtt(job.transcript_id) if "vtt" in formats else None
        except aai.AssemblyAIError as exc:
            raise _classify(exc) from exc
        wanted = self.config.ai_summary and bool(transcript.words)
        summary = await self._summary(transcript) if wanted else None
        try:
            document = render.render(transcript, summary=summary)
            rendered = render.fit(document, platform.message_limit, srt=srt, vtt=vtt)
        except Exception as exc:
            log.exception("job %s: rendering failed", job.id)
            raise _Fail(messages.RENDER_FAILED) from exc
        return Post(rendered.inline, rendered.files, document)

    async def _summary(self, transcript: Transcript) -> render.Summary:
        started = time.perf_counter()
        try:
            answer = await self.client.chat(
                render.summary_prompt(transcript), model=self.config.llm_model
            )
        except aai.AssemblyAIError as exc:
            log.warning("AI summary unavailable: %s", exc.message)
            return render.Summary.unavailable(exc.message)
        finally:
            self.metrics.assemblyai_latency.labels("chat").observe(time.perf_counter() - started)
        return render.Summary.from_llm(answer)

    async def _delete_transcript(self, transcript_id: str) -> None:
        try:
            await self.client.delete(transcript_id)
        except aai.AssemblyAIError as exc:
            log.warning(
                "could not delete transcript %s at AssemblyAI: %s", transcript_id, exc.message
            )

    # -- feedback in the thread --------------------------------------------------------

    def _where(self, job: Job) -> ThreadRef:
        root = None if (job.thread or job.message) else job.posted.get("status")
        return ThreadRef.of(job, thread=root)

    async def _announce(self, job: Job) -> Job:
        """React on the source message and post the status message, once per job."""
        if "status" in job.posted:
            return job
        platform = self.platforms[job.platform]
        where = self._where(job)
        await self._platform_call(platform.react(where, Reaction.WORKING))
        ahead = await self.store.ahead_of(job)
        text = (
            messages.status_queued(ahead)
            if job.state is JobState.RECEIVED
            else (messages.status_working())
        )
        message_id = await self._platform_call(
            platform.post(where, Post(text), key=f"{job.id}:status")
        )
        updated = await self.store.record_posted(job.id, "status", message_id)
        self._last_status[job.id] = time.monotonic()
        return updated or job

    async def _status(self, job: Job, text: str, *, force: bool = False) -> None:
        """Edit the status message, at most every `status_interval` unless forced."""
        now = time.monotonic()
        last = self._last_status.get(job.id)
        if not force and last is not None and now - last < self.config.status_interval:
            return  # decided before any I/O: most polls of a long job end here
        if "status" not in job.posted:
            job = await self._current(job)  # announced by another task since it was read
        message_id = job.posted.get("status")
        if message_id is None:
            return
        if len(self._last_status) > 10_000:  # jobs finished by other replicas linger
            self._last_status.clear()
        self._last_status[job.id] = now
        platform = self.platforms[job.platform]
        try:
            await platform.edit(self._where(job), message_id, Post(text))
        except PlatformError as exc:
            # A status line is cosmetic: never hold a job back for it.
            log.info("status edit failed for job %s: %s", job.id, exc.message)

    async def _platform_call(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            return await call
        except FileUnavailable as exc:
            raise _Fail(exc.message) from exc
        except PlatformError as exc:
            raise (_Retry if exc.retryable else _Fail)(exc.message) from exc

    # -- store helpers -----------------------------------------------------------------

    async def _current(self, job: Job) -> Job:
        return await self.store.get(job.id) or job

    async def _moved(self, job: Job, sources: Any, target: JobState, **fields: Any) -> Job:
        moved = await self.store.transition(job.id, self.owner, sources, target, **fields)
        if moved is not None and moved.state is not JobState.RECEIVED:
            self._starting.discard(job.id)  # the store counts it from now on
        if moved is None:
            raise _Lost(job.id)
        return moved


def _transcript_options(job: Job, config: EngineConfig) -> aai.TranscriptOptions:
    opts = job.options
    webhook = config.webhook_url if config.webhook_secret is not None else None
    return aai.TranscriptOptions(
        speech_models=tuple(opts.get("speech_models") or config.speech_models),
        language_code=opts.get("language_code"),
        speaker_labels=bool(opts.get("speaker_labels", True)),
        speakers_expected=opts.get("speakers_expected"),
        audio_start_from=opts.get("audio_start_from"),
        audio_end_at=opts.get("audio_end_at"),
        webhook_url=webhook,
        webhook_auth_header_name=WEBHOOK_HEADER if webhook else None,
        webhook_auth_header_value=config.webhook_secret if webhook else None,
    )


def _link_refused(job: Job, transcript: Transcript) -> bool:
    """A platform file handed over by link that AssemblyAI could not download."""
    return (
        transcript.status is TranscriptStatus.ERROR
        and isinstance(job.source, FileSource)
        and not job.direct_failed
        and (transcript.error or "").startswith("Download error")
    )


def _classify(exc: aai.AssemblyAIError) -> _Retry | _Fail:
    message = messages.explain(exc)
    if isinstance(exc, aai.AuthenticationError):
        # The deployment's key is wrong (or was rotated), not the job: keep it for later.
        log.error("AssemblyAI rejected the API key: check ASSEMBLYAI_API_KEY")
        return _Retry(message)
    if isinstance(
        exc, aai.RateLimitError | aai.ServerError | aai.TransportError | aai.RequestTimeout
    ):
        return _Retry(message)
    return _Fail(message)


def _source_size(record: IntakeRecord) -> int | None:
    if isinstance(record.source, FileSource):
        size = record.source.ref.get("size")
        return int(size) if isinstance(size, int | float) else None
    return None
