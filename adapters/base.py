"""The adapter contract, and the small pieces of translation both platforms share.

An adapter implements `Adapter` (bot.chat): the `ChatPlatform` surface the engine drives
(post, edit, react, open a private file) plus its own intake side and lifecycle. It hands
the core an `IntakeRecord` per trigger via `engine.intake()` before acknowledging the
platform, and never talks to AssemblyAI itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from bot.chat import (
    Adapter,
    ChatPlatform,
    FileStream,
    FileUnavailable,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Post,
    Reaction,
    ThreadRef,
)
from bot.jobs import FileSource, IntakeRecord, Platform, UrlSource

__all__ = [
    "Adapter",
    "ChatPlatform",
    "FileSource",
    "FileStream",
    "FileUnavailable",
    "IntakeRecord",
    "OptionsError",
    "Platform",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Post",
    "Reaction",
    "ThreadRef",
    "TranscribeArgs",
    "UrlSource",
    "find_media_links",
    "is_media",
    "is_media_url",
    "parse_transcribe_args",
]

#: What AssemblyAI accepts, by file extension (audio and video containers).
MEDIA_EXTENSIONS = frozenset(
    "3ga 8svx aac ac3 aif aiff alac amr ape au dss flac flv m4a m4b m4p m4r m4v mov mp2 mp3 "
    "mp4 mpeg mpg mpga oga ogg opus qcp tta voc wav weba webm wma wv mkv mts m2ts ts wmv "
    "3gp 3gpp".split()
)
_MEDIA_TYPES = ("audio/", "video/")
_URL = re.compile(r"https?://[^\s<>|\"']+", re.IGNORECASE)


def is_media(mimetype: str | None, filename: str | None = None) -> bool:
    """Whether a file is audio or video, by its MIME type or, failing that, its name."""
    if mimetype and mimetype.lower().startswith(_MEDIA_TYPES):
        return True
    if filename:
        return PurePosixPath(filename.lower()).suffix.lstrip(".") in MEDIA_EXTENSIONS
    return False


def is_media_url(url: str) -> bool:
    """Whether a link points at an audio/video file, judged by its path's extension."""
    path = unquote(urlsplit(url).path)
    return PurePosixPath(path.lower()).suffix.lstrip(".") in MEDIA_EXTENSIONS


def find_media_links(text: str) -> list[str]:
    """Links in a message, in order, without duplicates. Slack wraps links as
    `<https://…|label>` and Discord as `<https://…>`; both are unwrapped. The caller
    decides which are media (by `is_media_url`, or a HEAD request's content type)."""
    links: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)>]")
        if url not in links:
            links.append(url)
    return links


class OptionsError(ValueError):
    """`/transcribe` arguments that make no sense; the message tells the user the syntax."""


@dataclass(frozen=True, slots=True)
class TranscribeArgs:
    url: str | None = None
    speakers: int | None = None
    language: str | None = None
    formats: tuple[str, ...] = ()

    def options(self) -> dict[str, object]:
        """The job options the engine understands."""
        opts: dict[str, object] = {}
        if self.speakers is not None:
            opts["speakers_expected"] = self.speakers
        if self.language is not None:
            opts["language_code"] = self.language
        if self.formats:
            opts["formats"] = list(self.formats)
        return opts


_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[a-z]{2})?$")
USAGE = "usage: /transcribe <link to audio or video> [speakers=N] [lang=xx] [srt] [vtt]"


def parse_transcribe_args(text: str) -> TranscribeArgs:
    """Parse `<url> [speakers=N] [lang=xx] [srt] [vtt]` in any order."""
    url = None
    speakers = None
    language = None
    formats: list[str] = []
    for token in text.split():
        key, sep, value = token.partition("=")
        key = key.lower()
        if sep and key in ("speakers", "speaker"):
            if not value.isdigit() or not 1 <= int(value) <= 10:
                raise OptionsError(f"speakers must be a number from 1 to 10, not {value!r}")
            speakers = int(value)
        elif sep and key in ("lang", "language"):
            code = value.lower().replace("-", "_")
            if not _LANGUAGE.match(code):
                raise OptionsError(f"lang must be a language code such as en or fr, not {value!r}")
            language = code
        elif not sep and key in ("srt", "vtt"):
            if key not in formats:
                formats.append(key)
        elif not sep and (links := find_media_links(token)):
            if url is not None:
                raise OptionsError("give one link at a time")
            url = links[0]
        else:
            raise OptionsError(f"I don't understand {token!r}. {USAGE}")
    return TranscribeArgs(url=url, speakers=speakers, language=language, formats=tuple(formats))
