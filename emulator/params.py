"""Validation of `POST /v2/transcript` bodies (the `TranscriptParams` schema).

The live API checks types and a few combinations and answers `400 {"error": ...}`.
Messages quoted from the live API (as reported by its users) are marked; the others
follow the style of the spec's own example (`format_text must be a Boolean`).
Unknown fields are refused, as the schema's `additionalProperties: false` says.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from bot.models import (
    ACCEPTED_SPEECH_MODELS,
    KEYTERM_MAX_WORDS,
    LANGUAGE_CODES,
    LISTED_SPEECH_MODELS,
    PII_POLICIES,
    PROMPT_MAX_WORDS,
    keyterms_limit,
)

from .errors import ApiError
from .understanding import Task, parse_task

# LANGUAGE_CODES (TranscriptLanguageCode of openapi.yml) is the bot's list too, so the CLI
# refuses before spending what the emulator would refuse.

# Models `speech_models` accepts, and those the live API lists in its error message: the
# bot's own list (bot/models.py), so the emulator enforces what the bot checks.
SPEECH_MODELS: tuple[str, ...] = ACCEPTED_SPEECH_MODELS

# Live API wording.
SPEECH_MODELS_ERROR = (
    '"speech_models" must be a non-empty list containing one or more of: '
    + ", ".join(f'"{m}"' for m in LISTED_SPEECH_MODELS)
)
# Live API wording.
SPEECH_MODEL_DEPRECATED = (
    'speech_model is deprecated. Use "speech_models" instead. See documentation: '
    "https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model"
)


class Kind(enum.Enum):
    BOOLEAN = "a Boolean"
    INTEGER = "an Integer"
    NUMBER = "a Number"
    STRING = "a String"
    STRINGS = "an Array of Strings"
    ARRAY = "an Array"
    OBJECT = "an Object"


# Every property of TranscriptParams, with its JSON type.
FIELDS: Mapping[str, Kind] = MappingProxyType(
    {
        "audio_url": Kind.STRING,
        "audio_end_at": Kind.INTEGER,
        "audio_start_from": Kind.INTEGER,
        "auto_chapters": Kind.BOOLEAN,
        "auto_highlights": Kind.BOOLEAN,
        "content_safety": Kind.BOOLEAN,
        "content_safety_confidence": Kind.INTEGER,
        "custom_spelling": Kind.ARRAY,
        "disfluencies": Kind.BOOLEAN,
        "entity_detection": Kind.BOOLEAN,
        "filter_profanity": Kind.BOOLEAN,
        "format_text": Kind.BOOLEAN,
        "iab_categories": Kind.BOOLEAN,
        "keyterms_prompt": Kind.STRINGS,
        "language_code": Kind.STRING,
        "language_codes": Kind.STRINGS,
        "language_confidence_threshold": Kind.NUMBER,
        "language_detection": Kind.BOOLEAN,
        "language_detection_options": Kind.OBJECT,
        "multichannel": Kind.BOOLEAN,
        "prompt": Kind.STRING,
        "punctuate": Kind.BOOLEAN,
        "redact_pii": Kind.BOOLEAN,
        "redact_pii_audio": Kind.BOOLEAN,
        "redact_pii_audio_options": Kind.OBJECT,
        "redact_pii_audio_quality": Kind.STRING,
        "redact_pii_policies": Kind.STRINGS,
        "redact_pii_sub": Kind.STRING,
        "sentiment_analysis": Kind.BOOLEAN,
        "speaker_labels": Kind.BOOLEAN,
        "speaker_options": Kind.OBJECT,
        "speakers_expected": Kind.INTEGER,
        "speech_models": Kind.STRINGS,
        "speech_threshold": Kind.NUMBER,
        "speech_understanding": Kind.OBJECT,
        "summarization": Kind.BOOLEAN,
        "summary_model": Kind.STRING,
        "summary_type": Kind.STRING,
        "remove_audio_tags": Kind.STRING,
        "temperature": Kind.NUMBER,
        "webhook_auth_header_name": Kind.STRING,
        "webhook_auth_header_value": Kind.STRING,
        "webhook_url": Kind.STRING,
        "custom_topics": Kind.BOOLEAN,
        "speech_model": Kind.STRING,
        "topics": Kind.STRINGS,
    }
)

CHOICES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "redact_pii_audio_quality": frozenset({"mp3", "wav"}),
        "redact_pii_sub": frozenset({"entity_name", "hash"}),
        "summary_model": frozenset({"informative", "conversational", "catchy"}),
        "summary_type": frozenset({"bullets", "bullets_verbose", "gist", "headline", "paragraph"}),
        "remove_audio_tags": frozenset({"all"}),
    }
)

RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "content_safety_confidence": (25, 100),
        "language_confidence_threshold": (0, 1),
        "speech_threshold": (0, 1),
        "temperature": (0, 1),
    }
)


def _is_kind(value: Any, kind: Kind) -> bool:
    if kind is Kind.BOOLEAN:
        return isinstance(value, bool)
    if kind is Kind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Kind.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.STRINGS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is Kind.ARRAY:
        return isinstance(value, list)
    return isinstance(value, dict)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class TranscriptRequest:
    """A validated request: the given fields (nulls dropped), read through typed views."""

    values: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    @property
    def audio_url(self) -> str:
        return str(self.values["audio_url"])

    @property
    def speech_models(self) -> tuple[str, ...]:
        return tuple(self.values["speech_models"])

    @property
    def speaker_labels(self) -> bool:
        return bool(self.values.get("speaker_labels", False))

    @property
    def language_detection(self) -> bool:
        return bool(self.values.get("language_detection", False))

    @property
    def webhook_url(self) -> str | None:
        return self.values.get("webhook_url")

    @property
    def webhook_header(self) -> tuple[str, str] | None:
        name = self.values.get("webhook_auth_header_name")
        value = self.values.get("webhook_auth_header_value")
        return (name, value) if name is not None and value is not None else None

    @property
    def window(self) -> tuple[int, int | None]:
        """(audio_start_from, audio_end_at) in milliseconds; end None means the end."""
        return int(self.values.get("audio_start_from", 0)), self.values.get("audio_end_at")

    @property
    def understanding(self) -> Task | None:
        """The Speech Understanding task asked for, validated when the request was."""
        value = self.values.get("speech_understanding")
        return None if value is None else parse_task(value, speaker_labels=self.speaker_labels)

    @property
    def keyterms(self) -> tuple[str, ...]:
        return tuple(self.values.get("keyterms_prompt", ()))

    @property
    def spellings(self) -> tuple[tuple[tuple[str, ...], str], ...]:
        return tuple(
            (tuple(item["from"]), item["to"]) for item in self.values.get("custom_spelling", ())
        )

    def expected_speakers(self) -> tuple[int | None, int | None]:
        """(minimum, maximum) number of speakers asked for, None where not said."""
        exact = self.values.get("speakers_expected")
        if exact is not None:
            return exact, exact
        options = self.values.get("speaker_options") or {}
        return options.get("min_speakers_expected"), options.get("max_speakers_expected")


def parse_transcript_request(body: Any) -> TranscriptRequest:
    """Validate a decoded JSON body; raise ApiError(400) with the first problem found."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    for key in body:
        if key not in FIELDS:
            raise ApiError(400, f'"{key}" is not allowed')
    values = {k: v for k, v in body.items() if v is not None}
    if values.get("speech_model") is not None:
        raise ApiError(400, SPEECH_MODEL_DEPRECATED)
    if "audio_url" not in values:
        raise ApiError(400, "audio_url is required")
    models = values.get("speech_models")
    if (
        not isinstance(models, list)
        or not models
        or not all(isinstance(m, str) and m in SPEECH_MODELS for m in models)
    ):
        raise ApiError(400, SPEECH_MODELS_ERROR)
    for key, value in values.items():
        kind = FIELDS[key]
        if not _is_kind(value, kind):
            raise ApiError(400, f"{key} must be {kind.value}")
        if key in CHOICES and value not in CHOICES[key]:
            choices = ", ".join(sorted(CHOICES[key]))
            raise ApiError(400, f"{key} must be one of: {choices}")
        if key in RANGES and not RANGES[key][0] <= value <= RANGES[key][1]:
            low, high = RANGES[key]
            raise ApiError(400, f"{key} must be between {low:g} and {high:g}")
    _check_combinations(values)
    return TranscriptRequest(MappingProxyType(values))


