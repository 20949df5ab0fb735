"""Errors raised by the job store.

    StoreError                  anything the store raises on purpose
    ├── InvalidDatabaseURL      DATABASE_URL cannot be used as written (also a ValueError)
    ├── DatabaseUnavailable     the database could not be opened, reached or migrated
    ├── SchemaTooNew            the database was migrated by a newer threadscribe
    ├── IllegalTransition       a state change the job lifecycle does not allow (a bug)
    └── StoreClosed             the store was used after close()

Messages say what to change. A URL in a message or an attribute is always rendered
with its password hidden.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.jobs.records import JobState

SUPPORTED_URLS = (
    "sqlite+aiosqlite:///path/to/threadscribe.db or "
    "postgresql+asyncpg://user:password@host:5432/dbname"
)


class StoreError(Exception):
    """Base class of the job store's errors."""


class InvalidDatabaseURL(StoreError, ValueError):
    """`url` is the offending URL with its password hidden, or None if it did not parse."""

    def __init__(self, url: str | None, reason: str) -> None:
        self.url = url
        self.reason = reason
        shown = repr(url) if url is not None else "(not shown: it does not parse as a URL)"
        super().__init__(f"DATABASE_URL {shown} cannot be used: {reason}. Use {SUPPORTED_URLS}.")


class DatabaseUnavailable(StoreError):
    """`url` has its password hidden; `reason` is the driver's own explanation."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        if url.startswith("sqlite"):
            fix = "Check that the file's folder exists and that this user may write there."
        else:
            fix = (
                "Check that the database server is running and reachable from here, and "
                "that DATABASE_URL names the right host, port, user, password and database."
            )
        super().__init__(f"cannot open the job database at {url}: {reason}. {fix}")


class SchemaTooNew(StoreError):
    def __init__(self, url: str, revision: str) -> None:
        self.url = url
        self.revision = revision
        super().__init__(
            f"the job database at {url} has schema revision {revision!r}, which this "
            "version of threadscribe does not know: it was upgraded by a newer release. "
            "Run the newer threadscribe, or point DATABASE_URL at another database."
        )


class IllegalTransition(StoreError, ValueError):
    def __init__(self, from_state: JobState, to_state: JobState) -> None:
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"a job cannot go from {from_state.value} to {to_state.value}")


class StoreClosed(StoreError):
    def __init__(self) -> None:
        super().__init__("the job store is closed")
