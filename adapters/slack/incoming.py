"""From Slack's payloads to the core's `Trigger`: a message as the listeners need it, and
its files as `Attachment`s.

A Slack message is identified by channel + ts; the core makes one job per file (by file
id) or link (by URL) in it, so every retry, replay, mention or shortcut on the same
message lands on the job that exists already. Which files and links are media is the
core's decision (bot/intake.py), not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.chat import Attachment, JobOptions, JSONScalar, Platform, Trigger

#: Message subtypes a person's post can have; edits, deletions, joins etc. are not triggers.
TRIGGER_SUBTYPES: Final = frozenset({None, "file_share", "thread_broadcast"})
#: Slack's own hosts: links to them are messages and files pages, never media.
SLACK_HOSTS: Final = ("slack.com", "slack-edge.com", "slack-files.com", "slack-redir.net")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message as the triggers need it. `ts` is None when Slack sent none (a malformed
    event): such a message has no identity, and the core refuses its recordings."""

    team: str
    channel: str
    ts: str | None
    thread_ts: str | None  # the thread the message is in; None for a top-level message
    user: str | None
    bot_id: str | None
    subtype: str | None
    text: str
    files: tuple[Mapping[str, Any], ...]
    direct: bool = False

    @classmethod
    def of(cls, message: Mapping[str, Any], *, team: str, channel: str) -> SlackMessage:
        ts = message.get("ts")
        thread_ts = message.get("thread_ts")
        return cls(
            team=team,
            channel=channel,
            ts=str(ts) if ts else None,
            thread_ts=thread_ts if thread_ts and thread_ts != ts else None,
            user=message.get("user"),
            bot_id=message.get("bot_id"),
            subtype=message.get("subtype"),
            text=unescape(message.get("text") or ""),
            files=tuple(f for f in message.get("files") or () if isinstance(f, Mapping)),
            direct=message.get("channel_type") == "im",
        )

    def from_person(self, bot_user_id: str | None, bot_id: str | None) -> bool:
        """Posted by a person: not by this bot, nor by any integration."""
        if self.user is None or self.bot_id is not None:
            return False
        return self.user != bot_user_id and (bot_id is None or self.bot_id != bot_id)

    def trigger(
        self,
        files: Iterable[Mapping[str, Any]],
        *,
        requester: str,
        explicit: bool,
        text: str | None = None,
        options: JobOptions | None = None,
    ) -> Trigger:
        """The core's view of this message; replies go to its thread."""
        return Trigger(
            platform=Platform.SLACK,
            workspace=self.team,
            channel=self.channel,
            requester=requester,
            message=self.ts,
            thread=self.thread_ts,
            text=self.text if text is None else text,
            attachments=tuple(attachment(f) for f in files if usable(f)),
            explicit=explicit,
            direct=self.direct,
            options=options or JobOptions(),
            own_hosts=SLACK_HOSTS,
            author=self.user,
        )


def unescape(text: str) -> str:
    """Slack message text with `&amp;` and friends decoded (links included)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def usable(file: Mapping[str, Any]) -> bool:
    """A file that is there: not deleted, not past the plan's limit, not a link to
    elsewhere (Google Drive and the like are not Slack's to hand over)."""
    return file.get("mode") not in ("tombstone", "hidden_by_limit") and not file.get("is_external")


def needs_file_info(file: Mapping[str, Any]) -> bool:
    """Slack sometimes sends a stub (`file_access: check_file_info`) instead of the file."""
    return file.get("file_access") == "check_file_info" or "url_private_download" not in file


def attachment(file: Mapping[str, Any]) -> Attachment:
    """The core's view of a Slack file: where it is, never a token or the bytes."""
    ref: dict[str, JSONScalar] = {
        "id": file.get("id"),
        "name": file.get("name"),
        "mimetype": file.get("mimetype"),
        "size": file.get("size"),
        "url": file.get("url_private_download") or file.get("url_private"),
        "duration_ms": file.get("duration_ms"),
    }
    ms = file.get("duration_ms")
    size = file.get("size")
    return Attachment(
        ref={k: v for k, v in ref.items() if v is not None},
        name=file.get("name") or file.get("title"),
        mimetype=file.get("mimetype"),
        size=size if isinstance(size, int) else None,
        duration=ms / 1000 if isinstance(ms, int | float) and ms > 0 else None,
    )


def command_trigger(
    *, team: str, channel: str, user: str, trigger_id: str, text: str, options: JobOptions
) -> Trigger:
    """`/transcribe <url>`: no message to answer under, so the engine starts a thread."""
    return Trigger(
        platform=Platform.SLACK,
        workspace=team,
        channel=channel,
        requester=user,
        event_id=f"command:{trigger_id}",
        text=text,
        explicit=True,
        options=options,
        own_hosts=SLACK_HOSTS,
    )
