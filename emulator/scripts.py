"""Deterministic transcripts: a script's turns, or a placeholder, laid over the audio.

A script is `<scripts_dir>/<sha256 of the audio bytes>.json`:
`{"language_code": "en_us", "utterances": [{"speaker": "A", "text": "..."}]}`, and
optionally `"entities": {"Ada Lovelace": "person_name"}`: what PII redaction finds in it
besides what has a fixed shape (emulator/redaction.py). An utterance may also say who
speaks (`"name": "Ada"`: speaker identification maps its speaker to that name when the
request offers it) and what it says in other languages (`"translated_texts": {"es":
"..."}`: translation answers with it; without one, a target language gets the text marked
`[es] ...`).
Its words are spread over the real duration in proportion to their length, with a short
pause between turns, so that text, words, utterances and timings always agree. The
script describes the whole file: `audio_start_from`/`audio_end_at` keep only the words
inside that window. Speaker labels are taken from the script as written.
Audio without a script gets placeholder speech (about 2.5 words a second of speech) drawn
from a generator seeded with the audio's hash: the same bytes always give the same
transcript. The words go only where `speech` found speech, so silence, a tone or steady
noise gets none, as from AssemblyAI; when where the speech is cannot be told (no ffmpeg),
they cover the whole duration.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.models import PII_POLICIES

from .speech import Span

WORDS_PER_SECOND = 2.5
PAUSE_CHARS = 8  # a pause between turns weighs as much as eight characters of speech
_PUNCTUATION = re.compile(r"[.,!?;:\"]")
_VOCABULARY_TEXT = (
    "the team reviewed plan budget next week project update numbers looks good we should "
    "schedule meeting report customer feedback design release quarter office market "
    "priority agree question answer follow timeline results progress today launch"
)
_VOCABULARY = _VOCABULARY_TEXT.split()


class ScriptError(Exception):
    """A script file exists for the audio but cannot be used."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Script:
    language_code: str
    turns: tuple[tuple[str, str], ...]  # (speaker, text)
    #: who each speaker is, where the script says (speaker -> name)
    names: Mapping[str, str] = field(default_factory=dict)
    #: per turn, its text in other languages (language code -> text)
    translations: tuple[Mapping[str, str], ...] = ()
    #: how sure language detection is (None: a deterministic value of 0.9 or more)
    language_confidence: float | None = None
    #: words of the script that are PII, and which policy's (`person_name`...)
    entities: tuple[tuple[str, str], ...] = ()


def load_script(scripts_dir: Path | None, sha256: str) -> Script | None:
    """The script for audio with this hash, None if there is none."""
    if scripts_dir is None:
        return None
    path = scripts_dir / f"{sha256}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScriptError(path, f"not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("utterances"), list):
        raise ScriptError(path, 'expected an object with an "utterances" list')
    language = data.get("language_code", "en_us")
    if not isinstance(language, str) or not language:
        raise ScriptError(path, "language_code must be a non-empty string")
    turns = []
    names: dict[str, str] = {}
    translations: list[Mapping[str, str]] = []
    for item in data["utterances"]:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("speaker"), str)
            and isinstance(item.get("text"), str)
            and item["text"].split()
        ):
            raise ScriptError(path, 'each utterance needs a "speaker" and a non-empty "text"')
        name = item.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ScriptError(path, '"name" must be a non-empty string')
            if names.setdefault(item["speaker"], name) != name:
                raise ScriptError(path, f"speaker {item['speaker']} has two names")
        translated = item.get("translated_texts", {})
        if not isinstance(translated, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in translated.items()
        ):
            raise ScriptError(path, '"translated_texts" must map language codes to texts')
        turns.append((item["speaker"], item["text"]))
        translations.append(dict(translated))
    if not turns:
        raise ScriptError(path, "the script has no utterances")
    sure = data.get("language_confidence")
    if sure is not None and (not isinstance(sure, int | float) or not 0 <= sure <= 1):
        raise ScriptError(path, "language_confidence must be a number from 0 to 1")
    entities = data.get("entities", {})
    if not isinstance(entities, dict) or not all(
        isinstance(k, str) and k.strip() and v in PII_POLICIES for k, v in entities.items()
    ):
        raise ScriptError(path, '"entities" maps words of the script to PII policies')
    return Script(
        language_confidence=None if sure is None else float(sure),
        language_code=language,
        turns=tuple(turns),
        names=names,
        translations=tuple(translations),
        entities=tuple(entities.items()),
    )


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None
    #: the script turn (or placeholder turn) the word comes from
    turn: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
            "speaker": self.speaker,
        }


