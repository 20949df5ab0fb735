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
    sleeps `polling_interval` (3 s) after every answer. Its k-th poll after the first
    therefore leaves at `submitted + 3k + r0 + r1 + ... + r(k-1) + its own overheads`,
    where r are its round trips (r0: the immediate GET, which never finds a job done:
    AssemblyAI does not transcribe in one round trip).

    Ours skip that GET and are due at `submitted + 3k + (our round trips so far)`: the
    SDK's schedule less r0 and less its overheads (wake-up lateness and processing between
    answer and next request, which add up poll after poll in a sleep-after-answer loop and
    do not here: each poll is due at a deadline). So each poll leaves at least a round trip
    before the SDK's matching one, the gap from an answer to the next poll never exceeds
    3 s, and whatever the finishing time, we see it no later than the SDK (a finish
    between our poll and the SDK's matching poll, a window one round trip wide, is the one
    exception: we then need the next poll, and still make no more GETs than the SDK).

    Deadlines are not multiples of 3 s after submission: poll k lands k - 1 round trips
    past the mark, as the SDK's do (k + 1 round trips), so a job that finishes exactly on
    a mark (a server timing its work in whole seconds) is not raced by a poll that leaves
    at the same instant, seen "processing" by a hair, and then waited on for 3 s more. The
    first poll is on its mark; so is the SDK's, one round trip later.

    `submitted` and every time given are on one monotonic clock.
    """

    submitted: float
    interval: float = 3.0
    polls: int = 0
    round_trips: float = 0.0

    def due(self) -> float:
        """When the next poll should leave."""
        return self.submitted + (self.polls + 1) * self.interval + self.round_trips

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
