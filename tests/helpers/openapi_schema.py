"""Validate JSON against the component schemas of AssemblyAI's published OpenAPI files.

    validate("Transcript", body)                      # openapi.yml
    validate("Response", body, spec="llm-gateway")    # llm-gateway.yml

The specs are read from `$ASSEMBLYAI_SPEC_DIR`, else `tests/assemblyai/`, else
`../shared/assemblyai/` beside the repository. OpenAPI 3.1 schemas are JSON Schema
2020-12, so `jsonschema` checks them as written, with a `referencing` registry over the
whole document so `$ref`s resolve; formats it knows (uuid, date) are checked too.
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


def errors(schema_name: str, instance: Any, spec: str = "openapi") -> list[str]:
    """Every violation, as "path: message" lines (empty when the instance is valid)."""
    found = validator(schema_name, spec).iter_errors(instance)
    return sorted(f"{e.json_path}: {e.message}" for e in found)


def validate(schema_name: str, instance: Any, spec: str = "openapi") -> None:
    """Raise AssertionError listing every violation of the named component schema."""
    problems = errors(schema_name, instance, spec)
    if problems:
        raise AssertionError(f"{schema_name} violations:\n" + "\n".join(problems))
