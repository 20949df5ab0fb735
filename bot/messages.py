"""What users are told when something goes wrong: written once, here, for every surface
(the terminal and the chat thread). Each message says what happened and what to do."""

from __future__ import annotations

from bot import assemblyai as aai
from bot.errors import ConfigError, PlatformError, SourceError, StoreError


def explain(exc: BaseException) -> str:
    """One line (no traceback, no secret) describing `exc` for the person who asked."""
    match exc:
        case ConfigError():
            return "; ".join(exc.problems)
        case SourceError() | StoreError():
            return str(exc)
        case PlatformError():
            return exc.message
        case aai.AuthenticationError():
            return (
                "AssemblyAI rejected the API key (401): check ASSEMBLYAI_API_KEY "
                "(AssemblyAI dashboard, API keys)"
            )
        case aai.RateLimitError():
            return (
                "AssemblyAI is rate-limiting this account (429) and retries did not get through: "
                "try again in a few minutes"
            )
        case aai.ServerError():
            return (
                f"AssemblyAI had a server error ({exc.status}) and retries did not get through: "
                f"{exc.message}"
            )
        case aai.APIError():
            return f"AssemblyAI refused the request ({exc.status}): {exc.message}"
        case aai.RequestTimeout() | aai.TransportError():
            return f"could not reach AssemblyAI: {exc.message}"
        case aai.TranscriptFailed():
            return f"AssemblyAI could not transcribe this audio: {exc.message}"
        case OSError():
            target = f" {exc.filename}" if exc.filename else ""
            return f"cannot access{target}: {exc.strerror or exc}"
    return f"unexpected error ({type(exc).__name__}); the details are in the log"


# -- the thread: status line and outcomes ---------------------------------------------

SHUTTING_DOWN = "threadscribe is restarting: please try again in a minute"
EMPTY_FILE = "that file is empty (0 bytes): there is nothing to transcribe"
RENDER_FAILED = "the transcript arrived but could not be formatted; the details are in the log"


def _megabytes(size: float) -> str:
    return f"{size / 1_000_000:,.0f} MB" if size >= 10_000_000 else f"{size / 1_000_000:.1f} MB"


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"


def too_large(size: float, limit: float) -> str:
    return f"that file is {_megabytes(size)}; this workspace's limit is {_megabytes(limit)}"


def too_long(seconds: float, limit: float) -> str:
    return f"that recording lasts {_minutes(round(seconds))}; the limit is {_minutes(limit)}"


def user_limit(limit: int) -> str:
    return (
        f"you already have {limit} transcription{'s' if limit != 1 else ''} in progress: "
        "please wait for one to finish"
    )


def channel_limit(limit: int) -> str:
    return f"this channel already has {limit} transcriptions in progress: please wait a little"


def gave_up(message: str) -> str:
    return f"{message} (gave up after several tries)"


def assemblyai_failed(error: str | None) -> str:
    return f"AssemblyAI could not transcribe this audio: {error or 'no reason given'}"


def failed(reason: str) -> str:
    return f"Sorry, I could not transcribe this: {reason}"


def status_queued(ahead: int) -> str:
    if ahead == 0:
        return "⏳ Queued: starting in a moment"
    return f"⏳ Queued: {ahead} job{'s' if ahead != 1 else ''} ahead"


def status_working() -> str:
    return "⏳ Working on it"


def status_uploading() -> str:
    return "⬆️ Uploading the audio to AssemblyAI"


def status_transcribing(elapsed: float | None) -> str:
    if not elapsed:
        return "🎧 Transcribing"
    minutes, seconds = divmod(int(elapsed), 60)
    return f"🎧 Transcribing ({minutes}:{seconds:02d} so far)"


def status_done() -> str:
    return "✅ Transcribed"


def status_failed() -> str:
    return "❌ Could not transcribe"
