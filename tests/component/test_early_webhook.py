"""A quick transcript's webhook can reach the bot before the job has stored the
transcript's id (AssemblyAI answers the submission, finishes, and posts the webhook while
the bot is still writing that answer down). The bot remembers it and polls the job at
once, rather than waiting for the fallback poll, which with webhooks on is late by
design."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import Secret
from bot.polling import PollSchedule
from bot.transcript import TranscriptStatus
from bot.web import WEBHOOK_PATH, create_app
from tests.fakes.recording import url_intake
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.engine import running_engine

FALLBACK = 60.0  # the only poll the schedule makes, long after the test's deadline


class LatePolls(PollSchedule):
    """Polls a minute after submission, and again a minute later: only a webhook, early
    or not, gets a job delivered within the test's seconds."""

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
        return FALLBACK


@pytest.fixture
def dialogue(audio_library: Any, emulator: EmulatorServer) -> Any:
    return audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)


@pytest.mark.emulator(processing_time=0.0)  # done as soon as the audio is fetched
async def test_a_webhook_before_the_job_stored_its_transcript_still_wakes_it(
    tmp_path: Path, emulator: EmulatorServer, dialogue: Any, media_server: Any
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    secret = Secret(secrets.token_urlsafe(16))
    async with running_engine(
        tmp_path,
        emulator,
        schedule=LatePolls(),
        webhook_url=url,
        webhook_secret=secret,
        per_user=10,
    ) as h:
        runner = web.AppRunner(create_app(h.engine), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            # AssemblyAI makes each transcript, finishes it and posts its webhook while its
            # answer to the submission is still on the way (a second late).
            emulator.inject(*[{"late": 1.0, "path": "/v2/transcript", "method": "POST"}] * 5)
            await h.engine.start()
            started = time.monotonic()
            jobs = []
            for n in range(5):
                link = media_server(dialogue.path)
                outcome = await h.engine.intake(url_intake(link, message=f"1700000000.00010{n}"))
                assert outcome.job is not None
                jobs.append(outcome.job.id)
            await h.platform.until(lambda: all(h.platform.results(j) for j in jobs), timeout=15)
            took = time.monotonic() - started
        finally:
            await runner.cleanup()
        registry = h.engine.metrics.registry
        webhooks = registry.get_sample_value("threadscribe_webhooks_total")
        polls = registry.get_sample_value("threadscribe_polls_total")
    assert took < FALLBACK / 4
    assert (webhooks, polls) == (5, 5)  # each job woken by its webhook, fetched once
    for job_id in jobs:
        [result] = h.platform.results(job_id)
        assert dialogue.script["utterances"][0]["text"] in result.text
