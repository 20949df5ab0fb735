"""Webhooks: the notification body, the custom auth header, retries until a 2xx, the
attempt limit, timeouts, and `webhook_status_code` on the transcript."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.helpers import openapi_schema
from tests.helpers.emulator_server import (
    FAST,
    EmulatorServer,
    local_server,
    start_emulator,
    wait_done,
)

SECRET = ("X-Webhook-Secret", "s3cret-value")


@dataclass
class Receiver:
    """A webhook endpoint answering with the statuses given, then 200."""

    statuses: list[int] = field(default_factory=list)
    hang_first: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 1

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append({"headers": dict(request.headers), "body": await request.json()})
        if len(self.calls) == 1 and self.hang_first:
            await asyncio.sleep(self.hang_first)
        if len(self.calls) >= self.expected:
            self.arrived.set()
        status = (
            self.statuses[len(self.calls) - 1] if len(self.calls) <= len(self.statuses) else 200
        )
        return web.Response(status=status)

    async def wait(self, count: int) -> None:
        """Wait (at most 10 s) until `count` calls have arrived."""
        self.expected = count
        if len(self.calls) >= count:
            return
        self.arrived.clear()
        async with asyncio.timeout(10):
            await self.arrived.wait()


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def make(**kwargs: Any) -> Receiver:
            receiver = Receiver(**kwargs)
            app = web.Application()
            app.router.add_post("/hook", receiver.handle)
            receiver.url = await stack.enter_async_context(local_server(app)) + "/hook"
            return receiver

        yield make


def client_for(server: EmulatorServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url, headers={"authorization": server.api_key}, timeout=10
    )


async def submit(client: httpx.AsyncClient, data: bytes, **params: Any) -> str:
    url = (await client.post("/v2/upload", content=data)).json()["upload_url"]
    created = await client.post(
        "/v2/transcript", json={"audio_url": url, "speech_models": ["universal-2"]} | params
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def settled(
    client: httpx.AsyncClient, transcript_id: str, code: int | None
) -> dict[str, Any]:
    """The transcript once its webhook_status_code reads `code`."""
    for _ in range(200):
        body = (await client.get(f"/v2/transcript/{transcript_id}")).json()
        if body["status"] in ("completed", "error") and body["webhook_status_code"] == code:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"webhook_status_code never became {code}: {body}")


async def test_webhook_carries_the_auth_header_and_is_retried_until_2xx(
    emulator: EmulatorServer,
    audio_library: Any,
    receiver_factory: Callable[..., Any],
) -> None:
    receiver = await receiver_factory(statuses=[500, 503])
    data = audio_library.dialogue("wav").path.read_bytes()
    async with client_for(emulator) as client:
        transcript_id = await submit(
            client,
            data,
            webhook_url=receiver.url,
            webhook_auth_header_name=SECRET[0],
            webhook_auth_header_value=SECRET[1],
        )
        queued = (await client.get(f"/v2/transcript/{transcript_id}")).json()
        await receiver.wait(3)
        done = await settled(client, transcript_id, 200)
    openapi_schema.validate("Transcript", queued)
    assert queued["webhook_auth"] is True and queued["webhook_auth_header_name"] == SECRET[0]
    assert SECRET[1] not in str(queued)  # the value is never echoed
    openapi_schema.validate("Transcript", done)
    assert done["status"] == "completed" and done["webhook_url"] == receiver.url
    assert len(receiver.calls) == 3
    for call in receiver.calls:
        assert call["body"] == {"transcript_id": transcript_id, "status": "completed"}
        openapi_schema.validate("TranscriptReadyNotification", call["body"])
        assert call["headers"][SECRET[0]] == SECRET[1]
        assert call["headers"]["Content-Type"] == "application/json"


async def test_failed_jobs_notify_with_status_error(
    emulator: EmulatorServer,
    receiver_factory: Callable[..., Any],
) -> None:
    receiver = await receiver_factory()
    async with client_for(emulator) as client:
        transcript_id = await submit(client, b"plain text, no audio", webhook_url=receiver.url)
        await receiver.wait(1)
        done = await settled(client, transcript_id, 200)
    assert done["status"] == "error" and done["webhook_auth"] is False
    assert receiver.calls[0]["body"] == {"transcript_id": transcript_id, "status": "error"}
    assert SECRET[0] not in receiver.calls[0]["headers"]


async def test_webhook_gives_up_after_ten_attempts(
    emulator: EmulatorServer,
    receiver_factory: Callable[..., Any],
) -> None:
    receiver = await receiver_factory(statuses=[500] * 20)
    async with client_for(emulator) as client:
        transcript_id = await submit(client, b"plain text", webhook_url=receiver.url)
        await receiver.wait(10)
        await asyncio.sleep(FAST["webhook_retry_interval"] * 4)  # room for an 11th attempt
        done = await settled(client, transcript_id, 500)
    assert len(receiver.calls) == 10 == emulator.config.webhook_attempts
    assert done["webhook_status_code"] == 500


async def test_a_slow_receiver_times_out_and_gets_another_attempt(
    tmp_path: Path,
    receiver_factory: Callable[..., Any],
) -> None:
    receiver = await receiver_factory(hang_first=1.0)
    with start_emulator(tmp_path, **(FAST | {"webhook_timeout": 0.2})) as server:
        async with client_for(server) as client:
            transcript_id = await submit(client, b"plain text", webhook_url=receiver.url)
            await receiver.wait(2)
            done = await settled(client, transcript_id, 200)
    assert len(receiver.calls) == 2 and done["webhook_status_code"] == 200


async def test_an_unreachable_webhook_leaves_no_status_code(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    with start_emulator(tmp_path, **(FAST | {"webhook_attempts": 3})) as server:
        hook = f"http://127.0.0.1:{unused_tcp_port}/hook"
        async with client_for(server) as client:
            transcript_id = await submit(client, b"plain text", webhook_url=hook)
            await wait_done(client, transcript_id)
            await asyncio.sleep(FAST["webhook_retry_interval"] * 5)
            done = (await client.get(f"/v2/transcript/{transcript_id}")).json()
    assert done["status"] == "error" and done["webhook_status_code"] is None
