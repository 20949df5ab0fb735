"""Typed views of AssemblyAI's transcript objects (the `Transcript` schema of openapi.yml).

Only the fields the bot reads are typed; everything else stays reachable in `raw`.
Parsing is lenient about absent optional fields and strict about nothing else: the API
decides what a transcript is, we just read it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: What a deleted transcript's audio_url reads (the spec's DeleteTranscriptResponse).
DELETED_AUDIO_URL = "http://deleted_by_user"


class TranscriptStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def done(self) -> bool:
        return self in (TranscriptStatus.COMPLETED, TranscriptStatus.ERROR)


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Word:
        return cls(
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            confidence=float(data.get("confidence") or 0.0),
            speaker=data.get("speaker"),
        )


def _words(items: Sequence[Mapping[str, Any]] | None) -> tuple[Word, ...]:
    return tuple(Word.from_json(w) for w in items or ())


@dataclass(frozen=True, slots=True)
class Utterance:
    speaker: str
    text: str
    start: int
    end: int
    confidence: float
    words: tuple[Word, ...] = ()
    #: this utterance in other languages (translation with `match_original_utterance`)
    translated_texts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Utterance:
        translated = data.get("translated_texts") or {}
        return cls(
            speaker=str(data["speaker"]),
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            confidence=float(data.get("confidence") or 0.0),
            words=_words(data.get("words")),
            translated_texts={str(k): str(v) for k, v in translated.items()},
        )


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence or a paragraph: text with its time range and words."""

    text: str
    start: int
    end: int
    confidence: float
    words: tuple[Word, ...] = ()
    speaker: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Span:
        return cls(
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            confidence=float(data.get("confidence") or 0.0),
            words=_words(data.get("words")),
            speaker=data.get("speaker"),
        )


@dataclass(frozen=True, slots=True)
class Transcript:
    id: str
    status: TranscriptStatus
    error: str | None = None
    text: str | None = None
    words: tuple[Word, ...] = ()
    utterances: tuple[Utterance, ...] = ()
    audio_duration: float | None = None
    language_code: str | None = None
    confidence: float | None = None
    audio_url: str | None = None
    speaker_labels: bool | None = None
    throttled: bool | None = None
    #: the model AssemblyAI used (the first of `speech_models` that takes the language)
    speech_model_used: str | None = None
    #: how sure language detection was of `language_code` (0..1; None: not detected)
    language_confidence: float | None = None
    #: speaker identification's answer: the original label ("A") -> the name it found
    speaker_mapping: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def deleted(self) -> bool:
        """AssemblyAI deleted it (DELETE /v2/transcript): what is left is a scrub, whose
        audio_url reads "http://deleted_by_user" and text "Deleted by user."."""
        return self.audio_url == DELETED_AUDIO_URL

    @property
    def billed_seconds(self) -> float:
        """Seconds AssemblyAI bills for it: the audio's duration within the window it
        was asked to transcribe (audio_start_from, audio_end_at); 0 for a failed one."""
        if self.status is not TranscriptStatus.COMPLETED or self.audio_duration is None:
            return 0.0
        start = float(self.raw.get("audio_start_from") or 0) / 1000
        end = self.raw.get("audio_end_at")
        stop = self.audio_duration if end is None else min(self.audio_duration, end / 1000)
        return max(0.0, stop - start)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transcript:
        duration = data.get("audio_duration")
        confidence = data.get("confidence")
        sure = data.get("language_confidence")
        return cls(
            id=str(data["id"]),
            status=TranscriptStatus(data["status"]),
            error=data.get("error"),
            text=data.get("text"),
            words=_words(data.get("words")),
            utterances=tuple(Utterance.from_json(u) for u in data.get("utterances") or ()),
            audio_duration=float(duration) if duration is not None else None,
            language_code=data.get("language_code"),
            confidence=float(confidence) if confidence is not None else None,
            audio_url=data.get("audio_url"),
            speaker_labels=data.get("speaker_labels"),
            throttled=data.get("throttled"),
            speech_model_used=data.get("speech_model_used"),
            language_confidence=float(sure) if sure is not None else None,
            speaker_mapping=_mapping(data),
            raw=dict(data),
        )


def _mapping(data: Mapping[str, Any]) -> dict[str, str]:
    """`speech_understanding.response.speaker_identification.mapping`, when there is one."""
    understanding = data.get("speech_understanding") or {}
    response = understanding.get("response") if isinstance(understanding, Mapping) else None
    found = (
        (response or {}).get("speaker_identification") if isinstance(response, Mapping) else None
    )
    mapping = (found or {}).get("mapping") if isinstance(found, Mapping) else None
    if not isinstance(mapping, Mapping):
        return {}
    return {str(k): str(v) for k, v in mapping.items() if isinstance(v, str)}


@dataclass(frozen=True, slots=True)
class Translation:
    """The LLM Gateway's translation of a transcript (`POST /v1/understanding`): the whole
    text, and each utterance (speakers as the transcript has them) in `language`."""

    language: str
    text: str
    utterances: tuple[Utterance, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], language: str) -> Translation:
        texts = data.get("translated_texts") or {}
        utterances = []
        for item in data.get("utterances") or ():
            translated = (item.get("translated_texts") or {}).get(language)
            if translated is None:
                continue
            utterances.append(
                Utterance(
                    speaker=str(item.get("speaker")),
                    text=str(translated),
                    start=int(item.get("start") or 0),
                    end=int(item.get("end") or 0),
                    confidence=float(item.get("confidence") or 0.0),
                )
            )
        return cls(language, str(texts.get(language) or ""), tuple(utterances))


@dataclass(frozen=True, slots=True)
class TranscriptListItem:
    id: str
    status: TranscriptStatus
    created: str
    audio_url: str
    completed: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TranscriptListItem:
        return cls(
            id=str(data["id"]),
            status=TranscriptStatus(data["status"]),
            created=str(data["created"]),
            audio_url=str(data["audio_url"]),
            completed=data.get("completed"),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True)
class TranscriptPage:
    transcripts: tuple[TranscriptListItem, ...]
    limit: int
    result_count: int
    prev_url: str | None
    next_url: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TranscriptPage:
        page = data["page_details"]
        return cls(
            transcripts=tuple(TranscriptListItem.from_json(t) for t in data["transcripts"]),
            limit=int(page["limit"]),
            result_count=int(page["result_count"]),
            prev_url=page.get("prev_url"),
            next_url=page.get("next_url"),
        )
