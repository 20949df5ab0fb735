"""`POST /v1/chat/completions` of the LLM Gateway (llm-gateway.yml), answered offline.

Requests are checked the way the gateway's schema says (`model` required and known,
`messages` or `prompt`, `max_tokens` >= 1, `temperature` in 0..2). The answer is derived
from the prompt alone, so it is deterministic: lines such as `Speaker A: ...` become a
bullet summary that attributes each speaker's first points to them; other prompts get
their first sentences back as bullets. A `json_schema` response format (refused for the
gpt-oss models, as the spec says) gets a JSON document valid against the requested
schema, its content taken from what the prompt says (`_instance`). Streaming and tool
calls are not emulated.

A question about a transcript (a user message opening with `Transcript:` and holding
`[mm:ss] Who: what` lines, later messages asking) is answered from that transcript alone:
the line sharing the most words with the last question (speaker names count; filler
words do not; the earliest wins a tie), else, for a follow-up with no words of its own
such as "by when?", the line sharing the most with the previous question and answer
(then the one before...), else "The recording does not say." The answer quotes that line
whole, with its speaker and timestamp (as the schema's `speaker`, `at` and `text`
properties where a schema is asked for), so tests can check that an answer is grounded
and that a follow-up was sent its history.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.models import LLM_MODELS, supports_structured_output

from .errors import GatewayError

# Model ids the LLM Gateway serves: the bot's own list (bot/models.py).
MODELS = LLM_MODELS
ROLES = frozenset({"user", "assistant", "system", "tool"})
CHARS_PER_TOKEN = 4
POINTS_PER_SPEAKER = 2
_SPEAKER_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(Speaker\s+[\w-]+)\s*:\s*(\S.*)$", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


NOT_SAID = "The recording does not say."
_WORDS = re.compile(r"[\w']+")
_FILLER = frozenset(
    "a an the and or but of to in on at for with about from by is are was were be been "
    "do does did what who whom whose when where why how which that this these those it "
    "its he she they we you i me my our your their them his her us said say says tell "
    "there here any some not no yes".split()
)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "\n".join(p["text"] for p in content)
    return None


def _messages(body: dict[str, Any], request_id: str) -> list[tuple[str, str]]:
    def bad(message: str) -> GatewayError:
        return GatewayError(400, message, request_id)

    raw = body.get("messages")
    prompt = body.get("prompt")
    if raw is None and prompt is None:
        raise bad("Either messages or prompt is required")
    if prompt is not None and not isinstance(prompt, str):
        raise bad("prompt must be a string")
    messages: list[tuple[str, str]] = []
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise bad("messages must be a non-empty array")
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or item.get("role") not in ROLES:
                raise bad(f"messages[{index}].role must be one of: {', '.join(sorted(ROLES))}")
            text = _content_text(item.get("content"))
            if text is None:
                raise bad(f"messages[{index}].content must be a string or text parts")
            if item["role"] == "tool" and not isinstance(item.get("tool_call_id"), str):
                raise bad(f"messages[{index}].tool_call_id is required for tool messages")
            messages.append((item["role"], text))
    if prompt is not None:
        messages.append(("user", prompt))
    return messages


def summarize(text: str) -> str:
    """A bullet summary: each speaker's first points, or the text's first sentences."""
    points: dict[str, list[str]] = {}
    for speaker, said in _SPEAKER_LINE.findall(text):
        first = _SENTENCE.split(said.strip())[0]
        bucket = points.setdefault(speaker, [])
        if len(bucket) < POINTS_PER_SPEAKER:
            bucket.append(first)
    if points:
        return "\n".join(
            f"- {speaker}: {point}" for speaker, said in points.items() for point in said
        )
    sentences = [s for s in _SENTENCE.split(" ".join(text.split())) if s][:3]
    return "\n".join(f"- {s}" for s in sentences) or "- (empty prompt)"


@dataclass(frozen=True, slots=True)
class _Fact:
    """One thing said, as the prompt shows it: who, when (`mm:ss`), what."""

    who: str | None
    at: str | None
    text: str
    #: "decision" or "action item", for notes that say what a line is
    tag: str | None = None
    #: everything said on the line (`text` is its first sentence)
    full: str = ""


_TIMED_LINE = re.compile(
    r"^\s*(?:[-•*]\s*)?\[(?P<at>\d{1,2}(?::\d\d){1,2})\]\s*(?P<who>[^:\n\[\]]{1,60}?)\s*:\s*(?P<text>\S.*)$",
    re.M,
)
_TAG = re.compile(r"^(?P<who>.*?)\s*\((?P<tag>decision|action item)\)$", re.I)
_DECISION = re.compile(r"\b(decid\w*|agree\w*|approv\w*|go with|settled)\b", re.I)
_ACTION = re.compile(r"\b(will|i'll|we'll|you'll|going to|need to|has to|must|todo)\b", re.I)
_WHO = frozenset({"speaker", "owner", "who", "name", "person", "assignee"})
_WHEN = frozenset({"at", "timestamp", "time", "start", "when_said", "said_at"})
_DUE = frozenset({"due", "deadline", "when", "by"})


def _facts(text: str) -> list[_Fact]:
    """Lines `[mm:ss] Who: what` (a transcript, or notes made of one), else the speaker
    lines `Speaker A: what`, else the text's sentences."""
    facts = []
    for match in _TIMED_LINE.finditer(text):
        who, tag = match["who"].strip(), None
        tagged = _TAG.match(who)
        if tagged is not None:
            who, tag = tagged["who"].strip(), tagged["tag"].lower()
        said = " ".join(match["text"].split())
        facts.append(_Fact(who, match["at"], _SENTENCE.split(said)[0], tag, said))
    if facts:
        return facts
    facts = [
        _Fact(who, None, _SENTENCE.split(said.strip())[0])
        for who, said in _SPEAKER_LINE.findall(text)
    ]
    if facts:
        return facts
    return [_Fact(None, None, s) for s in _SENTENCE.split(" ".join(text.split())) if s]


