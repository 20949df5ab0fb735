"""The tables, as typed declarative models. The schema itself is created and changed
only by the migrations in `bot/jobs/migrations`; a test checks the two agree."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false, text
from sqlalchemy.types import TypeDecorator

from bot.jobs.records import (
    ChannelPolicy,
    ChannelPreferences,
    ChannelSettings,
    Job,
    JobOptions,
    JobState,
    Platform,
    source_from_json,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL keeps `timestamptz`. SQLite has no time zones: values are stored as naive
    UTC in SQLAlchemy's fixed-width text format, so comparisons in SQL stay correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the job store takes aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _str_enum(cls: type[enum.StrEnum]) -> Enum:
    # Stored as plain VARCHAR holding the values, so adding a member needs no migration.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
ID = String(64)  # platform ids: Slack team/channel/user ids and ts, Discord snowflakes


class Base(DeclarativeBase):
    # Named constraints, so migrations can refer to them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    platform: Mapped[Platform] = mapped_column(_str_enum(Platform))
    workspace: Mapped[str] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(ID)
    thread: Mapped[str | None] = mapped_column(ID)
    message: Mapped[str | None] = mapped_column(ID)
    requester: Mapped[str] = mapped_column(ID)
    source: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    options: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    state: Mapped[JobState] = mapped_column(_str_enum(JobState))
    transcript_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    audio_duration: Mapped[float | None] = mapped_column(Float)
    posted: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    direct_failed: Mapped[bool] = mapped_column(default=False, server_default=false())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polls: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    audio_url: Mapped[str | None] = mapped_column(Text)
    submit_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redo_of: Mapped[str | None] = mapped_column(String(36))
    people: Mapped[list[list[str]] | None] = mapped_column(JSONDocument)
    speakers: Mapped[list[list[str]] | None] = mapped_column(JSONDocument)
    author: Mapped[str | None] = mapped_column(ID)
    billed_seconds: Mapped[float | None] = mapped_column(Float)
    speech_model: Mapped[str | None] = mapped_column(String(64))
    budget_seconds: Mapped[float | None] = mapped_column(Float)
    transcript_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_jobs_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_requester_state", "platform", "workspace", "requester", "state"),
        Index("ix_jobs_channel_state", "platform", "workspace", "channel", "state"),
        Index("ix_jobs_state_created_at", "state", "created_at", "id"),
        Index("ix_jobs_state_lease", "state", "lease_expires_at"),
        Index("ix_jobs_redo_of", "redo_of"),
    )


class ChannelSettingsRow(Base):
    __tablename__ = "channel_settings"

    platform: Mapped[Platform] = mapped_column(_str_enum(Platform), primary_key=True)
    workspace: Mapped[str] = mapped_column(ID, primary_key=True)
    channel: Mapped[str] = mapped_column(ID, primary_key=True)
    # Each setting is NULL until someone sets it: the deployment's default applies.
    policy: Mapped[ChannelPolicy | None] = mapped_column(_str_enum(ChannelPolicy))
    redact_pii: Mapped[bool | None]
    redact_pii_audio: Mapped[bool | None]
    updated_by: Mapped[str] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelPreferencesRow(Base):
    """What a channel chose beyond auto-transcribe: speaker names, the summary, a
    translation, its vocabulary. NULL: the deployment's default."""

    __tablename__ = "channel_preferences"

    platform: Mapped[Platform] = mapped_column(_str_enum(Platform), primary_key=True)
    workspace: Mapped[str] = mapped_column(ID, primary_key=True)
    channel: Mapped[str] = mapped_column(ID, primary_key=True)
    names: Mapped[bool | None]
    summary: Mapped[bool | None]
    translate_to: Mapped[str | None] = mapped_column(String(16))
    keyterms: Mapped[list[str]] = mapped_column(JSONDocument)
    spellings: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    updated_by: Mapped[str] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OptOutRow(Base):
    """People who opted out of automatic transcription (`/transcribe optout`)."""

    __tablename__ = "opt_outs"

    platform: Mapped[Platform] = mapped_column(_str_enum(Platform), primary_key=True)
    person: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageRow(Base):
    """What each job costs: the seconds reserved when it was taken in (its length, or the
    most it may run), then the seconds AssemblyAI billed. Kept apart from the jobs, whose
    rows are pruned after JOB_RETENTION_DAYS, for USAGE_RETENTION_DAYS."""

    __tablename__ = "usage"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    platform: Mapped[Platform] = mapped_column(_str_enum(Platform))
    workspace: Mapped[str] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(ID)
    person: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reserved_seconds: Mapped[float] = mapped_column(Float)
    billed_seconds: Mapped[float | None] = mapped_column(Float)
    speech_model: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_usage_workspace_created_at", "platform", "workspace", "created_at"),
    )


class LlmUsageRow(Base):
    """Tokens the LLM Gateway counted for one of the bot's answers to a question, by
    whom and where it was asked: with the seconds in `/transcribe usage`, kept as long
    (USAGE_RETENTION_DAYS)."""

    __tablename__ = "llm_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[Platform] = mapped_column(_str_enum(Platform))
    workspace: Mapped[str] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(ID)
    person: Mapped[str] = mapped_column(ID)
    purpose: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_llm_usage_workspace_created_at", "platform", "workspace", "created_at"),
    )


class NoticeRow(Base):
    """Things said once (budget alerts, "not enabled here"), by key, across replicas and
    restarts."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeploymentSecretRow(Base):
    """Secrets made once per deployment and shared by its replicas (the webhook secret)."""

    __tablename__ = "deployment_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def job_of(row: JobRow) -> Job:
    """The record callers see, for a row."""
    return Job(
        id=row.id,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        thread=row.thread,
        message=row.message,
        requester=row.requester,
        source=source_from_json(row.source),
        options=JobOptions.from_json(row.options),
        state=row.state,
        transcript_id=row.transcript_id,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_attempt_at=row.next_attempt_at,
        audio_duration=row.audio_duration,
        posted=dict(row.posted),
        direct_failed=row.direct_failed,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        dedupe_key=row.dedupe_key,
        polls=row.polls,
        submitted_at=row.submitted_at,
        audio_url=row.audio_url,
        submit_started_at=row.submit_started_at,
        redo_of=row.redo_of,
        people=tuple((str(i), str(n)) for i, n in row.people or ()),
        speakers=None if row.speakers is None else tuple((str(k), str(v)) for k, v in row.speakers),
        author=row.author,
        billed_seconds=row.billed_seconds,
        speech_model=row.speech_model,
        budget_seconds=row.budget_seconds,
        transcript_deleted_at=row.transcript_deleted_at,
    )


def channel_settings_of(row: ChannelSettingsRow) -> ChannelSettings:
    return ChannelSettings(
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        policy=row.policy,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        redact_pii=row.redact_pii,
        redact_pii_audio=row.redact_pii_audio,
    )


def channel_preferences_of(row: ChannelPreferencesRow) -> ChannelPreferences:
    return ChannelPreferences(
        names=row.names,
        summary=row.summary,
        translate_to=row.translate_to,
        keyterms=tuple(row.keyterms or ()),
        spellings=tuple(
            (tuple(str(f) for f in item["from"]), str(item["to"])) for item in row.spellings or ()
        ),
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
