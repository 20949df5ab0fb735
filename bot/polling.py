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
"""

from __future__ import annotations

from collections import deque
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
