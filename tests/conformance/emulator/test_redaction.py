"""The emulator's PII redaction over real sockets, as the spec describes it: `redact_pii`
with its policies and substitution redacts text, words and utterances alike; requests that
cannot work are refused with 400; `GET /v2/transcript/{id}/redacted-audio` hands out a
presigned URL of the audio with the PII beeped out, for 24 hours, and says why not
otherwise. Every body is checked against openapi.yml."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import openapi_schema
from tests.helpers.audio import AudioSample, make_pii_dialogue, probe_duration, write_script
from tests.helpers.emulator_server import FAST, EmulatorServer, start_emulator, wait_done

MODELS = ["assemblyai-stt-3-7", "universal-2"]
DEFAULT = ["phone_number", "email_address", "person_name", "location"]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> AudioSample:
    return make_pii_dialogue(tmp_path_factory.mktemp("pii"), "mp3")


@pytest.fixture
async def api(emulator: EmulatorServer, dialogue: AudioSample) -> AsyncIterator[httpx.AsyncClient]:
    write_script(dialogue, emulator.scripts_dir)
    headers = {"authorization": emulator.api_key}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers, timeout=10) as c:
        yield c


async def transcribe(api: httpx.AsyncClient, data: bytes, **params: Any) -> dict[str, Any]:
    uploaded = await api.post("/v2/upload", content=data)
    assert uploaded.status_code == 200, uploaded.text
    body = {"speech_models": MODELS, "speaker_labels": True} | params
    created = await api.post(
        "/v2/transcript", json={"audio_url": uploaded.json()["upload_url"]} | body
    )
    assert created.status_code == 200, created.text
    openapi_schema.validate("Transcript", created.json())
    return await wait_done(api, created.json()["id"])


def error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    openapi_schema.validate("Error", response.json())
    return str(response.json()["error"])


async def test_entity_names_replace_each_redacted_word_everywhere(
    api: httpx.AsyncClient, dialogue: AudioSample
) -> None:
    done = await transcribe(
        api,
        dialogue.path.read_bytes(),
        redact_pii=True,
        redact_pii_policies=DEFAULT,
        redact_pii_sub="entity_name",
    )

    assert done["status"] == "completed" and done["redact_pii"] is True
    assert done["redact_pii_sub"] == "entity_name" and done["redact_pii_policies"] == DEFAULT
    assert done["text"] == (
        "Hi, this is [PERSON_NAME] [PERSON_NAME]. Call me on [PHONE_NUMBER] tomorrow. "
        "Sure. My email is [EMAIL_ADDRESS] and I live on [LOCATION] [LOCATION]. "
        "Thanks. The numbers look good this quarter."
    )
    # words, utterances and text agree, timings as before
    assert " ".join(w["text"] for w in done["words"]) == done["text"]
    assert " ".join(u["text"] for u in done["utterances"]) == done["text"]
    assert [w["text"] for w in done["utterances"][0]["words"]][3:6] == [
        "[PERSON_NAME]",
        "[PERSON_NAME].",
        "Call",
    ]


async def test_hash_and_only_the_policies_asked_for(
    api: httpx.AsyncClient, dialogue: AudioSample
) -> None:
    done = await transcribe(
        api,
        dialogue.path.read_bytes(),
        redact_pii=True,
        redact_pii_policies=["phone_number", "email_address"],  # the spec's default sub: hash
    )

    assert done["redact_pii_sub"] == "hash"
    assert "Call me on ###-#### tomorrow." in done["text"]
    assert "My email is ###@#######.### and" in done["text"]
    assert "Ada Lovelace" in done["text"] and "Baker Street" in done["text"]  # not asked


async def test_without_redact_pii_nothing_is_redacted(
    api: httpx.AsyncClient, dialogue: AudioSample
) -> None:
    done = await transcribe(api, dialogue.path.read_bytes())

    assert "555-0100" in done["text"] and "bob@example.com" in done["text"]
    assert error(await api.get(f"/v2/transcript/{done['id']}/redacted-audio")) == (
        "Redacted audio is only available when redact_pii and redact_pii_audio are set to true"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"redact_pii": True}, "redact_pii_policies must be provided when redact_pii is enabled"),
        (
            {"redact_pii": True, "redact_pii_policies": ["phone_number", "phone"]},
            "redact_pii_policies: 'phone' is not a valid PII policy",
        ),
        (
            {"redact_pii": True, "redact_pii_policies": ["email_address"], "redact_pii_sub": "x"},
            "redact_pii_sub must be one of: entity_name, hash",
        ),
        (
            {"redact_pii_audio": True, "redact_pii_policies": ["email_address"]},
            "redact_pii_audio requires redact_pii to be enabled",
        ),
        (
            {
                "redact_pii": True,
                "redact_pii_policies": ["email_address"],
                "redact_pii_audio": True,
                "redact_pii_audio_quality": "flac",
            },
            "redact_pii_audio_quality must be one of: mp3, wav",
        ),
        (
            {
                "redact_pii": True,
                "redact_pii_policies": ["email_address"],
                "redact_pii_audio_options": {"override_audio_redaction_method": "noise"},
            },
            "redact_pii_audio_options.override_audio_redaction_method is not allowed with 'noise'",
        ),
    ],
)
async def test_requests_that_cannot_work_are_refused(
    api: httpx.AsyncClient, params: dict[str, Any], message: str
) -> None:
    body = {"audio_url": "https://media.example/a.mp3", "speech_models": MODELS} | params
    assert error(await api.post("/v2/transcript", json=body)) == message


async def test_the_redacted_audio_is_presigned_audio_of_the_same_length(
    api: httpx.AsyncClient, dialogue: AudioSample, tmp_path: Path
) -> None:
    done = await transcribe(
        api,
        dialogue.path.read_bytes(),
        redact_pii=True,
        redact_pii_policies=DEFAULT,
        redact_pii_audio=True,
        redact_pii_audio_quality="wav",
    )
    answer = await api.get(f"/v2/transcript/{done['id']}/redacted-audio")
    assert answer.status_code == 200, answer.text
    openapi_schema.validate("RedactedAudioResponse", answer.json())
    assert answer.json()["status"] == "redacted_audio_ready"
    url = answer.json()["redacted_audio_url"]
    assert "Signature=" in url and "Expires=" in url

    async with httpx.AsyncClient(timeout=10) as anyone:  # presigned: no API key
        fetched = await anyone.get(url)
        forged = await anyone.get(url.replace("Signature=", "Signature=0"))
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "audio/wav"
    assert forged.status_code == 403
    redacted = tmp_path / "redacted.wav"
    redacted.write_bytes(fetched.content)
    assert fetched.content[:4] == b"RIFF"
    assert abs(probe_duration(redacted) - dialogue.duration) < 0.2
    # Deleting the transcript deletes its redacted audio.
    assert (await api.delete(f"/v2/transcript/{done['id']}")).status_code == 200
    assert error(await api.get(f"/v2/transcript/{done['id']}/redacted-audio")) == (
        "This transcript has been deleted."
    )
    async with httpx.AsyncClient(timeout=10) as anyone:
        assert (await anyone.get(url)).status_code == 404


async def test_the_beep_is_where_the_pii_was(
    api: httpx.AsyncClient, dialogue: AudioSample, tmp_path: Path
) -> None:
    """The words redacted sound of a 1 kHz tone; the rest is the recording as it was."""
    done = await transcribe(
        api,
        dialogue.path.read_bytes(),
        redact_pii=True,
        redact_pii_policies=["phone_number"],
        redact_pii_sub="entity_name",
        redact_pii_audio=True,
        redact_pii_audio_quality="wav",
    )
    phone = next(w for w in done["words"] if w["text"].startswith("[PHONE"))
    url = (await api.get(f"/v2/transcript/{done['id']}/redacted-audio")).json()[
        "redacted_audio_url"
    ]
    async with httpx.AsyncClient(timeout=10) as anyone:
        (tmp_path / "r.wav").write_bytes((await anyone.get(url)).content)

    def level_at_1khz(start_ms: int, end_ms: int) -> float:
        """Energy through a narrow 1 kHz band-pass over [start, end), in dB."""
        out = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "r.wav"),
             "-af", f"atrim={start_ms / 1000}:{end_ms / 1000},bandpass=f=1000:width_type=q:w=30,"
             "astats=metadata=1:reset=0,ametadata=print:key=lavfi.astats.Overall.RMS_level:file=-",
             "-f", "null", "-"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        levels = [line.split("=")[-1] for line in out.stdout.splitlines() if "RMS_level" in line]
        return float(levels[-1]) if levels and levels[-1] != "-inf" else -120.0

    first = done["words"][0]
    beep = level_at_1khz(phone["start"] + 20, phone["end"] - 20)
    assert beep > -40  # the tone, at a third of full scale
    assert level_at_1khz(first["start"], first["end"]) < beep - 15  # a voice, no tone


async def test_no_redacted_audio_for_silence_unless_asked_and_none_after_24_hours(
    tmp_path: Path,
) -> None:
    from tests.helpers.audio import make_silence

    silence = make_silence(tmp_path / "quiet.wav", 2.0)
    with start_emulator(tmp_path / "scripts", redacted_audio_ttl=1.0, **FAST) as server:
        headers = {"authorization": server.api_key}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as api:
            params = {
                "redact_pii": True,
                "redact_pii_policies": ["phone_number"],
                "redact_pii_audio": True,
            }
            quiet = await transcribe(api, silence.read_bytes(), **params)
            message = error(await api.get(f"/v2/transcript/{quiet['id']}/redacted-audio"))
            assert message.startswith("This transcript has no speech, so no redacted audio")
            asked = await transcribe(
                api,
                silence.read_bytes(),
                redact_pii_audio_options={"return_redacted_no_speech_audio": True},
                **params,
            )
            ready = await api.get(f"/v2/transcript/{asked['id']}/redacted-audio")
            assert ready.status_code == 200, ready.text
            await asyncio.sleep(1.2)  # redacted_audio_ttl=1.0: the emulator's 24 hours
            assert error(await api.get(f"/v2/transcript/{asked['id']}/redacted-audio")) == (
                "The redacted audio has expired: redacted audio files are kept for 24 hours"
            )


async def test_redacted_audio_of_an_unfinished_or_failed_transcript(
    api: httpx.AsyncClient, emulator: EmulatorServer, dialogue: AudioSample
) -> None:
    params = {
        "speech_models": MODELS,
        "redact_pii": True,
        "redact_pii_policies": ["phone_number"],
        "redact_pii_audio": True,
    }
    uploaded = (await api.post("/v2/upload", content=dialogue.path.read_bytes())).json()
    working = (
        await api.post("/v2/transcript", json={"audio_url": uploaded["upload_url"]} | params)
    ).json()
    message = error(await api.get(f"/v2/transcript/{working['id']}/redacted-audio"))
    assert re.match(r"This transcript has a status of '(queued|processing)'\.", message)
    missing = f"{emulator.base_url}/nothing-here.mp3"
    created = (await api.post("/v2/transcript", json={"audio_url": missing} | params)).json()
    failed = await wait_done(api, created["id"])
    assert failed["status"] == "error"
    assert error(await api.get(f"/v2/transcript/{created['id']}/redacted-audio")) == (
        "This transcript has a status of 'error'. Transcripts must have a status of "
        "'completed' before requesting redacted audio."
    )