def _chosen(name: str, facts: list[_Fact]) -> list[_Fact]:
    """The facts an array property named `name` is about: those notes tag as such, else
    those that read like one (a decision, an action item), else all."""
    key = name.lower()
    if any(f.tag for f in facts):
        if "decision" in key:
            return [f for f in facts if f.tag == "decision"]
        if "action" in key or "task" in key or "todo" in key:
            return [f for f in facts if f.tag == "action item"]
        return [f for f in facts if f.tag is None]
    if "decision" in key:
        return _sentences(facts, lambda s: bool(_DECISION.search(s)))
    if "action" in key or "task" in key or "todo" in key:
        return _sentences(facts, lambda s: bool(_ACTION.search(s) and not _DECISION.search(s)))
    return facts


def _sentences(facts: list[_Fact], wanted: Callable[[str], bool]) -> list[_Fact]:
    """Each sentence said that `wanted` picks, as a fact of its own."""
    out = []
    for fact in facts:
        for sentence in _SENTENCE.split(fact.full or fact.text):
            if sentence and wanted(sentence):
                out.append(_Fact(fact.who, fact.at, sentence, fact.tag, sentence))
    return out


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if kind is None:
        return ["object"] if "properties" in schema else ["string"]
    return [str(kind)]


def _instance(schema: Any, text: str, facts: list[_Fact] | None = None) -> Any:
    """A JSON value of the given JSON Schema's shape, valid against it (types, required
    and additional properties, enums, item counts), its content taken from the prompt:
    arrays hold one item per thing said (decisions and action items where the property
    says so), a property named like `speaker` or `owner` names who said it, `at` when,
    `due` is null (nobody said), other strings are what was said."""
    facts = _facts(text) if facts is None else facts
    return _value(schema, "", text, facts, None)


