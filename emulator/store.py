"""Transcript records, their lifecycle, and the uploaded files they may point at.

A record moves queued -> processing -> completed | error, and a finished record may be
deleted (scrubbed). Each move is one method that checks the state it starts from, so a
wrong move fails loudly instead of leaving a record half-changed.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from .errors import TRANSCRIPT_NOT_FOUND, ApiError
from .params import TranscriptRequest
from .scripts import Script, Transcription

# The host the API's upload URLs name; only the emulator resolves them.
UPLOAD_URL_PREFIX = "https://cdn.assemblyai.com/upload/"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"


class TransitionError(RuntimeError):
    """A lifecycle move was asked of a record in the wrong state."""

    def __init__(self, record_id: str, status: JobStatus, move: str) -> None:
        super().__init__(f"transcript {record_id} is {status}: cannot {move}")
        self.record_id = record_id
        self.status = status


def _now() -> datetime:
    # The API writes naive UTC timestamps ("2024-03-11T21:29:59.936851").
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class Upload:
    id: str
    path: Path
    sha256: str
    size: int

    @property
    def url(self) -> str:
        return UPLOAD_URL_PREFIX + self.id


@dataclass(slots=True)
class TranscriptRecord:
    id: str
    request: TranscriptRequest
    created: datetime
    status: JobStatus = JobStatus.QUEUED
    throttled: bool | None = None
    completed: datetime | None = None
    error: str | None = None
    result: Transcription | None = None
    audio_duration: int | None = None
    audio_channels: int | None = None
    speech_model_used: str | None = None
    webhook_status_code: int | None = None
    deleted: bool = False
    #: the script the audio was transcribed to, if it had one (for Speech Understanding)
    script: Script | None = None
    #: speaker identification's mapping (speaker label -> name), applied when shown
    identified: dict[str, str] = field(default_factory=dict)
    #: translation asked for on submit: the whole text, and each utterance's
    translated_texts: dict[str, str] | None = None
    utterance_translations: list[dict[str, str]] | None = None
    #: the audio with the PII beeped out (redact_pii_audio), or why there is none
    redacted_audio: Path | None = None
    redacted_audio_error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.ERROR)

    def start(self) -> None:
        if self.status is not JobStatus.QUEUED:
            raise TransitionError(self.id, self.status, "start processing")
        self.status = JobStatus.PROCESSING
        self.throttled = None

    def complete(
        self, result: Transcription, duration: int, channels: int | None, model: str
    ) -> None:
        if self.status is not JobStatus.PROCESSING:
            raise TransitionError(self.id, self.status, "complete")
        self.result = result
        self.audio_duration = duration
        self.audio_channels = channels
        self.speech_model_used = model
        self.completed = _now()
        self.status = JobStatus.COMPLETED

    def fail(self, message: str, duration: int | None = None) -> None:
        if self.status is not JobStatus.PROCESSING:
            raise TransitionError(self.id, self.status, "fail")
        self.error = message
        self.audio_duration = duration
        self.status = JobStatus.ERROR

    def scrub(self) -> None:
        if not self.done:
            raise TransitionError(self.id, self.status, "delete")
        self.deleted = True
        self.result = None
        self.script = None
        self.identified = {}
        self.translated_texts = self.utterance_translations = None
        if self.redacted_audio is not None:
            self.redacted_audio.unlink(missing_ok=True)
            self.redacted_audio = None


@dataclass(slots=True)
class Page:
    records: list[TranscriptRecord]
    has_older: bool
    has_newer: bool


@dataclass(slots=True)
class TranscriptStore:
    records: dict[str, TranscriptRecord] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)

    def add(self, request: TranscriptRequest) -> TranscriptRecord:
        record = TranscriptRecord(id=str(uuid.uuid4()), request=request, created=_now())
        self.records[record.id] = record
        return record

    def get(self, transcript_id: str) -> TranscriptRecord:
        record = self.records.get(transcript_id)
        if record is None:
            raise ApiError(400, TRANSCRIPT_NOT_FOUND)
        return record

    def upload_for(self, url: str) -> Upload | None:
        if not url.startswith(UPLOAD_URL_PREFIX):
            return None
        return self.uploads.get(url.removeprefix(UPLOAD_URL_PREFIX))

    def page(
        self,
        limit: int,
        status: JobStatus | None = None,
        created_on: date | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        throttled_only: bool = False,
    ) -> Page:
        """A page of records, newest first, with whether older and newer ones remain.

        `before_id` pages back to older records, `after_id` forward to newer ones (the
        page right after that record); `throttled_only` overrides `status`.
        """
        ordered = list(self.records.values())  # oldest first: insertion order
        position = {r.id: i for i, r in enumerate(ordered)}
        low, high = 0, len(ordered)
        if before_id is not None:
            high = position[self.get(before_id).id]
        if after_id is not None:
            low = position[self.get(after_id).id] + 1
        if low > high:
            raise ApiError(400, "'after_id' must be an older transcript than 'before_id'")

        def wanted(record: TranscriptRecord) -> bool:
            if throttled_only:
                return bool(record.throttled)
            if status is not None and record.status is not status:
                return False
            return created_on is None or record.created.date() == created_on

        candidates = [r for r in ordered[low:high] if wanted(r)]
        if after_id is not None and before_id is None:
            chosen = candidates[:limit]
        else:
            chosen = candidates[-limit:] if limit else []
        if not chosen:
            return Page([], has_older=False, has_newer=False)
        first, last = position[chosen[0].id], position[chosen[-1].id]
        older = any(wanted(r) for r in ordered[:first])
        newer = any(wanted(r) for r in ordered[last + 1 :])
        return Page(list(reversed(chosen)), has_older=older, has_newer=newer)
