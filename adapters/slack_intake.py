"""From Slack messages to intakes: which files and links are audio or video, and the
`IntakeRecord` for each.

A Slack message is identified by channel + ts; one job per file (by file id) or link (by
URL) in it, so the dedupe key makes every retry, replay, mention or shortcut on the same
message land on the job that exists already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiohttp

from adapters.base import (
    FileSource,
    IntakeRecord,
    Platform,
    UrlSource,
    find_media_links,
    is_media,
    is_media_url,
)

log = logging.getLogger(__name__)

#: Message subtypes a person's post can have; edits, deletions, joins etc. are not triggers.
TRIGGER_SUBTYPES: Final = frozenset({None, "file_share", "thread_broadcast"})
#: Links whose extension says plainly that they are not audio or video: never probed.
NOT_MEDIA_EXTENSIONS: Final = frozenset(
    "html htm php asp aspx jsp pdf png jpg jpeg gif svg webp ico txt md csv json xml yml "
    "yaml zip gz tgz rar 7z doc docx xls xlsx ppt pptx key pages numbers js css py".split()
)
_SLACK_HOSTS: Final = ("slack.com", "slack-edge.com", "slack-files.com", "slack-redir.net")
MAX_LINKS: Final = 5  # per message: a list of links is rarely a list of recordings


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message as the triggers need it."""

    team: str
    channel: str
    ts: str
    thread_ts: str | None  # the thread the message is in; None for a top-level message
    user: str | None
    bot_id: str | None
    subtype: str | None
    text: str
    files: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, message: Mapping[str, Any], *, team: str, channel: str) -> SlackMessage:
        thread_ts = message.get("thread_ts")
        return cls(
            team=team,
            channel=channel,
            ts=str(message["ts"]),
            thread_ts=thread_ts if thread_ts and thread_ts != message["ts"] else None,
            user=message.get("user"),
            bot_id=message.get("bot_id"),
            subtype=message.get("subtype"),
            text=message.get("text") or "",
            files=tuple(f for f in message.get("files") or () if isinstance(f, Mapping)),
        )

    def from_person(self, bot_user_id: str | None, bot_id: str | None) -> bool:
        """Posted by a person: not by this bot, nor by any integration."""
        if self.user is None or self.bot_id is not None:
            return False
        return self.user != bot_user_id and (bot_id is None or self.bot_id != bot_id)


@dataclass(frozen=True, slots=True)
class Found:
    """What a message holds: media files, media links, links still to probe, other files,
    and stubs: files Slack only named by id (see `needs_file_info`)."""

    files: tuple[Mapping[str, Any], ...] = ()
    links: tuple[str, ...] = ()
    unclear: tuple[str, ...] = ()
    other_files: tuple[str, ...] = ()
    stubs: tuple[Mapping[str, Any], ...] = ()

    @property
    def anything(self) -> bool:
        return bool(self.files or self.links or self.unclear or self.stubs)


def needs_file_info(file: Mapping[str, Any]) -> bool:
    """Slack sometimes sends a stub (`file_access: check_file_info`) instead of the file."""
    return file.get("file_access") == "check_file_info" or "url_private_download" not in file


def inspect(message: SlackMessage, *, text: str | None = None) -> Found:
    """Sort a message's files and links; `text` overrides the text searched for links."""
    media, other, stubs = split_files(message.files)
    links, unclear = classify_links(slack_links(message.text if text is None else text))
    return Found(tuple(media), tuple(links), tuple(unclear), tuple(other), tuple(stubs))


