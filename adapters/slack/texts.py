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
    "• /transcribe search <words>: where this channel's recordings of the last days say "
    "them (only you see the answer)\n"
    "• In a transcript's thread, mention me with a question: “@threadscribe what did Ada "
    "decide?”\n"
    "• /transcribe vocab add Kubernetes, Thessaloniki | remove … | spell di carlo as DiCarlo "
    "| list: words this channel's transcripts should get right\n"
    "• /transcribe names on|off, summary on|off, translate es|off, settings: this "
    "channel's transcripts (admins)\n"
    "• /transcribe optout | optin: whether recordings you share are transcribed "
    "automatically\n"
    "• /transcribe usage: this month's hours and estimated cost (workspace admins)\n"
    "• On a result: Rename speakers, or Redo with another language, speaker count or a "
    "translation.\n"
    "• On any message with audio or video: More actions (⋯) → Transcribe, or mention me; "
    "More actions → Forget transcript removes a transcript.\n"
    "• /transcribe-settings: this channel's policy and PII redaction"
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
    "dropped. Install it there: open /slack/install at the bot's public address (PUBLIC_URL)"
)
NO_INSTALL_YET: Final = (
    "Slack: no workspace has installed threadscribe yet, so events are dropped until one "
    "does: open /slack/install at the bot's public address, PUBLIC_URL (SLACK_CLIENT_ID and "
    "SLACK_CLIENT_SECRET switch on "
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


# -- privacy and cost controls -------------------------------------------------------------

ADMINS_ONLY: Final = (
    "Only workspace admins and owners (or the people in the bot's admin list, "
    "SLACK_ADMIN_USERS) can change this or see the usage."
)

SETTINGS_HELP: Final = (
    "/transcribe-settings: how threadscribe behaves in this channel.\n"
    "• /transcribe-settings: this channel's settings\n"
    "• /transcribe-settings policy auto | on-request | off | default: transcribe every "
    "recording shared here, only those someone asks for, or none (admins)\n"
    "• /transcribe-settings redact on | off | default: redact personal data (PII) from "
    "transcripts here (admins)\n"
    "• /transcribe-settings redacted-audio on | off | default: also post the audio with "
    "the personal data beeped out (admins)\n"
    "• /transcribe-settings names on|off, summary on|off, translate es|off: speaker names, "
    "the AI summary and a translation here (admins); vocab add|remove|spell|list: words "
    "this channel's transcripts should get right (anyone)\n"
    "Your own choice: /transcribe optout | optin. Usage: /transcribe usage (admins). "
    "To remove a transcript: More actions (⋯) → Forget transcript, on the message."
)

NO_MESSAGE: Final = "Slack did not say which message that was: try again on the message."
FORM_NOT_OPENED: Final = "Slack did not open the form: please try again."
FORGET_HOW: Final = (
    "To remove a transcript, use More actions (⋯) → Forget transcript on the recording's "
    "message or on my result in its thread: my posts there, the transcript at AssemblyAI "
    "and my record of it are deleted."
)
#: The assistant status while a question is answered (Slack shows it as "<app> is …").
THINKING: Final = "is reading the transcript…"


def searching(words: str) -> str:
    return f"Searching this channel's recordings for “{words}”…"
