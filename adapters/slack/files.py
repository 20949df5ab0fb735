"""Private Slack files, streamed with the bot token: never read whole, never on disk.

`url_private_download` needs `Authorization: Bearer <bot token>` and the `files:read`
scope. Without the scope Slack does not answer 403: it answers 200 with its HTML sign-in
page, which must not be taken for audio. The token only ever goes to Slack's own hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from adapters.slack.texts import FILE_GONE, FILE_REFUSED, MISSING_FILES_READ, download_failed
from bot.chat import FileSource, FileStream, FileUnavailable, PlatformUnavailable, stream_body

log = logging.getLogger(__name__)

CHUNK: Final = 256 * 1024
#: Where Slack serves private files from (plus the Web API's own host, for fakes/proxies).
FILE_HOSTS: Final = frozenset({"files.slack.com", "slack.com"})


class FileOpener:
    """Opens a job's Slack file for streaming into AssemblyAI's upload."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        api_url: str,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._session = session
        self._hosts = FILE_HOSTS | {urlsplit(api_url).hostname or "slack.com"}
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )

    async def open(self, source: FileSource, token: str) -> FileStream:
        url = source.ref.get("url")
        if not isinstance(url, str) or not url:
            raise FileUnavailable(FILE_GONE)
        host = urlsplit(url).hostname or ""
        if host not in self._hosts:
            # The URL came from a signed event, but a token is not sent on trust alone.
            raise FileUnavailable(f"the file's address ({host}) is not a Slack file host")
        try:
            response = await self._session().get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
                allow_redirects=True,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformUnavailable(download_failed(type(exc).__name__)) from exc
        try:
            _check(response)
        except BaseException:
            response.release()
            raise
        chunks = stream_body(response, chunk_size=CHUNK, broke_off=_broke_off)
        return FileStream(chunks, response.content_length, response.content_type)


def _check(response: aiohttp.ClientResponse) -> None:
    status = response.status
    if status == 200 and response.content_type == "text/html":
        raise FileUnavailable(MISSING_FILES_READ)
    if status in (404, 410):
        raise FileUnavailable(FILE_GONE)
    if status in (401, 403):
        raise FileUnavailable(FILE_REFUSED.format(status=status))
    if status == 429 or status >= 500:
        raise PlatformUnavailable(download_failed(f"Slack answered {status}"))
    if status != 200:
        raise FileUnavailable(FILE_REFUSED.format(status=status))


def _broke_off(exc: BaseException) -> PlatformUnavailable:
    return PlatformUnavailable(download_failed(f"the transfer broke off: {type(exc).__name__}"))
