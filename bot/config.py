"""Settings, read once from a mapping: the environment over `.env` in the working folder.

`read_environment()` builds that mapping for the composition root (the CLI). `.env` is
read into it, never copied into `os.environ`, and an empty value means unset wherever it
comes from: a template copied as it is means "the defaults". The variables that Slack's
libraries would read by themselves are then taken out of `os.environ`
(`take_library_variables`), so that nothing below the composition root picks up a setting
on its own: every library gets its values explicitly.

Every problem is reported in one line naming the variable and what to do about it, and all
problems are reported together so an operator fixes them in one pass. Secrets are wrapped
in `Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import logging
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
from dotenv.parser import parse_stream

from bot.errors import ConfigError, InvalidDatabaseURL
from bot.logs import LogFormat
from bot.models import (
    ACCEPTED_SPEECH_MODELS,
    DEFAULT_LLM_MODEL,
    DEFAULT_PII_POLICIES,
    DEFAULT_PRICE_PER_HOUR,
    DEFAULT_SPEECH_MODELS,
    PII_POLICIES,
    PII_SUBSTITUTIONS,
    ChannelPolicy,
    speech_model_problem,
    speech_model_warning,
)

T = TypeVar("T")

#: A SQLite file in the working directory (bot/jobs/database.py checks and opens URLs).
DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///./threadscribe.db"


def parse_database_url(raw: str) -> URL:
    """bot.jobs.database's check, imported when a URL is given (SQLAlchemy is heavy, and
    the terminal command rarely needs it)."""
    from bot.jobs.database import parse_database_url as parse

    return parse(raw)


DEFAULT_ASSEMBLYAI_BASE_URL: Final = "https://api.assemblyai.com"
DEFAULT_LLM_GATEWAY_URL: Final = "https://llm-gateway.assemblyai.com"
EU_LLM_GATEWAY_URL: Final = "https://llm-gateway.eu.assemblyai.com"
DEFAULT_SLACK_API_URL: Final = "https://slack.com/api/"
ENV_FILE: Final = ".env"
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: Variables read by the composition root itself rather than by `Settings`.
EXTRA_VARIABLES: Final = frozenset({"THREADSCRIBE_ADAPTERS"})
#: Variables slack_bolt reads from `os.environ` by itself when a value is not passed (or
#: is merely present: an empty SLACK_CLIENT_ID switches Bolt to OAuth mode).
LIBRARY_VARIABLES: Final = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_VERIFICATION_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_SCOPES",
    "SLACK_USER_SCOPES",
    "SLACK_REDIRECT_URI",
    "SLACK_INSTALL_PATH",
    "SLACK_REDIRECT_URI_PATH",
)


class Secret:
    """A string that stays out of logs, reprs and tracebacks; `.value` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True, slots=True)