def _check_combinations(values: dict[str, Any]) -> None:
    if not values["audio_url"].strip():
        raise ApiError(400, "audio_url must not be empty")
    code = values.get("language_code")
    if code is not None and code not in LANGUAGE_CODES:
        raise ApiError(400, f"language_code '{code}' is not supported")
    if values.get("language_detection") and code is not None:
        raise ApiError(400, "language_code cannot be specified when language_detection is enabled")
    for listed in values.get("language_codes", ()):
        if listed not in LANGUAGE_CODES:
            raise ApiError(400, f"language_codes: '{listed}' is not supported")
    _check_window(values)
    _check_speakers(values)
    _check_webhook(values)
    _check_vocabulary(values)
    if "speech_understanding" in values:
        parse_task(
            values["speech_understanding"], speaker_labels=bool(values.get("speaker_labels"))
        )
    _check_redaction(values)


def _check_redaction(values: dict[str, Any]) -> None:
    if values.get("redact_pii") and not values.get("redact_pii_policies"):
        raise ApiError(400, "redact_pii_policies must be provided when redact_pii is enabled")
    for policy in values.get("redact_pii_policies", ()):
        if policy not in PII_POLICIES:
            raise ApiError(400, f"redact_pii_policies: '{policy}' is not a valid PII policy")
    if values.get("redact_pii_audio") and not values.get("redact_pii"):
        raise ApiError(400, "redact_pii_audio requires redact_pii to be enabled")
    options = values.get("redact_pii_audio_options")
    if options is not None:
        for key, value in options.items():
            if key == "return_redacted_no_speech_audio" and isinstance(value, bool):
                continue
            if key == "override_audio_redaction_method" and value == "silence":
                continue
            raise ApiError(400, f"redact_pii_audio_options.{key} is not allowed with {value!r}")


