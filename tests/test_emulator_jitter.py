"""The emulator's turnaround spread (`processing_jitter`): a seeded lognormal around the
processing time, drawn per job in submission order, with queueing under the concurrency
limit as before."""

from __future__ import annotations

import argparse
import asyncio
import math
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorConfig, cli
from emulator.processing import Processor
from tests.emulator_server import start_emulator, wait_done
from tests.test_emulator import client_for, submit, upload


def _processor(**config: Any) -> Processor:
    settings: dict[str, Any] = {"api_key": "k"} | config
    return Processor(EmulatorConfig(**settings), None, None)  # type: ignore[arg-type]


def test_without_jitter_every_job_of_a_length_takes_the_nominal_time() -> None:
    processor = _processor(processing_time=2.0, processing_ratio=0.1)
    assert {processor.spread_factor() for _ in range(50)} == {1.0}
    assert processor.processing_seconds("unknown", 30.0) == pytest.approx(5.0)


def test_the_spread_is_a_seeded_lognormal_around_the_nominal_time() -> None:
    one = _processor(processing_jitter=0.3, processing_seed=11)
    two = _processor(processing_jitter=0.3, processing_seed=11)
    other = _processor(processing_jitter=0.3, processing_seed=12)
    draws = [one.spread_factor() for _ in range(4000)]
    assert draws == [two.spread_factor() for _ in range(4000)]  # the same seed: the same run
    assert draws[:10] != [other.spread_factor() for _ in range(10)]
    logs = [math.log(f) for f in draws]
    mean = sum(logs) / len(logs)
    sigma = math.sqrt(sum((x - mean) ** 2 for x in logs) / len(logs))
    assert abs(mean) < 0.02  # the median is the nominal time
    assert sigma == pytest.approx(0.3, abs=0.015)
    assert min(draws) < 0.5 < 2.0 < max(draws)  # both tails are there


def test_the_jitter_is_checked() -> None:
    with pytest.raises(ValueError, match="processing_jitter"):
        EmulatorConfig(api_key="k", processing_jitter=-0.1)


def test_the_command_line_sets_the_jitter_and_its_seed(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(["--processing-jitter", "0.3", "--processing-seed", "5"])
    config = cli.build_config(args, "key")
    assert (config.processing_jitter, config.processing_seed) == (0.3, 5)
    assert cli.build_config(parser.parse_args([]), "key").processing_jitter == 0.0


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def test_jobs_of_one_file_take_the_drawn_times(tmp_path: Path, audio_library: Any) -> None:
    """Six submissions of the same audio: each takes 0.5 s x its own drawn factor, the
    factors being the seeded generator's draws in submission order."""
    sigma, seed, nominal = 0.6, 3, 0.5
    rng = random.Random(seed)
    expected = [nominal * math.exp(sigma * rng.gauss(0.0, 1.0)) for _ in range(6)]
    # scripted audio: the emulator does not listen for speech (an ffmpeg run) in it
    data = audio_library.dialogue("wav", tmp_path).path.read_bytes()
    config = {"processing_time": nominal, "processing_jitter": sigma, "processing_seed": seed}
    with start_emulator(tmp_path, concurrency=10, **config) as server:
        async with client_for(server) as api:
            url = await upload(api, data)
            ids = [(await submit(api, audio_url=url))["id"] for _ in range(6)]
            await asyncio.gather(*(wait_done(api, i) for i in ids))
            listed = (await api.get("/v2/transcript", params={"limit": 10})).json()
    items = {t["id"]: t for t in listed["transcripts"]}
    took = [_seconds(items[i]["completed"]) - _seconds(items[i]["created"]) for i in ids]
    for seconds, drawn in zip(took, expected, strict=True):
        # a job's time includes fetching and measuring its audio, so never less than that
        assert drawn - 0.03 <= seconds <= max(drawn, 0.15) + 0.25, (took, expected)
    assert max(took) / min(took) > 1.5  # they vary, as the service's do


async def test_a_jittered_job_still_waits_for_a_slot(tmp_path: Path, audio_library: Any) -> None:
    data = audio_library.dialogue("wav").path.read_bytes()
    config = {"processing_time": 0.4, "processing_jitter": 0.3, "processing_seed": 1}
    with start_emulator(tmp_path, concurrency=1, **config) as server:
        async with client_for(server) as api:
            url = await upload(api, data)
            ids = [(await submit(api, audio_url=url))["id"] for _ in range(2)]
            await asyncio.sleep(0.1)
            second = (await api.get(f"/v2/transcript/{ids[1]}")).json()
            await asyncio.gather(*(wait_done(api, i) for i in ids))
            listed = (await api.get("/v2/transcript")).json()
    assert (second["status"], second["throttled"]) == ("queued", True)
    done = {t["id"]: _seconds(t["completed"]) for t in listed["transcripts"]}
    assert done[ids[1]] > done[ids[0]]  # it started once the first had finished