def _value(schema: Any, name: str, text: str, facts: list[_Fact], fact: _Fact | None) -> Any:
    if not isinstance(schema, dict):
        return text
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    types = _types(schema)
    key = name.lower()
    nullable = "null" in types
    kind = next((t for t in types if t != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {prop: _value(sub, prop, text, facts, fact) for prop, sub in props.items()}
    if kind == "array":
        items = schema.get("items", {})
        chosen = list(_chosen(name, facts))
        high = schema.get("maxItems")
        chosen = chosen[:high] if isinstance(high, int) else chosen
        low = schema.get("minItems", 0)
        while len(chosen) < low:
            chosen.append(facts[len(chosen) % len(facts)] if facts else _Fact(None, None, text))
        return [_value(items, "", text, facts, f) for f in chosen]
    if kind == "string":
        if key in _DUE and nullable:
            return None
        if fact is None:  # not about one thing said: the whole answer
            return None if nullable and (key in _WHO or key in _WHEN) else text
        if key in _WHO:
            return fact.who if fact.who is not None or nullable else ""
        if key in _WHEN:
            return fact.at if fact.at is not None or nullable else "00:00"
        return fact.text
    if nullable and kind == "null":
        return None
    return {"integer": 0, "number": 0, "boolean": False, "null": None}.get(kind, text)


def _content_words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _FILLER}


def _question(messages: list[tuple[str, str]]) -> tuple[str, list[_Fact]] | None:
    """A question about a transcript, answered: the answer, and the line it quotes (none
    when the transcript does not say). None when the request is not one."""
    opening = next(
        (
            i
            for i, (role, text) in enumerate(messages)
            if role == "user" and text.lstrip().startswith("Transcript:")
        ),
        None,
    )
    if opening is None or opening == len(messages) - 1 or messages[-1][0] != "user":
        return None
    lines = [_Fact(f.who, f.at, f.full, None, f.full) for f in _facts(messages[opening][1]) if f.at]
    if not lines:
        return NOT_SAID, []
    # A follow-up goes by the conversation, its latest exchange first.
    earlier = [text for _role, text in messages[opening + 1 : -1]]
    exchanges = [" ".join(earlier[i : i + 2]) for i in range(0, len(earlier), 2)]
    asked = _content_words(messages[-1][1])
    for said in (messages[-1][1], *(() if asked else reversed(exchanges))):
        words = _content_words(said)
        scores = [len(words & _content_words(f"{f.who} {f.full}")) for f in lines]
        best = max(scores)
        if best > 0:
            line = lines[scores.index(best)]
            return f"{line.who} said at {line.at}: {line.full}", [line]
    return NOT_SAID, []


def _response_format(value: Any, model: str, request_id: str) -> dict[str, Any] | None:
    """The JSON schema asked for, checked as llm-gateway.yml's `ResponseFormat` says."""
    if value is None:
        return None

    def bad(message: str) -> GatewayError:
        return GatewayError(400, message, request_id)

    if not isinstance(value, dict) or value.get("type") != "json_schema":
        raise bad("response_format.type must be json_schema")
    config = value.get("json_schema")
    if not isinstance(config, dict):
        raise bad("response_format.json_schema is required")
    if not isinstance(config.get("name"), str) or not config["name"]:
        raise bad("response_format.json_schema.name is required")
    if not isinstance(config.get("schema"), dict):
        raise bad("response_format.json_schema.schema must be an object")
    if "strict" in config and not isinstance(config["strict"], bool):
        raise bad("response_format.json_schema.strict must be a boolean")
    if not supports_structured_output(model):
        raise bad(f"response_format is not supported by model '{model}'")
    schema: dict[str, Any] = config["schema"]
    return schema


async def json_object(request: web.Request, request_id: str) -> dict[str, Any]:
    """The request's body, which the gateway requires to be one JSON object."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GatewayError(400, f"Invalid JSON body: {exc}", request_id) from exc
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object", request_id)
    return body


async def chat_completions(request: web.Request) -> web.Response:
    started = time.monotonic_ns()
    request_id = str(uuid.uuid4())
    body = await json_object(request, request_id)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "model is required", request_id)
    if model not in MODELS:
        raise GatewayError(400, f"Model '{model}' is not supported", request_id)
    messages = _messages(body, request_id)
    max_tokens = body.get("max_tokens", 1000)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise GatewayError(400, "max_tokens must be an integer >= 1", request_id)
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float)
        or isinstance(temperature, bool)
        or not 0 <= temperature <= 2
    ):
        raise GatewayError(400, "temperature must be a number between 0 and 2", request_id)
    if body.get("stream") is True:
        raise GatewayError(400, "stream is not supported by the emulator", request_id)

    schema = _response_format(body.get("response_format"), model, request_id)
    asked = _question(messages)
    if asked is not None:
        said, grounds = asked
        answer = json.dumps(_instance(schema, said, grounds)) if schema is not None else said
    else:
        prompt = "\n".join(text for role, text in messages if role in ("user", "system"))
        answer = summarize(prompt)
        if schema is not None:
            user = "\n".join(text for role, text in messages if role == "user")
            answer = json.dumps(_instance(schema, answer, _facts(user)))
    finish = "stop"
    if _tokens(answer) > max_tokens:
        answer, finish = answer[: max_tokens * CHARS_PER_TOKEN], "length"
    usage_in = sum(_tokens(text) for _, text in messages)
    usage_out = _tokens(answer)
    echo = {
        k: body[k]
        for k in ("model", "max_tokens", "temperature", "tools", "tool_choice")
        if k in body
    }
    return web.json_response(
        {
            "request_id": request_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": finish,
                }
            ],
            "request": echo | {"max_tokens": max_tokens},
            "usage": {
                "input_tokens": usage_in,
                "output_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
                "prompt_tokens": usage_in,
                "completion_tokens": usage_out,
            },
            "http_status_code": 200,
            "response_time": time.monotonic_ns() - started,
            "llm_status_code": 200,
        }
    )


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/chat/completions", chat_completions)]
