from __future__ import annotations

import pytest

from bot.config import (
    DEFAULT_ASSEMBLYAI_BASE_URL,
    DEFAULT_SPEECH_MODELS,
    Secret,
    Settings,
    read_environment,
    redact_url,
    speech_model_warnings,
    take_library_variables,
)
from bot.errors import ConfigError

KEY = "aai-test-key-0123456789"


def test_defaults_with_only_a_key():
    settings = Settings.from_env({"ASSEMBLYAI_API_KEY": KEY})
    assert settings.assemblyai_api_key == Secret(KEY)
    assert settings.assemblyai_base_url == DEFAULT_ASSEMBLYAI_BASE_URL
    assert settings.speech_models == DEFAULT_SPEECH_MODELS
    assert settings.database_url.value.startswith("sqlite+aiosqlite:///")
    assert not settings.slack_enabled and not settings.discord_enabled


def test_secrets_never_appear_in_repr_or_str():
    env = {
        "ASSEMBLYAI_API_KEY": KEY,
        "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
        "SLACK_APP_TOKEN": "xapp-secret-app-token",
        "SLACK_SIGNING_SECRET": "signing-secret-value",
        "DISCORD_TOKEN": "discord-secret-token",
        "DATABASE_URL": "postgresql+asyncpg://bot:hunter2@db.example/threadscribe",
    }
    settings = Settings.from_env(env)
    shown = repr(settings) + str(settings)
    for name, value in env.items():
        secret_part = "hunter2" if name == "DATABASE_URL" else value
        assert secret_part not in shown, name
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.value == "xoxb-secret-bot-token"


def test_every_problem_is_reported_once_with_the_variable_name():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                "ASSEMBLYAI_BASE_URL": "api.assemblyai.com",
                "PORT": "eighty",
                "DATABASE_URL": "mysql://root:topsecret@localhost/db",
                "SLACK_BOT_TOKEN": "xapp-wrong-kind-of-token",
                "ASSEMBLYAI_SPEECH_MODELS": " , ",
                "LOG_LEVEL": "LOUD",
                "SLACK_CLIENT_ID": "123.456",
            }
        )
    problems = info.value.problems
    starts = [p.split(" ", 1)[0] for p in problems]
    assert starts == [
        "ASSEMBLYAI_BASE_URL",
        "ASSEMBLYAI_SPEECH_MODELS",
        "DATABASE_URL",
        "PORT",
        "LOG_LEVEL",
        "SLACK_BOT_TOKEN",
        "SLACK_CLIENT_ID",
    ]
    text = "\n".join(problems)
    assert "topsecret" not in text and "xapp-wrong-kind-of-token" not in text
    assert all("\n" not in p for p in problems)


def test_eu_base_url_and_model_list():
    settings = Settings.from_env(
        {
            "ASSEMBLYAI_BASE_URL": "https://api.eu.assemblyai.com",
            "ASSEMBLYAI_SPEECH_MODELS": "universal-2, assemblyai-stt-3-7",
        }
    )
    assert settings.assemblyai_base_url == "https://api.eu.assemblyai.com"
    assert settings.speech_models == ("universal-2", "assemblyai-stt-3-7")


def test_missing_key_is_explained():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}).require_assemblyai_key()
    assert "ASSEMBLYAI_API_KEY" in str(info.value) and ".env" in str(info.value)


@pytest.mark.parametrize(
    ("env", "slack", "discord"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, True, False),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, True, False),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, False, False),
        ({"DISCORD_TOKEN": "d"}, False, True),
    ],
)
def test_platform_detection(env, slack, discord):
    settings = Settings.from_env(env)
    assert (settings.slack_enabled, settings.discord_enabled) == (slack, discord)


def test_require_platform_names_the_variables():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}).require_platform()
    text = str(info.value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN"):
        assert name in text


def test_half_configured_slack_says_what_is_missing():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).require_platform()
    assert "neither SLACK_APP_TOKEN" in str(info.value)


def test_redact_url():
    assert redact_url("postgresql+asyncpg://u:pw@h:5432/d") == "postgresql+asyncpg://u:***@h:5432/d"
    assert redact_url("sqlite+aiosqlite:///./x.db") == "sqlite+aiosqlite:///./x.db"


