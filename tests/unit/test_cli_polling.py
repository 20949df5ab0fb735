"""The terminal's poll schedule (`bot.polling.SdkPace`, `sleep_until`) as a unit, with an
injected clock: never later than AssemblyAI's SDK, one GET fewer (the real command and the
real SDK against one emulator: tests/system/test_cli_polling.py)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from bot.polling import SdkPace, sleep_until

INTERVAL = 3.0


@dataclass(frozen=True)
class Seen:
    at: float  # when the poll that found the job done left
    gets: int


def sdk(done_at: float, trips: Sequence[float], overhead: float) -> Seen:
    """`Transcript.wait_for_completion`: GET at once, then sleep 3 s after each answer
    (`overhead`: what it spends between an answer and its next request, per poll)."""
    sent = 0.0
    for n, trip in enumerate(trips):
        if sent >= done_at:
            return Seen(sent, n + 1)
        sent += trip + INTERVAL + overhead
    raise AssertionError("ran out of round trips")


def cli(
    done_at: float, trips: Sequence[float], *, submit_trip: float, late: float = 0.0
) -> tuple[Seen, list[float]]:
    """SdkPace after a submit that took `submit_trip`, its polls leaving `late` after they
    are due; also the gaps between each answer and the next poll's deadline."""
    pace = SdkPace.after_submit(sent=-submit_trip, answered=0.0, interval=INTERVAL)
    gaps, answered = [], 0.0
    for n, trip in enumerate(trips):
        due = pace.due()
        gaps.append(due - answered)
        sent = due + late
        if sent >= done_at:
            return Seen(sent, n + 1), gaps
        answered = sent + trip
        pace.answered(sent=sent, received=answered)
    raise AssertionError("ran out of round trips")


@pytest.mark.parametrize("seed", range(5))
def test_never_later_than_the_sdk_and_never_more_gets(seed):
    rng = random.Random(seed)
    cap, losses = SdkPace.MAX_FIRST_TRIP, 0
    for _ in range(2000):
        # Round trips from loopback (~1 ms) to a slow far-away link; the same network for
        # both clients, each trip drawn once and used by both for their n-th poll. The
        # submit may take longer than a GET, or not.
        trips = [rng.uniform(0.0005, 0.3) for _ in range(40)]
        submit_trip = trips[0] * rng.uniform(0.5, 4.0)
        overhead = rng.uniform(0.0, 0.002)
        done_at = rng.uniform(0.0, 90.0)
        theirs = sdk(done_at, trips, overhead)
        # Our n-th poll meets the SDK's (n+1)-th round trip.
        ours, gaps = cli(done_at, trips[1:], submit_trip=submit_trip)
        assert ours.gets <= theirs.gets
        assert max(gaps) <= INTERVAL + cap + 1e-9
        assert max(gaps[1:], default=0.0) <= INTERVAL + 1e-9
        if ours.at > theirs.at + cap:
            # The one way to lose: the job finished between our poll and the SDK's
            # matching one, a window of its first round trip (less ours, at most `cap`)
            # plus its overheads.
            losses += 1
            assert ours.gets == theirs.gets
            window = trips[0] - min(cap, submit_trip) + overhead * (theirs.gets - 1)
            assert theirs.at - window < done_at <= theirs.at
        else:
            assert ours.gets < theirs.gets or ours.at == theirs.at
            if submit_trip <= trips[0]:  # our stand-in for its first GET is no longer
                assert ours.at <= theirs.at
    # The window is narrow: losses come at about (round trip / 3 s) of finishing times.
    assert losses < 2000 * 0.1


def test_first_poll_skips_the_immediate_get_and_waits_one_interval_and_a_round_trip():
    pace = SdkPace.after_submit(sent=99.998, answered=100.0, interval=INTERVAL)
    assert pace.due() == pytest.approx(103.002)
    pace.answered(sent=103.002, received=103.25)
    assert pace.due() == pytest.approx(106.25)  # 3 s after the answer, as the SDK
    pace.answered(sent=106.4, received=106.5)  # woke late: the lateness is not carried
    assert pace.due() == pytest.approx(109.35)
    # A slow submit (retried, say) does not hold the polls back by more than the cap.
    slow = SdkPace.after_submit(sent=90.0, answered=100.0, interval=INTERVAL)
    assert slow.due() == pytest.approx(103.0 + SdkPace.MAX_FIRST_TRIP)


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_a_job_done_exactly_on_a_3s_mark_is_seen_by_that_poll(k):
    # A server that times its work in whole seconds finishes on a mark plus its timer's
    # slack; a poll leaving exactly on the mark would race it and lose 3 s.
    trips = [0.002] * 20
    done_at = k * INTERVAL + 0.0005
    ours, _ = cli(done_at, trips, submit_trip=0.002)
    assert ours.gets == k
    assert ours.at <= sdk(done_at, [0.002, *trips], overhead=0.0).at + 1e-9


class FakeClock:
    """A clock whose sleeps overshoot as Linux epoll waits do: by t/1000 plus up to a
    millisecond (rounded up to whole ms)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + seconds / 1000 + 0.001


async def test_sleep_until_wakes_on_time_despite_slack():
    clock = FakeClock()
    await sleep_until(3.0, clock=clock, sleep=clock.sleep)
    assert 3.0 <= clock.now <= 3.0 + 0.0011
    # A plain sleep would have been 4 ms late.
    naive = FakeClock()
    await naive.sleep(3.0)
    assert naive.now - 3.0 > 0.0035


async def test_sleep_until_a_past_deadline_does_not_sleep():
    clock = FakeClock()
    clock.now = 5.0
    await sleep_until(4.0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


async def test_sleep_until_really_sleeps():
    clock = FakeClock()
    await sleep_until(0.5, clock=clock, sleep=clock.sleep)
    assert clock.now >= 0.5 and len(clock.sleeps) <= 3
