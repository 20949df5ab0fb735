"""When to ask AssemblyAI about a submitted transcript again.

A fixed 3-second poll spends most of its calls on long audio asking a question whose
answer is known to be "not yet", and a service's turnaround is not a constant: the same
length takes longer one time than the next. So the engine's schedule (`PollSchedule`)
learns the *distribution* of turnarounds from the jobs this process saw finish, per
speech model and length class, and polls around its quantiles:

- **Where**: a location model, `base + ratio x audio seconds`, fitted to every finished
  job (least squares), says roughly how long a length takes; each class (model, length
  within a factor of two, or "length unknown") keeps the recent jobs' turnarounds relative
  to it and fits a lognormal (`Spread`: the median and sigma of the log-ratio). What a poll
  sees is an interval, not a time: a job found done at its first poll finished at some
  time before it, one found done at poll k between polls k - 1 and k, one woken by its
  webhook at that moment. The fit treats them so (censored data: expectation-maximisation
  over the intervals), so an early first poll does not bias it.
- **When**: for that lognormal, the poll times that minimise the expected GETs plus
  `latency_cost` x the expected seconds between the transcript's completion and the poll
  that sees it (`optimal_times`: a dynamic programme over a grid, cached per shape).
  The gap between two polls is never above `max_gap` (3 s), so no job waits longer for
  the poll that sees it done than a fixed 3 s loop could make it wait.
- **With webhooks** (`webhook=True`): the webhook is the signal; the fallback poll waits
  for a late quantile of the expected time plus a margin, then backs off. A webhook's
  arrival is an exact turnaround, so the schedule keeps learning.

Everything is deterministic and takes its times as arguments (seconds since the
submission answered): the engine passes the store's clock, tests pass numbers.

`threadscribe transcribe` has a different aim (one job, a person waiting at the terminal,
nothing to learn from) and its own schedule, `SdkPace`, below: never slower than
AssemblyAI's own SDK.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import ClassVar, Final

from bot.transcript import TranscriptStatus

_NORMAL: Final = NormalDist()
#: A class's spread is never taken below this (timer noise) nor above this.
SIGMA_MIN: Final = 0.02
SIGMA_MAX: Final = 2.0
#: Turnarounds a class remembers (the most recent), and how many before it is used
#: on its own rather than with its model's other lengths pooled in.
CLASS_MEMORY: Final = 96
CLASS_MIN: Final = 4


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return _NORMAL.cdf(z)


@dataclass(slots=True)
class Spread:
    """A lognormal fitted to interval-censored turnarounds, relative to the location.

    Each observation is the audio length and an interval (`low`, `high`] of seconds:
    `low` is 0 when only "done by then" is known, `low == high` for an exact time (a
    webhook). They are kept in seconds and divided by the location at each fit, so a
    location that moves as it learns does not leave old observations behind.
    """

    mu: float = 0.0
    sigma: float = 0.5
    observed: deque[tuple[float | None, float, float]] = field(
        default_factory=lambda: deque(maxlen=CLASS_MEMORY)
    )

    def add(self, duration: float | None, low: float, high: float) -> None:
        self.observed.append((duration, min(low, high), high))

    def fit(self, location: Callable[[float | None], float], rounds: int = 3) -> None:
        """Expectation-maximisation for a normal over the log-ratio intervals, a few
        rounds from the current fit (each: every interval's conditional moments)."""
        if not self.observed:
            return
        intervals = []
        for duration, low, high in self.observed:
            where = location(duration)
            log_high = math.log(high / where)
            intervals.append((math.log(low / where) if low > 0 else -math.inf, log_high))
        mu, sigma = self.mu, max(self.sigma, SIGMA_MIN)
        n = len(intervals)
        for _ in range(rounds):
            first = second = 0.0
            for low, high in intervals:
                m1, m2 = _moments(low, high, mu, sigma)
                first += m1
                second += m2
            mu = first / n
            sigma = math.sqrt(max(0.0, second / n - mu * mu))
            sigma = min(SIGMA_MAX, max(SIGMA_MIN, sigma))
        self.mu, self.sigma = mu, sigma


def _moments(low: float, high: float, mu: float, sigma: float) -> tuple[float, float]:
    """E[x] and E[x^2] of x ~ N(mu, sigma) given low < x <= high."""
    if high - low < 1e-9:
        return high, high * high
    b = (high - mu) / sigma
    a = (low - mu) / sigma if low > -math.inf else -math.inf
    pa, pb = (0.0 if a == -math.inf else _pdf(a)), _pdf(b)
    mass = _cdf(b) - (0.0 if a == -math.inf else _cdf(a))
    if mass < 1e-12:  # far in a tail of the current fit: take the interval's nearest end
        near = high if b < 0 else (low if a > -math.inf else high)
        return near, near * near
    ratio = (pa - pb) / mass
    mean = mu + sigma * ratio
    apa = 0.0 if a == -math.inf else a * pa
    var = sigma * sigma * (1 + (apa - b * pb) / mass - ratio * ratio)
    return mean, max(0.0, var) + mean * mean


def length_class(duration: float | None) -> int | None:
    """Lengths within a factor of two share a class (None: length unknown)."""
    if duration is None or duration <= 0:
        return None
    return max(0, round(math.log2(duration)))


# -- the schedule for one distribution --------------------------------------------------

_GRID: Final = 96
#: Jobs finishing sooner than this quantile may wait longer than `max_gap` for the
#: first poll; every other job sees its poll within `max_gap` of finishing.
FIRST_BY: Final = 0.02
_CACHE_SIZE: Final = 512
_times_cache: OrderedDict[tuple[float, float, float, float], tuple[float, ...]] = OrderedDict()


def optimal_times(
    median: float, sigma: float, *, latency_cost: float, max_gap: float, min_gap: float = 0.05
) -> tuple[float, ...]:
    """Poll times (seconds after submission) for a turnaround ~ lognormal(median, sigma)
    that minimise E[GETs] + latency_cost x E[completion -> the poll that sees it], with
    no two polls further apart than `max_gap`. The times cover the distribution up to
    far in its upper tail; past the last one, poll every `max_gap`.

    Cached on a quantised shape (the median to 2.5 %, sigma to 0.01), so a busy process
    works a shape out once."""
    q_median = math.exp(round(math.log(max(median, 0.01)) * 40) / 40)
    q_sigma = round(min(SIGMA_MAX, max(SIGMA_MIN, sigma)), 2)
    key = (q_median, q_sigma, latency_cost, max_gap)
    cached = _times_cache.get(key)
    if cached is not None:
        _times_cache.move_to_end(key)
        return cached
    times = _solve(q_median, q_sigma, latency_cost, max_gap, min_gap)
    _times_cache[key] = times
    if len(_times_cache) > _CACHE_SIZE:
        _times_cache.popitem(last=False)
    return times


def _solve(
    median: float, sigma: float, cost: float, max_gap: float, min_gap: float
) -> tuple[float, ...]:
    log_m = math.log(median)
    # the first poll comes at most `max_gap` after the `FIRST_BY` quantile: beyond it no
    # job waits longer than a fixed loop would make it wait for the poll that sees it
    first_by = median * math.exp(sigma * _NORMAL.inv_cdf(FIRST_BY)) + max_gap
    low, high = median * math.exp(-3.2 * sigma), median * math.exp(3.7 * sigma)
    step = min(max((high - low) / _GRID, min_gap / 2), max_gap / 2)
    grid = [0.0]
    t = low
    while t < high + step / 2:
        grid.append(t)
        t += step
    k = len(grid)
    # cdf and partial first moment E[T; T <= t] of the lognormal at each grid time
    cdf = [0.0] * k
    part = [0.0] * k
    scale = median * math.exp(sigma * sigma / 2)
    for i in range(1, k):
        z = (math.log(grid[i]) - log_m) / sigma
        cdf[i] = _cdf(z)
        part[i] = scale * _cdf(z - sigma)
    # cost[i]: expected further GETs + cost x latency, given a poll at grid[i] found the
    # job unfinished (for i = 0: the submission), per unit of probability still unfinished
    inf = float("inf")
    best = [0.0] * k
    after: list[int] = [-1] * k
    tail = cost * max_gap / 2  # past the grid: a poll every max_gap, half a gap late
    for i in range(k - 1, -1, -1):
        alive = 1.0 - cdf[i]
        if alive < 1e-9:
            best[i] = 0.0
            continue
        choice, chosen = inf, -1
        for j in range(i + 1, k):
            gap = grid[j] - grid[i]
            if gap > max_gap + 1e-9 and (i > 0 or grid[j] > first_by):
                break
            if gap < min_gap and i > 0:
                continue
            done = cdf[j] - cdf[i]
            late = grid[j] * done - (part[j] - part[i])
            value = alive + cost * late + best[j]
            if value < choice:
                choice, chosen = value, j
        if chosen < 0:  # the last grid point: the tail's fixed pace
            choice = alive * (1 + tail)
        best[i], after[i] = choice, chosen
    times: list[float] = []
    i = after[0]
    while i > 0:
        times.append(grid[i])
        i = after[i]
    return tuple(times)


# -- the engine's schedule ----------------------------------------------------------------


@dataclass(slots=True)
class PollSchedule:
    #: location: turnaround ~ base + ratio * audio seconds (learned, starting from these)
    base: float = 1.0
    ratio: float = 0.03
    #: the spread assumed before a class has finished jobs to learn from
    prior_sigma: float = 0.5
    #: GETs one second of added latency is worth (the trade the schedule optimises)
    latency_cost: float = 0.8
    #: never more than this between two polls of one job: under a fixed 3 s loop's pace,
    #: so that the slowest case (a job done just after a poll) stays below its p95 too
    max_gap: float = 2.5
    #: while AssemblyAI still has the job queued (account busy), check at this pace
    queued_gap: float = 3.0
    #: with webhooks: the fallback poll waits for this quantile of the turnaround, plus
    #: the larger of `webhook_margin` seconds and `webhook_share` of it; then backs off
    webhook_quantile: float = 0.999
    webhook_margin: float = 15.0
    webhook_share: float = 0.5
    webhook_max_gap: float = 300.0
    #: (audio seconds, turnaround seconds) of recent jobs, for the location fit
    observed: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=128))
    #: (model, length class) -> the spread of its turnarounds around the location
    spreads: dict[tuple[str, int | None], Spread] = field(default_factory=dict)
    #: model -> every length of it pooled (used while a class has few jobs)
    pooled: dict[str, Spread] = field(default_factory=dict)

    def expected(self, duration: float) -> float:
        """The location: roughly how long `duration` seconds of audio take."""
        return self.base + self.ratio * duration

    def _location(self, duration: float | None) -> float:
        return self.expected(duration) if duration is not None and duration > 0 else 1.0

    def spread(self, model: str | None, duration: float | None) -> tuple[float, float]:
        """(mu, sigma) of log(turnaround / location) for a job of this model and length:
        its class's fit once it has `CLASS_MIN` jobs, until then its model's lengths
        pooled, until then the prior. Sigma is widened by a small sample's uncertainty:
        a spread underestimated from a few jobs would poll too close to the median and
        leave the late ones waiting the whole gap."""
        own = self.spreads.get((model or "", length_class(duration)))
        if own is not None and len(own.observed) >= CLASS_MIN:
            return own.mu, own.sigma * math.sqrt(1 + 1 / len(own.observed))
        if duration is None or duration <= 0:
            return math.log(self.expected(60)), max(1.0, self.prior_sigma)
        pool = self.pooled.get(model or "")
        if pool is not None and pool.observed:
            n = len(pool.observed)
            if n >= CLASS_MIN:
                return pool.mu, pool.sigma * math.sqrt(1 + 1 / n)
            # a little evidence: between the prior and what was seen
            return pool.mu * n / CLASS_MIN, max(pool.sigma, self.prior_sigma)
        return 0.0, self.prior_sigma

    def quantile(self, q: float, *, duration: float | None, model: str | None = None) -> float:
        """The q-quantile (0..1) of the turnaround, as learned so far, in seconds."""
        mu, sigma = self.spread(model, duration)
        return self._location(duration) * math.exp(mu + sigma * _NORMAL.inv_cdf(q))

    def times(self, *, duration: float | None, model: str | None = None) -> tuple[float, ...]:
        """The poll times (seconds after submission) for such a job, without webhooks."""
        mu, sigma = self.spread(model, duration)
        median = self._location(duration) * math.exp(mu)
        return optimal_times(median, sigma, latency_cost=self.latency_cost, max_gap=self.max_gap)

    def next_delay(
        self,
        *,
        elapsed: float,
        polls: int,
        duration: float | None,
        status: TranscriptStatus | None,
        model: str | None = None,
        webhook: bool = False,
    ) -> float:
        """Seconds until the next poll, `elapsed` seconds after submission, after `polls`
        polls that found the transcript unfinished (last seen in `status`)."""
        if webhook:
            return self._fallback(elapsed=elapsed, polls=polls, duration=duration, model=model)
        if status is TranscriptStatus.QUEUED and polls > 0:
            return self.queued_gap
        for at in self.times(duration=duration, model=model):
            if at > elapsed + 1e-6:
                return at - elapsed
        return self.max_gap

    def _fallback(
        self, *, elapsed: float, polls: int, duration: float | None, model: str | None
    ) -> float:
        """With webhooks: a poll only when the webhook is overdue, and rarer after it."""
        if polls == 0:
            late = self.quantile(self.webhook_quantile, duration=duration, model=model)
            first = late + max(self.webhook_margin, self.webhook_share * late)
            return max(0.0, first - elapsed)
        return min(self.webhook_max_gap, max(self.webhook_margin, self.webhook_share * elapsed))

    def learn(
        self,
        *,
        duration: float | None,
        turnaround: float,
        polls: int,
        previous: float | None = None,
        model: str | None = None,
        exact: bool = False,
    ) -> None:
        """Record a finished job, seen done `turnaround` seconds after submission at poll
        number `polls` (1 = the first); `previous`: when the poll before that one found it
        unfinished (None if unknown); `exact`: it finished at `turnaround` (a webhook)."""
        if turnaround <= 0:
            return
        if exact:
            low = high = turnaround
        elif polls > 1 and previous is not None and 0 < previous < turnaround:
            low, high = previous, turnaround
        else:
            low, high = 0.0, turnaround
        known = duration is not None and duration > 0
        if known:
            assert duration is not None
            mid = (low + high) / 2 if low > 0 else high * 0.8
            self.observed.append((duration, mid))
            self._fit()
        key = (model or "", length_class(duration))
        own = self.spreads.setdefault(key, Spread(sigma=self.prior_sigma))
        own.add(duration, low, high)
        own.fit(self._location)
        if known:
            pool = self.pooled.setdefault(model or "", Spread(sigma=self.prior_sigma))
            pool.add(duration, low, high)
            pool.fit(self._location)

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
