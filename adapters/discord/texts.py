"""What only Discord's users and operators are told: its commands, its permissions and
its Developer Portal. Everything else people read is in `bot.messages`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

#: Everything the bot does in a channel, as the Discord client names the permissions.
PERMISSIONS: Final = (
    "View Channel, Send Messages, Send Messages in Threads, Create Public Threads, "
    "Embed Links, Attach Files, Read Message History and Add Reactions"
)

# -- operators: start-up ---------------------------------------------------------------

TOKEN_MISSING: Final = "DISCORD_TOKEN is not set: copy the bot token from the Developer Portal"
TOKEN_REJECTED: Final = (
    "DISCORD_TOKEN was rejected by Discord (401 Unauthorized): in the Developer Portal open "
    "Bot -> Reset Token and put the new token in DISCORD_TOKEN"
)
INTENT_MISSING: Final = (
    "Discord refused the Message Content intent (gateway close 4014): in the Developer Portal "
    "open Bot -> Privileged Gateway Intents and switch on Message Content Intent"
)


def unreachable(what: str, reason: str) -> str:
    return f"cannot reach Discord ({what}): {reason}"


def not_ready(seconds: float) -> str:
    return f"the Discord gateway did not become ready within {seconds:g} s"


def sync_refused(scope: str, reason: str) -> str:
    return (
        f"Discord refused to register the slash commands {scope} ({reason}): invite the bot "
        "with the applications.commands scope (see docs/discord.md), or check DISCORD_DEV_GUILD"
    )


# -- users: /transcribe and the context menu -------------------------------------------

USAGE: Final = (
    "Attach a recording with `file:` or give a link with `url:` (one of the two), "
    "optionally with `speakers:`, `language:` and `translate:`."
)
NO_MEDIA_IN_MESSAGE: Final = "That message has no audio or video file, and no link to one."
SHUTTING_DOWN: Final = "threadscribe is restarting: please try again in a minute."
UNEXPECTED: Final = "Something went wrong on my side; the details are in the bot's log."


def not_media(filename: str, content_type: str | None) -> str:
    kind = f" ({content_type})" if content_type else ""
    return f"`{filename}`{kind} is not an audio or video file, so I cannot transcribe it."


NOT_A_RECORDING: Final = "That is not an audio or video file, or a link to one."


def started(titles: list[str], where: str) -> str:
    what = ", ".join(f"`{t}`" for t in titles)
    return f"Transcribing {what}: the transcript will appear {where}."


def already(titles: list[str], where: str) -> str:
    what = ", ".join(f"`{t}`" for t in titles)
    return f"{what} is already being transcribed (or done): see {where}."


# -- users: /transcribe-settings ---------------------------------------------------------

NEED_MANAGE_SERVER: Final = "Only members with the Manage Server permission can change this."
GUILD_ONLY: Final = (
    "This exists in servers only: direct messages to me follow the bot's own setting "
    "(DISCORD_DM_TRANSCRIBE)."
)


def auto_set(enabled: bool, channel_mention: str) -> str:
    if enabled:
        return (
            f"Auto-transcribe is **on** in {channel_mention} (and its threads): audio, video "
            "and voice messages posted there get a transcript in a thread."
        )
    return (
        f"Auto-transcribe is **off** in {channel_mention} (and its threads). "
        "Use `/transcribe` or the message menu (Apps -> Transcribe) when you want one."
    )


# -- users: delivery failures (shown in the thread by the engine) ------------------------


def forbidden(detail: str) -> str:
    return f"threadscribe lacks a permission in this channel ({detail}); it needs {PERMISSIONS}"


CHANNEL_GONE: Final = "the channel or thread is gone (deleted, or the bot was removed)"
MESSAGE_GONE: Final = "the message with the file was deleted"
ATTACHMENT_GONE: Final = "the file was removed from its message"
COMMAND_FILE_EXPIRED: Final = (
    "Discord's link to the file given to /transcribe has expired: run /transcribe again"
)
CANNOT_READ_HISTORY: Final = (
    "threadscribe cannot read this channel's messages to fetch the file: give it "
    "View Channel and Read Message History"
)


def cdn_refused(status: int) -> str:
    return f"Discord's file server refused the download (HTTP {status})"


def refused_by_discord(status: int, code: int, text: str) -> str:
    """Discord's own error (JSON: a code and a message), or, with code 0, an answer from
    whatever stands in front of it (an HTML page from Cloudflare, a proxy's text): named
    by its status, never shown as it is."""
    if code == 0:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "error"
        if status >= 500:
            return f"Discord is not answering properly ({status} {phrase})"
        return f"Discord answered {status} {phrase}"
    said = " ".join(text.split())
    if len(said) > 200:
        said = said[:199] + "…"
    return f"Discord refused the request ({status}, code {code}: {said})"


# -- operators: threadscribe doctor -------------------------------------------------------

INTENT_OFF: Final = (
    "the Message Content intent is off: in the Developer Portal open Bot -> Privileged "
    "Gateway Intents and switch on Message Content Intent (without it the bot cannot connect)"
)


def no_server(invite: str) -> str:
    return f"the bot is in no server yet: open {invite} to invite it"
