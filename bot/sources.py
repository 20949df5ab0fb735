"""Where audio comes from: a public URL (passed through to AssemblyAI) or a local file.

Chat platforms add a third kind, a private platform file streamed into the upload; it is
described by the adapters through the engine and never touches the disk.

`probe` tells what a local file holds before it is uploaded: ffprobe when it is installed
(it reads everything ffmpeg reads, video containers included), else mutagen (WAV, MP3,
OGG, FLAC, MP4/M4A...), with text files recognised from their first bytes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import mutagen

from bot.errors import NotAudio, SourceError


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


# -- what a local file holds -----------------------------------------------------------

_HEAD_BYTES = 4096


async def probe(path: Path, ffprobe: str | None) -> float | None:
    """The length of the audio in `path` in seconds, None when it cannot be measured
    (it may still be audio: AssemblyAI will tell); raise NotAudio when it holds none."""
    if ffprobe is not None:
        return await _ffprobe(ffprobe, path)
    return await asyncio.to_thread(_mutagen, path)


async def _ffprobe(ffprobe: str, path: Path) -> float | None:
    argv = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (Ctrl-C): leave no process behind
            process.kill()
            await process.wait()
    try:
        data: dict[str, Any] = json.loads(out or b"{}")
    except ValueError:
        data = {}
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if process.returncode != 0 or not fmt:
        raise NotAudio(None)
    if not any(s.get("codec_type") == "audio" for s in streams):
        # ffprobe reads a text file as a "tty" (teletype) stream: say text, not teletype.
        name = fmt.get("format_name")
        raise NotAudio("text" if name == "tty" else fmt.get("format_long_name") or name)
    lengths = [_seconds(fmt.get("duration"))]
    lengths += [_seconds(s.get("duration")) for s in streams if s.get("codec_type") == "audio"]
    return max((x for x in lengths if x is not None), default=None)


def _mutagen(path: Path) -> float | None:
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if _is_text(head):
        raise NotAudio("text")
    try:
        media = mutagen.File(path)
    except mutagen.MutagenError:
        raise NotAudio(None) from None  # claims to be a format mutagen knows, and is not
    length = getattr(getattr(media, "info", None), "length", None)
    return float(length) if length else None


def _is_text(head: bytes) -> bool:
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(ch.isprintable() or ch in "\t\n\r\f\ufeff" for ch in text)
    return False


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def file_stem(source: Source) -> str:
    """The name a transcript of `source` is saved under (without `.txt`): the file's
    stem, a link's last path segment's stem, or `transcript` when there is none."""
    if isinstance(source, FileSource):
        name = source.path.name
    else:
        name = unquote(urlsplit(source.url).path.rsplit("/", 1)[-1])
    stem = Path(name.replace("\\", "_").replace("\0", "")).stem.lstrip(".").strip()
    return stem or "transcript"
