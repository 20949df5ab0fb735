"""The emulator's LLM Gateway answering a question about a transcript over HTTP: the
response as llm-gateway.yml describes it, the structured answer valid against the schema
asked for, quoting the line it rests on; the word search as openapi.yml describes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from bot.ask import SCHEMA, SCHEMA_NAME, question_messages
from bot.conversation import Line
from tests.helpers import openapi_schema
from tests.helpers.emulator_server import EmulatorServer

MODEL = "claude-sonnet-4-5-20250929"
LINES = (
    Line("Ada", 0, "Good morning. Shall we start with the kubernetes migration?"),
    Line("Grace", 4_000, "I will send the figures to the board by Friday."),
)


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.base_url, headers={"authorization": emulator.api_key}, timeout=10
    ) as client:
        yield client


def ask(api: httpx.Client, question: str, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": question_messages(LINES, question, [], model=model),
        "max_tokens": 800,
    } | extra
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    openapi_schema.validate("Response", answer, spec="llm-gateway")
    return answer


def test_a_structured_answer_quotes_the_line_it_rests_on(api: httpx.Client) -> None:
    structured = {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": SCHEMA, "strict": True},
    }
    answer = ask(api, "What will Grace send to the board?", response_format=structured)
    content = json.loads(answer["choices"][0]["message"]["content"])
    jsonschema.validate(content, SCHEMA)
    assert content == {
        "answer": "Grace said at 00:04: I will send the figures to the board by Friday.",
        "quotes": [
            {
                "speaker": "Grace",
                "at": "00:04",
                "text": "I will send the figures to the board by Friday.",
            }
        ],
    }
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0


def test_in_words_for_a_model_without_structured_output(api: httpx.Client) -> None:
    answer = ask(api, "what about the budget?", model="gpt-oss-120b")
    assert answer["choices"][0]["message"]["content"] == "The recording does not say."


def test_word_search_errors_as_the_spec_says(api: httpx.Client, emulator: EmulatorServer) -> None:
    # The live API answers an unknown id with 400 and its error body (emulator/store.py).
    missing = api.get("/v2/transcript/nope/word-search", params={"words": "board"})
    assert missing.status_code == 400
    assert set(missing.json()) == {"error"}
    openapi_schema.validate("Error", missing.json())
    unauthorised = httpx.get(
        f"{emulator.base_url}/v2/transcript/nope/word-search", params={"words": "board"}
    )
    assert unauthorised.status_code == 401
