"""Speech Understanding: speaker identification, translation and custom formatting, on
`POST /v2/transcript` (`speech_understanding.request`) and on the LLM Gateway's
`POST /v1/understanding` (a finished transcript's id).

The request is the spec's `oneOf` of `TranslationRequestBody`,
`SpeakerIdentificationRequestBody` and `CustomFormattingRequestBody`: exactly one task per
request (an object naming two matches two branches, which `oneOf` refuses). The limits are
the docs': identification needs `speaker_labels`, `speaker_type` is `name` or `role`,
`known_values` or `speakers` (not both), each value 35 characters at most, and at most 35
of them; translation takes the target languages of the Translation page.

Answers are deterministic, from the script (emulator/scripts.py): a speaker whose script
turns carry `"name"` is mapped to that name when the request offers it (case-insensitive),
other speakers keep their letter; a translation is the script's `translated_texts` for the
language, or the text marked `[xx] ...`. Error wordings are the emulator's own (AssemblyAI
publishes none for these checks); they say what the docs say.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.models import SPEAKER_NAME_MAX_CHARS, SPEAKER_NAMES_MAX, TRANSLATION_LANGUAGES

from .errors import ApiError, GatewayError
from .scripts import Script, Transcription, Word

TASKS = ("translation", "speaker_identification", "custom_formatting")
SPEAKER_TYPES = frozenset({"name", "role"})


@dataclass(frozen=True, slots=True)
class Task:
    """One validated understanding request: its kind and its options as given."""

    kind: str
    options: Mapping[str, Any]
    #: the `speech_understanding` object as the client sent it, to echo back
    given: Mapping[str, Any]

    @property
    def identities(self) -> list[str]:
        """The names (or roles) offered to speaker identification."""
        values = self.options.get("known_values")
        if values is not None:
            return list(values)
        key = self.options["speaker_type"]
        return [str(s[key]) for s in self.options.get("speakers", ())]

    @property
    def languages(self) -> list[str]:
        return list(self.options["target_languages"])


def parse_task(value: Any, *, speaker_labels: bool, fail: type[ApiError] = ApiError) -> Task:
    """Validate a `speech_understanding` object; raise `fail(400, ...)` with the first
    problem, in the v2 API's shape (ApiError) or the gateway's (GatewayError)."""

    def bad(message: str) -> ApiError:
        if fail is GatewayError:
            return GatewayError(400, message, str(uuid.uuid4()))
        return ApiError(400, message)

    if not isinstance(value, dict) or not isinstance(value.get("request"), dict):
        raise bad("speech_understanding.request must be an Object")
    request = value["request"]
    named = [kind for kind in TASKS if kind in request]
    if len(named) != 1:
        raise bad(
            "speech_understanding.request must hold exactly one of translation, "
            "speaker_identification or custom_formatting"
        )
    kind = named[0]
    options = request[kind]
    if not isinstance(options, dict):
        raise bad(f"speech_understanding.request.{kind} must be an Object")
    where = f"speech_understanding.request.{kind}"
    if kind == "speaker_identification":
        _check_identification(options, where, speaker_labels, bad)
    elif kind == "translation":
        _check_translation(options, where, speaker_labels, bad)
    else:
        for key in ("date", "phone_number", "email"):
            if key in options and not isinstance(options[key], str):
                raise bad(f"{where}.{key} must be a String")
    return Task(kind, options, value)


def _check_identification(
    options: dict[str, Any], where: str, speaker_labels: bool, bad: Any
) -> None:
    if not speaker_labels:
        raise bad("speaker_identification requires speaker_labels to be enabled")
    kind = options.get("speaker_type")
    if kind not in SPEAKER_TYPES:
        raise bad(f"{where}.speaker_type must be one of: name, role")
    values, speakers = options.get("known_values"), options.get("speakers")
    if values is not None and speakers is not None:
        raise bad(f"{where}: use known_values or speakers, not both")
    if values is None and speakers is None:
        if kind == "role":
            raise bad(f"{where}.known_values is required when speaker_type is role")
        raise bad(f"{where}: known_values or speakers is required")
    if values is not None:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise bad(f"{where}.known_values must be an Array of Strings")
        names = list(values)
    else:
        if not isinstance(speakers, list) or not all(isinstance(s, dict) for s in speakers):
            raise bad(f"{where}.speakers must be an Array of Objects")
        names = []
        for i, speaker in enumerate(speakers):
            name = speaker.get(kind)
            if not isinstance(name, str):
                raise bad(f"{where}.speakers[{i}].{kind} is required and must be a String")
            if "description" in speaker and not isinstance(speaker["description"], str):
                raise bad(f"{where}.speakers[{i}].description must be a String")
            names.append(name)
    if not names:
        raise bad(f"{where}: give at least one {kind}")
    if len(names) > SPEAKER_NAMES_MAX:
        raise bad(f"{where}: at most {SPEAKER_NAMES_MAX} speakers may be given, not {len(names)}")
    for name in names:
        if not name.strip():
            raise bad(f"{where}: a {kind} must not be empty")
        if len(name) > SPEAKER_NAME_MAX_CHARS:
            raise bad(
                f"{where}: each value must be {SPEAKER_NAME_MAX_CHARS} characters or less "
                f"({name[:40]!r} has {len(name)})"
            )


def _check_translation(options: dict[str, Any], where: str, speaker_labels: bool, bad: Any) -> None:
    targets = options.get("target_languages")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise bad(f"{where}.target_languages must be a non-empty Array of Strings")
    for target in targets:
        if target not in TRANSLATION_LANGUAGES:
            raise bad(f"{where}.target_languages: translation to '{target}' is not supported")
    for key in ("formal", "match_original_utterance"):
        if key in options and not isinstance(options[key], bool):
            raise bad(f"{where}.{key} must be a Boolean")
    if options.get("match_original_utterance") and not speaker_labels:
        raise bad("match_original_utterance requires speaker_labels to be enabled")


# -- the answers ---------------------------------------------------------------------------


def identify(task: Task, script: Script | None, result: Transcription) -> dict[str, str]:
    """Speaker label -> identified name, for the speakers the script names among those
    the request offers (spelled as the request spells them)."""
    if script is None:
        return {}
    offered = {name.casefold(): name for name in task.identities}
    spoken = {w.speaker for w in result.words if w.speaker is not None}
    mapping = {}
    for speaker, name in script.names.items():
        chosen = offered.get(name.casefold())
        if chosen is not None and speaker in spoken:
            mapping[speaker] = chosen
    return mapping


def translations(
    task: Task, script: Script | None, result: Transcription
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The whole text in each target language, and each utterance's (in `utterances()`
    order), deterministic from the script."""
    per_utterance: list[dict[str, str]] = []
    for _speaker, words in result.utterances():
        per_utterance.append({lang: _translated(words, script, lang) for lang in task.languages})
    whole = {lang: " ".join(u[lang] for u in per_utterance).strip() for lang in task.languages}
    return whole, per_utterance


