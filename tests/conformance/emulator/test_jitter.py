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

import httpx
import pytest

from emulator import EmulatorConfig, cli
from emulator.processing import Processor
from tests.helpers.emulator_server import EmulatorServer, start_emulator, wait_done

MODELS = ["assemblyai-stt-3-7", "universal-2"]


def client_for(server: EmulatorServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url, headers={"authorization": server.api_key}, timeout=10
    )


async def upload(api: httpx.AsyncClient, data: bytes) -> str:
    response = await api.post("/v2/upload", content=data)
    assert response.status_code == 200, response.text
    return str(response.json()["upload_url"])


async def submit(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await api.post("/v2/transcript", json={"speech_models": MODELS} | params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


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
    """Six submissions of the same audio: each takes 1 s x its own drawn factor, the
    factors being the seeded generator's draws in submission order."""
    sigma, seed, nominal = 0.6, 3, 1.0
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
        # never less than drawn; more only by fetching and measuring the audio (on a
        # loaded machine, six at once: up to ~0.8 s), so the bound leaves room for that
        assert drawn - 0.03 <= seconds <= max(drawn, 0.15) + 0.8, (took, expected)
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
