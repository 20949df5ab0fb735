"""The LLM Gateway's chat completions: shape per llm-gateway.yml, deterministic answers,
structured output, and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.helpers import openapi_schema
from tests.helpers.emulator_server import EmulatorServer

MODEL = "claude-sonnet-4-5-20250929"
TRANSCRIPT = """Summarize this meeting as bullet points.

Speaker A: Good morning. Shall we start with the quarterly numbers?
Speaker B: Yes. Revenue is up twelve percent, and costs are flat.
Speaker A: Great news. What about the new office?
Speaker B: It opens in March, on time and under budget.
Speaker A: Then we are done. Thanks everyone.
"""


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.base_url, headers={"authorization": emulator.api_key}, timeout=10
    ) as client:
        yield client


def complete(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/chat/completions", json={"model": MODEL} | body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    openapi_schema.validate("Response", answer, spec="llm-gateway")
    return answer


def test_speaker_lines_become_an_attributed_summary(api: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You summarize meetings."},
        {"role": "user", "content": TRANSCRIPT},
    ]
    answer = complete(api, messages=messages, max_tokens=500, temperature=0.2)
    content = answer["choices"][0]["message"]["content"]
    assert content == (
        "- Speaker A: Good morning.\n"
        "- Speaker A: Great news.\n"
        "- Speaker B: Yes.\n"
        "- Speaker B: It opens in March, on time and under budget."
    )
    assert answer["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }
    assert answer["request"] == {"model": MODEL, "max_tokens": 500, "temperature": 0.2}
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert (
        complete(api, messages=messages, max_tokens=500, temperature=0.2)["choices"]
        == (answer["choices"])
    )


def test_a_plain_prompt_gets_its_first_sentences(api: httpx.Client) -> None:
    answer = complete(api, prompt="Write a haiku about coding. Keep it short. Be nice. Thanks.")
    assert answer["choices"][0]["message"]["content"] == (
        "- Write a haiku about coding.\n- Keep it short.\n- Be nice."
    )


def test_text_parts_are_read_like_strings(api: httpx.Client) -> None:
    parts = [{"type": "text", "text": TRANSCRIPT}]
    as_parts = complete(api, messages=[{"role": "user", "content": parts}])
    as_text = complete(api, messages=[{"role": "user", "content": TRANSCRIPT}])
    assert as_parts["choices"] == as_text["choices"]


def test_max_tokens_cuts_the_answer(api: httpx.Client) -> None:
    answer = complete(api, prompt=TRANSCRIPT, max_tokens=3)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"]) == 12


def test_json_schema_response_format(api: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "action_items": {"type": "array", "items": {"type": "string"}},
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "score": {"type": "number"},
        },
        "required": ["summary", "action_items", "sentiment", "score"],
        "additionalProperties": False,
    }
    answer = complete(
        api,
        messages=[{"role": "user", "content": TRANSCRIPT}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "notes", "schema": schema, "strict": True},
        },
    )
    document = json.loads(answer["choices"][0]["message"]["content"])
    jsonschema.validate(document, schema)
    assert document["summary"].startswith("- Speaker A: Good morning.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model is required"),
        (
            {"model": "gpt-0", "messages": [{"role": "user", "content": "hi"}]},
            "Model 'gpt-0' is not supported",
        ),
        ({"model": MODEL}, "Either messages or prompt is required"),
        ({"model": MODEL, "messages": []}, "messages must be a non-empty array"),
        (
            {"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]},
            "messages[0].role must be one of: assistant, system, tool, user",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content must be a string or text parts",
        ),
        (
            {"model": MODEL, "messages": [{"role": "tool", "content": "42"}]},
            "messages[0].tool_call_id is required for tool messages",
        ),
        ({"model": MODEL, "prompt": "hi", "max_tokens": 0}, "max_tokens must be an integer >= 1"),
        (
            {"model": MODEL, "prompt": "hi", "temperature": 2.5},
            "temperature must be a number between 0 and 2",
        ),
        (
            {"model": MODEL, "prompt": "hi", "stream": True},
            "stream is not supported by the emulator",
        ),
    ],
)
def test_bad_requests_get_the_error_envelope(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()
    openapi_schema.validate("ErrorResponse", error, spec="llm-gateway")
    assert error["error"] == {"code": 400, "message": message}
    assert error["message"] == message  # the flat form AssemblyAI's SDK reads


def test_the_gateway_needs_the_key(emulator: EmulatorServer) -> None:
    response = httpx.post(
        emulator.base_url + "/v1/chat/completions",
        json={"model": MODEL, "prompt": "hi"},
        headers={"authorization": "nope"},
    )
    assert response.status_code == 401
    openapi_schema.validate("ErrorResponse", response.json(), spec="llm-gateway")
    assert response.json()["error"]["message"] == (
        "Authentication error, API token missing/invalid"
    )
