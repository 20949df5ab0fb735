"""A transcript as the lines of a conversation (who, when, what): the one place that
turns a transcript into text for a language model.

    lines = conversation.lines(transcript, speakers)   # Line("Ada", 12_000, "Shall we…")
    conversation.as_text(lines)                        # "[00:12] Ada: Shall we…"
    conversation.parts(lines, max_chars=48_000)        # consecutive parts, nothing lost

The summary and questions asked in the thread use it, and `complete_uncut` to ask the
model. Timestamps are those the result shows (`render.format_timestamp`), so what a model
cites can be found there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bot.models import supports_structured_output
from bot.render import chunks, format_timestamp, paragraph_lines
from bot.speakers import Speakers
from bot.transcript import Transcript

if TYPE_CHECKING:
    from bot.assemblyai import AssemblyAIClient, ChatAnswer

_TIMESTAMP = re.compile(r"^\s*\[?(\d{1,2}(?::\d{2}){1,2})\]?\s*$")


@dataclass(frozen=True, slots=True)
class Line:
    """One turn: who (as shown; None without speaker labels), when (ms), what."""

    speaker: str | None
    start: int
    text: str

    def as_text(self, *, hours: bool = False) -> str:
        at = format_timestamp(self.start, hours=hours)
        who = f"{self.speaker}: " if self.speaker else ""
        return f"[{at}] {who}{self.text}"


def lines(transcript: Transcript, speakers: Speakers | None = None) -> tuple[Line, ...]:
    """The transcript's turns, each speaker shown as `speakers` shows them; without
    speaker labels, its paragraphs (timed by their first word)."""
    shown = speakers or Speakers.of(transcript)
    if transcript.utterances:
        return tuple(
            Line(shown.label(u.speaker), u.start, " ".join(u.text.split()))
            for u in transcript.utterances
            if u.text.strip()
        )
    out: list[Line] = []
    words = list(transcript.words)
    position = 0
    for paragraph in paragraph_lines(transcript):
        start = words[position].start if position < len(words) else 0
        out.append(Line(None, start, paragraph))
        position += len(paragraph.split())
    return tuple(out)


def as_text(lines: Sequence[Line]) -> str:
    hours = any(line.start >= 3_600_000 for line in lines)
    return "\n".join(line.as_text(hours=hours) for line in lines)


#: Transcript characters per LLM Gateway request (a summary's part, a question's part):
#: about 12,000 tokens, well within every gateway model's context, with room for the
#: instructions and the answer.
PART_CHARS: Final = 48_000


def parts(lines: Sequence[Line], max_chars: int) -> list[tuple[Line, ...]]:
    """`lines` in consecutive parts of at most `max_chars` characters of text each (a
    line alone longer than that is split at sentences or words): every line is in exactly
    one part, in order, so a part-by-part summary leaves nothing out."""
    if max_chars < 100:
        raise ValueError(f"max_chars={max_chars} is too small for a part")
    hours = any(line.start >= 3_600_000 for line in lines)
    out: list[tuple[Line, ...]] = []
    current: list[Line] = []
    used = 0
    for line in lines:
        for piece in _pieces(line, max_chars, hours):
            cost = len(piece.as_text(hours=hours)) + 1
            if current and used + cost > max_chars:
                out.append(tuple(current))
                current, used = [], 0
            current.append(piece)
            used += cost
    if current:
        out.append(tuple(current))
    return out


def _pieces(line: Line, max_chars: int, hours: bool) -> list[Line]:
    room = max_chars - len(line.as_text(hours=hours)) + len(line.text) - 1
    if len(line.text) <= room:
        return [line]
    return [Line(line.speaker, line.start, chunk.strip()) for chunk in chunks(line.text, room)]


def parse_timestamp(value: object) -> int | None:
    """`"04:05"` or `"1:02:03"` (with or without brackets) -> milliseconds; None for
    anything else (a model may answer a timestamp that is not one)."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    numbers = [int(n) for n in match.group(1).split(":")]
    if any(n >= 60 for n in numbers[1:]):
        return None
    seconds = 0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds * 1000


async def complete_uncut(
    client: AssemblyAIClient,
    messages: Sequence[Mapping[str, str]],
    *,
    model: str,
    tokens: Sequence[int],
    schema: Mapping[str, Any],
    schema_name: str,
    attempts: int,
) -> ChatAnswer | None:
    """The model's answer, as structured output where `model` takes it, asked for with
    each limit of `tokens` in turn until one is not cut; None when every one was."""
    structured = schema if supports_structured_output(model) else None
    for limit in tokens:
        answer = await client.complete(
            messages,
            model=model,
            max_tokens=limit,
            schema=structured,
            schema_name=schema_name,
            attempts=attempts,
        )
        if not answer.cut:
            return answer
    return None
