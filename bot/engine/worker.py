"""The worker: claims due jobs from the store under a lease, runs each one's next step in
a tracked task, and stops in two phases.

The loop is driven by the store, not by memory: a job is due when its `next_attempt_at`
has come and nobody holds it. New jobs wait for a free slot towards AssemblyAI (FIFO,
`concurrency`); every other unfinished job already holds one, or needs none, and is
claimed whenever it is due. `run_until_idle()` drains everything for tests, like arq's
burst mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from bot import assemblyai as aai
from bot import logs, messages
from bot.chat import ChatPlatform
from bot.config import Secret
from bot.engine import steps
from bot.engine.feedback import Feedback, Memory
from bot.engine.steps import TO_SUBMIT, StepContext, StepSettings
from bot.errors import Fail, Lost, Retry
from bot.health import Health
from bot.jobs import (
    Admission,
    Budget,
    FileSource,
    IntakeRecord,
    Job,
    JobState,
    JobStore,
    Limits,
    Platform,
    Refusal,
    next_month,
)
from bot.metrics import Metrics
from bot.models import DEFAULT_LLM_MODEL, DEFAULT_SPEECH_MODELS
from bot.polling import PollSchedule
from bot.tasks import TaskSet
from bot.urls import UrlPolicy

log = logging.getLogger(__name__)

_UNFINISHED: Final = tuple(state for state in JobState if state is not JobState.DELIVERED)
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
    ai_summary: bool = True
    llm_model: str = DEFAULT_LLM_MODEL
    #: transcript characters per summary request (a long recording is summarised in parts)
    summary_part_chars: int = 48_000
    lease: float = 30.0  # a job whose holder died is picked up again after this
    max_attempts: int = 6  # submission attempts before a job fails
    max_delivery_attempts: int = 40  # about three hours of backoff before giving up a thread
    retry_base: float = 2.0
    retry_cap: float = 300.0
    status_interval: float = 5.0  # at most one status edit per job this often
    idle: float = 5.0  # longest sleep between looks at the store
    max_tasks: int = 256  # jobs worked on at once by this process (mostly I/O waits)
    shutdown_grace: float = 20.0
    urls: UrlPolicy = field(default_factory=UrlPolicy)
    #: an upload may take this long, or as long as this many bytes a second need
    transfer_floor: float = 120.0
    transfer_min_rate: float = 100_000.0
    #: delivered jobs are deleted this long after (JOB_RETENTION_DAYS); None keeps them
    retention: timedelta | None = timedelta(days=30)
    prune_every: float = 3600.0  # seconds between looks for jobs past their retention
    #: during a burst of this many intakes in a row, each within intake_quiet of the last,
    #: a new job's ⏳ and status message, and other jobs' steps, wait for a pause this long
    intake_burst: int = 8
    intake_quiet: float = 0.05
    #: ...but never longer than this
    intake_quiet_max: float = 1.0
    turn_interval: float = 0.02  # the worker's loop looks at the store at most this often
    #: hours each workspace may transcribe per calendar month (MONTHLY_BUDGET_HOURS)
    budget_hours: float | None = None
    #: usage records (and notices said once) are deleted this long after
    usage_retention: timedelta = timedelta(days=400)
    #: the least of the budget a recording of unknown length is taken in with (seconds)
    budget_min_slice: float = 60.0
    #: questions one person may ask in an hour (QUESTIONS_PER_HOUR)
    questions_per_hour: int = 20
    #: how far back `/transcribe search` looks (SEARCH_DAYS)
    search_days: int = 30

    def step_settings(self) -> StepSettings:
        return StepSettings(
            max_file_bytes=self.max_file_bytes,
            speech_models=self.speech_models,
            webhook_url=self.webhook_url,
            webhook_secret=self.webhook_secret,
            delete_after_delivery=self.delete_after_delivery,
            ai_summary=self.ai_summary,
            llm_model=self.llm_model,
            summary_part_chars=self.summary_part_chars,
            urls=self.urls,
            max_duration=self.max_duration,
            transfer_floor=self.transfer_floor,
            transfer_min_rate=self.transfer_min_rate,
            budget_hours=self.budget_hours,
        )


@dataclass(frozen=True, slots=True)
class IntakeOutcome:
    job: Job | None
    created: bool
    #: why the intake was refused (a limit), for the person who asked; None if accepted
    refused: str | None = None


class Lifecycle(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"  # no new work; running steps reach a safe point
    STOPPED = "stopped"


class Engine:
    def __init__(
        self,
        store: JobStore,
        client: aai.AssemblyAIClient,
        platforms: Mapping[Platform, ChatPlatform] | None = None,
        config: EngineConfig | None = None,
        *,
        owner: str | None = None,
        metrics: Metrics | None = None,
        schedule: PollSchedule | None = None,
        health: Health | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.platforms: dict[Platform, ChatPlatform] = dict(platforms or {})
        self.config = config or EngineConfig()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.metrics = metrics or Metrics()
        self.schedule = schedule or PollSchedule()
        self.health = health or Health()
        self.lifecycle = Lifecycle.NEW
        self._pruned_at: float | None = None  # the event loop's time of the last prune
        self._intake_seen = float("-inf")  # the event loop's time of the latest intake
        self._intake_streak = 0  # intakes in a row, each within intake_quiet of the last
        self.memory = Memory()
        self.feedback = Feedback(
            store, self.platforms, self.memory, status_interval=self.config.status_interval
        )
        self._settings = self.config.step_settings()
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # job id -> the task working on it
        self._side_tasks = TaskSet("engine")
        self._loop_task: asyncio.Task[None] | None = None

    def add_platform(self, platform: ChatPlatform) -> None:
        """Register a platform the engine delivers to (before `start()`): the composition
        root builds the adapters with the core, then hands them to the engine."""
        if self.lifecycle is not Lifecycle.NEW:
            raise RuntimeError("platforms are added before the engine starts")
        self.platforms[platform.name] = platform

    @property
    def accepting(self) -> bool:
        return self.lifecycle in (Lifecycle.NEW, Lifecycle.RUNNING)

    # -- intake ------------------------------------------------------------------------

    async def intake(self, record: IntakeRecord) -> IntakeOutcome:
        """Persist a trigger as a job (idempotent on its dedupe key), or refuse it with a
        reason when a limit is exceeded. Call before acknowledging the platform."""
        if not self.accepting:
            return IntakeOutcome(None, False, messages.SHUTTING_DOWN)
        refused = self._refusal(record)
        if refused is not None:
            self.metrics.intakes.labels(record.platform.value, "refused").inc()
            return IntakeOutcome(None, False, refused)
        # Limits, the budget and the insert in one transaction, grouped with concurrent
        # intakes.
        limits = Limits(self.config.per_user, self.config.per_channel)
        now = asyncio.get_running_loop().time()
        close = now - self._intake_seen < self.config.intake_quiet
        self._intake_streak = self._intake_streak + 1 if close else 1
        self._intake_seen = now
        budget = Budget(
            self.config.budget_hours, self.config.max_duration, self.config.budget_min_slice
        )
        admission = await self.store.admission.admit(record, limits, budget)
        if admission.job is None:
            self.metrics.intakes.labels(record.platform.value, "refused").inc()
            if admission.refusal is Refusal.BUDGET and record.platform in self.platforms:
                self._spawn_side(steps.budget_used_up(self._context_for(record.platform), record))
            return IntakeOutcome(None, False, self._refusal_text(admission))
        job, created = admission.job, admission.created
        self.metrics.intakes.labels(record.platform.value, "created" if created else "dupe").inc()
        if created:
            with _job_fields(job):
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

    def _refusal_text(self, admission: Admission) -> str:
        if admission.refusal is Refusal.CHANNEL_LIMIT:
            return messages.channel_limit(self.config.per_channel)
        if admission.refusal is Refusal.BUDGET and self.config.budget_hours is not None:
            resets = next_month(self.store.now())
            return messages.budget_refused(
                self.config.budget_hours, admission.left, admission.needed, resets
            )
        return messages.user_limit(self.config.per_user)

    # -- forget ------------------------------------------------------------------------

    async def forget(self, job: Job, *, by: str) -> Job | None:
        """Forget a job wherever it is: it becomes `forgotten` at once (a step running on
        it stops at its next write), and the loop then purges it (steps.purge). None if
        it was forgotten already."""
        forgotten = await self.store.queue.transition(
            job.id,
            None,
            [state for state in JobState if state is not JobState.FORGOTTEN],
            JobState.FORGOTTEN,
            next_attempt_at=self.store.now(),
            attempts=0,
        )
        if forgotten is not None:
            log.info("job %s forgotten at the request of %s", job.id, by, extra={"job": job.id})
            self._wake.set()
        return forgotten

    def wake(self) -> None:
        """Look at the store again now (something became due)."""
        self._wake.set()

    async def _announce_new(self, job: Job) -> None:
        """React and post the status message for a new job, under a short lease so that a
        worker claiming the job meanwhile does not announce it too; once a burst of
        intakes has been acknowledged."""
        async with self.feedback.announcing:
            await self._after_intakes()  # here: each one, not once for a burst's jobs
            try:
                leased = await self.store.queue.lease(
                    job.id, self.owner, lease_seconds=self.config.lease
                )
                if leased is None:
                    return  # a worker has it already and announces it itself
                try:
                    await self.feedback.announce(leased)
                finally:
                    await self.store.queue.release(job.id, self.owner, leased.next_attempt_at)
                    self._wake.set()
            except Exception:
                # The worker announces it when it takes the job; nothing is lost.
                log.warning("could not announce job %s", job.id, exc_info=True)

    async def _after_intakes(self) -> None:
        """During a burst of intakes (`intake_burst` in a row, each within `intake_quiet`
        of the last), wait until none has come for `intake_quiet` seconds (at most
        `intake_quiet_max`): the burst is acknowledged first, and the reactions and status
        messages of its jobs, and other jobs' next steps, follow it rather than competing
        with it for the database and the CPU while the platform waits for its answers. A
        lone intake holds nothing up."""
        if self._intake_streak < self.config.intake_burst:
            return
        loop = asyncio.get_running_loop()
        quiet, until = self.config.intake_quiet, loop.time() + self.config.intake_quiet_max
        while (now := loop.time()) < until:
            left = self._intake_seen + quiet - now
            if left <= 0:
                return
            await asyncio.sleep(min(left, until - now))

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
        if job is None:
            # Perhaps a job of this process has it and has not stored it yet: it looks for
            # this note once it has. Look again after leaving the note, in case it stored
            # and looked in between (then the note is ours to take back).
            self.memory.early_webhook(transcript_id, self.store.now())
            job = await self.store.get_by_transcript_id(transcript_id)
            if job is None:
                return False
            self.memory.take_early_webhook(transcript_id)
        if job.state is not JobState.SUBMITTED:
            return False
        self.metrics.webhooks.inc()
        if job.submitted_at is not None:
            # An exact turnaround for the poll schedule to learn from.
            elapsed = (self.store.now() - job.submitted_at).total_seconds()
            self.memory(job.id).webhook_at = max(0.0, elapsed)
        # Start on it here and now when this process has room, rather than on the loop's
        # next turn; if someone holds it (a poll under way), it is made due for them.
        room = len(self._tasks) < self.config.max_tasks and self.accepting
        if room and job.id not in self._tasks:
            taken = await self.store.queue.claim_now(
                job.id, self.owner, lease_seconds=self.config.lease
            )
            if taken is not None:
                self._start_all([taken])
                return True
        await self.store.queue.make_due(job.id)
        self._wake.set()
        return True

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self.lifecycle is Lifecycle.NEW:
            self.lifecycle = Lifecycle.RUNNING
            self._loop_task = asyncio.create_task(self._loop(), name="engine-loop")

    async def stop(self) -> None:
        """Stop taking work, let running steps reach a safe point within the grace period,
        then cancel what is left (its leases run out and another run resumes it)."""
        if self.lifecycle is Lifecycle.STOPPED:
            return
        self.lifecycle = Lifecycle.STOPPING
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        pending = [*self._tasks.values(), *self._side_tasks.tasks()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=self.config.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.lifecycle = Lifecycle.STOPPED

    async def run_until_idle(self) -> None:
        """Process jobs until every one is delivered and nothing runs (for tests); bound it
        with `asyncio.timeout` at the call site."""
        platforms = list(self.platforms)
        while True:
            started = await self._dispatch()
            busy = [*self._tasks.values(), *self._side_tasks.tasks()]
            if busy:
                await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                continue
            if started:
                continue
            if await self.store.queue.next_due(_UNFINISHED, platforms=platforms) is None:
                return
            wait = await self._next_due_in()
            await asyncio.sleep(self.config.idle if wait is None else min(wait, self.config.idle))

    async def prune(self) -> int:
        """Delete delivered jobs past their retention (JOB_RETENTION_DAYS), and usage
        records and notices past theirs (USAGE_RETENTION_DAYS); how many jobs went."""
        usage = await self.store.usage.prune(self.config.usage_retention)
        await self.store.notices.prune(self.config.usage_retention)
        if usage:
            log.info("deleted %d usage records older than %s", usage, self.config.usage_retention)
        if self.config.retention is None:
            return 0
        pruned = await self.store.prune(self.config.retention)
        if pruned:
            log.info("deleted %d delivered jobs older than %s", pruned, self.config.retention)
        return pruned

    async def _prune_when_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._pruned_at is not None and now - self._pruned_at < self.config.prune_every:
            return
        self._pruned_at = now
        await self.prune()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self.lifecycle is Lifecycle.RUNNING:
            turn = loop.time()
            try:
                # A burst of intakes is acknowledged before new work starts beside it.
                await self._after_intakes()
                _started, free = await self._dispatch_counted()
                await self._prune_when_due()
                wait = await self._next_due_in(free)
            except Exception:
                log.exception("engine loop error; retrying shortly")
                wait = 1.0
            timeout = self.config.idle if wait is None else min(wait, self.config.idle)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            # However often it is woken (each job's step ending wakes it), the loop looks
            # at the store at most every `turn_interval`: its queries are the same for one
            # wake as for fifty.
            rest = turn + self.config.turn_interval - loop.time()
            if rest > 0 and self.lifecycle is Lifecycle.RUNNING:
                await asyncio.sleep(rest)

    async def _free_slots(self) -> int:
        """Slots towards AssemblyAI no replica uses (a job leased to start holds one)."""
        return self.config.concurrency - await self.store.queue.slots_taken()

    async def _next_due_in(self, free: int | None = None) -> float | None:
        """Seconds until a job this process could claim becomes due (None: none waits);
        `free`: the slots towards AssemblyAI left free, if just counted."""
        if len(self._tasks) >= self.config.max_tasks:
            return None  # no room: a finishing task wakes the loop
        if free is None:
            free = await self._free_slots()
        states = _UNFINISHED if free > 0 else _UNGATED
        when = await self.store.queue.next_due(states, platforms=list(self.platforms))
        if when is None:
            return None
        return max(0.0, (when - self.store.now()).total_seconds())

    async def _dispatch(self) -> int:
        """Claim what is due and start a task per job; returns how many were started."""
        started, _free = await self._dispatch_counted()
        return started

    async def _dispatch_counted(self) -> tuple[int, int | None]:
        """`_dispatch`, and the slots left free (None when not counted)."""
        if not self.accepting:
            return 0, None
        platforms = list(self.platforms)
        started = 0
        queue = self.store.queue
        room = self.config.max_tasks - len(self._tasks)
        if room > 0:
            jobs = await queue.claim(
                self.owner,
                lease_seconds=self.config.lease,
                states=_UNGATED,
                limit=room,
                platforms=platforms,
            )
            started += self._start_all(jobs)
        # FIFO towards AssemblyAI: the oldest waiting jobs get the free slots, counted and
        # claimed in one step in the store, so the cap holds across replicas.
        room = self.config.max_tasks - len(self._tasks)
        free: int | None = None
        if room > 0:
            jobs, free = await queue.claim_new_counted(
                self.owner,
                lease_seconds=self.config.lease,
                cap=self.config.concurrency,
                limit=room,
                platforms=platforms,
            )
            started += self._start_all(jobs)
        return started, free

    def _start_all(self, jobs: list[Job]) -> int:
        started = 0
        for job in jobs:
            running = self._tasks.get(job.id)
            if running is not None and not running.done():
                continue  # its step outlived the lease; it ends by itself
            with _job_fields(job):
                task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
            self._tasks[job.id] = task
            started += 1
        return started

    def _spawn_side(self, coro: Coroutine[Any, Any, None]) -> None:
        self._side_tasks.spawn(coro, "announce")

    # -- one job -----------------------------------------------------------------------

    def _context(self, job: Job) -> StepContext:
        return self._context_for(job.platform)

    def _context_for(self, platform: Platform) -> StepContext:
        return StepContext(
            store=self.store,
            client=self.client,
            platform=self.platforms[platform],
            settings=self._settings,
            feedback=self.feedback,
            memory=self.memory,
            schedule=self.schedule,
            metrics=self.metrics,
            owner=self.owner,
            health=self.health,
            wake=self._wake.set,
        )

    async def _run_job(self, job: Job) -> None:
        try:
            async with self._renewing(job):
                # A step waits for a burst of intakes to be acknowledged: the platform
                # gives those 3 s, a job's next step loses nothing by a moment's wait.
                await self._after_intakes()
                await self._advance(job)
        except asyncio.CancelledError:
            # Shutdown ran out of patience: hand the job back now rather than letting the
            # next process wait for the lease to run out.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.queue.release(job.id, self.owner, self.store.now()))
            raise
        except Exception:
            log.exception("job %s: unexpected error", job.id)
            await self._shielded(self._retry_later(job, Retry("unexpected error")))
        finally:
            if self._tasks.get(job.id) is asyncio.current_task():
                del self._tasks[job.id]
            self._wake.set()

    @staticmethod
    async def _shielded(write: Coroutine[Any, Any, None]) -> None:
        """A final state write: it goes through even if shutdown cancels the task."""
        await asyncio.shield(write)

    @contextlib.asynccontextmanager
    async def _renewing(self, job: Job) -> AsyncIterator[None]:
        """Keep the lease alive while a long step (an upload) runs."""

        step = asyncio.current_task()

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.config.lease / 3)
                try:
                    held = await self.store.queue.renew(
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
        ctx = self._context(job)
        try:
            if job.state is JobState.FORGOTTEN:
                await steps.purge(ctx, job)
                return
            if job.state in TO_SUBMIT:
                await steps.submit(ctx, job)
                return  # released until its first poll (or its webhook)
            if job.state is JobState.SUBMITTED:
                job = await steps.poll(ctx, job)
            if job.state.awaiting_delivery:
                await steps.deliver(ctx, job)
        except Lost:
            log.info("job %s: changed elsewhere; leaving it", job.id)
        except Retry as retry:
            await self._shielded(self._retry_later(job, retry))
        except Fail as failure:
            current = await self.store.get(job.id) or job
            if current.state is JobState.FAILED:
                # Even the failure notice cannot be posted (channel gone, bot removed).
                await self._shielded(self._undeliverable(current, failure.message))
            else:
                await self._fail(current, failure.message)

    async def _retry_later(self, job: Job, retry: Retry) -> None:
        current = await self.store.get(job.id)
        if current is None or current.lease_owner != self.owner:
            return
        attempts = current.attempts + 1
        # Submission gives up after max_attempts; a submitted job keeps polling through an
        # outage; delivery keeps trying for a few hours.
        if attempts >= self.config.max_attempts and current.state in TO_SUBMIT:
            await self._fail(current, messages.gave_up(retry.message))
            return
        if attempts >= self.config.max_delivery_attempts and current.state.awaiting_delivery:
            await self._undeliverable(current, retry.message)
            return
        delay = retry.defer
        if delay is None:
            delay = min(self.config.retry_cap, self.config.retry_base * 2 ** (attempts - 1))
            delay *= random.uniform(0.5, 1.0)
        log.warning("job %s: %s; retrying in %.1fs", job.id, retry.message, delay)
        await self.store.queue.release(
            job.id, self.owner, self.store.now() + timedelta(seconds=delay), error=retry.message
        )

    async def _fail(self, job: Job, message: str) -> None:
        """Mark an unfinished job failed (its message is then delivered to the thread)."""
        failed = await self.store.queue.transition(
            job.id,
            self.owner,
            [*TO_SUBMIT, JobState.SUBMITTED, JobState.COMPLETED],
            JobState.FAILED,
            last_error=message,
            next_attempt_at=self.store.now(),
            attempts=0,
        )
        if failed is None:
            return
        # AssemblyAI bills completed transcripts only: an unsettled job costs nothing.
        await self.store.usage.settle(job.id, 0.0, None, only_unsettled=True)
        try:
            await steps.deliver(self._context(failed), failed)
        except Retry as retry:
            await self._shielded(self._retry_later(failed, retry))
        except Fail as failure:
            await self._shielded(self._undeliverable(failed, failure.message))
        except Lost:
            log.info("job %s: changed elsewhere; leaving it", job.id)

    async def _undeliverable(self, job: Job, message: str) -> None:
        """The thread cannot be reached for good: end the job so it is not retried forever."""
        ended = await self.store.queue.transition(
            job.id,
            self.owner,
            (JobState.COMPLETED, JobState.FAILED),
            JobState.DELIVERED,
            last_error=f"undeliverable: {message}",
            release=True,
        )
        self.memory.forget(job.id)
        if ended is not None:
            log.warning("job %s could not be delivered: %s", job.id, message)
            self.metrics.deliveries.labels(job.platform.value, "undeliverable").inc()
            await self.store.usage.settle(job.id, 0.0, None, only_unsettled=True)
            await steps.clean_up(self._context(ended), ended, posted=False)


def _job_fields(job: Job) -> contextlib.AbstractContextManager[None]:
    """The job's id and platform on every line logged by a task started in this block: the
    task copies the context as it is when it is made, and keeps it to its end."""
    return logs.bound(job=job.id, platform=job.platform.value)


def _source_size(record: IntakeRecord) -> int | None:
    if isinstance(record.source, FileSource):
        size = record.source.ref.get("size")
        return int(size) if isinstance(size, int | float) else None
    return None