@dataclass(frozen=True, slots=True)
class Options:
    """The request options that shape a transcript."""

    speaker_labels: bool = False
    min_speakers: int | None = None
    max_speakers: int | None = None
    window: tuple[int, int | None] = (0, None)
    language_code: str | None = None
    language_detection: bool = False
    punctuate: bool = True
    format_text: bool = True
    #: `keyterms_prompt`: words heard as one of these take its spelling
    keyterms: tuple[str, ...] = ()
    #: `custom_spelling`: (from phrases, to), applied last
    spellings: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(frozen=True, slots=True)
class Transcription:
    words: tuple[Word, ...]
    language_code: str
    language_confidence: float | None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def confidence(self) -> float:
        return mean_confidence(self.words)

    def utterances(self) -> Iterator[tuple[str, tuple[Word, ...]]]:
        """Runs of consecutive words by the same speaker."""
        run: list[Word] = []
        for word in self.words:
            if run and word.speaker != run[-1].speaker:
                yield str(run[0].speaker), tuple(run)
                run = []
            run.append(word)
        if run:
            yield str(run[0].speaker), tuple(run)


def mean_confidence(words: tuple[Word, ...] | list[Word]) -> float:
    return round(sum(w.confidence for w in words) / len(words), 5) if words else 0.0


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def transcribe(
    sha256: str,
    duration_ms: int,
    script: Script | None,
    opts: Options,
    speech: Sequence[Span] | None = None,
) -> Transcription:
    """The transcript of audio with this hash and length.

    A script is laid over the whole duration, as written. Without one, placeholder words
    go into `speech` (the stretches that hold speech; none: no words at all), or over the
    whole duration when `speech` is None (not known).
    """
    if script is not None or speech is None:
        timeline = _Timeline((Span(0, duration_ms),), lead=True)
    else:
        timeline = _Timeline(tuple(s for s in speech if s.length > 0), lead=False)
    if script is not None:
        turns = script.turns
    elif timeline.length:
        turns = _placeholder_turns(sha256, timeline.length, opts)
    else:
        turns = ()
    words = [w for w in _spread(sha256, turns, timeline, opts) if _in_window(w, opts.window)]
    words = spelled(keyed(words, opts.keyterms), opts.spellings)
    if opts.language_detection:
        language = script.language_code if script else "en"
        confidence: float | None = round(0.9 + 0.0999 * _fraction(sha256, "language"), 4)
        if script is not None and script.language_confidence is not None:
            confidence = script.language_confidence
    else:
        language, confidence = opts.language_code or "en_us", None
    return Transcription(tuple(words), language, confidence)


