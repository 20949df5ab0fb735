"""Validate JSON against the component schemas of AssemblyAI's published OpenAPI files.

    validate("Transcript", body)                      # openapi.yml
    validate("Response", body, spec="llm-gateway")    # llm-gateway.yml

The specs are read from `$ASSEMBLYAI_SPEC_DIR`, else `tests/assemblyai/`, else
`../shared/assemblyai/` beside the repository. OpenAPI 3.1 schemas are JSON Schema
2020-12, so `jsonschema` checks them as written, with a `referencing` registry over the
whole document so `$ref`s resolve; formats it knows (uuid, date) are checked too.

One defect of openapi.yml is allowed for, and only it: `Transcript.speech_understanding
.response` is a `oneOf` of three schemas none of which requires anything, so every
object is valid under all three and no response can pass (`is valid under each of`).
There the response is checked against the one branch its request names instead
(`SpeakerIdentificationResponse` for a `speaker_identification` request, and so on).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.helpers import REPO

SPECS = {"openapi": "openapi.yml", "llm-gateway": "llm-gateway.yml"}


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. PyYAML's 1.1 rules would read the language
    code `no` (Norwegian) in TranscriptLanguageCode as False."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def spec_dir() -> Path:
    candidates = [
        os.environ.get("ASSEMBLYAI_SPEC_DIR"),
        REPO / "tests" / "assemblyai",
        REPO.parent / "shared" / "assemblyai",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / SPECS["openapi"]).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "AssemblyAI's openapi.yml not found: set ASSEMBLYAI_SPEC_DIR or copy the specs "
        "to tests/assemblyai/"
    )


@functools.cache
def load(spec: str = "openapi") -> dict[str, Any]:
    with (spec_dir() / SPECS[spec]).open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Yaml12Loader)


@functools.cache
def _registry(spec: str) -> Registry:
    resource = Resource(contents=load(spec), specification=DRAFT202012)
    return Registry().with_resource(f"urn:assemblyai:{spec}", resource)


def validator(schema_name: str, spec: str = "openapi") -> jsonschema.Draft202012Validator:
    if schema_name not in load(spec)["components"]["schemas"]:
        raise KeyError(f"{spec} has no schema {schema_name!r}")
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:assemblyai:{spec}#/components/schemas/{schema_name}"},
        registry=_registry(spec),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


_RESPONSES = {
    "translation": "TranslationResponse",
    "speaker_identification": "SpeakerIdentificationResponse",
    "custom_formatting": "CustomFormattingResponse",
}


def errors(schema_name: str, instance: Any, spec: str = "openapi") -> list[str]:
    """Every violation, as "path: message" lines (empty when the instance is valid)."""
    found = []
    for error in validator(schema_name, spec).iter_errors(instance):
        if _spec_defect(schema_name, spec, error):
            found += _understanding_response(instance)
            continue
        found.append(f"{error.json_path}: {error.message}")
    return sorted(found)


def _spec_defect(schema_name: str, spec: str, error: jsonschema.ValidationError) -> bool:
    return (
        spec == "openapi"
        and schema_name == "Transcript"
        and error.json_path == "$.speech_understanding.response"
        and "is valid under each of" in error.message
    )


def _understanding_response(transcript: Any) -> list[str]:
    understanding = transcript.get("speech_understanding") or {}
    kinds = [k for k in _RESPONSES if k in (understanding.get("request") or {})]
    if len(kinds) != 1:
        return ["$.speech_understanding.request: names no single task"]
    response = understanding.get("response")
    if kinds[0] not in (response or {}):
        return [f"$.speech_understanding.response: has no {kinds[0]}"]
    found = validator(_RESPONSES[kinds[0]]).iter_errors(response)
    return [f"$.speech_understanding.response{e.json_path[1:]}: {e.message}" for e in found]


def validate(schema_name: str, instance: Any, spec: str = "openapi") -> None:
    """Raise AssertionError listing every violation of the named component schema."""
    problems = errors(schema_name, instance, spec)
    if problems:
        raise AssertionError(f"{schema_name} violations:\n" + "\n".join(problems))
