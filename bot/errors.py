"""Every exception the core raises on purpose, in one tree.

    ThreadscribeError                 base of everything below
    ├── ConfigError                   settings that cannot work; `problems`: one line each
    ├── SourceError                   a file or link that cannot be transcribed (user's words)
    │   ├── OptionsError              a request's options make no sense (says the syntax)
    │   └── NotAudio                  a local file holds no audio (`kind`: what it holds)
    ├── Refused                       the terminal: a check before anything is spent failed
    ├── StoreError                    the job store
    │   ├── InvalidDatabaseURL        DATABASE_URL cannot be used as written (a ValueError)
    │   ├── DatabaseUnavailable       the database could not be opened, reached or migrated
    │   ├── SchemaTooNew              the database was migrated by a newer threadscribe
    │   ├── IllegalTransition         a state change the job lifecycle forbids (a bug)
    │   └── StoreClosed               the store was used after close()
    ├── AssemblyAIError               AssemblyAI; `message` is AssemblyAI's own, `status` HTTP
    │   ├── APIError                  AssemblyAI answered with an error status
    │   │   ├── BadRequestError       400 (and other 4xx not below): never retried
    │   │   ├── AuthenticationError   401: the API key is wrong
    │   │   ├── NotFoundError         404
    │   │   ├── RateLimitError        429 after every retry was spent
    │   │   └── ServerError           5xx after every retry was spent
    │   ├── TransportError            no usable answer (refused, reset, not JSON); `sent`
    │   ├── RequestTimeout            no answer in time after every retry
    │   ├── TranscriptFailed          the transcript ended with status `error`
    │   └── ClientClosedError         the client was used after close()
    ├── PlatformError                 Slack or Discord; `message` is for the thread
    │   ├── PlatformUnavailable       worth another try later (5xx, 429, no connection)
    │   └── PlatformRefused           will fail the same way again (permission, gone)
    │       └── FileUnavailable       the platform will not hand over the file
    └── JobOutcome                    how a step of a job ends other than normally
        ├── Retry                     try this step again later (`defer`: how much later)
        ├── Fail                      the job cannot succeed; `message` goes to the thread
        └── Lost                      the job changed under us (lease lost): leave it

Third-party errors are converted where they are caught, at the boundary, with `from exc`:
the adapters turn Slack's and Discord's errors into PlatformError, the client turns
aiohttp's into AssemblyAIError, the store turns SQLAlchemy's into StoreError. A user only
ever reads `message` (or `bot.messages.explain`), never a repr. Messages never hold a
secret: a URL in a message has its password hidden.
"""

from __future__ import annotations

from typing import Final


class ThreadscribeError(Exception):
    """Base of every error the core raises on purpose."""


# -- settings and sources --------------------------------------------------------------


class ConfigError(ThreadscribeError):
    """One or more settings are wrong; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class SourceError(ThreadscribeError):
    """The source cannot be transcribed; the message says why, for the user."""


class OptionsError(SourceError, ValueError):
    """A request's options (`speakers=`, `lang=`) make no sense; the message says why."""


class NotAudio(SourceError):
    """The file holds no audio track; `kind` is what it holds instead, when known."""

    def __init__(self, kind: str | None) -> None:
        super().__init__(kind or "no audio")
        self.kind = kind


class Refused(ThreadscribeError):
    """`threadscribe transcribe`: a check made before anything is spent failed; the
    message says why, in one line."""


# -- the job store ---------------------------------------------------------------------

SUPPORTED_URLS: Final = (
    "sqlite+aiosqlite:///path/to/threadscribe.db or "
    "postgresql+asyncpg://user:password@host:5432/dbname"
)


class StoreError(ThreadscribeError):
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
    """`from_state` and `to_state` are the JobState values involved."""

    def __init__(self, from_state: str, to_state: str) -> None:
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"a job cannot go from {from_state} to {to_state}")


class StoreClosed(StoreError):
    def __init__(self) -> None:
        super().__init__("the job store is closed")


# -- AssemblyAI --------------------------------------------------------------------------


class AssemblyAIError(ThreadscribeError):
    """Base of every error raised by the AssemblyAI client."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class APIError(AssemblyAIError):
    pass


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class NotFoundError(APIError):
    pass


class RateLimitError(APIError):
    def __init__(
        self, message: str, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class ServerError(APIError):
    pass


class TransportError(AssemblyAIError):
    """`sent` is False when no connection was made, so the request surely did nothing."""

    def __init__(self, message: str, status: int | None = None, *, sent: bool = True) -> None:
        super().__init__(message, status)
        self.sent = sent


class RequestTimeout(AssemblyAIError):
    pass


class ClientClosedError(AssemblyAIError):
    pass


class TranscriptFailed(AssemblyAIError):
    """AssemblyAI finished the job with status `error`; `message` is its explanation."""

    def __init__(self, transcript_id: str, message: str) -> None:
        super().__init__(message)
        self.transcript_id = transcript_id


# -- chat platforms ------------------------------------------------------------------------


class PlatformError(ThreadscribeError):
    """A platform call failed; `message` says so in words the thread can be shown. Raise
    one of the two subclasses: whether trying again can help is the class, not a flag."""

    retryable: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PlatformUnavailable(PlatformError):
    """Trying again later may work: the platform was unreachable, slow or rate-limiting."""

    retryable = True


class PlatformRefused(PlatformError):
    """Trying again will fail the same way: a missing permission, a channel that is gone."""

    retryable = False


class FileUnavailable(PlatformRefused):
    """The platform would not give us the file; `message` tells the user why and what to do
    (for example which permission the app lacks)."""


# -- how a step of a job ends --------------------------------------------------------------


class JobOutcome(ThreadscribeError):
    """Raised inside a job's step; the worker turns it into the job's next state."""


class Retry(JobOutcome):
    """Run this step again later, after `defer` seconds (None: the worker's backoff);
    `message` explains the last failure and is kept in the job's `last_error`."""

    def __init__(self, message: str, *, defer: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.defer = defer


class Fail(JobOutcome):
    """The job cannot succeed; `message` is what the thread is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Lost(JobOutcome):
    """The job changed under us (its lease was lost, another writer won): stop here."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
