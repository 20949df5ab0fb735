"""`POST /v1/chat/completions` of the LLM Gateway (llm-gateway.yml), answered offline.

Requests are checked the way the gateway's schema says (`model` required and known,
`messages` or `prompt`, `max_tokens` >= 1, `temperature` in 0..2). The answer is derived
from the prompt alone, so it is deterministic: lines such as `Speaker A: ...` become a
bullet summary that attributes each speaker's first points to them; other prompts get
their first sentences back as bullets. A `json_schema` response format gets a JSON
document of the requested shape. Streaming and tool calls are not emulated.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from typing import Any

from aiohttp import web

from bot.models import LLM_MODELS

from .errors import GatewayError

# Model ids the LLM Gateway serves: the bot's own list (bot/models.py).
MODELS = LLM_MODELS
ROLES = frozenset({"user", "assistant", "system", "tool"})
CHARS_PER_TOKEN = 4
POINTS_PER_SPEAKER = 2
_SPEAKER_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(Speaker\s+[\w-]+)\s*:\s*(\S.*)$", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


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


def _instance(schema: Any, text: str) -> Any:
    """A small JSON value of the given JSON Schema's shape, its strings taken from `text`."""
    if not isinstance(schema, dict):
        return text
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _instance(sub, text) for name, sub in props.items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), text)]
    return {"integer": 0, "number": 0, "boolean": False, "null": None}.get(str(kind), text)


async def chat_completions(request: web.Request) -> web.Response:
    started = time.monotonic_ns()
    request_id = str(uuid.uuid4())
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GatewayError(400, f"Invalid JSON body: {exc}", request_id) from exc
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object", request_id)
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

    prompt = "\n".join(text for role, text in messages if role in ("user", "system"))
    answer = summarize(prompt)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema", {})
        answer = json.dumps(_instance(schema, answer))
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
