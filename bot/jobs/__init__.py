"""The durable job record and its store.

    store = await JobStore.open("sqlite+aiosqlite:///./threadscribe.db")
    job, created = await store.intake(IntakeRecord(...))   # before acknowledging
    for job in await store.claim("worker-1", lease_seconds=60, states=[JobState.RECEIVED]):
        ...
        await store.transition(job.id, "worker-1", JobState.RECEIVED, JobState.FETCHING)

`records` holds the enums and dataclasses callers see, `models` the tables, `database`
URL checks, engines and migrations, `store` the operations; the exceptions are the
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
    ChannelSettings,
    FileSource,
    IntakeRecord,
    Job,
    JobFields,
    JobState,
    Limits,
    Platform,
    Refusal,
    Source,
    UrlSource,
)
from bot.jobs.store import JobStore

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Admission",
    "ChannelSettings",
    "DatabaseUnavailable",
    "FileSource",
    "IllegalTransition",
    "IntakeRecord",
    "InvalidDatabaseURL",
    "Job",
    "JobFields",
    "JobState",
    "JobStore",
    "Limits",
    "Platform",
    "Refusal",
    "SchemaTooNew",
    "Source",
    "StoreClosed",
    "StoreError",
    "UrlSource",
    "parse_database_url",
]
