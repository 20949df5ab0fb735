"""Where audio comes from: a public URL (passed through to AssemblyAI) or a local file.

Chat platforms add a third kind, a private platform file streamed into the upload; it is
described by the adapters through the engine and never touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import SourceError


@dataclass(frozen=True, slots=True)
class UrlSource:
    url: str

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class FileSource:
    path: Path
    size: int

    def __str__(self) -> str:
        return str(self.path)


Source = UrlSource | FileSource


def is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse_source(text: str) -> Source:
    """A URL if it looks like one (http/https), otherwise a path that must be a usable file."""
    if is_url(text):
        return UrlSource(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(
            f"{text}: only http:// and https:// links can be fetched, not {scheme}://"
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"{text}: no such file")
    if path.is_dir():
        raise SourceError(f"{text} is a directory: give an audio or video file")
    if not path.is_file():
        raise SourceError(f"{text} is not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SourceError(f"{text}: cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise SourceError(f"{text} is empty (0 bytes): nothing to transcribe")
    return FileSource(path, size)
