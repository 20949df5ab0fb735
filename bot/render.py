"""A finished transcript as chat-sized plain text: header, notes, summary, speaker
statistics, transcript lines, and the ladder that fits it all under a platform's message
limit.

Everything here is pure and deterministic. Output is plain text; adapters build Block Kit
or embeds from the structured `Document` (the AI summary as data, the members behind
speaker names). Lengths are counted in code points (`len`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.speakers import is_label
from bot.transcript import Span, Transcript, TranscriptStatus, Translation, Utterance

if TYPE_CHECKING:
    from bot.speakers import Speakers
    from bot.summary import Outcome, Summary

SLACK_SECTION_LIMIT = 3_000
SLACK_MESSAGE_LIMIT = 40_000
DISCORD_MESSAGE_LIMIT = 2_000

NO_SPEECH = "(no speech detected)"
# AssemblyAI ends a job with this error, instead of an empty transcript, when language
# detection finds no speech to detect a language in (its wording, seen by many users:
# "language_detection cannot be performed on files with no spoken audio.").
_NO_SPOKEN_AUDIO = "no spoken audio"
_PARAGRAPH_CHARS = 600  # unlabelled text is grouped into paragraphs of about this size

_LANGUAGES = {
    "ar": "Arabic", "bn": "Bengali", "ca": "Catalan", "cs": "Czech", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay",
    "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sv": "Swedish", "ta": "Tamil", "th": "Thai",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip

#: Below this `language_confidence`, the result says it is unsure of the language.
LANGUAGE_DOUBT = 0.7


def format_timestamp(ms: int, *, hours: bool = False) -> str:
    """`04:05`; `1:02:03` past an hour, or always with `hours` so that columns line up."""
    total = max(0, ms) // 1000  # floor: a timestamp must not point past the words it marks
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h or hours else f"{m:02d}:{s:02d}"


def format_duration(seconds: float) -> str:
    """`4:05` or `1:02:03`, to the nearest second."""
    total = int(max(0.0, seconds) + 0.5)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def language_name(code: str | None) -> str | None:
    """`en_us` -> `English`; a code we have no name for is shown as it is."""
    if not code:
        return None
    return _LANGUAGES.get(code.lower().replace("-", "_").split("_")[0], code)


def speaker_label(speaker: str | None) -> str:
    """`Speaker A` for AssemblyAI's letters; a name from speaker identification as it is."""
    if speaker is None:
        return "All speech"
    return f"Speaker {speaker}" if is_label(speaker) else speaker


@dataclass(frozen=True, slots=True)
class SpeakerStats:
    speaker: str | None  # None: the transcript has no speaker labels
    talk_ms: int
    share: float  # of all talk time, 0.0-1.0
    words: int
    turns: int
    #: how the speaker is shown (a name, "Speaker A")
    shown: str | None = None

    @property
    def label(self) -> str:
        return self.shown if self.shown is not None else speaker_label(self.speaker)


def speaker_stats(
    transcript: Transcript, speakers: Speakers | None = None
) -> tuple[SpeakerStats, ...]:
    """Per speaker, in order of first appearance.

    A turn is one utterance: AssemblyAI already merges consecutive speech by one speaker
    into one utterance. Without speaker labels, all words form one anonymous speaker.
    """
    if not transcript.utterances:
        words = transcript.words
        if not words:
            return ()
        talk = max(0, words[-1].end - words[0].start)
        return (SpeakerStats(None, talk, 1.0 if talk else 0.0, len(words), 1),)
    talk_ms: dict[str, int] = {}
    word_count: dict[str, int] = {}
    turns: dict[str, int] = {}
    for u in transcript.utterances:  # dicts keep insertion order: first appearance
        talk_ms[u.speaker] = talk_ms.get(u.speaker, 0) + max(0, u.end - u.start)
        word_count[u.speaker] = word_count.get(u.speaker, 0) + _utterance_words(u)
        turns[u.speaker] = turns.get(u.speaker, 0) + 1
    total = sum(talk_ms.values())
    label = speakers.label if speakers is not None else speaker_label
    return tuple(
        SpeakerStats(
            s, talk_ms[s], talk_ms[s] / total if total else 0.0, word_count[s], turns[s], label(s)
        )
        for s in talk_ms
    )