def _check_window(values: dict[str, Any]) -> None:
    start = values.get("audio_start_from")
    end = values.get("audio_end_at")
    if start is not None and start < 0:
        raise ApiError(400, "audio_start_from must be greater than or equal to 0")
    if end is not None and end <= (start or 0):
        raise ApiError(400, "audio_end_at must be greater than audio_start_from")


def _check_speakers(values: dict[str, Any]) -> None:
    expected = values.get("speakers_expected")
    if expected is not None and expected < 1:
        raise ApiError(400, "speakers_expected must be greater than or equal to 1")
    options = values.get("speaker_options")
    if options is None:
        return
    if expected is not None:
        raise ApiError(400, "speakers_expected and speaker_options cannot be used together")
    low = options.get("min_speakers_expected")
    high = options.get("max_speakers_expected")
    for name, number in (("min_speakers_expected", low), ("max_speakers_expected", high)):
        if number is not None and (not _is_kind(number, Kind.INTEGER) or number < 1):
            raise ApiError(400, f"speaker_options.{name} must be a positive Integer")
    if low is not None and high is not None and high < low:
        raise ApiError(
            400, "max_speakers_expected must be greater than or equal to min_speakers_expected"
        )


def _check_webhook(values: dict[str, Any]) -> None:
    url = values.get("webhook_url")
    if url is not None and not _is_http_url(url):
        raise ApiError(400, "webhook_url must be a valid http(s) URL")
    name = values.get("webhook_auth_header_name")
    value = values.get("webhook_auth_header_value")
    if (name is None) != (value is None):
        raise ApiError(
            400,
            "webhook_auth_header_name and webhook_auth_header_value must be provided together",
        )


def _check_vocabulary(values: dict[str, Any]) -> None:
    """`keyterms_prompt`, `prompt` and `custom_spelling` within AssemblyAI's limits (the
    Keyterms Prompting, Universal-3 Pro and Custom Spelling pages; the wording is the
    emulator's own)."""
    terms = values.get("keyterms_prompt")
    if terms is not None:
        if "prompt" in values:
            raise ApiError(
                400, "The prompt and keyterms_prompt parameters cannot be used in the same request"
            )
        limit = keyterms_limit(values["speech_models"])
        if len(terms) > limit:
            raise ApiError(
                400,
                f"keyterms_prompt can contain at most {limit} keyterms for the requested "
                f"speech_models, not {len(terms)}",
            )
        for term in terms:
            words = term.split()
            if not words:
                raise ApiError(400, "keyterms_prompt must not contain empty keyterms")
            if len(words) > KEYTERM_MAX_WORDS:
                raise ApiError(
                    400,
                    f"Each keyterm in keyterms_prompt can be at most {KEYTERM_MAX_WORDS} words: "
                    f"'{term[:80]}'",
                )
    prompt = values.get("prompt")
    if prompt is not None and len(prompt.split()) > PROMPT_MAX_WORDS:
        raise ApiError(400, f"prompt can be at most {PROMPT_MAX_WORDS} words")
    for index, item in enumerate(values.get("custom_spelling", ())):
        where = f"custom_spelling[{index}]"
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            raise ApiError(400, f'{where} must be an Object with exactly "from" and "to"')
        froms, to = item["from"], item["to"]
        if (
            not isinstance(froms, list)
            or not froms
            or not all(isinstance(f, str) and f.strip() for f in froms)
        ):
            raise ApiError(400, f"{where}.from must be a non-empty Array of Strings")
        if not isinstance(to, str) or len(to.split()) != 1:
            raise ApiError(400, f"{where}.to must be a single word")
