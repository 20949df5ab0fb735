"""Records rendered as the API's JSON: Transcript, TranscriptListItem, the deleted scrub.

Every property of the `Transcript` schema is present, null where it does not apply,
except the few the schema types as non-nullable (`error`, `prompt`, `audio_channels`,
`speech_model_used`...): those appear only when they carry a value, so responses stay
valid against the schema's `additionalProperties: false`.
"""

from __future__ import annotations

from typing import Any

from .store import JobStatus, TranscriptRecord
from .understanding import response, utterances_json, words_json

# Request fields echoed back, with the value the API shows when the request left them out.
_ECHOED: dict[str, Any] = {
    "audio_url": None,
    "punctuate": True,
    "format_text": True,
    "multichannel": False,
    "webhook_url": None,
    "webhook_auth_header_name": None,
    "auto_highlights": False,
    "audio_start_from": None,
    "audio_end_at": None,
    "filter_profanity": False,
    "redact_pii": False,
    "redact_pii_audio": False,
    "redact_pii_audio_quality": None,
    "redact_pii_policies": None,
    "speaker_labels": False,
    "speakers_expected": None,
    "content_safety": False,
    "iab_categories": False,
    "custom_spelling": None,
    "auto_chapters": False,
    "summarization": False,
    "summary_type": None,
    "summary_model": None,
    "custom_topics": False,
    "topics": [],
    "speech_threshold": None,
    "speech_models": None,
    "remove_audio_tags": None,
    "temperature": None,
    "disfluencies": False,
    "sentiment_analysis": False,
    "entity_detection": False,
    "language_detection": False,
    "language_confidence_threshold": None,
    "language_codes": None,
}
# Echoed only when given: the schema allows no null for them.
_ECHOED_IF_GIVEN = (
    "keyterms_prompt",
    "prompt",
    "language_detection_options",
    "redact_pii_audio_options",
    "speech_understanding",
)
# Results of features the emulator accepts but does not compute.
_NOT_COMPUTED = (
    "auto_highlights_result",
    "content_safety_labels",
    "iab_categories_result",
    "chapters",
    "summary",
    "sentiment_analysis_results",
    "entities",
)


def transcript_json(record: TranscriptRecord) -> dict[str, Any]:
    if record.deleted:
        return deleted_json(record)
    request = record.request
    body: dict[str, Any] = {
        "id": record.id,
        "language_model": "assemblyai_default",
        "acoustic_model": "assemblyai_default",
        "status": str(record.status),
    }
    for name, default in _ECHOED.items():
        body[name] = request.get(name, default)
    for name in _ECHOED_IF_GIVEN:
        if name in request.values:
            body[name] = request.values[name]
    task = request.understanding
    if task is not None and record.status is JobStatus.COMPLETED and record.result is not None:
        # Done with the transcript: the task's outcome, beside the request as given.
        body["speech_understanding"] = {
            "request": task.given["request"],
            "response": response(task, record.identified),
        }
    body["webhook_auth"] = request.webhook_header is not None
    body["webhook_status_code"] = record.webhook_status_code
    if body["redact_pii"]:
        body["redact_pii_sub"] = request.get("redact_pii_sub", "hash")
    body["speech_model"] = None
    body["speed_boost"] = None
    body["throttled"] = record.throttled
    body["audio_duration"] = record.audio_duration
    for name in _NOT_COMPUTED:
        body[name] = None
    body.update(_results(record))
    return body


def _results(record: TranscriptRecord) -> dict[str, Any]:
    request = record.request
    out: dict[str, Any] = {
        "text": None,
        "words": None,
        "utterances": None,
        "confidence": None,
        "language_confidence": None,
    }
    language = request.get("language_code")
    if language is None and not request.language_detection:
        language = "en_us"  # the API's default
    if language is not None:
        out["language_code"] = language
    if record.status is JobStatus.ERROR:
        out["error"] = record.error
    result = record.result
    if record.status is not JobStatus.COMPLETED or result is None:
        return out
    out["language_code"] = result.language_code
    out["language_confidence"] = result.language_confidence
    out["text"] = result.text
    out["words"] = [words_json(w, record.identified) for w in result.words]
    out["confidence"] = result.confidence if result.words else None
    out["speech_model_used"] = record.speech_model_used
    if request.speaker_labels:
        out["utterances"] = utterances_json(
            result, record.identified, record.utterance_translations
        )
    if record.translated_texts is not None:
        out["translated_texts"] = record.translated_texts
    if request.get("multichannel") and record.audio_channels is not None:
        out["audio_channels"] = record.audio_channels
    return out


def _timestamp(value: Any) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def list_item_json(record: TranscriptRecord, base_url: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "resource_url": f"{base_url}/v2/transcript/{record.id}",
        "status": str(record.status),
        "created": _timestamp(record.created),
        "completed": _timestamp(record.completed),
        "audio_url": DELETED_URL if record.deleted else record.request.audio_url,
        "error": record.error,
    }


DELETED_URL = "http://deleted_by_user"
DELETED_TEXT = "Deleted by user."


def deleted_json(record: TranscriptRecord) -> dict[str, Any]:
    """The scrubbed record, shaped as the spec's DeleteTranscriptResponse example.

    The example carries `speaker_count` and `cluster_id`, which the Transcript schema
    does not list, and nulls where the schema allows none; it is reproduced as published
    because it shows what the live API answers.
    """
    request = record.request
    return {
        "id": record.id,
        "language_model": "assemblyai_default",
        "acoustic_model": "assemblyai_default",
        "language_code": None,
        "language_detection": False,
        "language_confidence_threshold": None,
        "language_confidence": None,
        "status": str(record.status),
        "audio_url": DELETED_URL,
        "text": DELETED_TEXT,
        "words": None,
        "utterances": None,
        "confidence": None,
        "audio_duration": record.audio_duration,
        "punctuate": None,
        "format_text": None,
        "multichannel": False,
        "webhook_url": DELETED_URL if request.webhook_url is not None else None,
        "webhook_status_code": None,
        "webhook_auth": False,
        "webhook_auth_header_name": None,
        "speed_boost": None,
        "auto_highlights_result": None,
        "auto_highlights": False,
        "audio_start_from": None,
        "audio_end_at": None,
        "filter_profanity": None,
        "redact_pii": False,
        "redact_pii_audio": None,
        "redact_pii_audio_quality": None,
        "redact_pii_policies": None,
        "redact_pii_sub": None,
        "speaker_labels": None,
        "speaker_count": None,
        "error": None,
        "content_safety": None,
        "iab_categories": None,
        "content_safety_labels": None,
        "iab_categories_result": None,
        "custom_spelling": None,
        "cluster_id": None,
        "throttled": None,
        "custom_topics": None,
        "topics": None,
        "speech_threshold": None,
        "speech_model": None,
        "remove_audio_tags": None,
        "disfluencies": bool(request.get("disfluencies", False)),
        "entity_detection": False,
        "entities": None,
        "speakers_expected": None,
        "summarization": False,
        "sentiment_analysis": False,
        "sentiment_analysis_results": None,
    }
