"""The engine's poll schedule (`bot.polling.PollSchedule`), on injected numbers only: it
learns the distribution of turnarounds per model and length, polls around its quantiles,
never leaves more than 3 s between polls, and with webhooks waits for them."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import pytest

from bot.polling import PollSchedule, Spread, length_class, optimal_times
from bot.transcript import TranscriptStatus

LENGTHS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PROCESSING = TranscriptStatus.PROCESSING


def turnaround(duration: float) -> float:
    return 1.0 + 0.05 * duration


@dataclass
class Run:
    gets: list[int]
    late: list[float]

    @property
    def mean_gets(self) -> float:
        return sum(self.gets) / len(self.gets)

    @property
    def mean_late(self) -> float:
        return sum(self.late) / len(self.late)

    def p95(self) -> float:
        ordered = sorted(self.late)
        return ordered[int(0.95 * (len(ordered) - 1))]


def poll_one(
    schedule: PollSchedule, duration: float, finish: float, model: str
) -> tuple[int, float]:
    """Poll one job that finishes `finish` s after submission; (GETs, seconds late)."""
    elapsed, polls, previous = 0.0, 0, None
    while True:
        delay = schedule.next_delay(
            elapsed=elapsed, polls=polls, duration=duration, status=PROCESSING, model=model
        )
        assert delay > 0
        if polls:
            assert delay <= schedule.max_gap + 1e-9  # never slower than a fixed 3 s loop
        elapsed += delay
        polls += 1
        if elapsed >= finish:
            break
        previous = elapsed
    schedule.learn(
        duration=duration, turnaround=elapsed, polls=polls, previous=previous, model=model
    )
    return polls, elapsed - finish


def simulate(sigma: float, *, jobs: int = 600, warm: int = 100, seed: int = 7) -> tuple[Run, Run]:
    """The schedule from scratch, and the tutorial's loop (a GET at once, then every 3 s),
    on the same jobs: lengths 5 s..10 min, turnaround (1 s + 0.05 x length) x lognormal."""
    rng = random.Random(seed)
    schedule = PollSchedule()
    ours, tutorial = Run([], []), Run([], [])
    for n in range(jobs):
        duration = rng.choice(LENGTHS)
        finish = turnaround(duration) * math.exp(sigma * rng.gauss(0.0, 1.0))
        gets, late = poll_one(schedule, duration, finish, "universal")
        if n >= warm:
            ours.gets.append(gets)
            ours.late.append(late)
            marks = math.ceil(finish / 3.0)
            tutorial.gets.append(1 + marks)
            tutorial.late.append(3.0 * marks - finish)
    return ours, tutorial


def test_a_fixed_turnaround_is_learnt_to_about_one_get() -> None:
    ours, tutorial = simulate(0.0)
    assert ours.mean_gets <= 0.3 * tutorial.mean_gets
    assert ours.mean_gets <= 1.2
    assert ours.mean_late <= 0.3 and ours.p95() <= 0.8


def test_a_spread_turnaround_beats_the_tutorial_on_gets_and_on_latency() -> None:
    ours, tutorial = simulate(0.3)
    assert ours.mean_gets <= 0.6 * tutorial.mean_gets
    assert ours.mean_late <= 0.8 * tutorial.mean_late
    assert ours.p95() <= tutorial.p95()


def test_the_spread_learnt_from_polls_is_the_true_one() -> None:
    """Polls only bracket a turnaround (or bound it, at the first poll): the fit over
    those intervals still finds the lognormal's median and sigma."""
    rng = random.Random(3)
    schedule = PollSchedule()
    for _ in range(400):
        finish = turnaround(120.0) * math.exp(0.3 * rng.gauss(0.0, 1.0))
        poll_one(schedule, 120.0, finish, "m")
    median = schedule.quantile(0.5, duration=120.0, model="m")
    _mu, sigma = schedule.spread("m", 120.0)
    assert median == pytest.approx(turnaround(120.0), rel=0.08)
    assert sigma == pytest.approx(0.3, abs=0.07)
    assert schedule.quantile(0.95, duration=120.0, model="m") == pytest.approx(
        turnaround(120.0) * math.exp(0.3 * 1.645), rel=0.12
    )


