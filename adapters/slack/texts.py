"""What only Slack's users and operators are told: Slack's own words (scopes, /invite,
the App Manifest). Everything else people read is in `bot.messages`. All are plain
text: `blocks.escape` makes them safe for mrkdwn."""

from __future__ import annotations

from typing import Final

from slack_sdk.errors import SlackApiError

from adapters.slack.errors import error_code
from bot.messages import USAGE

HELP: Final = (
    "threadscribe transcribes audio and video into the thread, with speakers and a summary.\n"
    f"• {USAGE}\n"
    "• /transcribe on | off: transcribe every audio or video file shared in this channel "
    "(workspace admins)\n"
    "• /transcribe status: your transcriptions in progress\n"
    "• On any message with audio or video: More actions (⋯) → Transcribe, or mention me."
)

INVITE_ME: Final = (
    "I'm not a member of this channel, so I can't post the transcript here. "
    "Invite me with /invite @threadscribe and try again."
)


def requested_by(user: str, source: str) -> str:
    """The line over a thread the bot starts for a slash command (mrkdwn, already safe)."""
    return f"<@{user}> asked for a transcript of {source}"


# -- private files -------------------------------------------------------------------------

MISSING_FILES_READ: Final = (
    "Slack sent a sign-in page instead of the file: the app lacks the files:read scope. "
    "Add files:read under OAuth & Permissions (or update the app from slack-manifest.yml), "
    "reinstall it, and share the file again."
)
FILE_GONE: Final = (
    "The file is gone (deleted, or no longer shared): share it again to transcribe it."
)
FILE_REFUSED: Final = (
    "Slack refused to hand over the file ({status}): check the app is installed and still "
    "in the channel, then share the file again."
)


def download_failed(reason: str) -> str:
    return f"could not download the file from Slack ({reason}); trying again later"


def not_installed(team: str) -> str:
    return (
        f"threadscribe is not installed in Slack workspace {team} (any more): "
        "install it again from /slack/install"
    )


# -- start-up ----------------------------------------------------------------------------

EVENT_NOT_INSTALLED: Final = (
    "Slack: an event came from a workspace where threadscribe is not installed; it was "
    "dropped. Install it there from PUBLIC_URL/slack/install"
)
NO_INSTALL_YET: Final = (
    "Slack: no workspace has installed threadscribe yet, so events are dropped until one "
    "does: open PUBLIC_URL/slack/install (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET switch on "
    "multi-workspace installs; remove them to use SLACK_BOT_TOKEN in one workspace)"
)


def token_refused(variable: str, exc: SlackApiError) -> str:
    if variable == "SLACK_APP_TOKEN":
        where = "Basic Information → App-Level Tokens (scope connections:write)"
    else:
        where = "OAuth & Permissions → Bot User OAuth Token (xoxb-...); reinstall the app"
    return f"{variable} was refused by Slack ({error_code(exc)}): copy it again from {where}"


def unreachable(api_url: str, exc: BaseException) -> str:
    """The start-up line when the Web API does not answer."""
    reason = str(exc) or type(exc).__name__
    return f"cannot reach Slack at {api_url} ({reason}): check SLACK_API_URL and the network"