def test_speech_models_are_checked_before_anything_is_spent() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ASSEMBLYAI_SPEECH_MODELS": "best,universal-2"})
    [problem] = caught.value.problems
    assert problem.startswith("ASSEMBLYAI_SPEECH_MODELS names a model AssemblyAI does not accept")
    assert "best is no longer offered by AssemblyAI" in problem
    # What it suggests is current: never a deprecated model.
    assert problem.endswith("(use one of assemblyai-stt-3-7, universal-2)")
    with pytest.raises(ConfigError, match="slam-2 is not an AssemblyAI speech model"):
        Settings.from_env({"ASSEMBLYAI_SPEECH_MODELS": "slam-2"})
    # A deprecated model beside a rejected one is named in the same line.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ASSEMBLYAI_SPEECH_MODELS": "universal-3-pro,nano"})
    [problem] = caught.value.problems
    assert "nano is no longer offered by AssemblyAI" in problem
    assert problem.endswith(
        "universal-3-pro is deprecated by AssemblyAI: use assemblyai-stt-3-7 instead"
    )
    with pytest.raises(ConfigError, match="names a model twice"):
        Settings.from_env({"ASSEMBLYAI_SPEECH_MODELS": "universal-2,universal-2"})


def test_deprecated_speech_models_are_accepted_with_a_warning() -> None:
    settings = Settings.from_env({"ASSEMBLYAI_SPEECH_MODELS": "universal-3-pro,universal-2"})
    assert settings.speech_models == ("universal-3-pro", "universal-2")
    assert speech_model_warnings(settings.speech_models) == [
        "universal-3-pro is deprecated by AssemblyAI: use assemblyai-stt-3-7 instead"
    ]
    assert speech_model_warnings(DEFAULT_SPEECH_MODELS) == []
    assert DEFAULT_SPEECH_MODELS == ("assemblyai-stt-3-7", "universal-2")


def test_env_file_is_read_into_the_mapping_not_into_the_environment(tmp_path):
    (tmp_path / ".env").write_text(
        "ASSEMBLYAI_API_KEY=from-file\n"
        "SLACK_CLIENT_ID=\n"
        'DATABASE_URL="sqlite+aiosqlite:///./a b.db"\n'
        "export PORT=9000  # a comment\n"
        "WEBHOOK_SECRET=pa${HOME}word\n"
        "LOG_LEVEL=DEBUG\n"
    )
    environ = {"LOG_LEVEL": "ERROR", "PORT": "", "SLACK_CLIENT_SECRET": "  "}
    before = dict(environ)

    env = read_environment(environ, tmp_path)

    assert environ == before  # nothing copied into the environment
    assert env.values == {
        "ASSEMBLYAI_API_KEY": "from-file",
        "DATABASE_URL": "sqlite+aiosqlite:///./a b.db",
        "PORT": "9000",  # an empty variable in the environment does not hide the file's
        "WEBHOOK_SECRET": "pa${HOME}word",  # no expansion: a secret stays as written
        "LOG_LEVEL": "ERROR",  # the environment wins
    }
    assert env.dotenv == tmp_path / ".env" and env.problems == () and env.unknown == ()
    settings = Settings.from_env(env.values)
    assert not settings.slack_oauth and settings.port == 9000


def test_no_env_file_is_fine(tmp_path):
    env = read_environment({"PORT": "1234"}, tmp_path)
    assert env.values == {"PORT": "1234"} and env.dotenv is None


def test_library_variables_are_taken_out_of_the_environment():
    environ = {"SLACK_CLIENT_ID": "", "SLACK_BOT_TOKEN": "xoxb-x", "PATH": "/bin"}
    take_library_variables(environ)
    assert environ == {"PATH": "/bin"}


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, "127.0.0.1"),
        ({"DISCORD_TOKEN": "t"}, "127.0.0.1"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "0.0.0.0"),
        ({"DISCORD_TOKEN": "t", "PUBLIC_URL": "https://bot.example.com"}, "0.0.0.0"),
        ({"DISCORD_TOKEN": "t", "HOST": "10.1.2.3"}, "10.1.2.3"),
    ],
)
def test_the_web_server_listens_on_loopback_unless_something_outside_needs_it(env, host):
    assert Settings.from_env(env).bind_host == host


def test_the_gateway_follows_the_api_region():
    eu = Settings.from_env({"ASSEMBLYAI_BASE_URL": "https://api.eu.assemblyai.com"})
    assert eu.llm_gateway_url == "https://llm-gateway.eu.assemblyai.com"
    assert Settings.from_env({}).llm_gateway_url == "https://llm-gateway.assemblyai.com"
    with pytest.raises(ConfigError, match="in the other region"):
        Settings.from_env(
            {
                "ASSEMBLYAI_BASE_URL": "https://api.assemblyai.com",
                "ASSEMBLYAI_LLM_GATEWAY_URL": "https://llm-gateway.eu.assemblyai.com",
            }
        )


def test_public_url_must_be_https_except_on_loopback():
    with pytest.raises(ConfigError, match="PUBLIC_URL must be an https:// URL"):
        Settings.from_env({"PUBLIC_URL": "http://bot.example.com"})
    assert Settings.from_env({"PUBLIC_URL": "http://127.0.0.1:8080"}).public_url