def test_models_and_lengths_are_learnt_apart() -> None:
    schedule = PollSchedule()
    rng = random.Random(5)
    for _ in range(60):
        for model, speed in (("fast", 0.5), ("slow", 2.0)):
            finish = speed * turnaround(60.0) * math.exp(0.1 * rng.gauss(0.0, 1.0))
            schedule.learn(duration=60.0, turnaround=finish, polls=1, model=model, exact=True)
    fast = schedule.quantile(0.5, duration=60.0, model="fast")
    slow = schedule.quantile(0.5, duration=60.0, model="slow")
    assert slow / fast == pytest.approx(4.0, rel=0.1)
    assert schedule.times(duration=60.0, model="fast")[-1] < slow
    assert schedule.times(duration=60.0, model="slow")[0] > fast * 2
    assert length_class(60.0) != length_class(600.0) and length_class(None) is None


def test_before_anything_finished_the_prior_is_cautious() -> None:
    schedule = PollSchedule()
    times = schedule.times(duration=60.0)
    early = schedule.quantile(0.02, duration=60.0)
    assert early < schedule.expected(60.0) / 2  # it assumes a wide spread...
    assert times[0] <= early + 3.0  # ...and polls from early in it
    assert all(b - a <= 3.0 + 1e-9 for a, b in itertools.pairwise(times))
    unknown = schedule.next_delay(elapsed=0.0, polls=0, duration=None, status=None)
    assert 0 < unknown <= 10.0


def test_a_queued_transcript_is_checked_at_the_fixed_pace() -> None:
    schedule = PollSchedule()
    delay = schedule.next_delay(elapsed=40.0, polls=3, duration=5.0, status=TranscriptStatus.QUEUED)
    assert delay == schedule.queued_gap == 3.0


def test_past_the_learnt_times_the_pace_is_the_gap_cap() -> None:
    schedule = PollSchedule()
    last = schedule.times(duration=5.0)[-1]
    assert (
        schedule.next_delay(elapsed=last + 100, polls=30, duration=5.0, status=PROCESSING)
        == schedule.max_gap
    )


def test_with_webhooks_the_fallback_waits_for_a_late_quantile_plus_a_margin() -> None:
    schedule = PollSchedule()
    rng = random.Random(9)
    for _ in range(50):
        finish = turnaround(120.0) * math.exp(0.3 * rng.gauss(0.0, 1.0))
        schedule.learn(duration=120.0, turnaround=finish, polls=1, model="m", exact=True)
    late = schedule.quantile(0.999, duration=120.0, model="m")
    first = schedule.next_delay(
        elapsed=0.0, polls=0, duration=120.0, status=PROCESSING, model="m", webhook=True
    )
    assert first == pytest.approx(late + max(15.0, 0.5 * late))
    assert first > 2 * turnaround(120.0)  # a webhook a little late never costs a GET
    again = schedule.next_delay(
        elapsed=first, polls=1, duration=120.0, status=PROCESSING, model="m", webhook=True
    )
    assert again >= 15.0
    later = schedule.next_delay(
        elapsed=10_000.0, polls=9, duration=120.0, status=PROCESSING, model="m", webhook=True
    )
    assert later == schedule.webhook_max_gap


def test_optimal_times_keep_the_gap_and_start_near_the_early_quantiles() -> None:
    for median, sigma in ((1.25, 0.3), (31.0, 0.3), (31.0, 0.02), (600.0, 0.8)):
        times = optimal_times(median, sigma, latency_cost=0.8, max_gap=3.0)
        assert times == tuple(sorted(times))
        assert all(b - a <= 3.0 + 1e-9 for a, b in itertools.pairwise(times))
        early = median * math.exp(sigma * -2.054)  # the 2 % quantile
        assert times[0] <= early + 3.0 + 1e-9
        assert times[-1] >= median * math.exp(3 * sigma)  # covers the upper tail
    narrow = optimal_times(31.0, 0.02, latency_cost=0.8, max_gap=3.0)
    assert 31.0 < narrow[0] < 33.0 and len(narrow) <= 6


def test_the_fit_over_intervals_recovers_a_normal() -> None:
    rng = random.Random(1)
    spread = Spread(sigma=0.5)
    for _ in range(48):
        x = math.exp(0.4 + 0.25 * rng.gauss(0.0, 1.0))
        low = math.floor(x * 4) / 4  # every observation a quarter-second bracket
        spread.add(None, low, low + 0.25)
    spread.fit(lambda duration: 1.0, rounds=20)
    assert spread.mu == pytest.approx(0.4, abs=0.08)
    assert spread.sigma == pytest.approx(0.25, abs=0.07)
