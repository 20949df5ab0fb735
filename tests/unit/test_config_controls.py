"""The controls' settings: read from the environment (and `.env`), every mistake named in
one line, and carried by the composition root to the engine and the core; `.env.example`
and the README list every variable there is."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.config import Secret, Settings, _hours, known_variables
from bot.jobs import ChannelPolicy, Platform
from bot.models import DEFAULT_PII_POLICIES, DEFAULT_PRICE_PER_HOUR
from bot.run import control_settings, engine_config
from tests.helpers import REPO

KEY = {"ASSEMBLYAI_API_KEY": "k"}


def test_defaults_are_todays_behaviour() -> None:
    settings = Settings.from_env(KEY)
    assert settings.slack_auto_transcribe is ChannelPolicy.AUTO
    assert settings.discord_dm_transcribe is ChannelPolicy.AUTO
    assert (settings.allowed_workspaces, settings.allowed_guilds, settings.allowed_channels) == (
        (),
        (),
        (),
    )
    assert not settings.redact_pii and settings.redact_pii_policies == DEFAULT_PII_POLICIES
    assert settings.redact_pii_sub == "entity_name" and settings.monthly_budget_hours is None
    assert dict(settings.price_per_hour) == DEFAULT_PRICE_PER_HOUR


@pytest.mark.parametrize(
    ("raw", "policy"),
    [
        ("true", ChannelPolicy.AUTO),
        ("false", ChannelPolicy.ON_REQUEST),
        ("on-request", ChannelPolicy.ON_REQUEST),
        ("ON_REQUEST", ChannelPolicy.ON_REQUEST),
        ("off", ChannelPolicy.OFF),
        ("auto", ChannelPolicy.AUTO),
    ],
)
def test_the_old_switch_and_the_policies(raw: str, policy: ChannelPolicy) -> None:
    settings = Settings.from_env(KEY | {"SLACK_AUTO_TRANSCRIBE": raw, "DISCORD_DM_TRANSCRIBE": raw})
    assert settings.slack_auto_transcribe is policy and settings.discord_dm_transcribe is policy


def test_every_mistake_is_named_in_one_line() -> None:
    _, problems = Settings.read(
        KEY
        | {
            "SLACK_AUTO_TRANSCRIBE": "sometimes",
            "ALLOWED_WORKSPACES": "acme",
            "ALLOWED_GUILDS": "T0123",
            "ALLOWED_CHANNELS": "general",
            "REDACT_PII_POLICIES": "phone_number,phone_numbers",
            "REDACT_PII_SUB": "stars",
            "MONTHLY_BUDGET_HOURS": "-3",
            "ASSEMBLYAI_PRICE_PER_HOUR": "best=0.1",
            "USAGE_RETENTION_DAYS": "7",
        }
    )
    assert problems == [
        "SLACK_AUTO_TRANSCRIBE must be auto, on-request or off (got 'sometimes')",
        "ALLOWED_WORKSPACES must be comma-separated ids such as T0123ABCD (Slack workspace ids) "
        "(got 'acme')",
        "ALLOWED_GUILDS must be comma-separated ids such as 1310000000000000100 (Discord server "
        "ids) (got 'T0123')",
        "ALLOWED_CHANNELS must be comma-separated ids such as C0123ABCD or a Discord id "
        "(got 'general')",
        "REDACT_PII_POLICIES must be a comma-separated list of AssemblyAI PII policies such as "
        "phone_number,email_address (did you mean phone_number?) "
        "(got 'phone_number,phone_numbers')",
        "REDACT_PII_SUB must be entity_name ([PHONE_NUMBER]) or hash (####) (got 'stars')",
        "MONTHLY_BUDGET_HOURS must be a number of hours above 0, such as 50 or 7.5 (got '-3')",
        "ASSEMBLYAI_PRICE_PER_HOUR must be model=USD-per-hour pairs, comma-separated, such as "
        "assemblyai-stt-3-7=0.21,universal-2=0.15 (got 'best=0.1')",
        "USAGE_RETENTION_DAYS must be a whole number from 62 to 3650 (got '7')",
    ]


@pytest.mark.parametrize("raw", ["nan", "inf", "0", "1000001"])
def test_a_budget_must_be_a_finite_number_of_hours_above_0(raw: str) -> None:
    with pytest.raises(ValueError, match="must be a number of hours above 0"):
        _hours(raw)


def test_the_composition_root_carries_them_to_the_engine_and_the_core() -> None:
    settings = Settings.from_env(
        KEY
        | {
            "SLACK_AUTO_TRANSCRIBE": "off",
            "DISCORD_DM_TRANSCRIBE": "on-request",
            "ALLOWED_WORKSPACES": "T0AAA,T0BBB",
            "ALLOWED_GUILDS": "1310000000000000100",
            "ALLOWED_CHANNELS": "C0GENERAL1",
            "REDACT_PII": "true",
            "REDACT_PII_POLICIES": "person_name",
            "REDACT_PII_SUB": "hash",
            "REDACT_PII_AUDIO": "yes",
            "MONTHLY_BUDGET_HOURS": "7.5",
            "ASSEMBLYAI_PRICE_PER_HOUR": "universal-2=0.12",
            "USAGE_RETENTION_DAYS": "90",
        }
    )
    controls = control_settings(settings)
    assert controls.channel_defaults == {
        Platform.SLACK: ChannelPolicy.OFF,
        Platform.DISCORD: ChannelPolicy.AUTO,
    }
    assert controls.dm_defaults[Platform.DISCORD] is ChannelPolicy.ON_REQUEST
    assert controls.allowed_workspaces == {
        Platform.SLACK: frozenset({"T0AAA", "T0BBB"}),
        Platform.DISCORD: frozenset({"1310000000000000100"}),
    }
    assert controls.allowed_channels == frozenset({"C0GENERAL1"})
    assert (controls.redact_pii, controls.redact_pii_audio) == (True, True)
    assert (controls.redact_pii_policies, controls.redact_pii_sub) == (("person_name",), "hash")
    assert controls.budget_hours == 7.5
    assert controls.prices["universal-2"] == 0.12
    assert controls.prices["assemblyai-stt-3-7"] == 0.21  # the others keep their default
    config = engine_config(settings, Secret("w"))
    assert config.budget_hours == 7.5 and config.usage_retention == timedelta(days=90)


def test_env_example_and_the_readme_name_every_variable() -> None:
    template = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", template, re.MULTILINE))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    every = known_variables() - {"THREADSCRIBE_ADAPTERS", "SLACK_CLIENT_SECRET"}
    assert every - named == set(), "missing from .env.example"
    assert every - documented == set(), "missing from the README"
