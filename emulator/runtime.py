"""The live parts of one emulator and their start and stop.

`Emulator` is built with the app (state that needs no event loop: records, faults, the
request log) and started with it (storage directory, HTTP client session, job runner,
webhook sender). Stopping is two-phase: stop taking work and cancel jobs and webhook
deliveries, then close the session and remove every file the emulator wrote.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .config import EmulatorConfig
from .faults import FaultInjector
from .fetch import Fetcher
from .processing import Processor
from .store import TranscriptStore
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)


MAX_LOGGED_REQUESTS = 100_000


def _bounded() -> deque[dict[str, Any]]:
    return deque(maxlen=MAX_LOGGED_REQUESTS)


@dataclass(slots=True)
class RequestLog:
    """The API requests served (the latest 100,000), for tests to count retries and polls."""

    _entries: deque[dict[str, Any]] = field(default_factory=_bounded)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def add(self, method: str, path: str, status: int | None, fault: str | None = None) -> None:
        """`status` as answered (None: no answer); `fault`, the injected one, if any."""
        entry: dict[str, Any] = {"method": method, "path": path, "status": status}
        if fault is not None:
            entry["fault"] = fault
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = TranscriptStore()
        self.faults = FaultInjector(config.faults)
        self.requests = RequestLog()
        self.state = State.NEW
        self._storage: Path | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhooks: WebhookSender | None = None
        self._processor: Processor | None = None

    @property
    def storage(self) -> Path:
        self._check_running()
        assert self._storage is not None
        return self._storage

    @property
    def processor(self) -> Processor:
        self._check_running()
        assert self._processor is not None
        return self._processor

    def _check_running(self) -> None:
        if self.state is not State.RUNNING:
            raise RuntimeError(f"the emulator is {self.state.value}, not running")

    async def start(self) -> None:
        if self.state is not State.NEW:
            raise RuntimeError("an emulator starts only once")
        config = self.config
        # A fresh directory of its own, under storage_dir or the system's temp directory.
        self._storage = Path(
            await asyncio.to_thread(
                tempfile.mkdtemp, prefix="aai-emulator-", dir=config.storage_dir
            )
        )
        self._session = aiohttp.ClientSession()
        fetcher = Fetcher(
            self._session,
            self.store,
            self._storage,
            max_bytes=config.max_download_bytes,
            timeout=config.download_timeout,
        )
        self._webhooks = WebhookSender(
            self._session,
            attempts=config.webhook_attempts,
            retry_interval=config.webhook_retry_interval,
            timeout=config.webhook_timeout,
        )
        self._processor = Processor(config, fetcher, self._webhooks, self._storage)
        self.state = State.RUNNING
        logger.info("emulator started", extra={"concurrency": config.concurrency})

    async def stop(self) -> None:
        if self.state is not State.RUNNING:
            return
        self.state = State.STOPPED
        assert self._processor and self._webhooks and self._session and self._storage
        await self._processor.close()
        await self._webhooks.close()
        await self._session.close()
        await asyncio.to_thread(shutil.rmtree, self._storage, ignore_errors=True)
        logger.info("emulator stopped")


EMULATOR = web.AppKey("emulator", Emulator)