def stats_lines(stats: Sequence[SpeakerStats]) -> tuple[str, ...]:
    """`Speaker A — 0:42 (58%), 120 words, 4 turns`, one line per speaker."""
    lines = []
    for stat, percent in zip(stats, _percents(stats), strict=True):
        talk, words = format_duration(stat.talk_ms / 1000), _plural(stat.words, "word")
        if stat.speaker is None:
            lines.append(f"{stat.label} — {talk}, {words}")
        else:
            turns = _plural(stat.turns, "turn")
            lines.append(f"{stat.label} — {talk} ({percent}%), {words}, {turns}")
    return tuple(lines)


def utterance_lines(
    utterances: Sequence[Utterance], speakers: Speakers | None = None
) -> tuple[str, ...]:
    """`Speaker A [00:05]: text`, one line per utterance."""
    hours = any(u.start >= 3_600_000 for u in utterances)
    label = speakers.label if speakers is not None else speaker_label
    return tuple(
        f"{label(u.speaker)} [{format_timestamp(u.start, hours=hours)}]: {_one_line(u.text)}"
        for u in utterances
    )


def paragraph_lines(
    transcript: Transcript, paragraphs: Sequence[Span] | None = None
) -> tuple[str, ...]:
    """Plain paragraphs for a transcript without speaker labels: AssemblyAI's own
    (`/paragraphs`) when given, else whole sentences grouped to about 600 characters."""
    if paragraphs:
        return tuple(text for p in paragraphs if (text := _one_line(p.text)))
    text = transcript.text or " ".join(w.text for w in transcript.words)
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE.finditer(text.strip()):
        current += sentence.group()
        if len(current) >= _PARAGRAPH_CHARS:
            out.append(_one_line(current))
            current = ""
    if current.strip():
        out.append(_one_line(current))
    return tuple(out)


def summary_lines(summary: Summary, *, hours: bool = False) -> list[str]:
    """The AI summary as plain lines: its points, then decisions and action items, each
    with the timestamp it comes from (`• Ada [00:12]: …`)."""

    def at(ms: int | None) -> str:
        return f" [{format_timestamp(ms, hours=hours)}]" if ms is not None else ""

    lines = []
    for point in summary.points:
        who = point.speaker or ""
        lead = (
            f"{who}{at(point.at)}: "
            if who
            else (f"{at(point.at).strip()} " if point.at is not None else "")
        )
        lines.append(f"• {lead}{point.text}")
    if summary.decisions:
        lines.append("Decisions")
        lines += [f"• {d.text}{at(d.at)}" for d in summary.decisions]
    if summary.action_items:
        lines.append("Action items")
        for item in summary.action_items:
            owner = f"{item.owner}: " if item.owner else ""
            due = f" (by {item.due})" if item.due else ""
            lines.append(f"• {owner}{item.task}{due}{at(item.at)}")
    return lines


def summary_failed(reason: str) -> str:
    return f"(Summary unavailable: {_one_line(reason) or 'no reason given'})"