def split_files(
    files: Iterable[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[str], list[Mapping[str, Any]]]:
    """(audio and video files, names of the other files, stubs to look up)."""
    media, other, stubs = [], [], []
    for file in files:
        if file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_external"):
            continue
        if needs_file_info(file):
            stubs.append(file)
        elif is_media(file.get("mimetype"), file.get("name")):
            media.append(file)
        else:
            other.append(str(file.get("name") or file.get("title") or file.get("id")))
    return media, other, stubs


def slack_links(text: str) -> list[str]:
    """http(s) links in Slack message text, `&amp;` and friends decoded."""
    urls = [unescape(url) for url in find_media_links(text)]
    return list(dict.fromkeys(urls))[:MAX_LINKS]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def classify_links(urls: Iterable[str]) -> tuple[list[str], list[str]]:
    """(media by extension, unclear: worth a HEAD request). Slack's own links and links to
    documents, pages and images are neither."""
    media, unclear = [], []
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in _SLACK_HOSTS):
            continue
        if is_media_url(url):
            media.append(url)
            continue
        suffix = PurePosixPath(unquote(urlsplit(url).path).lower()).suffix.lstrip(".")
        if suffix not in NOT_MEDIA_EXTENSIONS:
            unclear.append(url)
    return media, unclear


class LinkProbe:
    """Asks a link's server what it serves (HEAD; a one-byte GET where HEAD is refused).

    Runs before the platform is acknowledged, so every probe shares one deadline.
    """

    def __init__(self, session: Callable[[], aiohttp.ClientSession], *, timeout: float) -> None:
        self._session = session
        self.timeout = timeout

    async def media(self, urls: Sequence[str]) -> list[str]:
        """The links among `urls` that serve audio or video; the rest, and any that did not
        answer in time, are left out."""
        if not urls:
            return []
        tasks = [asyncio.create_task(self._content_type(url)) for url in urls]
        done, pending = await asyncio.wait(tasks, timeout=self.timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        found = []
        for url, task in zip(urls, tasks, strict=True):
            if task in done and task.exception() is None and is_media(task.result()):
                found.append(url)
            elif task in pending:
                log.info("link probe timed out", extra={"url_host": urlsplit(url).hostname})
        return found

    async def _content_type(self, url: str) -> str | None:
        session = self._session()
        try:
            async with session.head(url, allow_redirects=True) as resp:
                if resp.status < 400:
                    return resp.content_type
                if resp.status not in (403, 405, 501):
                    return None
            # Some servers (signed storage URLs among them) refuse HEAD but answer GET.
            async with session.get(url, headers={"Range": "bytes=0-0"}) as resp:
                return resp.content_type if resp.status < 400 else None
        except (aiohttp.ClientError, ValueError) as exc:
            log.info("link probe failed: %s", type(exc).__name__)
            return None


def file_source(file: Mapping[str, Any]) -> FileSource:
    """The job's reference to a Slack file: where it is, never a token or the bytes."""
    ref = {
        "id": file["id"],
        "name": file.get("name"),
        "mimetype": file.get("mimetype"),
        "size": file.get("size"),
        "url": file.get("url_private_download") or file.get("url_private"),
        "duration_ms": file.get("duration_ms"),
    }
    return FileSource({k: v for k, v in ref.items() if v is not None})


def duration(file: Mapping[str, Any]) -> float | None:
    ms = file.get("duration_ms")
    return ms / 1000 if isinstance(ms, int | float) and ms > 0 else None


def records(
    message: SlackMessage,
    files: Iterable[Mapping[str, Any]],
    links: Iterable[str],
    *,
    requester: str,
    options: Mapping[str, Any] | None = None,
) -> list[IntakeRecord]:
    """One intake per file and per link of `message`, replies going to its thread."""
    common: dict[str, Any] = {
        "platform": Platform.SLACK,
        "workspace": message.team,
        "channel": message.channel,
        "requester": requester,
        "thread": message.thread_ts,
        "message": message.ts,
        "options": dict(options or {}),
    }
    out = [
        IntakeRecord(source=file_source(file), audio_duration=duration(file), **common)
        for file in files
    ]
    out.extend(IntakeRecord(source=UrlSource(url), **common) for url in links)
    return out


def command_record(
    *,
    team: str,
    channel: str,
    user: str,
    trigger_id: str,
    url: str,
    options: Mapping[str, Any],
) -> IntakeRecord:
    """`/transcribe <url>`: no message to answer under, so the engine starts a thread."""
    return IntakeRecord(
        platform=Platform.SLACK,
        workspace=team,
        channel=channel,
        requester=user,
        source=UrlSource(url),
        event_id=f"command:{trigger_id}",
        options=dict(options),
    )
