"""The durable job record and its store.

    store = await JobStore.open("sqlite+aiosqlite:///./threadscribe.db")
    job, created = await store.admission.intake(IntakeRecord(...))  # before acknowledging
    for job in await store.queue.claim("w1", lease_seconds=60, states=[JobState.RECEIVED]):
        ...
        await store.queue.transition(job.id, "w1", JobState.RECEIVED, JobState.FETCHING)

`records` holds the enums and dataclasses callers see, `models` the tables, `database`
URL checks, engines, migrations and the shared connection; `store` opens it and answers
reads, `queue`, `admission` and `settings` do the writes. The exceptions are the
StoreError branch of bot/errors.py.
"""

from bot.errors import (
    DatabaseUnavailable,
    IllegalTransition,
    InvalidDatabaseURL,
    SchemaTooNew,
    StoreClosed,
    StoreError,
)
from bot.jobs.database import DEFAULT_DATABASE_URL, parse_database_url
from bot.jobs.records import (
    Admission,
    Budget,
    ChannelPolicy,
    ChannelPreferences,
    ChannelSettings,
    DeliveryStep,
    FileSource,
    IntakeRecord,
    Job,
    JobFields,
    JobOptions,
    JobState,
    Limits,
    Platform,
    Redaction,
    Refusal,
    Source,
    UrlSource,
)
from bot.jobs.store import JobStore
from bot.jobs.usage import UsageReport, month_start, next_month

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Admission",
    "Budget",
    "ChannelPolicy",
    "ChannelPreferences",
    "ChannelSettings",
    "DatabaseUnavailable",
    "DeliveryStep",
    "FileSource",
    "IllegalTransition",
    "IntakeRecord",
    "InvalidDatabaseURL",
    "Job",
    "JobFields",
    "JobOptions",
    "JobState",
    "JobStore",
    "Limits",
    "Platform",
    "Redaction",
    "Refusal",
    "SchemaTooNew",
    "Source",
    "StoreClosed",
    "StoreError",
    "UrlSource",
    "UsageReport",
    "month_start",
    "next_month",
    "parse_database_url",
]
