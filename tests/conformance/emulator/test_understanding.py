"""The emulator's Speech Understanding and vocabulary, over real sockets: speaker
identification and translation on `POST /v2/transcript` and on the gateway's
`POST /v1/understanding`, `keyterms_prompt`, `prompt` and `custom_spelling` with
AssemblyAI's limits, `language_confidence`, and structured summaries. Every answer is
checked against the published schemas (openapi.yml, llm-gateway.yml)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from bot import summary
from tests.helpers import openapi_schema
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer, wait_done
from tests.helpers.meeting import write_meeting

MODELS = ["assemblyai-stt-3-7", "universal-2"]
MODEL = "claude-sonnet-4-5-20250929"
NAMES = {"A": "Ada Lovelace", "B": "Grace Hopper"}


@pytest.fixture
def meeting(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    sample = audio_library.dialogue("wav")  # spoken once a session; its script is ours
    write_meeting(emulator.scripts_dir, sample, NAMES)
    return sample


async def upload(api: httpx.AsyncClient, sample: AudioSample) -> str:
    response = await api.post("/v2/upload", content=sample.path.read_bytes())
    assert response.status_code == 200, response.text
    return str(response.json()["upload_url"])


async def transcribe(api: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    body = {"audio_url": url, "speech_models": MODELS, "speaker_labels": True} | params
    response = await api.post("/v2/transcript", json=body)
    assert response.status_code == 200, response.text
    openapi_schema.validate("Transcript", response.json())
    return await wait_done(api, response.json()["id"])


async def refused(api: httpx.AsyncClient, **params: Any) -> str:
    body = {"audio_url": "https://example.com/a.mp3", "speech_models": MODELS} | params
    response = await api.post("/v2/transcript", json=body)
    assert response.status_code == 400, response.text
    openapi_schema.validate("Error", response.json())
    return str(response.json()["error"])


def identify(names: list[str], **more: Any) -> dict[str, Any]:
    return {
        "request": {
            "speaker_identification": {"speaker_type": "name", "known_values": names, **more}
        }
    }


# -- speaker identification -----------------------------------------------------------------


async def test_speakers_the_script_names_are_mapped_to_the_names_offered(
    api: httpx.AsyncClient, meeting: AudioSample
) -> None:
    done = await transcribe(
        api, await upload(api, meeting), speech_understanding=identify(["ada lovelace", "Alan"])
    )

    understanding = done["speech_understanding"]
    assert understanding["request"] == identify(["ada lovelace", "Alan"])["request"]
    assert understanding["response"] == {
        "speaker_identification": {"mapping": {"A": "ada lovelace"}, "status": "success"}
    }
    speakers = [u["speaker"] for u in done["utterances"]]
    assert speakers == ["ada lovelace", "B", "ada lovelace", "B"]  # as offered; B unnamed
    assert {w["speaker"] for w in done["words"]} == {"ada lovelace", "B"}


@pytest.mark.parametrize(
    ("understanding", "labels", "message"),
    [
        (
            identify([f"Person {i}" for i in range(36)]),
            True,
            "at most 35 speakers may be given, not 36",
        ),
        (identify(["A" * 36]), True, "each value must be 35 characters or less"),
        (
            identify(["Ada"], speakers=[{"name": "Ada"}]),
            True,
            "use known_values or speakers, not both",
        ),
        (identify(["Ada"]), False, "speaker_identification requires speaker_labels to be enabled"),
        (
            {
                "request": {
                    "speaker_identification": {"speaker_type": "boss", "known_values": ["x"]}
                }
            },
            True,
            "speaker_type must be one of: name, role",
        ),
        (
            {"request": {"speaker_identification": {"speaker_type": "role"}}},
            True,
            "known_values is required when speaker_type is role",
        ),
        (
            {
                "request": {
                    "speaker_identification": {"speaker_type": "name", "known_values": ["Ada"]},
                    "translation": {"target_languages": ["es"]},
                }
            },
            True,
            "exactly one of translation, speaker_identification or custom_formatting",
        ),
        (
            {"request": {"translation": {"target_languages": ["tt"]}}},
            True,
            "translation to 'tt' is not supported",
        ),
        ({"request": {"translation": {}}}, True, "target_languages must be a non-empty Array"),
        ({"oops": 1}, True, "speech_understanding.request must be an Object"),
    ],
)
async def test_out_of_spec_understanding_requests_get_400(
    api: httpx.AsyncClient, understanding: dict[str, Any], labels: bool, message: str
) -> None:
    error = await refused(api, speaker_labels=labels, speech_understanding=understanding)
    assert message in error


async def test_translation_on_submit_answers_each_utterance(
    api: httpx.AsyncClient, meeting: AudioSample
) -> None:
    request = {
        "request": {
            "translation": {"target_languages": ["es", "de"], "match_original_utterance": True}
        }
    }
    done = await transcribe(api, await upload(api, meeting), speech_understanding=request)

    assert done["speech_understanding"]["response"] == {"translation": {"status": "success"}}
    first = done["utterances"][0]
    assert first["translated_texts"]["es"] == "Buenos días. ¿Empezamos?"  # the script's
    assert first["translated_texts"]["de"].startswith("[de] Good morning.")  # deterministic
    assert done["translated_texts"]["es"].startswith("Buenos días. ¿Empezamos? Sí. Está listo.")


# -- the gateway's /v1/understanding -------------------------------------------------------


async def test_understanding_on_a_finished_transcript(
    api: httpx.AsyncClient, meeting: AudioSample
) -> None:
    done = await transcribe(api, await upload(api, meeting))
    body = {
        "transcript_id": done["id"],
        "speech_understanding": {
            "request": {
                "translation": {"target_languages": ["es"], "match_original_utterance": True}
            }
        },
    }
    response = await api.post("/v1/understanding", json=body)
    assert response.status_code == 200, response.text
    translated = response.json()
    openapi_schema.validate("LLMGatewayTranslationResponse", translated, spec="llm-gateway")
    assert [u["translated_texts"]["es"] for u in translated["utterances"]][:2] == [
        "Buenos días. ¿Empezamos?",
        "Sí. Está listo.",
    ]
    body["speech_understanding"] = identify(["Grace Hopper"])
    named = (await api.post("/v1/understanding", json=body)).json()
    openapi_schema.validate("LLMGatewaySpeakerIdentificationResponse", named, spec="llm-gateway")
    assert named["speech_understanding"]["response"]["speaker_identification"]["mapping"] == {
        "B": "Grace Hopper"
    }
    assert [u["speaker"] for u in named["utterances"]] == ["A", "Grace Hopper", "A", "Grace Hopper"]


async def test_understanding_errors_are_the_gateways(
    api: httpx.AsyncClient, emulator: EmulatorServer, meeting: AudioSample
) -> None:
    async def error(body: Any, status: int, key: str | None = None) -> str:
        headers = {"authorization": key} if key else None
        response = await api.post("/v1/understanding", json=body, headers=headers)
        assert response.status_code == status, response.text
        openapi_schema.validate("ErrorResponse", response.json(), spec="llm-gateway")
        return str(response.json()["error"]["message"])

    assert (
        await error({"speech_understanding": identify(["x"])}, 400) == "transcript_id is required"
    )
    unknown = {"transcript_id": "nope", "speech_understanding": identify(["x"])}
    assert await error(unknown, 404) == "Transcript nope not found"
    assert (
        await error(unknown, 401, key="wrong") == "Authentication error, API token missing/invalid"
    )
    without_labels = await transcribe(api, await upload(api, meeting), speaker_labels=False)
    body = {"transcript_id": without_labels["id"], "speech_understanding": identify(["x"])}
    assert await error(body, 400) == "speaker_identification requires speaker_labels to be enabled"


# -- vocabulary ------------------------------------------------------------------------


async def test_keyterms_and_custom_spelling_shape_the_words(
    api: httpx.AsyncClient, meeting: AudioSample
) -> None:
    done = await transcribe(
        api,
        await upload(api, meeting),
        keyterms_prompt=["Kubernetes", "Thessaloniki"],
        custom_spelling=[{"from": ["the board"], "to": "Board"}],
    )
    assert done["keyterms_prompt"] == ["Kubernetes", "Thessaloniki"]
    text = done["text"]
    assert "the Kubernetes migration?" in text and "in Thessaloniki is" in text
    assert "figures to Board by Friday." in text
    assert "kubernetes" not in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"keyterms_prompt": [f"t{i}" for i in range(201)]}, "at most 200 keyterms"),
        (
            {
                "keyterms_prompt": [f"t{i}" for i in range(1001)],
                "speech_models": ["assemblyai-stt-3-7"],
            },
            "at most 1000 keyterms",
        ),
        ({"keyterms_prompt": ["one two three four five six seven"]}, "at most 6 words"),
        ({"keyterms_prompt": ["  "]}, "must not contain empty keyterms"),
        ({"keyterms_prompt": ["a"], "prompt": "context"}, "cannot be used in the same request"),
        ({"prompt": "word " * 1501}, "prompt can be at most 1500 words"),
        ({"custom_spelling": [{"from": ["a"], "to": "two words"}]}, "to must be a single word"),
        ({"custom_spelling": [{"from": [], "to": "X"}]}, "from must be a non-empty Array"),
        ({"custom_spelling": [{"from": ["a"], "to": "X", "x": 1}]}, 'exactly "from" and "to"'),
    ],
)
async def test_vocabulary_over_assemblyais_limits_gets_400(
    api: httpx.AsyncClient, params: dict[str, Any], message: str
) -> None:
    assert message in await refused(api, **params)


async def test_stt3_alone_takes_a_thousand_keyterms(
    api: httpx.AsyncClient, meeting: AudioSample
) -> None:
    terms = [f"term{i}" for i in range(1000)]
    done = await transcribe(
        api, await upload(api, meeting), keyterms_prompt=terms, speech_models=["assemblyai-stt-3-7"]
    )
    assert done["status"] == "completed" and len(done["keyterms_prompt"]) == 1000


async def test_a_script_can_say_how_sure_language_detection_is(
    api: httpx.AsyncClient, emulator: EmulatorServer, meeting: AudioSample
) -> None:
    write_meeting(emulator.scripts_dir, meeting, NAMES, language_confidence=0.42)
    done = await transcribe(api, await upload(api, meeting), language_detection=True)
    assert done["language_confidence"] == 0.42


# -- structured summaries ------------------------------------------------------------------


async def test_a_summary_request_gets_json_valid_against_its_schema(
    api: httpx.AsyncClient,
) -> None:
    from bot.conversation import Line

    lines = [
        Line("Ada", 0, "Good morning. Shall we start?"),
        Line("Grace", 4_000, "Yes. We decided to ship on Monday."),
        Line("Ada", 9_000, "Then I will write the notes tonight."),
    ]
    body = {
        "model": MODEL,
        "messages": summary.part_messages(lines, model=MODEL),
        "max_tokens": 1500,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "meeting_summary", "schema": summary.SCHEMA, "strict": True},
        },
    }
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    openapi_schema.validate("Response", response.json(), spec="llm-gateway")
    document = json.loads(response.json()["choices"][0]["message"]["content"])
    jsonschema.validate(document, summary.SCHEMA)
    assert document["points"][0] == {"speaker": "Ada", "text": "Good morning.", "at": "00:00"}
    assert document["decisions"] == [{"text": "We decided to ship on Monday.", "at": "00:04"}]
    assert document["action_items"] == [
        {"owner": "Ada", "task": "Then I will write the notes tonight.", "due": None, "at": "00:09"}
    ]
    parsed = summary.parse(response.json()["choices"][0]["message"]["content"])
    assert parsed.decisions[0].at == 4_000


async def test_gpt_oss_models_refuse_response_format(api: httpx.AsyncClient) -> None:
    body = {
        "model": "gpt-oss-120b",
        "prompt": "hi",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    }
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "response_format is not supported by model 'gpt-oss-120b'"
    )
    body["model"], body["response_format"] = MODEL, {"type": "json_schema", "json_schema": {}}
    bad = await api.post("/v1/chat/completions", json=body)
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "response_format.json_schema.name is required"
