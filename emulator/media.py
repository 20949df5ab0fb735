"""What a fetched media file is: audio (how long, how many channels) or not audio.

ffprobe, when installed, measures everything ffmpeg can read, video containers included.
Without it, mutagen measures WAV, MP3, OGG/Opus, FLAC and MP4/M4A, and a small EBML
reader takes WebM/Matroska durations from the segment header (mutagen has no WebM).
Files that are plainly not media (HTML, text, PDF, JSON, images, archives) are recognised
from their first bytes first, so the error names the file type the way the live API does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen

logger = logging.getLogger(__name__)

HEAD_BYTES = 1 << 16
EBML_HEAD_BYTES = 1 << 20
# Formats ffprobe reports for containers that may hold video and no audio.
_CONTAINER_MIME = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "matroska,webm": "video/webm",
    "avi": "video/x-msvideo",
    "png_pipe": "image/png",
    "jpeg_pipe": "image/jpeg",
    "gif": "image/gif",
}


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration: float  # seconds
    channels: int | None


class NotAudioError(Exception):
    """The file holds no audio; carries the file type as libmagic would name it."""

    def __init__(self, mime: str, description: str) -> None:
        super().__init__(f"{mime} ({description})")
        self.mime = mime
        self.description = description

    @property
    def message(self) -> str:
        # Wording of the live API's processing error.
        return (
            "Transcoding failed. File does not appear to contain audio. "
            f"File type is {self.mime} ({self.description})."
        )


def sniff(head: bytes) -> tuple[str, str] | None:
    """(mime, description) of a file that is plainly not media, from its first bytes."""
    if not head:
        return "application/x-empty", "empty"
    signatures = (
        (b"%PDF-", "application/pdf", "PDF document"),
        (b"\x89PNG\r\n\x1a\n", "image/png", "PNG image data"),
        (b"\xff\xd8\xff", "image/jpeg", "JPEG image data"),
        (b"GIF8", "image/gif", "GIF image data"),
        (b"PK\x03\x04", "application/zip", "Zip archive data"),
        (b"\x1f\x8b", "application/gzip", "gzip compressed data"),
    )
    for magic, mime, description in signatures:
        if head.startswith(magic):
            if mime == "application/pdf":
                version = head[5:8].decode("ascii", "replace")
                description = f"PDF document, version {version}"
            return mime, description
    text = _as_text(head)
    if text is None:
        return None
    charset = "ASCII text" if text.isascii() else "Unicode text, UTF-8 text"
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith(("<!doctype html", "<html")) or "<html" in start[:1024]:
        return "text/html", f"HTML document, {charset}"
    if start.startswith("<?xml"):
        return "text/xml", f"XML 1.0 document, {charset}"
    if start.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return "application/json", "JSON data"
    return "text/plain", charset


def _as_text(head: bytes) -> str | None:
    # The head may end inside a multi-byte character: drop at most 3 trailing bytes.
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(ch.isprintable() or ch in "\t\n\r\f\ufeff" for ch in text):
            return text
        return None
    return None


async def probe(path: Path, ffprobe: str | None) -> MediaInfo:
    """Measure `path`; raise NotAudioError when it holds no audio."""
    head = await asyncio.to_thread(_read_head, path, HEAD_BYTES)
    plain = sniff(head)
    if plain is not None:
        raise NotAudioError(*plain)
    if ffprobe is not None:
        return await _probe_ffprobe(ffprobe, path)
    info = await asyncio.to_thread(_probe_without_ffprobe, path)
    if info is None:
        raise NotAudioError("application/octet-stream", "data")
    return info


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


async def _run(*argv: str) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled: leave no process behind
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out


async def _probe_ffprobe(ffprobe: str, path: Path) -> MediaInfo:
    code, out = await _run(
        ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        str(path),
    )  # fmt: skip
    if code != 0:
        logger.debug("ffprobe could not read the file", extra={"exit_code": code})
        raise NotAudioError("application/octet-stream", "data")
    data: dict[str, Any] = json.loads(out or b"{}")
    fmt = data.get("format", {})
    audio = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        name = str(fmt.get("format_name", ""))
        mime = _CONTAINER_MIME.get(name, "application/octet-stream")
        raise NotAudioError(mime, str(fmt.get("format_long_name") or "data"))
    durations = [_float(fmt.get("duration"))] + [_float(s.get("duration")) for s in audio]
    duration = max((d for d in durations if d is not None), default=None)
    if duration is None:
        duration = await _duration_from_packets(ffprobe, path)
    channels = audio[0].get("channels")
    return MediaInfo(duration=duration, channels=int(channels) if channels else None)


async def _duration_from_packets(ffprobe: str, path: Path) -> float:
    # Streams written live (e.g. by a browser's MediaRecorder) carry no duration header.
    _, out = await _run(
        ffprobe, "-v", "error", "-select_streams", "a:0",
        "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", str(path),
    )  # fmt: skip
    end = 0.0
    for line in out.decode().splitlines():
        parts = [_float(p) for p in line.split(",")] + [None]
        start, length = parts[0], parts[1]
        if start is not None:
            end = max(end, start + (length or 0.0))
    return end


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _probe_without_ffprobe(path: Path) -> MediaInfo | None:
    try:
        found = mutagen.File(path)
    except mutagen.MutagenError:
        found = None
    if found is not None and found.info is not None and found.info.length:
        channels = getattr(found.info, "channels", None)
        return MediaInfo(duration=float(found.info.length), channels=channels)
    duration = webm_duration(_read_head(path, EBML_HEAD_BYTES))
    return None if duration is None else MediaInfo(duration=duration, channels=None)


# EBML element ids (Matroska/WebM).
_EBML, _SEGMENT, _INFO, _CLUSTER = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x1F43B675
_TIMECODE_SCALE, _DURATION = 0x2AD7B1, 0x4489


def _vint(buf: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """Decode an EBML variable-length integer at `pos`: (value, bytes used)."""
    first = buf[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(buf):
        raise ValueError("bad EBML integer")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in buf[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, length


def webm_duration(buf: bytes) -> float | None:
    """Duration in seconds from a WebM/Matroska segment's Info, or None if absent."""
    try:
        ident, used = _vint(buf, 0, keep_marker=True)
        if ident != _EBML:
            return None
        size, length = _vint(buf, used, keep_marker=False)
        pos = used + length + size
        ident, used = _vint(buf, pos, keep_marker=True)
        if ident != _SEGMENT:
            return None
        _, length = _vint(buf, pos + used, keep_marker=False)
        pos += used + length
        while pos < len(buf):
            ident, used = _vint(buf, pos, keep_marker=True)
            size, length = _vint(buf, pos + used, keep_marker=False)
            body = pos + used + length
            if ident == _INFO:
                return _info_duration(buf[body : body + size])
            if ident == _CLUSTER:
                return None
            pos = body + size
    except (ValueError, IndexError, struct.error):
        return None
    return None


def _info_duration(info: bytes) -> float | None:
    scale, duration, pos = 1_000_000, None, 0
    while pos < len(info):
        ident, used = _vint(info, pos, keep_marker=True)
        size, length = _vint(info, pos + used, keep_marker=False)
        value = info[pos + used + length : pos + used + length + size]
        if ident == _TIMECODE_SCALE:
            scale = int.from_bytes(value, "big")
        elif ident == _DURATION:
            duration = struct.unpack(">f" if size == 4 else ">d", value)[0]
        pos += used + length + size
    return None if duration is None else duration * scale / 1e9
