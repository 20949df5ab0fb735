"""What the Slack adapter tells people, in one place.

Texts marked *generic* say nothing Slack-specific and belong in `bot.messages` once the
Discord adapter needs them too; the rest mention Slack's own words (scopes, /invite).
All are plain text: `slack_format` escapes them for mrkdwn.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.errors import SlackApiError

from adapters.base import USAGE

# -- /transcribe ------------------------------------------------------------------------

#: generic
HELP = (
    "threadscribe transcribes audio and video into the thread, with speakers and a summary.\n"
    f"• {USAGE}\n"
    "• /transcribe on | off: transcribe every audio or video file shared in this channel "
    "(workspace admins)\n"
    "• /transcribe status: your transcriptions in progress\n"
    "• On any message with audio or video: More actions (⋯) → Transcribe, or mention me."
)

#: generic
NEED_LINK = f"Give me a link to an audio or video file. {USAGE}"


def auto_changed(enabled: bool, channel: str) -> str:
    """generic"""
    if enabled:
        return f"Auto-transcribe is on in #{channel}: I'll transcribe audio and video shared here."
    return (
        f"Auto-transcribe is off in #{channel}. People can still use /transcribe, mention me, "
        "or use the Transcribe shortcut on a message."
    )


#: generic
NOT_ALLOWED = (
    "Only workspace admins and owners (or the people in the bot's admin list) can turn "
    "auto-transcribe on or off."
)

#: generic
NO_JOBS = "You have no transcriptions in progress."


def status_lines(entries: Sequence[tuple[str, str]]) -> str:
    """generic: `entries` are (what, state) pairs, oldest first."""
    lines = [f"{i}. {what}: {state}" for i, (what, state) in enumerate(entries, 1)]
    return "Your transcriptions in progress:\n" + "\n".join(lines)


def queued(ahead: int) -> str:
    """generic"""
    return "queued, next up" if ahead == 0 else f"queued, {ahead} ahead"


#: generic, keyed by JobState value
STATE_WORDS = {
    "fetching": "uploading to AssemblyAI",
    "submitted": "transcribing",
    "completed": "posting the result",
    "failed": "posting what went wrong",
}

# -- triggers ----------------------------------------------------------------------------

#: generic
NO_MEDIA = "I found no audio or video in that message (files or links) to transcribe."


def not_media(names: Sequence[str]) -> str:
    """generic"""
    shown = ", ".join(names[:3]) + (" and more" if len(names) > 3 else "")
    return f"{shown}: not audio or video, so there is nothing to transcribe."


#: generic
ALREADY = "That is already transcribed, or on its way: see the thread."

#: generic
STARTED_BY_COMMAND = "On it: I'll post the transcript in a thread in this channel."


def requested_by(user: str, source: str) -> str:
    """The line over a thread the bot starts for a slash command (mrkdwn, already safe)."""
    return f"<@{user}> asked for a transcript of {source}"


#: Slack-only
INVITE_ME = (
    "I'm not a member of this channel, so I can't post the transcript here. "
    "Invite me with /invite @threadscribe and try again."
)

# -- private files -------------------------------------------------------------------------

#: Slack-only
MISSING_FILES_READ = (
    "Slack sent a sign-in page instead of the file: the app lacks the files:read scope. "
    "Add files:read under OAuth & Permissions (or update the app from slack-manifest.yml), "
    "reinstall it, and share the file again."
)

#: generic
FILE_GONE = "The file is gone (deleted, or no longer shared): share it again to transcribe it."

#: Slack-only
FILE_REFUSED = (
    "Slack refused to hand over the file ({status}): check the app is installed and still "
    "in the channel, then share the file again."
)


# -- start-up ----------------------------------------------------------------------------


def token_refused(variable: str, exc: SlackApiError) -> str:
    """Slack-only"""
    error = exc.response.get("error")
    if variable == "SLACK_APP_TOKEN":
        where = "Basic Information → App-Level Tokens (scope connections:write)"
    else:
        where = "OAuth & Permissions → Bot User OAuth Token (xoxb-...); reinstall the app"
    return f"{variable} was refused by Slack ({error}): copy it again from {where}"


def unreachable(api_url: str, exc: BaseException) -> str:
    """Slack-only: the start-up line when the Web API does not answer."""
    reason = str(exc) or type(exc).__name__
    return f"cannot reach Slack at {api_url} ({reason}): check SLACK_API_URL and the network"