class Settings:
    assemblyai_api_key: Secret | None = None
    assemblyai_base_url: str = DEFAULT_ASSEMBLYAI_BASE_URL
    llm_gateway_url: str = DEFAULT_LLM_GATEWAY_URL
    speech_models: tuple[str, ...] = DEFAULT_SPEECH_MODELS
    database_url: Secret = dataclasses.field(default_factory=lambda: Secret(DEFAULT_DATABASE_URL))
    public_url: str | None = None
    port: int = 8080
    #: bind address; None: decided by `bind_host`
    host: str | None = None
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_client_id: str | None = None
    slack_client_secret: Secret | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    #: the policy of channels nobody configured (SLACK_AUTO_TRANSCRIBE: true/false too)
    slack_auto_transcribe: ChannelPolicy = ChannelPolicy.AUTO
    slack_admin_users: tuple[str, ...] = ()
    #: what happens to recordings sent to the bot directly
    slack_dm_transcribe: ChannelPolicy = ChannelPolicy.AUTO

    discord_token: Secret | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_dev_guild: int | None = None
    discord_auto_transcribe: ChannelPolicy = ChannelPolicy.AUTO
    discord_dm_transcribe: ChannelPolicy = ChannelPolicy.AUTO

    #: where the bot works at all (empty: everywhere it is installed or invited)
    allowed_workspaces: tuple[str, ...] = ()
    allowed_guilds: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    #: PII redaction for every channel that does not say otherwise
    redact_pii: bool = False
    redact_pii_policies: tuple[str, ...] = DEFAULT_PII_POLICIES
    redact_pii_sub: str = "entity_name"
    redact_pii_audio: bool = False
    #: hours of audio each workspace or server may transcribe per calendar month (UTC)
    monthly_budget_hours: float | None = None
    #: USD per hour of audio, by speech model, for the estimated cost in `/transcribe usage`
    price_per_hour: tuple[tuple[str, float], ...] = tuple(DEFAULT_PRICE_PER_HOUR.items())
    usage_retention_days: int = 400

    max_concurrent_jobs: int = 5
    max_jobs_per_user: int = 3
    max_jobs_per_channel: int = 10
    max_file_mb: int = 1000
    max_duration_minutes: int = 240
    delete_after_delivery: bool = False
    ai_summary: bool = True
    llm_model: str = DEFAULT_LLM_MODEL
    webhook_secret: Secret | None = None
    job_lease_seconds: int = 30
    #: fetch (and hand AssemblyAI) links to loopback and private hosts too
    allow_private_urls: bool = False
    job_retention_days: int = 30
    #: how long a platform connection may be down before /readyz says not ready
    readiness_grace_seconds: int = 60
    #: questions one person may ask in an hour, in transcripts' threads
    questions_per_hour: int = 20
    #: how many days back `/transcribe search` looks
    search_days: int = 30
    #: the variables that were given a value (the rest took their defaults), for a caller
    #: whose own defaults differ: `threadscribe transcribe` applies MAX_FILE_MB only if set
    given: frozenset[str] = frozenset()
    #: the variables whose value could not be used (their defaults stand in, for doctor)
    invalid: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # The old booleans (`auto-transcribe on|off`), as callers may still pass them.
        for name in ("slack_auto_transcribe", "discord_auto_transcribe"):
            value = getattr(self, name)
            if isinstance(value, bool):
                policy = ChannelPolicy.AUTO if value else ChannelPolicy.ON_REQUEST
                object.__setattr__(self, name, policy)

    @property
    def slack_enabled(self) -> bool:
        oauth = bool(self.slack_client_id and self.slack_client_secret)
        return bool(self.slack_bot_token or oauth) and bool(
            self.slack_app_token or self.slack_signing_secret
        )

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_oauth(self) -> bool:
        """Installs into several workspaces (both OAuth credentials set)."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def bind_host(self) -> str:
        """Where the web server listens: HOST, else every interface when something outside
        must reach it (PUBLIC_URL for AssemblyAI's webhooks, Slack's HTTP mode), else
        loopback only, so /metrics is not exposed to the network for nothing."""
        if self.host:
            return self.host
        slack_http = self.slack_enabled and not self.slack_app_token
        return "0.0.0.0" if self.public_url or slack_http else "127.0.0.1"

    def secret_values(self) -> tuple[str, ...]:
        """The secrets' values, for the log formatter to mask wherever they would appear:
        of the database URL only its password (the URL is logged with it hidden)."""
        values = [
            value.value
            for f in dataclasses.fields(self)
            if f.name != "database_url" and isinstance(value := getattr(self, f.name), Secret)
        ]
        try:
            password = parse_database_url(self.database_url.value).password
        except InvalidDatabaseURL:
            password = None  # a URL that was refused: nothing was connected, nothing logged
        if password:
            values.append(str(password))
        return tuple(values)

    def require_assemblyai_key(self) -> Secret:
        if self.assemblyai_api_key is None:
            raise ConfigError([MISSING_API_KEY])
        return self.assemblyai_api_key

    def require_platform(self) -> None:
        """Raise unless at least one chat platform is fully configured."""
        if self.slack_enabled or self.discord_enabled:
            return
        problems = ["no chat platform is configured: set the variables for Slack, Discord or both"]
        if self.slack_bot_token and not (self.slack_app_token or self.slack_signing_secret):
            problems.append(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode, xapp-...) "
                "nor SLACK_SIGNING_SECRET (HTTP mode) is: set one of them"
            )
        else:
            problems.append(
                "  Slack: SLACK_BOT_TOKEN (xoxb-...) and SLACK_APP_TOKEN (xapp-..., Socket Mode) "
                "or SLACK_SIGNING_SECRET (HTTP mode)"
            )
        problems.append("  Discord: DISCORD_TOKEN (the bot token from the Developer Portal)")
        raise ConfigError(problems)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise ConfigError listing all problems."""
        settings, problems = cls.read(env)
        if problems:
            raise ConfigError(problems)
        return settings

    @classmethod
    def read(cls, env: Mapping[str, str]) -> tuple[Settings, list[str]]:
        """Every setting, with the default in place of each bad value, and one line per
        problem (for `doctor`, which reports them all and goes on checking the rest)."""
        reader = _Reader(env)
        base_url = reader.url("ASSEMBLYAI_BASE_URL", DEFAULT_ASSEMBLYAI_BASE_URL)
        settings = cls(
            assemblyai_api_key=reader.secret("ASSEMBLYAI_API_KEY"),
            assemblyai_base_url=base_url,
            # The gateway follows the API's region unless set otherwise.
            llm_gateway_url=reader.url("ASSEMBLYAI_LLM_GATEWAY_URL", gateway_for(base_url)),
            speech_models=reader.parse(
                "ASSEMBLYAI_SPEECH_MODELS", DEFAULT_SPEECH_MODELS, parse_speech_models
            ),
            database_url=Secret(reader.parse("DATABASE_URL", DEFAULT_DATABASE_URL, _database_url)),
            public_url=reader.optional_url("PUBLIC_URL"),
            port=reader.parse("PORT", 8080, _port),
            host=reader.parse("HOST", None, _host),
            log_level=reader.parse("LOG_LEVEL", "INFO", _log_level),
            log_format=reader.parse("LOG_FORMAT", LogFormat.TEXT, _log_format),
            slack_bot_token=reader.secret("SLACK_BOT_TOKEN", prefix="xoxb-"),
            slack_app_token=reader.secret("SLACK_APP_TOKEN", prefix="xapp-"),
            slack_signing_secret=reader.secret("SLACK_SIGNING_SECRET"),
            slack_client_id=reader.optional("SLACK_CLIENT_ID"),
            slack_client_secret=reader.secret("SLACK_CLIENT_SECRET"),
            slack_api_url=reader.url("SLACK_API_URL", DEFAULT_SLACK_API_URL),
            slack_auto_transcribe=reader.parse(
                "SLACK_AUTO_TRANSCRIBE", ChannelPolicy.AUTO, ChannelPolicy.parse
            ),
            slack_admin_users=reader.parse("SLACK_ADMIN_USERS", (), _slack_ids),
            slack_dm_transcribe=reader.parse(
                "SLACK_DM_TRANSCRIBE", ChannelPolicy.AUTO, ChannelPolicy.parse
            ),
            discord_token=reader.secret("DISCORD_TOKEN"),
            discord_api_url=reader.optional_url("DISCORD_API_URL"),
            discord_gateway_url=reader.optional_url("DISCORD_GATEWAY_URL", schemes=("ws", "wss")),
            discord_dev_guild=reader.parse("DISCORD_DEV_GUILD", None, _snowflake),
            discord_auto_transcribe=reader.parse(
                "DISCORD_AUTO_TRANSCRIBE", ChannelPolicy.AUTO, ChannelPolicy.parse
            ),
            discord_dm_transcribe=reader.parse(
                "DISCORD_DM_TRANSCRIBE", ChannelPolicy.AUTO, ChannelPolicy.parse
            ),
            allowed_workspaces=reader.parse("ALLOWED_WORKSPACES", (), _team_ids),
            allowed_guilds=reader.parse("ALLOWED_GUILDS", (), _guild_ids),
            allowed_channels=reader.parse("ALLOWED_CHANNELS", (), _channel_ids),
            redact_pii=reader.parse("REDACT_PII", False, _boolean),
            redact_pii_policies=reader.parse(
                "REDACT_PII_POLICIES", DEFAULT_PII_POLICIES, parse_pii_policies
            ),
            redact_pii_sub=reader.parse("REDACT_PII_SUB", "entity_name", _pii_substitution),
            redact_pii_audio=reader.parse("REDACT_PII_AUDIO", False, _boolean),
            monthly_budget_hours=reader.parse("MONTHLY_BUDGET_HOURS", None, _hours),
            price_per_hour=reader.parse(
                "ASSEMBLYAI_PRICE_PER_HOUR", tuple(DEFAULT_PRICE_PER_HOUR.items()), _prices
            ),
            usage_retention_days=reader.parse("USAGE_RETENTION_DAYS", 400, _bounded(62, 3650)),
            max_concurrent_jobs=reader.parse("MAX_CONCURRENT_JOBS", 5, _bounded(1, 200)),
            max_jobs_per_user=reader.parse("MAX_JOBS_PER_USER", 3, _bounded(1, 1000)),
            max_jobs_per_channel=reader.parse("MAX_JOBS_PER_CHANNEL", 10, _bounded(1, 10000)),
            # AssemblyAI takes uploads up to 2.2 GB and audio up to 10 hours.
            max_file_mb=reader.parse("MAX_FILE_MB", 1000, _bounded(1, 2200)),
            max_duration_minutes=reader.parse("MAX_DURATION_MINUTES", 240, _bounded(1, 600)),
            delete_after_delivery=reader.parse("DELETE_AFTER_DELIVERY", False, _boolean),
            ai_summary=reader.parse("AI_SUMMARY", True, _boolean),
            llm_model=reader.parse("LLM_MODEL", DEFAULT_LLM_MODEL, _model_name),
            webhook_secret=reader.secret("WEBHOOK_SECRET"),
            job_lease_seconds=reader.parse("JOB_LEASE_SECONDS", 30, _bounded(2, 3600)),
            allow_private_urls=reader.parse("ALLOW_PRIVATE_URLS", False, _boolean),
            job_retention_days=reader.parse("JOB_RETENTION_DAYS", 30, _bounded(1, 3650)),
            readiness_grace_seconds=reader.parse("READINESS_GRACE_SECONDS", 60, _bounded(1, 3600)),
            questions_per_hour=reader.parse("QUESTIONS_PER_HOUR", 20, _bounded(1, 1000)),
            search_days=reader.parse("SEARCH_DAYS", 30, _bounded(1, 3650)),
        )
        settings = dataclasses.replace(
            settings, given=frozenset(reader.given), invalid=frozenset(reader.invalid)
        )
        if bool(settings.slack_client_id) != bool(settings.slack_client_secret):
            reader.problems.append(
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together (multi-workspace install): "
                "set both or neither"
            )
        public = urlsplit(settings.public_url or "")
        # Plain http is for a bot on this machine only (development, tests): anywhere else
        # the webhook secret would cross the network in clear, and Slack refuses it.
        if public.scheme == "http" and public.hostname not in _LOOPBACK_NAMES:
            reader.problems.append(
                "PUBLIC_URL must be an https:// URL (http only for 127.0.0.1 or localhost): "
                "Slack's request URLs are https only, and the webhook secret must not cross "
                f"the network in clear (got {redact_url(public.geturl())!r})"
            )
        reader.problems.extend(_region_problems(settings))
        return settings, reader.problems


