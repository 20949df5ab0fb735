"""The v2 routes: upload, transcript create/get/delete/list, and the transcript exports."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from . import exports
from .errors import ApiError
from .fetch import CHUNK_BYTES, TooLargeError, spool
from .params import parse_transcript_request
from .runtime import EMULATOR, Emulator
from .store import JobStatus, TranscriptRecord, Upload
from .views import list_item_json, transcript_json

logger = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 10


def _too_large(limit: int) -> ApiError:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if limit >= size:
            return ApiError(413, f"Upload too large: files are limited to {limit / size:g} {unit}")
    return ApiError(413, f"Upload too large: files are limited to {limit} bytes")


async def upload(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    limit = emulator.config.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    upload_id = str(uuid.uuid4())
    path = emulator.storage / f"upload-{upload_id}"
    try:
        out = await spool(request.content.iter_chunked(CHUNK_BYTES), path, limit)
    except TooLargeError as exc:
        raise _too_large(limit) from exc
    except ConnectionResetError as exc:  # the client went away mid-body
        raise ApiError(400, "Upload interrupted before the end of the body") from exc
    if out.size == 0:
        path.unlink(missing_ok=True)
        raise ApiError(400, "Upload failed: the request body is empty")
    stored = Upload(upload_id, path, out.sha256, out.size)
    emulator.store.uploads[upload_id] = stored
    logger.info("upload stored", extra={"bytes": out.size, "sha256": out.sha256})
    return web.json_response({"upload_url": stored.url})


async def create_transcript(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "Request body must be valid JSON") from exc
    record = emulator.store.add(parse_transcript_request(body))
    answer = transcript_json(record)  # as submitted: queued
    emulator.processor.submit(record)
    logger.info("transcript submitted", extra={"transcript_id": record.id})
    return web.json_response(answer)


def _record(request: web.Request) -> TranscriptRecord:
    return request.app[EMULATOR].store.get(request.match_info["transcript_id"])


async def get_transcript(request: web.Request) -> web.Response:
    return web.json_response(transcript_json(_record(request)))


async def delete_transcript(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    record = _record(request)
    if not record.done:
        raise ApiError(
            400,
            f"This transcript has a status of '{record.status}'. Transcripts must have a "
            "status of 'completed' or 'error' before they can be deleted.",
        )
    if not record.deleted:
        record.scrub()  # the redacted audio goes with it
        _forget_upload(emulator, record.request.audio_url)
    return web.json_response(transcript_json(record))


def _forget_upload(emulator: Emulator, url: str) -> None:
    # Uploaded files are deleted with the transcript, as the API documents.
    stored = emulator.store.upload_for(url)
    if stored is not None:
        del emulator.store.uploads[stored.id]
        stored.path.unlink(missing_ok=True)


def _base_url(request: web.Request) -> str:
    configured = request.app[EMULATOR].config.public_base_url
    return (configured or f"{request.scheme}://{request.host}").rstrip("/")


def _query_int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an Integer") from None


async def list_transcripts(request: web.Request) -> web.Response:
    query = request.query
    limit = _query_int(request, "limit", DEFAULT_PAGE)
    assert limit is not None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}")
    status = None
    if "status" in query:
        try:
            status = JobStatus(query["status"])
        except ValueError:
            raise ApiError(
                400, "status must be one of: queued, processing, completed, error"
            ) from None
    created_on = None
    if "created_on" in query:
        try:
            created_on = date.fromisoformat(query["created_on"])
        except ValueError:
            raise ApiError(400, "created_on must be a date (YYYY-MM-DD)") from None
    throttled = query.get("throttled_only", "false").lower()
    if throttled not in ("true", "false"):
        raise ApiError(400, "throttled_only must be a Boolean")
    page = request.app[EMULATOR].store.page(
        limit,
        status=status,
        created_on=created_on,
        before_id=query.get("before_id"),
        after_id=query.get("after_id"),
        throttled_only=throttled == "true",
    )
    base = _base_url(request)
    kept = {k: v for k, v in query.items() if k not in ("before_id", "after_id")}
    kept["limit"] = str(limit)

    def link(**cursor: str) -> str:
        return f"{base}/v2/transcript?{urlencode(kept | cursor)}"

    records = page.records
    body: dict[str, Any] = {
        "page_details": {
            "limit": limit,
            "result_count": len(records),
            "current_url": f"{base}{request.path_qs}",
            "prev_url": link(before_id=records[-1].id) if page.has_older else None,
            "next_url": link(after_id=records[0].id) if page.has_newer else None,
        },
        "transcripts": [list_item_json(r, base) for r in records],
    }
    return web.json_response(body)


def _finished(request: web.Request, what: str) -> TranscriptRecord:
    record = _record(request)
    if record.status is not JobStatus.COMPLETED:
        # Live API wording (for captions; the same sentence for the other exports).
        raise ApiError(
            400,
            f"This transcript has a status of '{record.status}'. Transcripts must have a "
            f"status of 'completed' before requesting {what}.",
        )
    if record.result is None:
        raise ApiError(400, "This transcript has been deleted.")
    return record


def _summary(record: TranscriptRecord) -> dict[str, Any]:
    assert record.result is not None
    return {
        "id": record.id,
        "confidence": record.result.confidence,
        "audio_duration": record.audio_duration,
    }


async def get_sentences(request: web.Request) -> web.Response:
    record = _finished(request, "sentences")
    assert record.result is not None
    sentences = exports.sentences(record.result.words)
    return web.json_response(_summary(record) | {"sentences": sentences})


async def get_paragraphs(request: web.Request) -> web.Response:
    record = _finished(request, "paragraphs")
    assert record.result is not None
    paragraphs = exports.paragraphs(record.result.words)
    return web.json_response(_summary(record) | {"paragraphs": paragraphs})


async def get_subtitles(request: web.Request) -> web.Response:
    record = _finished(request, "captions")
    assert record.result is not None
    chars = _query_int(request, "chars_per_caption", None)
    if chars is not None and chars < 1:
        raise ApiError(400, "chars_per_caption must be a positive Integer")
    render = exports.srt if request.match_info["subtitle_format"] == "srt" else exports.vtt
    return web.Response(text=render(record.result.words, chars), content_type="text/plain")


async def word_search(request: web.Request) -> web.Response:
    record = _finished(request, "word search")
    assert record.result is not None
    terms = [t.strip() for t in request.query.get("words", "").split(",") if t.strip()]
    if not terms:
        raise ApiError(400, "words must be a comma-separated list of words or phrases")
    for term in terms:
        if len(term.split()) > exports.MAX_PHRASE_WORDS:
            raise ApiError(
                400, f"Phrases are limited to {exports.MAX_PHRASE_WORDS} words: '{term}'"
            )
    matches = exports.word_search(record.result.words, terms)
    return web.json_response(
        {"id": record.id, "total_count": sum(m["count"] for m in matches), "matches": matches}
    )


#: Where redacted audio is served, as S3 would: presigned, without the API key.
REDACTED_AUDIO_PREFIX = "/redacted-audio/"


def _signature(emulator: Emulator, name: str, expires: str) -> str:
    key = emulator.config.api_key.encode()  # the emulator's own secret, never handed out
    return hmac.new(key, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


async def get_redacted_audio(request: web.Request) -> web.Response:
    """`GET /v2/transcript/{id}/redacted-audio`: the URL of the audio with its PII beeped
    out, for a completed transcript made with redact_pii and redact_pii_audio, for 24
    hours after it completed; 400 with the reason otherwise."""
    emulator = request.app[EMULATOR]
    record = _record(request)
    if record.deleted:
        raise ApiError(400, "This transcript has been deleted.")
    if record.status is not JobStatus.COMPLETED:
        raise ApiError(
            400,
            f"This transcript has a status of '{record.status}'. Transcripts must have a "
            "status of 'completed' before requesting redacted audio.",
        )
    request_values = record.request
    if not (request_values.get("redact_pii") and request_values.get("redact_pii_audio")):
        raise ApiError(
            400,
            "Redacted audio is only available when redact_pii and redact_pii_audio are set to true",
        )
    if record.redacted_audio is None:
        raise ApiError(400, record.redacted_audio_error or "The redacted audio is not available")
    assert record.completed is not None
    completed = record.completed.replace(tzinfo=UTC)
    ttl = emulator.config.redacted_audio_ttl
    age = (datetime.now(UTC) - completed).total_seconds()
    if age > ttl:
        raise ApiError(
            400, "The redacted audio has expired: redacted audio files are kept for 24 hours"
        )
    expires = str(int(time.time() + ttl - age))
    name = record.redacted_audio.name
    query = urlencode({"Expires": expires, "Signature": _signature(emulator, name, expires)})
    url = f"{_base_url(request)}{REDACTED_AUDIO_PREFIX}{name}?{query}"
    return web.json_response({"status": "redacted_audio_ready", "redacted_audio_url": url})


async def redacted_audio_file(request: web.Request) -> web.StreamResponse:
    """The redacted audio itself, for whoever holds its presigned URL (S3's answers: 403
    for a bad or expired signature, 404 for a file that is gone)."""
    emulator = request.app[EMULATOR]
    name = request.match_info["name"]
    expires = request.query.get("Expires", "")
    signature = request.query.get("Signature", "")
    good = hmac.compare_digest(signature, _signature(emulator, name, expires))
    if not good or not expires.isdigit() or int(expires) < time.time():
        return web.Response(status=403, text="AccessDenied", content_type="application/xml")
    path = emulator.storage / name
    if not name.startswith("redacted-") or not path.is_file():
        return web.Response(status=404, text="NoSuchKey", content_type="application/xml")
    kind = "audio/wav" if name.endswith(".wav") else "audio/mpeg"
    return web.FileResponse(path, headers={"Content-Type": kind})


def routes() -> list[web.RouteDef]:
    item = "/v2/transcript/{transcript_id}"
    return [
        web.post("/v2/upload", upload),
        web.post("/v2/transcript", create_transcript),
        web.get("/v2/transcript", list_transcripts),
        web.get(item, get_transcript),
        web.delete(item, delete_transcript),
        web.get(item + "/sentences", get_sentences),
        web.get(item + "/paragraphs", get_paragraphs),
        web.get(item + "/word-search", word_search),
        web.get(item + "/redacted-audio", get_redacted_audio),
        web.get(item + "/{subtitle_format:srt|vtt}", get_subtitles),
        web.get(REDACTED_AUDIO_PREFIX + "{name}", redacted_audio_file),
    ]
