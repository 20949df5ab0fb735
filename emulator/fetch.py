"""Getting media bytes onto local disk: uploads as they arrive, audio URLs when a job starts.

Bytes are written chunk by chunk (never held whole in memory) and hashed on the way, so
the script for a file can be found by the SHA-256 of exactly those bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import urlsplit

import aiohttp

from .store import UPLOAD_URL_PREFIX, TranscriptStore

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
FLUSH_BYTES = 1 << 20


class TooLargeError(Exception):
    """More bytes arrived than the limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class Spool:
    """An async writer of one file that hashes what it writes and enforces a size limit.

    Writes go to a worker thread in batches; the file is removed if the block fails.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()
        self._buffer = bytearray()
        self._file: BinaryIO | None = None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    async def __aenter__(self) -> Spool:
        self._file = await asyncio.to_thread(self.path.open, "wb")
        return self

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLargeError(self.limit)
        self._digest.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        assert self._file is not None
        data, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._file.write, data)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        try:
            if exc is None:
                await self._flush()
        finally:
            # Close and clean up even when cancelled: a thread would outlive the task.
            self._file.close()
            if exc is not None:
                self.path.unlink(missing_ok=True)


async def spool(chunks: AsyncIterator[bytes], path: Path, limit: int) -> Spool:
    async with Spool(path, limit) as out:
        async for chunk in chunks:
            await out.write(chunk)
    return out


class DownloadError(Exception):
    """The media at a URL could not be fetched; `message` is the API's processing error."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason

    @property
    def message(self) -> str:
        # Wording of the live API (openapi.yml, TranscriptList example).
        return (
            f"Download error, unable to download {self.url}. "
            "Please make sure the file exists and is accessible from the internet."
        )


@dataclass(frozen=True, slots=True)
class Media:
    path: Path
    sha256: str
    temporary: bool  # a download to remove after processing (uploads stay)


class Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        store: TranscriptStore,
        workdir: Path,
        max_bytes: int,
        timeout: float,
    ) -> None:
        self._session = session
        self._store = store
        self._workdir = workdir
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def fetch(self, url: str) -> Media:
        if url.startswith(UPLOAD_URL_PREFIX):
            upload = self._store.upload_for(url)
            if upload is None or not upload.path.exists():
                raise DownloadError(url, "no such upload")
            return Media(upload.path, upload.sha256, temporary=False)
        if urlsplit(url).scheme not in ("http", "https"):
            raise DownloadError(url, "not an http(s) URL")
        path = self._workdir / f"download-{uuid.uuid4()}"
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if not 200 <= response.status < 300:
                    raise DownloadError(url, f"HTTP {response.status}")
                out = await spool(response.content.iter_chunked(CHUNK_BYTES), path, self._max_bytes)
        except TooLargeError as exc:
            raise DownloadError(url, f"larger than {exc.limit} bytes") from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            path.unlink(missing_ok=True)
            raise DownloadError(url, f"{type(exc).__name__}: {exc}") from exc
        logger.info("downloaded audio", extra={"bytes": out.size, "sha256": out.sha256})
        return Media(path, out.sha256, temporary=True)
