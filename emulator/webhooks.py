"""Webhook delivery: POST `{"transcript_id", "status"}` when a job finishes, with retries.

As documented by AssemblyAI: the custom auth header is sent when the request set one,
an answer must be a 2xx within the timeout (10 s), and a failed delivery is retried up
to 10 times. The last HTTP status seen is recorded on the transcript.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from .store import TranscriptRecord

logger = logging.getLogger(__name__)


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        attempts: int,
        retry_interval: float,
        timeout: float,
    ) -> None:
        self._session = session
        self._attempts = attempts
        self._retry_interval = retry_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, record: TranscriptRecord) -> None:
        """Start delivering the notification for a finished record."""
        task = asyncio.create_task(self._deliver(record), name=f"webhook-{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _deliver(self, record: TranscriptRecord) -> None:
        url = record.request.webhook_url
        assert url is not None
        header = record.request.webhook_header
        headers = {header[0]: header[1]} if header else {}
        payload = {"transcript_id": record.id, "status": str(record.status)}
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._session.post(
                    url, json=payload, headers=headers, timeout=self._timeout
                ) as response:
                    await response.read()
                    record.webhook_status_code = response.status
                    if 200 <= response.status < 300:
                        logger.info(
                            "webhook delivered",
                            extra={"transcript_id": record.id, "attempt": attempt},
                        )
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            logger.info(
                "webhook attempt failed",
                extra={"transcript_id": record.id, "attempt": attempt, "reason": reason},
            )
            if attempt < self._attempts:
                await asyncio.sleep(self._retry_interval)
        logger.warning(
            "webhook given up", extra={"transcript_id": record.id, "attempts": self._attempts}
        )

    async def close(self) -> None:
        """Cancel deliveries still running and wait for them to finish."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
