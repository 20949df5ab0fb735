"""The bot's web server over a real socket: webhook auth, health, readiness, metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot import assemblyai as aai
from bot.config import Secret
from bot.engine import WEBHOOK_HEADER, Engine, EngineConfig
from bot.jobs import JobState, JobStore, Platform
from bot.web import create_app
from tests.fakes.recording import RecordingPlatform, url_intake

SECRET = "s3cret-webhook-value"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, secret: str | None = SECRET) -> AsyncIterator[tuple[str, Engine]]:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    client = aai.AssemblyAIClient(Secret("unused"), base_url="http://127.0.0.1:9")
    config = EngineConfig(
        webhook_url="https://bot.example/webhooks/assemblyai",
        webhook_secret=Secret(secret) if secret else None,
        # No room to work: a webhook then only makes the job due, which these tests read.
        # (tests/test_engine.py covers a webhook starting the job itself.)
        max_tasks=0,
    )
    engine = Engine(store, client, {Platform.SLACK: RecordingPlatform()}, config)
    runner = web.AppRunner(create_app(engine))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", engine
    finally:
        await runner.cleanup()
        await engine.stop()
        await client.close()
        await store.close()


async def submitted_job(engine: Engine, transcript_id: str) -> str:
    """A job waiting on `transcript_id`, next poll far in the future."""
    from datetime import UTC, datetime, timedelta

    # Straight into the store: engine.intake would also start announcing the job.
    job, _created = await engine.store.admission.intake(url_intake("https://media.example/a.mp3"))
    job_id = job.id
    [claimed] = await engine.store.queue.claim("test", lease_seconds=30, states=[JobState.RECEIVED])
    await engine.store.queue.transition(
        job_id,
        "test",
        JobState.RECEIVED,
        JobState.SUBMITTED,
        transcript_id=transcript_id,
        next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
        release=True,
    )
    assert claimed.id == job_id
    return job_id


@pytest.mark.parametrize(
    "headers",
    [{}, {WEBHOOK_HEADER: "wrong"}, {WEBHOOK_HEADER: SECRET[:-1]}, {"Authorization": SECRET}],
    ids=["missing", "wrong", "prefix", "other-header"],
)
async def test_forged_or_missing_secret_is_401_and_changes_nothing(tmp_path, headers):
    async with serving(tmp_path) as (base, engine), aiohttp.ClientSession() as http:
        job_id = await submitted_job(engine, "t-1")
        before = await engine.store.get(job_id)
        async with http.post(
            f"{base}/webhooks/assemblyai",
            json={"transcript_id": "t-1", "status": "completed"},
            headers=headers,
        ) as response:
            assert response.status == 401
            assert "t-1" not in await response.text()
        after = await engine.store.get(job_id)
        assert after.next_attempt_at == before.next_attempt_at


async def test_valid_webhook_makes_the_job_due_and_a_replay_changes_nothing(tmp_path):
    async with serving(tmp_path) as (base, engine), aiohttp.ClientSession() as http:
        job_id = await submitted_job(engine, "t-2")
        body = {"transcript_id": "t-2", "status": "completed"}
        async with http.post(
            f"{base}/webhooks/assemblyai", json=body, headers={WEBHOOK_HEADER: SECRET}
        ) as response:
            assert response.status == 200
            assert (await response.json())["job_waiting"] is True
        due = await engine.store.get(job_id)
        assert (due.next_attempt_at - due.updated_at).total_seconds() < 5
        async with http.post(
            f"{base}/webhooks/assemblyai", json=body, headers={WEBHOOK_HEADER: SECRET}
        ) as response:
            assert response.status == 200
        again = await engine.store.get(job_id)
        assert again.next_attempt_at == due.next_attempt_at


async def test_unknown_transcript_and_malformed_bodies(tmp_path):
    async with serving(tmp_path) as (base, _engine), aiohttp.ClientSession() as http:
        url = f"{base}/webhooks/assemblyai"
        ok = {WEBHOOK_HEADER: SECRET}
        async with http.post(
            url, json={"transcript_id": "nope", "status": "completed"}, headers=ok
        ) as response:
            assert response.status == 200 and (await response.json())["job_waiting"] is False
        for body in (b"not json", b"{}", b'{"transcript_id": 5}', b"[]"):
            async with http.post(url, data=body, headers=ok) as response:
                assert response.status == 400, body


async def test_without_a_secret_every_webhook_is_refused(tmp_path):
    async with (
        serving(tmp_path, secret=None) as (base, _engine),
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/webhooks/assemblyai",
            json={"transcript_id": "x"},
            headers={WEBHOOK_HEADER: ""},
        ) as response,
    ):
        assert response.status == 401


async def test_health_readiness_and_metrics(tmp_path):
    async with serving(tmp_path) as (base, engine), aiohttp.ClientSession() as http:
        await engine.intake(url_intake("https://media.example/b.mp3", message="9.9"))
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ready"
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        assert 'threadscribe_jobs{state="received"} 1.0' in text
        assert 'threadscribe_intakes_total{outcome="created",platform="slack"} 1.0' in text
        assert "# TYPE threadscribe_assemblyai_seconds histogram" in text
        await engine.stop()  # let the intake's announcement finish before the store goes
        await engine.store.close()
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 503
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