def _in_window(word: Word, window: tuple[int, int | None]) -> bool:
    start, end = window
    return word.start >= start and (end is None or word.end <= end)


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Spans of the recording joined end to end: words are spread over the joined length,
    then put back where each piece lies. `lead` keeps a short gap at both ends."""

    spans: tuple[Span, ...]
    lead: bool

    @property
    def length(self) -> int:
        return sum(span.length for span in self.spans)

    def place(self, start: float, end: float) -> tuple[int, int]:
        """The real (start, end) of [start, end) on the joined spans; a word never
        runs past the end of the span it starts in."""
        offset = 0
        span = self.spans[-1]
        for candidate in self.spans:
            if start < offset + candidate.length:
                span = candidate
                break
            offset += candidate.length
        else:
            offset -= span.length
        begin = min(span.start + round(start - offset), span.end - 1)
        finish = max(begin + 1, min(span.start + round(end - offset), span.end))
        return begin, finish


def _spread(
    sha256: str, turns: tuple[tuple[str, str], ...], timeline: _Timeline, opts: Options
) -> Iterator[Word]:
    if not turns:
        return
    length = timeline.length
    tokens = [(speaker, text.split()) for speaker, text in turns]
    weight = sum(len(w) + 1 for _, ws in tokens for w in ws) + PAUSE_CHARS * (len(tokens) - 1)
    lead = min(250, length // 20) if timeline.lead else 0
    per_char = max(length - 2 * lead, 1) / weight
    cursor = float(lead)
    index = 0
    for turn, (speaker, texts) in enumerate(tokens):
        if turn:
            cursor += PAUSE_CHARS * per_char
        for raw in texts:
            slot = (len(raw) + 1) * per_char
            start, end = timeline.place(cursor, cursor + 0.85 * slot)
            cursor += slot
            text = _format(raw, opts)
            if text:
                confidence = round(0.75 + 0.25 * _fraction(sha256, index, raw), 5)
                label = speaker if opts.speaker_labels else None
                yield Word(text, start, end, confidence, label, turn)
            index += 1


def _format(raw: str, opts: Options) -> str:
    text = raw if opts.punctuate else _PUNCTUATION.sub("", raw)
    return text if opts.format_text else text.lower()


def _placeholder_turns(sha256: str, duration_ms: int, opts: Options) -> tuple[tuple[str, str], ...]:
    rng = random.Random(sha256)
    speakers = 2
    if opts.max_speakers is not None:
        speakers = min(speakers, opts.max_speakers)
    if opts.min_speakers is not None:
        speakers = max(speakers, opts.min_speakers)
    labels = [string.ascii_uppercase[i % 26] for i in range(max(speakers, 1))]
    remaining = max(1, round(duration_ms / 1000 * WORDS_PER_SECOND))
    turns: list[tuple[str, str]] = []
    while remaining > 0:
        sentences = []
        for _ in range(rng.randint(1, 2)):
            count = min(remaining, rng.randint(5, 12))
            if count <= 0:
                break
            words = [rng.choice(_VOCABULARY) for _ in range(count)]
            sentences.append(" ".join(words).capitalize() + ".")
            remaining -= count
        turns.append((labels[len(turns) % len(labels)], " ".join(sentences)))
    return tuple(turns)


# -- vocabulary: keyterms and custom spelling --------------------------------------------
# AssemblyAI's models hear a keyterm better; the emulator's stand-in is that a word (or run
# of words) equal to a keyterm but for case and punctuation takes the keyterm's spelling.
# Custom spelling is a rule: every occurrence of a `from` phrase (case-insensitive) becomes
# the single word `to`, keeping the punctuation that followed it.

_EDGE = ".,!?;:\"'"


def _bare(text: str) -> str:
    return text.strip(_EDGE).lower()


def _tail(text: str) -> str:
    core = text.rstrip(_EDGE)
    return text[len(core) :]


def keyed(words: list[Word], keyterms: Sequence[str]) -> list[Word]:
    out = list(words)
    for term in keyterms:
        parts = term.split()
        wanted = [p.lower() for p in parts]
        for i in range(len(out) - len(parts) + 1):
            if [_bare(w.text) for w in out[i : i + len(parts)]] == wanted:
                for j, part in enumerate(parts):
                    word = out[i + j]
                    out[i + j] = replace(word, text=part + _tail(word.text))
    return out


def spelled(words: list[Word], spellings: Sequence[tuple[tuple[str, ...], str]]) -> list[Word]:
    out = list(words)
    for phrases, to in spellings:
        # The longest phrase first: "the figures" before "figures".
        for phrase in sorted(phrases, key=lambda p: -len(p.split())):
            wanted = [p.lower() for p in phrase.split()]
            if not wanted:
                continue
            i = 0
            while i <= len(out) - len(wanted):
                run = out[i : i + len(wanted)]
                if [_bare(w.text) for w in run] == wanted:
                    first, last = run[0], run[-1]
                    merged = replace(first, text=to + _tail(last.text), end=last.end)
                    out[i : i + len(wanted)] = [merged]
                i += 1
    return out
