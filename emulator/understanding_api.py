"""`POST /v1/understanding`: the LLM Gateway's Speech Understanding on a finished
transcript (llm-gateway.yml `UnderstandingRequest` and its three responses). The tasks
themselves are emulator/understanding.py's."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .errors import GatewayError
from .llm import json_object
from .runtime import EMULATOR
from .understanding import identify, parse_task, response, translations, utterances_json, words_json

# -- POST /v1/understanding ----------------------------------------------------------------


async def understanding(request: web.Request) -> web.Response:
    """The LLM Gateway's Speech Understanding on a finished transcript."""
    request_id = str(uuid.uuid4())
    body = await json_object(request, request_id)
    transcript_id = body.get("transcript_id")
    if not isinstance(transcript_id, str) or not transcript_id:
        raise GatewayError(400, "transcript_id is required", request_id)
    if "speech_understanding" not in body:
        raise GatewayError(400, "speech_understanding is required", request_id)
    emulator = request.app[EMULATOR]
    record = emulator.store.records.get(transcript_id)
    if record is None or record.deleted:
        raise GatewayError(404, f"Transcript {transcript_id} not found", request_id)
    if record.result is None or str(record.status) != "completed":
        raise GatewayError(
            400,
            f"Transcript {transcript_id} has a status of '{record.status}': it must be "
            "completed first",
            request_id,
        )
    task = parse_task(
        body["speech_understanding"],
        speaker_labels=record.request.speaker_labels,
        fail=GatewayError,
    )
    result = record.result
    known = dict(record.identified)
    echo = {"request": task.given["request"]}
    answer: dict[str, Any]
    if task.kind == "speaker_identification":
        mapping = identify(task, record.script, result)
        answer = {
            "speech_understanding": echo | {"response": response(task, mapping)},
            "utterances": utterances_json(result, mapping),
            "words": [words_json(w, mapping) for w in result.words],
        }
    elif task.kind == "translation":
        whole, each = translations(task, record.script, result)
        matched = bool(task.options.get("match_original_utterance"))
        answer = {
            "speech_understanding": echo | {"response": response(task)},
            "translated_texts": whole,
            "utterances": utterances_json(result, known, each if matched else None),
            "words": [],
        }
    else:
        formatting = response(task)["custom_formatting"] | {"formatted_text": result.text}
        answer = {
            "speech_understanding": echo | {"response": {"custom_formatting": formatting}},
            "utterances": utterances_json(result, known),
        }
    return web.json_response(answer)


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/understanding", understanding)]
