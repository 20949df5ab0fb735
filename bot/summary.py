"""The AI summary: at most six points attributed to the speakers, then the decisions and
the action items (owner, what, when if said), each with the timestamp it comes from.

It is asked of the LLM Gateway as structured output (`response_format` with `SCHEMA`,
where the model takes it; in words otherwise) and checked here, so what reaches a chat
thread is always our own rendering, never the model's formatting. A recording too long
for one request is summarised in parts (`conversation.parts`, nothing left out), and the
parts' notes are then combined into one summary. `max_tokens` is set on every call; an
answer the model had to cut is asked for again with more room, once, and otherwise the
summary fails: it is never shown cut. Whatever goes wrong, the outcome is a
`SummaryFailed` with one line saying why (the gateway's own message, where it gave one),
and the transcript is delivered all the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.assemblyai import AssemblyAIClient
from bot.conversation import PART_CHARS, Line, as_text, complete_uncut, parse_timestamp, parts
from bot.errors import AssemblyAIError, RequestTimeout
from bot.models import supports_structured_output
from bot.render import format_timestamp

log = logging.getLogger(__name__)

MAX_POINTS: Final = 6
#: Parts at most: ten hours of speech (AssemblyAI's longest audio) is about nine.
MAX_PARTS: Final = 12
#: Tokens the model may answer with; an answer cut at that is asked for once more with
#: room up to CUT_RETRY_TOKENS.
MAX_TOKENS: Final = 1_500
CUT_RETRY_TOKENS: Final = 4_000
#: Tries per gateway call (the client's backoff between them): a slow or failing gateway
#: must not hold the transcript back for long.
ATTEMPTS: Final = 2

_NULLABLE_STRING: Final = {"type": ["string", "null"]}
SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "speaker": _NULLABLE_STRING,
                    "text": {"type": "string"},
                    "at": _NULLABLE_STRING,
                },
                "required": ["speaker", "text", "at"],
                "additionalProperties": False,
            },
        },
        "decisions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "at": _NULLABLE_STRING},
                "required": ["text", "at"],
                "additionalProperties": False,
            },
        },
        "action_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "owner": _NULLABLE_STRING,
                    "task": {"type": "string"},
                    "due": _NULLABLE_STRING,
                    "at": _NULLABLE_STRING,
                },
                "required": ["owner", "task", "due", "at"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["points", "decisions", "action_items"],
    "additionalProperties": False,
}
SCHEMA_NAME: Final = "meeting_summary"


# -- what a summary is -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    speaker: str | None  # as the transcript shows them; None: not attributed
    text: str
    at: int | None  # ms into the recording


@dataclass(frozen=True, slots=True)
class Decision:
    text: str
    at: int | None


@dataclass(frozen=True, slots=True)
class ActionItem:
    owner: str | None
    task: str
    due: str | None  # as said ("by Friday"); None when nobody said
    at: int | None


@dataclass(frozen=True, slots=True)
class Summary:
    points: tuple[Point, ...]
    decisions: tuple[Decision, ...] = ()
    action_items: tuple[ActionItem, ...] = ()
    #: how many parts it was made from (1: the whole recording at once)
    parts: int = 1

    @property
    def speakers(self) -> list[str]:
        """Everyone it names (points' speakers, action items' owners), once each."""
        named = [p.speaker for p in self.points] + [a.owner for a in self.action_items]
        return list(dict.fromkeys(n for n in named if n))


@dataclass(frozen=True, slots=True)
class SummaryFailed:
    """No summary, and why (one line, for the thread)."""

    reason: str


Outcome = Summary | SummaryFailed


class _Unusable(ValueError):
    """The model answered something that is not the summary asked for."""


# -- asking for it -----------------------------------------------------------------------

_SYSTEM: Final = (
    "You summarise recorded conversations for a chat thread. Use only what the transcript "
    "says; never invent names, numbers, decisions or deadlines. Answer with one JSON object "
    "and nothing else."
)


def _fields(language: str | None, labelled: bool) -> str:
    who = (
        "the speaker it comes from, exactly as the transcript labels them (for example "
        '"Ada" or "Speaker A")'
        if labelled
        else "null as the speaker (the transcript has no speaker labels)"
    )
    written = f" Write the texts in {language}." if language else ""
    return (
        f'"points": at most {MAX_POINTS} short points, most important first, each with {who} '
        'and "at", the [mm:ss] timestamp of the line it comes from. '
        '"decisions": what was decided, each with "at". '
        '"action_items": who will do what: "owner" as labelled (null if nobody was named), '
        '"task", "due" only if a time was said (else null), and "at". '
        f"Leave a list empty when there is nothing for it.{written}"
    )


def _shape(model: str) -> str:
    if supports_structured_output(model):
        return ""
    return "\n\nThe JSON object must follow this JSON Schema:\n" + json.dumps(SCHEMA)


def part_messages(
    part: Sequence[Line],
    *,
    model: str,
    index: int = 1,
    total: int = 1,
    language: str | None = None,
) -> list[dict[str, str]]:
    """The request for one part (the whole recording when `total` is 1)."""
    labelled = any(line.speaker for line in part)
    where = "" if total == 1 else f" This is part {index} of {total} of one conversation."
    ask = f"Summarise this conversation as JSON.{where} {_fields(language, labelled)}"
    user = f"{ask}{_shape(model)}\n\nTranscript:\n{as_text(part)}"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def notes_text(summaries: Sequence[Summary]) -> str:
    """Part summaries as timed lines, in order: what the combining request reads."""
    moments = [
        at
        for s in summaries
        for at in (
            *(p.at for p in s.points),
            *(d.at for d in s.decisions),
            *(a.at for a in s.action_items),
        )
        if at is not None
    ]
    hours = any(at >= 3_600_000 for at in moments)

    def at(ms: int | None) -> str:
        return f"[{format_timestamp(ms, hours=hours)}] " if ms is not None else ""

    blocks = []
    for number, summary in enumerate(summaries, 1):
        lines = [f"Part {number}:"]
        lines += [f"{at(p.at)}{p.speaker or 'Unattributed'}: {p.text}" for p in summary.points]
        lines += [f"{at(d.at)}Decision (decision): {d.text}" for d in summary.decisions]
        for item in summary.action_items:
            due = f" (due {item.due})" if item.due else ""
            lines.append(f"{at(item.at)}{item.owner or 'Someone'} (action item): {item.task}{due}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def combine_messages(
    summaries: Sequence[Summary], *, model: str, language: str | None = None
) -> list[dict[str, str]]:
    labelled = any(s.speakers for s in summaries)
    ask = (
        "These are notes on the consecutive parts of one conversation, with the timestamps "
        "they come from. Combine them into one summary of the whole conversation as JSON. "
        "Keep every decision and action item, merging only true duplicates, with their "
        f"timestamps. {_fields(language, labelled)}"
    )
    user = f"{ask}{_shape(model)}\n\nNotes:\n{notes_text(summaries)}"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


async def summarise(
    client: AssemblyAIClient,
    lines: Sequence[Line],
    *,
    model: str,
    language: str | None = None,
    part_chars: int = PART_CHARS,
    max_parts: int = MAX_PARTS,
) -> Outcome:
    """The summary of a conversation, or why there is none. `language`: the language to
    write it in (a translated result), by name; None: the conversation's own."""
    if not lines:
        return SummaryFailed("there is no speech to summarise")
    pieces = parts(lines, part_chars)
    if len(pieces) > max_parts:
        # Said, never cut short in silence: this many parts would cost more than allowed.
        return SummaryFailed(
            f"the recording is too long to summarise ({len(pieces)} parts; at most {max_parts})"
        )
    try:
        found = []
        for index, piece in enumerate(pieces, 1):
            messages = part_messages(
                piece, model=model, index=index, total=len(pieces), language=language
            )
            found.append(await _ask(client, messages, model))
        if len(found) == 1:
            return found[0]
        combined = await _ask(
            client, combine_messages(found, model=model, language=language), model
        )
        return Summary(combined.points, combined.decisions, combined.action_items, len(found))
    except RequestTimeout:
        return SummaryFailed("the LLM Gateway did not answer in time")
    except AssemblyAIError as exc:
        log.warning("AI summary unavailable: %s", exc.message)
        return SummaryFailed(exc.message)
    except _Unusable as exc:
        log.warning("AI summary unusable: %s", exc)
        return SummaryFailed(str(exc))