class _Asked(dict[str, str]):
    """An empty mapping that remembers which names were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.names.add(key)
        return default


def known_variables() -> frozenset[str]:
    """Every variable threadscribe reads (to point out a misspelt one in `.env`)."""
    asked = _Asked()
    Settings.read(asked)
    return frozenset(asked.names) | EXTRA_VARIABLES


def _is_eu(url: str) -> bool:
    return ".eu." in f".{urlsplit(url).hostname or ''}."


def gateway_for(base_url: str) -> str:
    """The LLM Gateway of the region `base_url` is in (EU keys work in the EU only)."""
    return EU_LLM_GATEWAY_URL if _is_eu(base_url) else DEFAULT_LLM_GATEWAY_URL


def _region_problems(settings: Settings) -> list[str]:
    """The API and the LLM Gateway must be in the same region (an EU key is EU-only)."""
    hosts = [
        urlsplit(u).hostname or "" for u in (settings.assemblyai_base_url, settings.llm_gateway_url)
    ]
    if not all(h.endswith("assemblyai.com") for h in hosts):
        return []  # a local emulator or a proxy: nothing to compare
    api_eu = _is_eu(settings.assemblyai_base_url)
    if api_eu == _is_eu(settings.llm_gateway_url):
        return []
    want = gateway_for(settings.assemblyai_base_url)
    region = "EU" if api_eu else "US"
    return [
        f"ASSEMBLYAI_LLM_GATEWAY_URL is in the other region from ASSEMBLYAI_BASE_URL ({region}): "
        f"set it to {want} (or leave it unset to follow ASSEMBLYAI_BASE_URL)"
    ]


@dataclass(frozen=True, slots=True)
class Environment:
    """The settings mapping the composition root reads: the environment over `.env`."""

    values: Mapping[str, str]
    #: the `.env` file that was read, if there was one
    dotenv: Path | None = None
    #: lines of `.env` that cannot be read (each names its line)
    problems: tuple[str, ...] = ()
    #: names in `.env` that threadscribe does not know (a misspelling, usually)
    unknown: tuple[str, ...] = ()


def read_environment(environ: Mapping[str, str], folder: Path) -> Environment:
    """`folder/.env` with the environment over it. Empty values are dropped from both: an
    empty line in `.env` or an exported empty variable means "unset", never "set to
    nothing". Nothing is written to `environ`."""
    path = folder / ENV_FILE
    from_file: dict[str, str] = {}
    problems: list[str] = []
    unknown: list[str] = []
    dotenv: Path | None = None
    if path.is_file():
        dotenv = path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path} cannot be read: {getattr(exc, 'strerror', None) or exc}")
            text = ""
        known = known_variables()
        for binding in parse_stream(io.StringIO(text)):
            line = binding.original.line
            if binding.error:
                problems.append(
                    f"{path} line {line} is not NAME=value: fix or delete it "
                    "(comments start with #)"
                )
            elif binding.key is not None and binding.key not in known:
                guess = difflib.get_close_matches(binding.key, sorted(known), n=1)
                hint = f" (did you mean {guess[0]}?)" if guess else ""
                unknown.append(f"{path} line {line}: {binding.key} is not a setting{hint}")
        # Quotes, `export` and comments as python-dotenv reads them; no ${...} expansion,
        # which would change a secret that happens to contain one.
        logging.getLogger("dotenv.main").disabled = True  # our own messages say it better
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
        from_file = {k: v.strip() for k, v in values.items() if v and v.strip()}
    merged = dict(from_file)
    merged.update({k: v for k, v in environ.items() if v.strip()})
    return Environment(merged, dotenv, tuple(problems), tuple(unknown))


