"""What the thread sees while a job runs: ⏳ on the source message, one status message kept
up to date, then ✅ or ❌.

Platform calls made here are converted into the job's outcome: a platform that may
answer later is a `Retry`, one that refused for good a `Fail`. A status edit is cosmetic
and never holds a job back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from bot import messages
from bot.chat import ChatPlatform, Post, Reaction, ThreadRef
from bot.errors import Fail, PlatformError, Retry
from bot.jobs import DeliveryStep, Job, JobState, JobStore, Platform
from bot.transcript import Transcript

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Jobs whose in-process memory is kept (jobs finished by other replicas linger here).
_REMEMBERED: Final = 10_000


@dataclass(slots=True)
class Working:
    """What this process remembers about a job between its steps (none of it is needed
    for correctness: after a restart the job goes on without it)."""

    #: monotonic time of the last status edit, for throttling
    last_status: float | None = None
    #: seconds after submission of the last poll that found it unfinished
    last_poll: float | None = None
    #: the finished transcript the poll just fetched, for the delivery right after it
    fetched: Transcript | None = None
    #: seconds after submission at which its webhook said the transcript is done
    webhook_at: float | None = None
    #: the result as posted, to add the deletion receipt to it without fetching again
    result_post: Post | None = None


class Memory:
    """`Working` per job id, bounded, emptied when a job ends."""

    def __init__(self, limit: int = _REMEMBERED) -> None:
        self._jobs: OrderedDict[str, Working] = OrderedDict()
        self._limit = limit
        # Webhooks for transcripts no job has recorded yet: a quick transcript's webhook
        # can arrive between AssemblyAI's answer to the submission and the job storing
        # the transcript's id. Transcript id -> when (store clock, per process, bounded).
        self._early: OrderedDict[str, datetime] = OrderedDict()

    def __call__(self, job_id: str) -> Working:
        working = self._jobs.get(job_id)
        if working is None:
            working = self._jobs[job_id] = Working()
            while len(self._jobs) > self._limit:
                self._jobs.popitem(last=False)
        return working

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def early_webhook(self, transcript_id: str, at: datetime) -> None:
        """A webhook came for `transcript_id` before any job held it."""
        self._early[transcript_id] = at
        self._early.move_to_end(transcript_id)
        while len(self._early) > self._limit:
            self._early.popitem(last=False)

    def take_early_webhook(self, transcript_id: str) -> datetime | None:
        """When a webhook came for `transcript_id` before its job stored it, once."""
        return self._early.pop(transcript_id, None)

    def __len__(self) -> int:
        return len(self._jobs)


async def platform_call(call: Awaitable[T]) -> T:
    """A platform call, its failure turned into the job's outcome."""
    try:
        return await call
    except PlatformError as exc:
        raise (Retry if exc.retryable else Fail)(exc.message) from exc


class Feedback:
    def __init__(
        self,
        store: JobStore,
        platforms: Mapping[Platform, ChatPlatform],
        memory: Memory,
        *,
        status_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        concurrency: int = 4,
    ) -> None:
        self._store = store
        self._platforms = platforms
        self._memory = memory
        self._interval = status_interval
        self._monotonic = monotonic
        # A handful at a time: under a burst of events the intakes (which Slack and
        # Discord are waiting on) go first, and the ⏳ feedback follows within a moment.
        self.announcing = asyncio.Semaphore(concurrency)

    @staticmethod
    def where(job: Job) -> ThreadRef:
        """Where the job's replies go. A job with no source message (a slash command)
        replies in the thread its status message started."""
        root = None if (job.thread or job.message) else job.step_posted(DeliveryStep.STATUS)
        return ThreadRef.of(job, thread=root)

    async def announce(self, job: Job) -> Job:
        """React on the source message and post the status message, once per job."""
        if job.step_posted(DeliveryStep.STATUS) is not None:
            return job
        platform = self._platforms[job.platform]
        where = self.where(job)
        await platform_call(platform.react(where, Reaction.WORKING))
        if job.state is JobState.RECEIVED:
            text = messages.status_queued(await self._store.ahead_of(job))
        else:
            text = messages.status_working()
        message_id = await self.post(job, DeliveryStep.STATUS, Post(text))
        self._memory(job.id).last_status = self._monotonic()
        return await self._store.queue.record_posted(job.id, DeliveryStep.STATUS, message_id) or job

    async def post(self, job: Job, step: DeliveryStep, post: Post) -> str:
        """Post `step` in the job's thread (idempotent on the platform by its key)."""
        platform = self._platforms[job.platform]
        return await platform_call(platform.post(self.where(job), post, key=f"{job.id}:{step}"))

    async def replace(self, job: Job, message_id: str, post: Post) -> str:
        """Put `post` (a redo's result) in place of the message `message_id` (the result
        it redoes), under the redo's own key; the id of the message that now shows it. A
        message that is gone, or may not be edited, is posted anew instead."""
        platform = self._platforms[job.platform]
        key = f"{job.id}:{DeliveryStep.RESULT}"
        try:
            await platform.edit(self.where(job), message_id, post, key=key)
        except PlatformError as exc:
            if exc.retryable:
                raise Retry(exc.message) from exc
            log.info("job %s: the result it redoes cannot be edited (%s)", job.id, exc.message)
            return await self.post(job, DeliveryStep.RESULT, post)
        return message_id

    async def react(self, job: Job, reaction: Reaction) -> None:
        platform = self._platforms[job.platform]
        await platform_call(platform.react(self.where(job), reaction))

    async def status(self, job: Job, text: str, *, force: bool = False) -> None:
        """Edit the status message, at most every `status_interval` unless forced."""
        now = self._monotonic()
        working = self._memory(job.id)
        last = working.last_status
        if not force and last is not None and now - last < self._interval:
            return  # decided before any I/O: most polls of a long job end here
        if job.step_posted(DeliveryStep.STATUS) is None:
            job = await self._store.get(job.id) or job  # announced by another task since
        message_id = job.step_posted(DeliveryStep.STATUS)
        if message_id is None:
            return
        working.last_status = now
        platform = self._platforms[job.platform]
        try:
            await platform.edit(
                self.where(job), message_id, Post(text), key=f"{job.id}:{DeliveryStep.STATUS}"
            )
        except PlatformError as exc:
            log.info("status edit failed for job %s: %s", job.id, exc.message)
