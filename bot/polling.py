"""When to ask AssemblyAI about a submitted transcript again.

A fixed 3-second poll spends most of its calls on long audio asking a question whose
answer is known to be "not yet". AssemblyAI's turnaround grows with the audio's length,
so when the length is known (platforms report it for voice messages and clips) the first
poll is aimed just after the expected finish, and a job not done by then is polled again
after short, growing gaps. The expectation (base + ratio x audio seconds) is fitted to
what this process has seen finish:

- a job that needed more than one poll finished between its last two polls, a bracket one
  short gap wide: its middle is a good measurement of the turnaround;
- a job found done at its first poll only says "done by then". It is read as having
  finished `probe` seconds before the expected time, so the aim drifts slowly earlier
  until a job needs a second poll and measures the turnaround again (which keeps the
  estimate from going stale when AssemblyAI gets faster).

The prior is deliberately quick: a first poll aimed too early costs a call or two, one
aimed too late costs the whole difference in latency. Without a known length the
schedule backs off geometrically. Webhooks, when PUBLIC_URL is set, make all of this a
fallback.

`threadscribe transcribe` has a different aim (one job, a person waiting at the terminal,
nothing to learn from) and its own schedule, `SdkPace`, below: never slower than
AssemblyAI's own SDK.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from bot.transcript import TranscriptStatus


@dataclass(slots=True)
class PollSchedule:
    #: expected turnaround = base + ratio * audio seconds (learned, starting from these)
    base: float = 1.0
    ratio: float = 0.03
    #: the first poll aims this long after the expected finish
    margin: float = 0.3
    #: a job done at its first poll is read as done this long before the expected finish
    probe: float = 0.02
    #: gaps after the first poll: start small, grow by `growth`, never above `max_gap`
    first_gap: float = 0.5
    growth: float = 1.6
    max_gap: float = 30.0
    #: while AssemblyAI still has the job queued (account busy), check at this pace
    queued_gap: float = 5.0
    #: without a known length: first poll after `unknown_first`, then geometric
    unknown_first: float = 2.0
    #: (audio seconds, turnaround seconds) of recent jobs, for the least-squares fit
    observed: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=64))

    def expected(self, duration: float) -> float:
        return self.base + self.ratio * duration

    def next_delay(
        self,
        *,
        elapsed: float,
        polls: int,
        duration: float | None,
        status: TranscriptStatus | None,
    ) -> float:
        """Seconds until the next poll, `elapsed` seconds after submission, after `polls`
        polls that found the transcript unfinished (last seen in `status`)."""
        if status is TranscriptStatus.QUEUED and polls > 0:
            return self.queued_gap
        if duration is None or duration <= 0:
            if polls == 0:
                return self.unknown_first
            return min(self.max_gap, max(self.first_gap, elapsed * (self.growth - 1)))
        first = self.expected(duration) + self.margin
        if polls == 0 and elapsed < first:
            return first - elapsed
        late = max(0, polls - 1)
        return min(self.max_gap, self.first_gap * self.growth**late)

    def learn(
        self,
        *,
        duration: float | None,
        turnaround: float,
        polls: int,
        previous: float | None = None,
    ) -> None:
        """Record a finished job, seen done `turnaround` seconds after submission at poll
        number `polls` (1 = the first); `previous`: when the poll before that one found it
        unfinished (None if unknown). Then refit the estimate."""
        if duration is None or duration <= 0:
            return
        if polls > 1 and previous is not None and previous < turnaround:
            seen = (previous + turnaround) / 2
        else:
            seen = min(turnaround, self.expected(duration)) - self.probe
        self.observed.append((duration, max(0.0, seen)))
        self._fit()

    def _fit(self) -> None:
        n = len(self.observed)
        if n < 3:
            return
        mean_d = sum(d for d, _ in self.observed) / n
        mean_t = sum(t for _, t in self.observed) / n
        var = sum((d - mean_d) ** 2 for d, _ in self.observed)
        if var < 1e-9:  # one length only: keep the slope, move the intercept
            self.base = max(0.2, mean_t - self.ratio * mean_d)
            return
        cov = sum((d - mean_d) * (t - mean_t) for d, t in self.observed)
        self.ratio = max(0.0, cov / var)
        self.base = max(0.2, mean_t - self.ratio * mean_d)


# -- the terminal: never slower than AssemblyAI's SDK ---------------------------------


@dataclass(slots=True)
class SdkPace:
    """When `threadscribe transcribe` polls: never later than AssemblyAI's Python SDK
    would, with one GET fewer.

    The SDK (`Transcript.wait_for_completion`) GETs as soon as the submit answers, then
    sleeps `polling_interval` (3 s) after every answer. Its k-th poll after that first one
    therefore leaves at `submitted + 3k + r0 + r1 + ... + r(k-1) + its overheads`, where
    the r are its round trips (r0: the immediate GET, which never finds a job done:
    AssemblyAI does not transcribe in one round trip) and the overheads its wake-up
    lateness and work between an answer and the next request, which add up poll after
    poll in a sleep-after-answer loop.

    Ours skip that GET and are due at `submitted + 3k + f + (our round trips so far)`:
    the SDK's schedule with `f` for r0 and without its overheads (each poll is due at a
    deadline, so our own lateness does not add up). `f` (`first_trip`) is the round trip
    of the submit, the one we have, but at most `MAX_FIRST_TRIP`: on a real network r0
    is tens of milliseconds and `f` a few, so each poll leaves ahead of the SDK's matching
    one; on loopback they are about equal, and the SDK's overheads keep us ahead. Either
    way the gap from an answer to the next poll never exceeds 3 s, and whatever the
    finishing time, we see it no later than the SDK, with one GET fewer. (The exception:
    a job that finishes between our poll and the SDK's matching one, a window of r0 - f
    plus the SDK's overheads. We then need the next poll, and make as many GETs as it.)

    No poll leaves on a mark (3k s after the submit answer): poll k leaves `f` plus k - 1
    round trips past it, as the SDK's leave k + 1 round trips past it. A server that times
    its work in whole seconds (an emulator; AssemblyAI's queue, perhaps) finishes a job
    on a mark plus its timer's slack, a millisecond or so; a poll leaving exactly on the
    mark would race that, see "processing" by a hair, and wait 3 s more while the SDK's
    later poll finds the job done.

    `submitted` and every time given are on one monotonic clock.
    """

    #: the submit's round trip, standing in for the SDK's first GET, is capped at this
    MAX_FIRST_TRIP: ClassVar[float] = 0.005

    submitted: float
    interval: float = 3.0
    first_trip: float = 0.0
    polls: int = 0
    round_trips: float = 0.0

    @classmethod
    def after_submit(cls, *, sent: float, answered: float, interval: float = 3.0) -> SdkPace:
        """The schedule for a job whose submit left at `sent` and was answered at
        `answered` (or, picking up a transcript, whose first GET was)."""
        trip = min(cls.MAX_FIRST_TRIP, max(0.0, answered - sent))
        return cls(submitted=answered, interval=interval, first_trip=trip)

    def due(self) -> float:
        """When the next poll should leave."""
        late = self.first_trip + self.round_trips
        return self.submitted + (self.polls + 1) * self.interval + late

    def answered(self, *, sent: float, received: float) -> None:
        """A poll that left at `sent` was answered (unfinished) at `received`."""
        self.polls += 1
        self.round_trips += max(0.0, received - sent)


async def sleep_until(
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Sleep until `clock()` reaches `deadline`, waking on time.

    `asyncio.sleep(t)` on Linux wakes up to t/1000 late (the kernel's timer slack for
    epoll waits) plus up to 1 ms (epoll counts whole milliseconds): 3 to 4 ms on a 3 s
    wait, which a poller that must keep pace with `time.sleep` cannot afford. So sleep to
    a little short of the deadline, then top up with a wait too short to slip.
    """
    while (left := deadline - clock()) > 0:
        early = left / 500 + 0.002
        await sleep(left - early if left > 2 * early else left)