def take_library_variables(environ: MutableMapping[str, str]) -> None:
    """Remove from `environ` what slack_bolt would read by itself (see LIBRARY_VARIABLES):
    the settings mapping holds them now, and every library gets them explicitly."""
    for name in LIBRARY_VARIABLES:
        environ.pop(name, None)


def env_file_warnings(env: Environment) -> list[str]:
    """What is worth a warning about `.env`: unknown names, and a file others can read."""
    warnings = list(env.unknown)
    if env.dotenv is not None:
        try:
            mode = env.dotenv.stat().st_mode
        except OSError:
            mode = 0
        if mode & 0o077:
            warnings.append(
                f"{env.dotenv} can be read by other users of this machine and holds secrets: "
                f"chmod 600 {env.dotenv}"
            )
    return warnings


MISSING_API_KEY: Final = (
    "ASSEMBLYAI_API_KEY is not set: put your AssemblyAI API key in the environment or in .env "
    "(see .env.example)"
)


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.given: set[str] = set()
        self.invalid: set[str] = set()

    def optional(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        if value:
            self.given.add(name)
        return value or None

    def parse(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name} {exc}")
            self.invalid.add(name)
            return default

    def secret(self, name: str, prefix: str | None = None) -> Secret | None:
        raw = self.optional(name)
        if raw is None:
            return None
        if prefix and not raw.startswith(prefix):
            # Never echo the value: a mistyped secret is still a secret.
            self.problems.append(
                f"{name} should start with {prefix!r}: check you copied the right token"
            )
        return Secret(raw)

    def url(self, name: str, default: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        return self.parse(name, default, lambda raw: _url(raw, schemes))

    def optional_url(self, name: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
        return self.parse(name, None, lambda raw: _url(raw, schemes))


def _url(raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must be a URL starting with {wanted} (got {redact_url(raw)!r})")
    return raw


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"must be a port number between 1 and 65535 (got {raw!r})")
    return int(raw)


def _host(raw: str) -> str:
    if "://" in raw or "/" in raw or " " in raw:
        raise ValueError(
            f"must be an address to listen on, such as 127.0.0.1 or 0.0.0.0 (got {raw!r})"
        )
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"must be one of DEBUG, INFO, WARNING, ERROR (got {raw!r})")
    return level


def _log_format(raw: str) -> LogFormat:
    try:
        return LogFormat(raw.lower())
    except ValueError:
        raise ValueError(f"must be text or json (got {raw!r})") from None


_MODEL = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


def parse_speech_models(raw: str) -> tuple[str, ...]:
    """`a,b,c` -> ('a', 'b', 'c'); ValueError explains a malformed list or a model that
    AssemblyAI does not accept (checked before anything is spent)."""
    models = tuple(m.strip() for m in raw.split(",") if m.strip())
    if not models or not all(_MODEL.match(m) for m in models):
        raise ValueError(
            "must be a comma-separated list of model names, e.g. "
            f"{','.join(DEFAULT_SPEECH_MODELS)} (got {raw!r})"
        )
    problems = [p for p in map(speech_model_problem, models) if p is not None]
    if problems:
        # One run names everything: a deprecated model beside the rejected one is said too.
        notes = [w for w in map(speech_model_warning, models) if w is not None]
        raise ValueError(
            "names a model AssemblyAI does not accept: " + "; ".join([*problems, *notes])
        )
    if len(set(models)) != len(models):
        raise ValueError(f"names a model twice (got {raw!r})")
    return models


def speech_model_warnings(models: tuple[str, ...]) -> list[str]:
    """Deprecation notes for the configured models (a warning at start and in doctor)."""
    return [w for w in map(speech_model_warning, models) if w is not None]


def _database_url(raw: str) -> str:
    # The store's own check, which also accepts postgres:// and sqlite:// and pins the
    # asyncio driver. Only the reason is repeated: a password with a / or # in it would
    # defeat any attempt to show the rest of the URL safely.
    try:
        url = parse_database_url(raw)
    except InvalidDatabaseURL as exc:
        raise ValueError(
            f"cannot be used: {exc.reason}. Use sqlite+aiosqlite:///path/to/file.db or "
            "postgresql+asyncpg://user:password@host/database"
        ) from None
    return url.render_as_string(hide_password=False)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"must be a whole number from {low} to {high} (got {raw!r})")
        return int(raw)

    return parse


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false (got {raw!r})")


def _model_name(raw: str) -> str:
    if not _MODEL.match(raw):
        raise ValueError(f"must be a model name such as {DEFAULT_LLM_MODEL} (got {raw!r})")
    return raw


def _snowflake(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 20:
        raise ValueError(f"must be a server (guild) id: digits only (got {raw!r})")
    return int(raw)


_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _slack_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not all(_SLACK_ID.match(i) for i in ids):
        raise ValueError(f"must be comma-separated member ids such as U0123ABCD (got {raw!r})")
    return ids


def _ids(raw: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not ids or not all(pattern.match(i) for i in ids):
        raise ValueError(f"must be comma-separated ids such as {example} (got {raw!r})")
    return ids


def _team_ids(raw: str) -> tuple[str, ...]:
    return _ids(raw, re.compile(r"^[TE][A-Z0-9]{2,}$"), "T0123ABCD (Slack workspace ids)")


def _guild_ids(raw: str) -> tuple[str, ...]:
    return _ids(raw, re.compile(r"^\d{1,20}$"), "1310000000000000100 (Discord server ids)")


def _channel_ids(raw: str) -> tuple[str, ...]:
    # Slack's C/G ids and Discord's snowflakes never collide, so one list serves both.
    return _ids(raw, re.compile(r"^(?:[CG][A-Z0-9]{2,}|\d{1,20})$"), "C0123ABCD or a Discord id")


def parse_pii_policies(raw: str) -> tuple[str, ...]:
    """`phone_number,email_address` -> a tuple; ValueError names an unknown policy."""
    policies = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [p for p in policies if p not in PII_POLICIES]
    if not policies or unknown:
        close = difflib.get_close_matches(unknown[0], sorted(PII_POLICIES), n=1) if unknown else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(
            "must be a comma-separated list of AssemblyAI PII policies such as "
            f"phone_number,email_address{hint} (got {raw!r})"
        )
    return policies


def _pii_substitution(raw: str) -> str:
    value = raw.strip().lower()
    if value not in PII_SUBSTITUTIONS:
        raise ValueError(f"must be entity_name ([PHONE_NUMBER]) or hash (####) (got {raw!r})")
    return value


def _hours(raw: str) -> float:
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 1_000_000:  # NaN fails it too
        raise ValueError(f"must be a number of hours above 0, such as 50 or 7.5 (got {raw!r})")
    return hours


def _prices(raw: str) -> tuple[tuple[str, float], ...]:
    """`assemblyai-stt-3-7=0.21,universal-2=0.15`: models not named keep their default."""
    prices = dict(DEFAULT_PRICE_PER_HOUR)
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        model, sep, value = part.partition("=")
        model = model.strip()
        try:
            price = float(value) if sep else -1.0
        except ValueError:
            price = -1.0
        if model not in ACCEPTED_SPEECH_MODELS or not 0 <= price < 1000:
            raise ValueError(
                "must be model=USD-per-hour pairs, comma-separated, such as "
                f"assemblyai-stt-3-7=0.21,universal-2=0.15 (got {part!r})"
            )
        prices[model] = price
    return tuple(prices.items())