def summary_section(
    lines: Sequence[str], summary: Outcome | None = None, *, hours: bool = False
) -> str:
    """The AI summary, or the one line saying why it is missing when one was asked for,
    then the speaker statistics `lines`."""
    from bot.summary import SummaryFailed  # the summary module imports this one

    parts = []
    if isinstance(summary, SummaryFailed):
        parts.append(f"Summary\n{summary_failed(summary.reason)}")
    elif summary is not None:
        parts.append("Summary\n" + "\n".join(summary_lines(summary, hours=hours)))
    if lines:
        parts.append("Speakers\n" + "\n".join(lines))
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered transcript in pieces, for adapters that format richly."""

    header: str
    duration: str | None  # "1:02:03"
    language: str | None  # "English"
    stats: tuple[SpeakerStats, ...]
    stats_lines: tuple[str, ...]
    #: the plain-text section under the header: the AI summary (or why there is none),
    #: then the speaker statistics
    summary: str
    transcript_lines: tuple[str, ...]
    line_separator: str  # "\n" between utterances, "\n\n" between paragraphs
    word_count: int
    #: the AI summary as data (None: none was made), and why it failed, if it did
    ai: Summary | None = None
    ai_failed: str | None = None
    #: one-line notes under the header (an unsure language, a redo, a vocabulary left out)
    notes: tuple[str, ...] = ()
    #: speaker label -> platform member id, for the labels that are members' names
    members: Mapping[str, str] = field(default_factory=dict)
    #: the language the lines are translated into (its name); None: as spoken
    translated: str | None = None
    #: the transcript as spoken, when the lines shown are a translation
    original_lines: tuple[str, ...] = ()
    #: timestamps carry hours (a recording past an hour)
    hours: bool = False

    @property
    def notes_text(self) -> str:
        return "\n".join(self.notes)

    #: small print under the transcript: what was redacted, the deletion receipt
    footer: tuple[str, ...] = ()

    @property
    def transcript_text(self) -> str:
        return self.line_separator.join(self.transcript_lines) or NO_SPEECH

    @property
    def original_text(self) -> str:
        """The whole rendering as spoken (a translated document's attached file)."""
        lines = self.original_lines or self.transcript_lines
        body = self.line_separator.join(lines) or NO_SPEECH
        parts = (self.header, self.notes_text, self.summary, body, self.footer_text)
        return "\n\n".join(p for p in parts if p)

    @property
    def footer_text(self) -> str:
        return "\n".join(self.footer)

    @property
    def text(self) -> str:
        parts = (self.header, self.notes_text, self.summary, self.transcript_text, self.footer_text)
        return "\n\n".join(p for p in parts if p)


def without_speech(transcript: Transcript) -> Transcript | None:
    """The empty transcript that AssemblyAI's "no spoken audio" error stands for, to render
    as NO_SPEECH like any silent recording; None for every other transcript."""
    if transcript.status is not TranscriptStatus.ERROR or not transcript.error:
        return None
    if _NO_SPOKEN_AUDIO not in transcript.error.lower():
        return None
    return replace(
        transcript, status=TranscriptStatus.COMPLETED, error=None, text="", words=(), utterances=()
    )


def render(
    transcript: Transcript,
    *,
    paragraphs: Sequence[Span] | None = None,
    summary: Outcome | None = None,
    transcribed_up_to: float | None = None,
    speakers: Speakers | None = None,
    translation: Translation | None = None,
    notes: Sequence[str] = (),
    footer: Sequence[str] = (),
) -> Document:
    """Render a completed transcript. `summary` is the AI summary (or why it failed), when
    one was asked for. `transcribed_up_to`: seconds of the recording transcribed, when a
    limit cut it short (the header then says "first 4:00:00 of 10:12:33"). `speakers`
    shows each speaker (names, renames); `translation` replaces the lines with their
    translation (the original stays in `original_lines`); `notes` are shown under the
    header, after the one about an unsure language. `footer`: small-print lines under it
    (what was redacted).

    A transcript without speech (AssemblyAI's `text` "" and no words, for silence or a
    tone) renders as the header and one NO_SPEECH line: no speaker section, and no AI
    summary, which could only be about nothing.
    """
    from bot.summary import SummaryFailed  # the summary module imports this one

    if transcript.status is not TranscriptStatus.COMPLETED:
        raise ValueError(f"cannot render a transcript that is {transcript.status}")
    stats = speaker_stats(transcript, speakers)
    lines = stats_lines(stats)
    hours = any(u.start >= 3_600_000 for u in transcript.utterances)
    if transcript.utterances:
        body, separator = utterance_lines(transcript.utterances, speakers), "\n"
    else:
        body, separator = paragraph_lines(transcript, paragraphs), "\n\n"
    original: tuple[str, ...] = ()
    translated = None
    if translation is not None and translation.utterances and body:
        original, translated = body, language_name(translation.language)
        body = utterance_lines(translation.utterances, speakers)
    elif translation is not None and translation.text and body:
        original, translated = body, language_name(translation.language)
        pieces = (p.strip() for p in chunks(translation.text, _PARAGRAPH_CHARS))
        body, separator = tuple(p for p in pieces if p), "\n\n"
    seconds = _duration_seconds(transcript)
    duration = format_duration(seconds) if seconds is not None else None
    if transcribed_up_to is not None and seconds is not None and seconds > transcribed_up_to:
        duration = f"first {format_duration(transcribed_up_to)} of {duration}"
    language = language_name(transcript.language_code)
    shown_language = language
    sure = transcript.language_confidence
    if language and sure is not None:
        shown_language = f"{language} ({round(sure * 100)}%)"
    if shown_language and translated:
        shown_language = f"{shown_language} → {translated}"
    if not body:
        summary = None  # an AI summary of nothing could only be made up
    if not stats:
        counted = None  # nobody to count; with no body either, the body says so, once
    elif stats[0].speaker is None:
        counted = "no speaker labels"
    else:
        counted = _plural(len(stats), "speaker")
    parts = ("Transcript", duration, shown_language, counted, transcript.speech_model_used)
    header = " · ".join(p for p in parts if p)
    all_notes = list(notes)
    if language and sure is not None and sure < LANGUAGE_DOUBT and body:
        all_notes.insert(0, language_unsure(language, sure))
    labels = [stat.label for stat in stats]
    ai = None if summary is None or isinstance(summary, SummaryFailed) else summary
    if ai is not None:
        labels += ai.speakers
    return Document(
        header=header,
        duration=duration,
        language=language,
        stats=stats,
        stats_lines=lines,
        summary=summary_section(lines, summary, hours=hours),
        transcript_lines=body,
        line_separator=separator,
        word_count=_word_count(transcript),
        ai=ai,
        ai_failed=summary.reason if isinstance(summary, SummaryFailed) else None,
        notes=tuple(all_notes),
        members=speakers.members(labels) if speakers is not None else {},
        translated=translated,
        original_lines=original,
        hours=hours,
        footer=tuple(footer),
    )


def language_unsure(language: str, confidence: float) -> str:
    return (
        f"Not sure this is {language} ({round(confidence * 100)}% sure): if it is not, "
        "redo it with the right language."
    )


def plain_text(transcript: Transcript, *, summary: Outcome | None = None) -> str:
    """The whole rendering as one text, for a terminal or a `.txt` file."""
    return render(transcript, summary=summary).text + "\n"


@dataclass(frozen=True, slots=True)
class RenderedFile:
    name: str
    content: str | bytes  # text (transcript.txt, subtitles) or bytes (redacted audio)
    mime: str

    @property
    def data(self) -> bytes:
        return self.content if isinstance(self.content, bytes) else self.content.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Rendered:
    inline: str  # the message text, at most `limit` characters
    files: tuple[RenderedFile, ...] = ()


def fit(
    document: Document, limit: int, *, srt: str | None = None, vtt: str | None = None
) -> Rendered:
    """The long-output ladder: everything inline if it fits; else header, summary and the
    first lines that fit, with the whole text in `transcript.txt`. Subtitles passed as
    `srt`/`vtt` are attached either way."""
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    subtitles = tuple(
        RenderedFile(f"transcript.{ext}", text, mime)
        for ext, text, mime in (("srt", srt, "application/x-subrip"), ("vtt", vtt, "text/vtt"))
        if text is not None
    )
    full = document.text
    if document.translated:
        # The result shows the translation; the transcript as spoken is attached.
        original = RenderedFile("transcript.txt", document.original_text + "\n", "text/plain")
        if len(full) <= limit:
            return Rendered(full, (original, *subtitles))
        name = f"transcript-{_slug(document.translated)}.txt"
        translated = RenderedFile(name, full + "\n", "text/plain")
        note = f"… full translation attached ({name}; the original in transcript.txt)"
        return Rendered(_preview(document, limit, note), (translated, original, *subtitles))
    if len(full) <= limit:
        return Rendered(full, subtitles)
    note = f"… full transcript attached ({_plural(document.word_count, 'word')})"
    attached = RenderedFile("transcript.txt", full + "\n", "text/plain")
    return Rendered(_preview(document, limit, note), (attached, *subtitles))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "translation"


# Closing quotes and brackets that may follow a sentence's full stop; CJK full stops.
_CLOSE = r"[\"'\u201d\u2019\u00bb)\]]*"
_CJK_END = r"[\u3002\uff01\uff1f]"
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_SENTENCE_END = re.compile(rf"[.!?\u2026]{_CLOSE}\s+")
_SPACE = re.compile(r"\s+")
_CJK_STOP = re.compile(r"[\u3001\u3002\uff01\uff0c\uff1b\uff1f]")
_SENTENCE = re.compile(rf".+?(?:[.!?\u2026]+{_CLOSE}(?=\s)|{_CJK_END}+|$)\s*", re.S)


def chunks(text: str, limit: int) -> tuple[str, ...]:
    """Split `text` into pieces of at most `limit` characters, losing nothing:
    `"".join(chunks(text, limit)) == text`.

    A piece ends after a blank line if one falls in its second half, else after a line
    break, a sentence, or any whitespace, in that order; whitespace stays with the piece
    before the break. Only a run of non-space characters longer than `limit` is cut inside,
    and then not inside a grapheme (accents, emoji sequences) where that can be helped.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    out = []
    pos = 0
    while len(text) - pos > limit:
        cut = _cut(text, pos, limit)
        out.append(text[pos : pos + cut])
        pos += cut
    if pos < len(text):
        out.append(text[pos:])
    return tuple(out)


def _cut(text: str, pos: int, limit: int) -> int:
    window = text[pos : pos + limit]
    half = max(1, limit // 2)  # a break this early would leave a run of tiny messages
    for pattern in (_PARAGRAPH_BREAK, _LINE_BREAK, _SENTENCE_END):
        if (end := _last_end(pattern, window)) >= half:
            return end
    end = limit if text[pos + limit].isspace() else _last_end(_SPACE, window)
    if end:
        return end
    # A single word longer than the limit: the one place a cut falls inside a word.
    if (end := _last_end(_CJK_STOP, window)) >= half:
        return end
    cut = limit
    while cut > 1 and _joins(text[pos + cut - 1], text[pos + cut]):
        cut -= 1
    return cut


def _last_end(pattern: re.Pattern[str], window: str) -> int:
    end = 0
    for match in pattern.finditer(window):
        end = match.end()
    return end


def _joins(before: str, after: str) -> bool:
    """Whether `before` and `after` belong to one grapheme (a cut between them shows badly)."""
    return (
        "\u200d" in (before, after)
        or unicodedata.category(after) in ("Mn", "Mc", "Me")
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin-tone modifiers
    )


def _clip(text: str, size: int) -> str:
    """`text` cut at a word boundary to at most `size` characters, ending in `…`."""
    if len(text) <= size:
        return text
    if size < 2:
        return "…"[:size]
    return chunks(text, size - 1)[0].rstrip() + "…"


def _preview(document: Document, limit: int, note: str) -> str:
    head = "\n\n".join(p for p in (document.header, document.notes_text, document.summary) if p)
    if document.footer:
        note = f"{note}\n\n{document.footer_text}"  # the small print is never cut off
    room = limit - len(head) - len(note) - 4  # two "\n\n" separators
    if room < 0:
        # Even header and summary overflow; the attachment holds them whole.
        head_room = limit - len(note) - 2
        return _clip(head, head_room) + "\n\n" + note if head_room >= 40 else _clip(note, limit)
    separator, used = document.line_separator, 0
    taken: list[str] = []
    for line in document.transcript_lines:
        cost = len(line) + (len(separator) if taken else 0)
        if used + cost > room:
            break
        taken.append(line)
        used += cost
    if not taken and document.transcript_lines and room >= 40:
        taken.append(_clip(document.transcript_lines[0], room))  # its start beats nothing
    body = separator.join(taken)
    return f"{head}\n\n{body}\n\n{note}" if body else f"{head}\n\n{note}"


def _percents(stats: Sequence[SpeakerStats]) -> list[int]:
    """Whole percentages that add up to exactly 100 (largest remainder), so the lines never
    show 99% or 101% in total."""
    raw = [s.share * 100 for s in stats]
    if not any(raw):
        return [0] * len(raw)
    out = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in by_remainder[: 100 - sum(out)]:
        out[i] += 1
    return out


def _utterance_words(utterance: Utterance) -> int:
    return len(utterance.words) or len(utterance.text.split())


def _word_count(transcript: Transcript) -> int:
    if transcript.words:
        return len(transcript.words)
    if transcript.utterances:
        return sum(_utterance_words(u) for u in transcript.utterances)
    return len((transcript.text or "").split())


def _duration_seconds(transcript: Transcript) -> float | None:
    if transcript.audio_duration is not None:
        return transcript.audio_duration
    ends = [w.end for w in transcript.words] + [u.end for u in transcript.utterances]
    return max(ends) / 1000 if ends else None


def _one_line(text: str) -> str:
    # One utterance, one line: the ladder and the adapters count on it.
    return " ".join(text.split())


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# -- redaction ----------------------------------------------------------------------------

#: How each PII policy is named to people, in the plural (the spec's `PiiPolicy`).
PII_WORDS = {
    "account_number": "account numbers",
    "banking_information": "bank details",
    "blood_type": "blood types",
    "credit_card_cvv": "card security codes",
    "credit_card_expiration": "card expiry dates",
    "credit_card_number": "card numbers",
    "date": "dates",
    "date_interval": "date ranges",
    "date_of_birth": "dates of birth",
    "drivers_license": "driving licence numbers",
    "drug": "medications",
    "duration": "durations",
    "email_address": "email addresses",
    "event": "events",
    "filename": "file names",
    "gender_sexuality": "gender and sexuality terms",
    "healthcare_number": "healthcare numbers",
    "injury": "injuries",
    "ip_address": "IP addresses",
    "language": "languages",
    "location": "addresses and places",
    "marital_status": "marital statuses",
    "medical_condition": "medical conditions",
    "medical_process": "medical procedures",
    "money_amount": "amounts of money",
    "nationality": "nationalities",
    "number_sequence": "number sequences",
    "occupation": "occupations",
    "organization": "organisations",
    "passport_number": "passport numbers",
    "password": "passwords",
    "person_age": "ages",
    "person_name": "names",
    "phone_number": "phone numbers",
    "physical_attribute": "physical attributes",
    "political_affiliation": "political affiliations",
    "religion": "religions",
    "statistics": "medical statistics",
    "time": "times",
    "url": "web addresses",
    "us_social_security_number": "social security numbers",
    "username": "user names",
    "vehicle_id": "vehicle ids",
    "zodiac_sign": "zodiac signs",
}
_ENTITY = re.compile(r"\[([A-Z_]+)\]")


def redaction_note(transcript: Transcript, policies: Sequence[str], substitution: str) -> str:
    """What the transcript had redacted, for its footer: with `entity_name` substitution
    each redacted word reads `[PHONE_NUMBER]`, so the redactions can be counted by kind
    (consecutive words of one kind count once); with `hash` they read `####` and only the
    kinds looked for can be named."""
    looked_for = ", ".join(PII_WORDS.get(p, p.replace("_", " ")) for p in policies)
    if substitution != "entity_name":
        return f"🔒 PII redaction on ({looked_for}): redacted text shows as ####"
    counts: dict[str, int] = {}
    wanted = {p.upper(): p for p in policies}
    previous = None
    for word in transcript.words or ():
        match = _ENTITY.search(word.text)
        kind = wanted.get(match.group(1)) if match else None
        if kind is not None and kind != previous:
            counts[kind] = counts.get(kind, 0) + 1
        previous = kind
    if not transcript.words:
        for match in _ENTITY.finditer(transcript.text or ""):
            kind = wanted.get(match.group(1))
            if kind is not None:
                counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return f"🔒 PII redaction on: nothing found to redact ({looked_for})"
    found = ", ".join(
        f"{PII_WORDS.get(kind, kind.replace('_', ' '))} ({n})"
        for kind, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    return f"🔒 PII redacted: {found}"


def with_footer(document: Document, line: str) -> Document:
    """`document` with one more small-print line (the deletion receipt)."""
    if line in document.footer:
        return document
    return replace(document, footer=(*document.footer, line))