def _translated(words: tuple[Word, ...], script: Script | None, lang: str) -> str:
    turns = list(dict.fromkeys(w.turn for w in words))
    if (
        script is not None
        and turns
        and all(0 <= t < len(script.translations) and lang in script.translations[t] for t in turns)
    ):
        return " ".join(script.translations[t][lang] for t in turns)
    return f"[{lang}] " + " ".join(w.text for w in words)


def response(task: Task, mapping: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`speech_understanding.response` for a finished task."""
    if task.kind == "speaker_identification":
        return {"speaker_identification": {"mapping": dict(mapping or {}), "status": "success"}}
    if task.kind == "translation":
        return {"translation": {"status": "success"}}
    return {"custom_formatting": {"mapping": {}, "status": "success"}}


def utterances_json(
    result: Transcription,
    mapping: Mapping[str, str],
    translated: list[dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The transcript's utterances, speakers as identified, with their translations."""
    out = []
    for index, (speaker, words) in enumerate(result.utterances()):
        item: dict[str, Any] = {
            "confidence": round(sum(w.confidence for w in words) / len(words), 5),
            "start": words[0].start,
            "end": words[-1].end,
            "text": " ".join(w.text for w in words),
            "words": [words_json(w, mapping) for w in words],
            "speaker": mapping.get(speaker, speaker),
        }
        if translated is not None:
            item["translated_texts"] = translated[index]
        out.append(item)
    return out


def words_json(word: Word, mapping: Mapping[str, str]) -> dict[str, Any]:
    data = word.to_json()
    if word.speaker is not None:
        data["speaker"] = mapping.get(word.speaker, word.speaker)
    return data
