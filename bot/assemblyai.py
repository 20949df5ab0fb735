"""Async AssemblyAI client on aiohttp: upload, submit, get, delete, list, exports, LLM Gateway.

It raises the `AssemblyAIError` branch of the core's exception tree (bot/errors.py; the
names are importable from here too), each carrying AssemblyAI's own `error` message and
the HTTP status when there was one; aiohttp's errors are converted here, at the boundary.

429, 5xx, connection errors and timeouts are retried with capped exponential backoff and
full jitter (tenacity); a 429's Retry-After is honoured. Other 4xx are raised at once.
Creating a transcript is not idempotent (a lost answer to a POST that went through would
make, and bill, a second transcript), so `submit` is retried only when AssemblyAI surely
did nothing: a 429, or no connection at all; its caller (the engine) decides the rest.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import urlsplit

import aiohttp
import tenacity
from tenacity import AsyncRetrying, RetryCallState

from bot.config import Secret
from bot.errors import (
    APIError,
    AssemblyAIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TranscriptFailed,
    TransportError,
)
from bot.models import DEFAULT_SPEECH_MODELS
from bot.transcript import Span, Transcript, TranscriptPage, TranscriptStatus, Translation

__all__ = [
    "APIError",
    "AssemblyAIClient",
    "AssemblyAIError",
    "AuthenticationError",
    "BadRequestError",
    "ChatAnswer",
    "ClientClosedError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TranscriptFailed",
    "TranscriptOptions",
    "TransportError",
]

log = logging.getLogger(__name__)

CHUNK_SIZE: Final = 256 * 1024
USER_AGENT: Final = "threadscribe/0.1 (+aiohttp)"


_RETRYABLE = (RateLimitError, ServerError, TransportError, RequestTimeout)


class _ClientState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 20.0
    # A Retry-After longer than this is not waited for: the error goes to the caller.
    max_retry_after: float = 120.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    request: float = 30.0  # whole request for JSON calls
    connect: float = 10.0
    read: float = 60.0  # between bytes, for uploads and large downloads
    llm: float = 90.0  # one LLM Gateway call (a model writing a summary takes a while)


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """One chat completion: the text, and why the model stopped (`length`: cut at
    `max_tokens`)."""

    content: str
    finish_reason: str | None = None

    @property
    def cut(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class TranscriptOptions:
    """The submit options the bot exposes (a subset of openapi.yml's TranscriptParams)."""

    speech_models: tuple[str, ...] = DEFAULT_SPEECH_MODELS
    language_code: str | None = None  # None: automatic language detection
    speaker_labels: bool = True
    speakers_expected: int | None = None
    audio_start_from: int | None = None  # milliseconds
    audio_end_at: int | None = None
    punctuate: bool | None = None
    format_text: bool | None = None
    #: `keyterms_prompt`: words and phrases to hear right (checked against the models)
    keyterms: tuple[str, ...] = ()
    #: `custom_spelling`: (the words or phrases, the one word to write instead)
    spellings: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: speaker identification by name (`speech_understanding`): the names to map to
    speaker_names: tuple[str, ...] = ()
    webhook_url: str | None = None
    webhook_auth_header_name: str | None = None
    webhook_auth_header_value: Secret | None = field(default=None, repr=False)
    #: PII redaction (`redact_pii` with its policies and substitution), and a copy of the
    #: audio with the PII beeped out (`redact_pii_audio`, as `redact_pii_audio_quality`)
    redact_pii_policies: tuple[str, ...] = ()
    redact_pii_sub: str | None = None
    redact_pii_audio: bool = False
    redact_pii_audio_quality: str = "mp3"

    def to_json(self, audio_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {"audio_url": audio_url, "speech_models": list(self.speech_models)}
        if self.language_code:
            body["language_code"] = self.language_code
        else:
            body["language_detection"] = True
        body["speaker_labels"] = self.speaker_labels
        optional = {
            "speakers_expected": self.speakers_expected,
            "audio_start_from": self.audio_start_from,
            "audio_end_at": self.audio_end_at,
            "punctuate": self.punctuate,
            "format_text": self.format_text,
            "webhook_url": self.webhook_url,
            "webhook_auth_header_name": self.webhook_auth_header_name,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if self.keyterms:
            body["keyterms_prompt"] = list(self.keyterms)
        if self.spellings:
            body["custom_spelling"] = [{"from": list(f), "to": t} for f, t in self.spellings]
        if self.speaker_names and self.speaker_labels:
            body["speech_understanding"] = {
                "request": {
                    "speaker_identification": {
                        "speaker_type": "name",
                        "known_values": list(self.speaker_names),
                    }
                }
            }
        if self.webhook_auth_header_value is not None:
            body["webhook_auth_header_value"] = self.webhook_auth_header_value.value
        if self.redact_pii_policies:
            body["redact_pii"] = True
            body["redact_pii_policies"] = list(self.redact_pii_policies)
            if self.redact_pii_sub is not None:
                body["redact_pii_sub"] = self.redact_pii_sub
            if self.redact_pii_audio:
                body["redact_pii_audio"] = True
                body["redact_pii_audio_quality"] = self.redact_pii_audio_quality
        return body


# What can be uploaded: a path, bytes, or an async byte stream. A stream can be sent once
# only, so it is not retried; pass a zero-argument callable returning a fresh stream to
# make it retryable.
ByteStream = AsyncIterable[bytes]
UploadSource = Path | bytes | ByteStream | Callable[[], ByteStream]
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class _Body:
    factory: Callable[[], AsyncIterator[bytes]]
    size: int | None
    replayable: bool


def _body(source: UploadSource, size: int | None) -> _Body:
    if isinstance(source, Path):
        path = source
        return _Body(lambda: _read_file(path), path.stat().st_size, True)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _Body(lambda: _read_bytes(data), len(data), True)
    if callable(source):
        make = source
        return _Body(lambda: aiter(make()), size, True)
    stream = source
    return _Body(lambda: aiter(stream), size, False)


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    # Blocking reads of 256 KiB are short; a thread per chunk would cost more than it saves.
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


async def _read_bytes(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[i : i + CHUNK_SIZE])


async def _counted(chunks: AsyncIterator[bytes], progress: Progress | None) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks:
        yield chunk
        sent += len(chunk)
        if progress is not None:
            progress(sent)


class _Wait(tenacity.wait.wait_base):
    """Honour Retry-After on 429s; otherwise capped exponential backoff with full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = tenacity.wait_random_exponential(
            multiplier=policy.initial_delay, max=policy.max_delay
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(retry_state)


def _retry_after(policy: RetryPolicy, *, safe_only: bool) -> Callable[[RetryCallState], bool]:
    def retry(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, _RETRYABLE):
            return False
        if safe_only and not (
            isinstance(exc, RateLimitError) or (isinstance(exc, TransportError) and not exc.sent)
        ):
            return False
        # A server asking for a longer pause than we are willing to hold a job for.
        return not (
            isinstance(exc, RateLimitError)
            and exc.retry_after is not None
            and exc.retry_after > policy.max_retry_after
        )

    return retry


class AssemblyAIClient:
    """One client per process; share it between jobs. Use as an async context manager."""

    def __init__(
        self,
        api_key: Secret,
        *,
        base_url: str = "https://api.assemblyai.com",
        llm_base_url: str = "https://llm-gateway.assemblyai.com",
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.llm_base_url = llm_base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self._state = _ClientState.OPEN

    def __repr__(self) -> str:
        return f"AssemblyAIClient(base_url={self.base_url!r}, state={self._state.value})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._state = _ClientState.CLOSED
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._state is _ClientState.CLOSED:
            raise ClientClosedError("the AssemblyAI client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self._session

    # -- transcripts -------------------------------------------------------------------

    async def upload(
        self, source: UploadSource, *, size: int | None = None, progress: Progress | None = None
    ) -> str:
        """Stream `source` to /v2/upload and return the upload URL for `audio_url`."""
        body = _body(source, size)
        headers = {"Content-Type": "application/octet-stream"}
        if body.size is not None:
            headers["Content-Length"] = str(body.size)
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeouts.connect, sock_read=self.timeouts.read
        )

        async def attempt() -> Any:
            data = _counted(body.factory(), progress)
            return await self._send(
                "POST", "/v2/upload", data=data, headers=headers, client_timeout=timeout
            )

        # A one-shot stream cannot be sent twice, so only replayable bodies are retried.
        data = await (self._retrying(attempt) if body.replayable else attempt())
        return str(data["upload_url"])

    async def submit(self, audio_url: str, options: TranscriptOptions | None = None) -> Transcript:
        body = (options or TranscriptOptions()).to_json(audio_url)
        data = await self._retrying(
            lambda: self._send("POST", "/v2/transcript", json=body), safe_only=True
        )
        return Transcript.from_json(data)

    async def get(self, transcript_id: str) -> Transcript:
        return Transcript.from_json(await self._json("GET", f"/v2/transcript/{transcript_id}"))

    async def delete(self, transcript_id: str) -> Transcript:
        return Transcript.from_json(await self._json("DELETE", f"/v2/transcript/{transcript_id}"))

    async def list(
        self,
        *,
        limit: int | None = None,
        status: TranscriptStatus | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
    ) -> TranscriptPage:
        params = {
            "limit": limit,
            "status": status.value if status else None,
            "before_id": before_id,
            "after_id": after_id,
        }
        query = {k: str(v) for k, v in params.items() if v is not None}
        return TranscriptPage.from_json(await self._json("GET", "/v2/transcript", params=query))

    async def redacted_audio(self, transcript_id: str) -> str | None:
        """The URL of the transcript's PII-redacted audio (`redact_pii_audio`; AssemblyAI
        keeps it 24 hours), None while AssemblyAI is still making it (202). The URL is
        presigned: fetch it without the API key. BadRequestError (400) when there is none
        (not asked for, expired, the transcript deleted)."""
        path = f"/v2/transcript/{transcript_id}/redacted-audio"
        data = await self._retrying(lambda: self._send("GET", path, pending=True))
        if data is None:
            return None
        return str(data["redacted_audio_url"])

    async def sentences(self, transcript_id: str) -> tuple[Span, ...]:
        data = await self._json("GET", f"/v2/transcript/{transcript_id}/sentences")
        return tuple(Span.from_json(s) for s in data["sentences"])

    async def paragraphs(self, transcript_id: str) -> tuple[Span, ...]:
        data = await self._json("GET", f"/v2/transcript/{transcript_id}/paragraphs")
        return tuple(Span.from_json(p) for p in data["paragraphs"])

    async def srt(self, transcript_id: str, chars_per_caption: int | None = None) -> str:
        return await self._subtitles(transcript_id, "srt", chars_per_caption)

    async def vtt(self, transcript_id: str, chars_per_caption: int | None = None) -> str:
        return await self._subtitles(transcript_id, "vtt", chars_per_caption)

    async def _subtitles(self, transcript_id: str, fmt: str, chars: int | None) -> str:
        params = {"chars_per_caption": str(chars)} if chars else None
        path = f"/v2/transcript/{transcript_id}/{fmt}"
        text: str = await self._retrying(lambda: self._send("GET", path, params=params, text=True))
        return text

    async def wait(
        self,
        transcript_id: str,
        *,
        delays: Callable[[Transcript], float],
        on_status: Callable[[Transcript], Awaitable[None] | None] | None = None,
    ) -> Transcript:
        """Poll until the transcript is completed or error; return it either way.
        `delays` says how long to wait after each unfinished answer (bot.polling has the
        schedule the engine uses)."""
        while True:
            transcript = await self.get(transcript_id)
            if on_status is not None:
                result = on_status(transcript)
                if asyncio.iscoroutine(result):
                    await result
            if transcript.status.done:
                return transcript
            await asyncio.sleep(delays(transcript))

    # -- LLM Gateway -------------------------------------------------------------------

    async def chat(
        self, messages: Sequence[Mapping[str, str]], *, model: str, max_tokens: int = 600
    ) -> str:
        """One chat completion from AssemblyAI's LLM Gateway; returns the answer text."""
        return (await self.complete(messages, model=model, max_tokens=max_tokens)).content

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        model: str,
        max_tokens: int,
        schema: Mapping[str, Any] | None = None,
        schema_name: str = "answer",
        attempts: int | None = None,
    ) -> ChatAnswer:
        """One chat completion, `max_tokens` always given; with `schema`, asked for as
        structured output (`response_format` json_schema, strict). `attempts` bounds the
        retries (an LLM call is slow: a summary should not hold a delivery for minutes)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "max_tokens": max_tokens,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": dict(schema), "strict": True},
            }
        url = f"{self.llm_base_url}/v1/chat/completions"
        timeout = aiohttp.ClientTimeout(total=self.timeouts.llm, connect=self.timeouts.connect)
        data = await self._retrying(
            lambda: self._send("POST", url, json=body, client_timeout=timeout),
            attempts=attempts,
        )
        try:
            choice = data["choices"][0]
            return ChatAnswer(str(choice["message"]["content"]), choice.get("finish_reason"))
        except (KeyError, IndexError, TypeError) as exc:
            raise APIError("the LLM Gateway answered without a message") from exc

    async def translate(
        self, transcript_id: str, language: str, *, attempts: int | None = None
    ) -> Translation:
        """Speech Understanding's translation of a finished transcript (the LLM Gateway's
        `POST /v1/understanding`), utterance by utterance."""
        body = {
            "transcript_id": transcript_id,
            "speech_understanding": {
                "request": {
                    "translation": {
                        "target_languages": [language],
                        "formal": False,
                        "match_original_utterance": True,
                    }
                }
            },
        }
        url = f"{self.llm_base_url}/v1/understanding"
        timeout = aiohttp.ClientTimeout(total=self.timeouts.llm, connect=self.timeouts.connect)
        data = await self._retrying(
            lambda: self._send("POST", url, json=body, client_timeout=timeout),
            attempts=attempts,
        )
        if not isinstance(data, dict):
            raise APIError("the LLM Gateway answered without a translation")
        return Translation.from_json(data, language)

    # -- plumbing ----------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._retrying(lambda: self._send(method, path, **kwargs))

    async def _retrying(
        self,
        attempt: Callable[[], Awaitable[Any]],
        *,
        safe_only: bool = False,
        attempts: int | None = None,
    ) -> Any:
        retrying = AsyncRetrying(
            stop=tenacity.stop_after_attempt(attempts or self.retry.attempts),
            wait=_Wait(self.retry),
            retry=_retry_after(self.retry, safe_only=safe_only),
            before_sleep=_log_retry,
            reraise=True,
        )

        async def call() -> Any:
            # tenacity treats a plain callable as synchronous, so await the coroutine here.
            return await attempt()

        return await retrying(call)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        text: bool = False,
        pending: bool = False,
        client_timeout: aiohttp.ClientTimeout | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        all_headers = {"Authorization": self._key.value, **(headers or {})}
        timeout = client_timeout or aiohttp.ClientTimeout(
            total=self.timeouts.request, connect=self.timeouts.connect
        )
        try:
            async with self._http().request(
                method, url, headers=all_headers, timeout=timeout, **kwargs
            ) as response:
                if response.status >= 400:
                    raise await _error(response)
                if pending and response.status == 202:
                    return None  # accepted, not ready yet (redacted audio being made)
                if text:
                    return await response.text()
                return await response.json(content_type=None)
        except TimeoutError as exc:
            host = urlsplit(url).netloc
            raise RequestTimeout(f"{host} did not answer {method} {path} in time") from exc
        except aiohttp.ClientResponseError as exc:
            message = f"bad response from {urlsplit(url).netloc}: {exc.message}"
            raise TransportError(message, exc.status) from exc
        except aiohttp.ClientConnectorError as exc:
            # The host tried, so that a wrong ASSEMBLYAI_BASE_URL shows for what it is.
            message = f"could not connect to {urlsplit(url).netloc} ({_connect_reason(exc)})"
            raise TransportError(message, sent=False) from exc
        except (aiohttp.ClientError, ValueError) as exc:
            # ValueError: a body that is not JSON where JSON was promised.
            host = urlsplit(url).netloc
            raise TransportError(f"could not reach {host} ({type(exc).__name__})") from exc


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """ "Connection refused", "Name or service not known"... rather than asyncio's
    "Connect call failed ('10.0.0.1', 443)". (A certificate error is a connector error
    without an os_error.)"""
    error = getattr(exc, "os_error", None)
    if isinstance(error, socket.gaierror) or not isinstance(error, OSError):
        return getattr(error, "strerror", None) or type(exc).__name__
    return os.strerror(error.errno) if error.errno else error.strerror or type(exc).__name__


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "AssemblyAI request failed, retrying",
        extra={"attempt": state.attempt_number, "wait_s": round(wait, 2), "error": repr(exc)},
    )


async def _error(response: aiohttp.ClientResponse) -> APIError:
    message = await _error_message(response)
    status = response.status
    if status == 429:
        return RateLimitError(message, status, retry_after=_parse_retry_after(response))
    if status >= 500:
        return ServerError(message, status)
    kind: type[APIError] = {401: AuthenticationError, 404: NotFoundError}.get(
        status, BadRequestError
    )
    return kind(message, status)


async def _error_message(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        body = None
    if isinstance(body, dict):
        # v2: {"error": "..."}; the LLM Gateway: {"error": {"message": ...}} or a flat
        # {"message": ...} (AssemblyAI's gateway has answered in both shapes).
        error = body.get("error")
        if isinstance(error, str) and error:
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str) and body["message"]:
            return str(body["message"])
    return f"HTTP {response.status} {response.reason or ''}".strip()


def _parse_retry_after(response: aiohttp.ClientResponse) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