async def _ask(client: AssemblyAIClient, messages: list[dict[str, str]], model: str) -> Summary:
    answer = await complete_uncut(
        client,
        messages,
        model=model,
        tokens=(MAX_TOKENS, CUT_RETRY_TOKENS),
        schema=SCHEMA,
        schema_name=SCHEMA_NAME,
        attempts=ATTEMPTS,
    )
    if answer is None:
        raise _Unusable(
            f"the model's answer did not fit in {CUT_RETRY_TOKENS:,} tokens, so no summary is shown"
        )
    return parse(answer.content)


def parse(content: str) -> Summary:
    """The model's JSON as a `Summary`; `_Unusable` when it is not what was asked for."""
    text = content.strip()
    if text.startswith("```"):  # a model answering in words may fence its JSON
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise _Unusable("the model did not answer with the summary asked for") from None
    if not isinstance(data, dict):
        raise _Unusable("the model did not answer with the summary asked for")
    points = tuple(
        Point(_name(item.get("speaker")), _text(item, "text"), parse_timestamp(item.get("at")))
        for item in _items(data, "points")
    )[:MAX_POINTS]
    decisions = tuple(
        Decision(_text(item, "text"), parse_timestamp(item.get("at")))
        for item in _items(data, "decisions")
    )
    actions = tuple(
        ActionItem(
            _name(item.get("owner")),
            _text(item, "task"),
            _name(item.get("due")),
            parse_timestamp(item.get("at")),
        )
        for item in _items(data, "action_items")
    )
    if not (points or decisions or actions):
        raise _Unusable("the model's summary was empty")
    return Summary(points, decisions, actions)


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _Unusable(f"the model's summary has no usable {key.replace('_', ' ')}")
    return [item for item in value if _text(item, "task" if key == "action_items" else "text")]


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return " ".join(value.split()) if isinstance(value, str) else ""


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if name and name.lower() not in ("null", "none", "n/a", "unknown") else None
