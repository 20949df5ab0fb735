"""Every sentence people read, written once, here, for every surface (the terminal, Slack,
Discord): what went wrong and what to do, the status line, the replies to requests.

Texts that name a platform's own things (Slack scopes, Discord permissions, their
commands' syntax) live in the adapter's `texts` module; everything else is here. All are
plain text: an adapter escapes them for its markup."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.config import redact_url
from bot.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    PlatformError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SourceError,
    StoreError,
    TranscriptFailed,
    TransportError,
)


def explain(exc: BaseException) -> str:
    """One line (no traceback, no secret) describing `exc` for the person who asked."""
    match exc:
        case ConfigError():
            return "; ".join(exc.problems)
        case SourceError() | StoreError():
            return str(exc)
        case PlatformError():
            return exc.message
        case AuthenticationError():
            return (
                "AssemblyAI rejected the API key (401): check ASSEMBLYAI_API_KEY "
                "(AssemblyAI dashboard, API keys)"
            )
        case RateLimitError():
            return (
                "AssemblyAI is rate-limiting this account (429) and retries did not get through: "
                "try again in a few minutes"
            )
        case ServerError():
            return (
                f"AssemblyAI had a server error ({exc.status}) and retries did not get through: "
                f"{exc.message}"
            )
        case APIError():
            return f"AssemblyAI refused the request ({exc.status}): {exc.message}"
        case RequestTimeout() | TransportError():
            return f"could not reach AssemblyAI: {exc.message}"
        case TranscriptFailed():
            return assemblyai_failed(exc.message)
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


def download_stalled(platform: str, seconds: float) -> str:
    return (
        f"the download from {platform} stalled (nothing for too long, {seconds:.0f} s in "
        "all): trying again later"
    )


def upload_stalled(seconds: float) -> str:
    return f"the upload to AssemblyAI stalled ({seconds:.0f} s in all): trying again later"


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
    return f"AssemblyAI could not transcribe this audio: {unmarked(error or 'no reason given')}"


#: The job marker the engine adds to the audio URL it hands over (bot.engine.steps.marked);
#: AssemblyAI quotes that URL in its errors, and people need not read it.
_JOB_MARKER = re.compile(r"[#&]threadscribe-job=[0-9a-fA-F-]+")


def unmarked(text: str) -> str:
    return _JOB_MARKER.sub("", text)


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


# -- replies to people who asked ---------------------------------------------------------

USAGE = "/transcribe <link to audio or video> [speakers=N] [lang=xx] [srt] [vtt]"
NO_MEDIA = "I found no audio or video in that message (files or links) to transcribe."
ALREADY = "That is already transcribed, or on its way: see the thread."
STARTED = "On it: I'll post the transcript in a thread in this channel."
NEED_LINK = f"Give me a link to an audio or video file. Usage: {USAGE}"
NO_JOBS = "You have no transcriptions in progress."
NOT_ALLOWED = (
    "Only workspace admins and owners (or the people in the bot's admin list) can turn "
    "auto-transcribe on or off."
)


def refused(reasons: Sequence[str]) -> str:
    """What a person is told when recordings they shared cannot be transcribed."""
    if len(reasons) == 1:
        return f"Sorry, I cannot transcribe this: {reasons[0]}."
    return "Sorry, I cannot transcribe some of these:\n" + "\n".join(f"- {r}" for r in reasons)


def not_media(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3]) + (" and more" if len(names) > 3 else "")
    return f"{shown}: not audio or video, so there is nothing to transcribe."


def file_unusable(title: str) -> str:
    return f"{title}: the platform did not say where the file is; share it again"


def link_refused(url: str, reason: str) -> str:
    return f"{redact_url(url)}: {reason}"


def links_left(count: int, limit: int) -> str:
    return (
        f"{count:,} more link{'s' if count != 1 else ''}: I look at {limit} links of a "
        "message at most; post the others in another message"
    )


def auto_changed(enabled: bool, channel: str) -> str:
    if enabled:
        return f"Auto-transcribe is on in {channel}: I'll transcribe audio and video shared here."
    return (
        f"Auto-transcribe is off in {channel}. People can still ask: the /transcribe "
        "command, a mention, or Transcribe on a message."
    )


#: What each unfinished state is called in `/transcribe status`.
STATE_WORDS = {
    "fetching": "uploading to AssemblyAI",
    "submitted": "transcribing",
    "completed": "posting the result",
    "failed": "posting what went wrong",
}


def queued(ahead: int) -> str:
    return "queued, next up" if ahead == 0 else f"queued, {ahead} ahead"


def status_lines(entries: Sequence[tuple[str, str]]) -> str:
    """`entries` are (what, state) pairs, oldest first."""
    lines = [f"{i}. {what}: {state}" for i, (what, state) in enumerate(entries, 1)]
    return "Your transcriptions in progress:\n" + "\n".join(lines)
